"""The CNN student: its layers, serialization, and a NumPy forward pass."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kbert.errors import ConfigError
from kbert.layers.student_bilstm import StudentBiLSTM
from kbert.layers.student_conv import StudentConv
from kbert.layers.student_embedding import StudentEmbedding
from kbert.layers.student_pool import StudentPool
from kbert.student import BiLSTMStudent, CNNStudent, build_student, merge_trained_rows, project_embeddings

from test_case import run_layer_test, run_model_test

V, H, C = 30, 8, 3


def to_numpy(variable):
    # Through .value: NumPy's array protocol on a JAX-backed variable warns.
    return keras.ops.convert_to_numpy(variable.value)


def token_batch(rng, lengths, width):
    """Right-padded random ids in 1..V-1 with the given lengths."""
    x = np.zeros((len(lengths), width), np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(1, V, n)
    return x


@pytest.fixture(scope="module")
def matrix():
    return np.random.default_rng(99).normal(size=(V, H)).astype(np.float32)


@pytest.fixture(scope="module")
def student(matrix):
    # Shared: building a model eagerly is most of a small test's time on JAX.
    # No test here depends on its weights' values, only on its structure.
    return build_student(matrix, C, filters=6)


# ---------------------------------------------------------------- NumPy reference


def numpy_forward(model, x):
    """Kim's CNN in NumPy: lookup, full conv + ReLU, masked max-pool, dense."""
    emb = model.get_layer("Student-Embedding")
    vectors = [to_numpy(emb.embeddings)]
    if emb.variant == "multichannel":
        vectors.insert(0, to_numpy(emb.static_embeddings))
    table = np.concatenate(vectors, axis=1).astype(np.float64)
    real = x != 0
    e = table[x] * real[..., None]  # [B, T, D], padding rows zero
    b, t, _ = e.shape
    pooled = []
    for width in model.kernel_sizes:
        conv = model.get_layer(f"Student-Conv-{width}").conv
        kernel = to_numpy(conv.kernel).astype(np.float64)  # [w, D, F]
        bias = to_numpy(conv.bias).astype(np.float64)
        padded = np.pad(e, [(0, 0), (width - 1, width - 1), (0, 0)])
        features = np.zeros((b, model.filters))
        for row in range(b):
            best = None
            for i in range(t + width - 1):
                # window i covers tokens i-w+1..i; skip windows that miss the sentence
                covered = range(max(i - width + 1, 0), min(i, t - 1) + 1)
                if not any(real[row, j] for j in covered):
                    continue
                value = np.maximum(np.einsum("wd,wdf->f", padded[row, i : i + width], kernel) + bias, 0)
                best = value if best is None else np.maximum(best, value)
            if best is not None:
                features[row] = best
        pooled.append(features)
    dense = model.get_layer("Student-Logits")
    w = to_numpy(dense.kernel).astype(np.float64)
    return np.concatenate(pooled, axis=1) @ w + to_numpy(dense.bias)


@pytest.mark.parametrize("variant", ["static", "non-static", "multichannel"])
def test_matches_numpy_forward(matrix, rng, variant):
    model = build_student(matrix, C, variant=variant, filters=5)
    # Perturb the biases so that ReLU and masking both matter.
    for width in model.kernel_sizes:
        conv = model.get_layer(f"Student-Conv-{width}").conv
        conv.bias.assign(rng.normal(size=conv.bias.shape).astype(np.float32))
    x = token_batch(rng, [1, 2, 4, 7, 9], 9)  # lengths 1 and 2 are below the filter widths
    expected = numpy_forward(model, x)
    got = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_logits(student, rng):
    x = token_batch(rng, [3, 1, 6], 6)
    wide = np.pad(x, [(0, 0), (0, 10)])
    a = keras.ops.convert_to_numpy(student(x))
    b = keras.ops.convert_to_numpy(student(wide))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_all_padding_row_is_defined(student):
    logits = keras.ops.convert_to_numpy(student(np.zeros((2, 4), np.int32)))
    assert np.isfinite(logits).all()


# ---------------------------------------------------------------- shapes and config


def test_layer_names_and_shapes(student):
    # The generic shape checks are in test_student_model below; these are the student's own.
    assert student.get_layer("Student-Pool").output.shape == (None, 3 * 6)
    assert tuple(student(keras.Input((None,), dtype="int32")).shape) == (None, C)  # any length
    names = [layer.name for layer in student.layers]
    assert names == [
        "Student-Input-Token", "Student-Embedding", "Student-Conv-3", "Student-Conv-4",
        "Student-Conv-5", "Student-Pool", "Student-Dropout", "Student-Logits",
    ]


# The shapes below are those of test_matches_numpy_forward[multichannel]
# (5 sentences of up to 9 tokens, 5 filters): JAX then reuses its compiled ops.


def test_student_embedding_layer(rng):
    ids = token_batch(rng, [1, 2, 4, 7, 9], 9)
    layer = run_layer_test(
        StudentEmbedding,
        {"vocab_size": V, "output_dim": H, "variant": "multichannel", "name": "Student-Embedding"},
        ids,
        (5, 9, 2 * H),
    )
    table = np.concatenate([to_numpy(layer.static_embeddings), to_numpy(layer.embeddings)], axis=1)
    expected = table[ids] * (ids != 0)[..., None]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(ids)), expected)


def test_student_embedding_layer_training_only_some_rows(rng):
    ids = token_batch(rng, [1, 2, 4, 7, 9], 9)
    # Built alone, no row is named for training yet (`set_trained_rows`), so
    # the fit step leaves `trained` where it is.
    layer = run_layer_test(
        StudentEmbedding,
        {"vocab_size": V, "output_dim": H, "variant": "multichannel", "trained_rows": 4,
         "name": "Student-Embedding"},
        ids,
        (5, 9, 2 * H),
        unmoved=("trained",),
    )
    assert [w.name for w in layer.trainable_weights] == ["trained"]
    read = np.unique(ids[ids > 0])[[0, 2, 3, 5]]
    layer.set_trained_rows(read[::-1])  # any order
    moved = rng.normal(size=(4, H)).astype(np.float32)
    layer.trained.assign(moved)  # as training would move them
    table = to_numpy(layer.embeddings).copy()
    table[read[::-1]] = moved
    expected = np.concatenate([to_numpy(layer.static_embeddings), table], axis=1)[ids] * (ids != 0)[..., None]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(ids)), expected)
    merged = layer.merged_weights()
    np.testing.assert_array_equal(merged[0], table)
    np.testing.assert_array_equal(merged[1], to_numpy(layer.static_embeddings))
    with pytest.raises(ValueError, match="distinct ids"):
        layer.set_trained_rows([1, 1, 2, 3])
    with pytest.raises(ValueError, match="trained_rows"):
        StudentEmbedding(V, H, "static", trained_rows=3)


@pytest.mark.parametrize("student, variant", [("cnn", "multichannel"), ("bilstm", "non-static")])
def test_training_only_the_rows_read_is_the_same_training(matrix, rng, student, variant):
    """Adam steps on a student whose embedding trains only the rows its
    batches read, against the same steps on the whole table: the same
    weights, and the rows never read where they started."""
    x = token_batch(rng, [3, 5, 9, 2, 7, 4], 9)
    x[x >= V - 10] = 1  # ids V-10.. never read
    y = rng.normal(size=(len(x), C)).astype(np.float32)
    sizes = {"filters": 4} if student == "cnn" else {"units": 4, "hidden": 8}
    trained = {}
    for ids in (None, np.unique(x[x > 0])):
        keras.utils.set_random_seed(2)  # the same dropout masks and initial weights
        model = build_student(matrix, C, student=student, variant=variant, trained_ids=ids, **sizes)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        for _ in range(4):
            model.train_on_batch(x, y)
        trained["all" if ids is None else "read"] = merge_trained_rows(model)
    assert trained["read"].get_config()["trained_rows"] is None
    for a, b in zip(trained["all"].weights, trained["read"].weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=a.path)  # bit for bit
    table = to_numpy(trained["read"].get_layer("Student-Embedding").embeddings)
    np.testing.assert_array_equal(table[V - 10:], matrix[V - 10:])
    assert np.abs(table[np.unique(x[x > 0])] - matrix[np.unique(x[x > 0])]).max() > 1e-3
    with pytest.raises(ConfigError, match="trained_ids"):
        build_student(matrix, C, trained_ids=[V])
    with pytest.raises(ConfigError, match="static variant"):
        build_student(matrix, C, variant="static", trained_ids=[1, 2])


def test_frozen_rows_read_send_no_gradient_to_the_trained_ones(rng):
    """Against a NumPy gradient: one SGD step (rate 1) on the loss
    sum(vectors * R) / B moves trained row s by -sum of R over the positions
    whose id is s's, and nothing else, frozen ids read included (their
    reads go through the clipped slot K-1 and are dropped by the `where`)."""
    ids = token_batch(rng, [3, 5, 9, 2, 7], 9)
    read = np.unique(ids[ids > 0])
    chosen = read[::2]  # half the ids read train; the others are read, frozen
    layer = StudentEmbedding(V, H, trained_rows=len(chosen))
    inputs = keras.Input((None,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    start = rng.normal(size=(V, H)).astype(np.float32)
    layer.set_matrix(start)
    layer.set_trained_rows(chosen)
    weights = rng.normal(size=ids.shape + (H,)).astype(np.float32)  # R
    model.compile(optimizer=keras.optimizers.SGD(1.0),
                  loss=lambda r, vectors: keras.ops.sum(r * vectors, axis=(1, 2)))
    model.train_on_batch(ids, weights)
    expected = start.copy()
    for b, t in zip(*np.nonzero(ids)):
        if ids[b, t] in chosen:
            expected[ids[b, t]] -= weights[b, t] / len(ids)  # the loss is averaged over the batch
    np.testing.assert_allclose(layer.merged_weights()[0], expected, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(layer.embeddings), start)  # the frozen table itself never moves


def test_student_conv_layer(rng):
    vectors = rng.normal(size=(5, 9, 2 * H)).astype(np.float32)
    run_layer_test(StudentConv, {"filters": 5, "kernel_size": 4, "name": "Student-Conv-4"}, vectors, (5, 9 + 3, 5))


def test_student_pool_layer(rng):
    ids = token_batch(rng, [1, 2, 4, 7, 9], 9)
    maps = [rng.normal(size=(5, 9 + w - 1, 5)).astype(np.float32) for w in (3, 5)]
    run_layer_test(StudentPool, {"kernel_sizes": (3, 5), "name": "Student-Pool"}, [ids] + maps, (5, 2 * 5))


def test_student_model(rng):
    """The shared model check: config, shapes, .keras reload, one fit step."""
    x = token_batch(rng, [1, 2, 4, 7, 9], 9)
    run_model_test(
        CNNStudent,
        {"vocab_size": V, "num_labels": C, "embedding_dim": H, "variant": "multichannel", "filters": 5},
        x,
        (5, C),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        targets=np.array([0, 1, 2, 1, 0]),
    )


def test_embedding_starts_from_teacher(matrix):
    model = build_student(matrix, C, variant="multichannel", filters=2)
    emb = model.get_layer("Student-Embedding")
    np.testing.assert_array_equal(to_numpy(emb.embeddings), matrix)
    np.testing.assert_array_equal(to_numpy(emb.static_embeddings), matrix)


@pytest.mark.parametrize("variant, trainable", [("static", 0), ("non-static", 1), ("multichannel", 1)])
def test_variants_freeze_the_right_channel(matrix, variant, trainable):
    model = build_student(matrix, C, variant=variant, filters=2)
    emb = model.get_layer("Student-Embedding")
    assert len(emb.trainable_weights) == trainable
    assert len(emb.weights) == (2 if variant == "multichannel" else 1)


def test_projection_to_smaller_embedding(matrix):
    model = build_student(matrix, C, embedding_dim=3, filters=2)
    table = to_numpy(model.get_layer("Student-Embedding").embeddings)
    assert table.shape == (V, 3)
    # The principal-axis coordinates keep the centred rows' pairwise inner products
    # as well as any rank-3 map can: the kept variance is the top 3 singular values'.
    centred = matrix - matrix.mean(0)
    top = np.linalg.svd(centred, compute_uv=False)[:3]
    np.testing.assert_allclose(np.linalg.svd(table, compute_uv=False), top, rtol=1e-4)
    with pytest.raises(ConfigError):
        project_embeddings(matrix, H + 1)


def test_bad_arguments():
    with pytest.raises(ConfigError):
        CNNStudent(V, C, variant="dynamic")
    with pytest.raises(ConfigError):
        CNNStudent(V, 0)


# ---------------------------------------------------------------- saving


_RELOAD = """
import sys, numpy as np, keras, kbert.student
model = keras.saving.load_model(sys.argv[1])
x = np.load(sys.argv[2])
np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), np.load(sys.argv[3]), atol=1e-5)
print("reloaded on", keras.backend.backend())
"""


def test_a_keras_file_saved_under_the_old_class_name_still_loads(matrix, rng, tmp_path):
    """The CNN was `StudentModel` before the registry; its `.keras` files name it so."""
    import json
    import zipfile

    model = build_student(matrix, C, filters=3)
    model.save(tmp_path / "new.keras")
    with zipfile.ZipFile(tmp_path / "new.keras") as old_zip:
        files = {name: old_zip.read(name) for name in old_zip.namelist()}
    config = json.loads(files["config.json"])
    assert config["class_name"] == "CNNStudent" and config["registered_name"] == "kbert>CNNStudent"
    config["class_name"], config["registered_name"] = "StudentModel", "kbert>StudentModel"
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "old.keras", "w") as old_zip:
        for name, data in files.items():
            old_zip.writestr(name, data)
    loaded = keras.saving.load_model(tmp_path / "old.keras")
    assert type(loaded) is CNNStudent
    x = token_batch(rng, [2, 5, 3], 6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))


def test_keras_file_reloads_on_another_backend(matrix, rng, tmp_path):
    model = build_student(matrix, C, variant="multichannel", filters=4)
    x = token_batch(rng, [1, 4, 6], 6)
    model.save(tmp_path / "student.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(model(x)))
    other = {"jax": "torch", "torch": "tensorflow", "tensorflow": "jax"}[keras.backend.backend()]
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", _RELOAD, str(tmp_path / "student.keras"), str(tmp_path / "x.npy"),
         str(tmp_path / "y.npy")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"reloaded on {other}" in done.stdout


# ---------------------------------------------------------------- the BiLSTM student


def numpy_bilstm(layer, ids, vectors):
    """Both directions step by step over each sentence's own tokens only
    (no padding at all), Keras' gate order i, f, g, o."""
    kernel, recurrent, bias = (to_numpy(w).astype(np.float64) for w in
                               (layer.kernel, layer.recurrent_kernel, layer.bias))
    units = layer.units
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    out = []
    for row, x in zip(ids, vectors.astype(np.float64)):
        tokens = x[row != 0]
        pooled = []
        for d, order in ((0, tokens), (1, tokens[::-1])):
            h, c, seen = np.zeros(units), np.zeros(units), []
            for v in order:
                z = v @ kernel[:, d * 4 * units : (d + 1) * 4 * units] + h @ recurrent[d] + bias[d]
                i, f, g, o = np.split(z, 4)
                c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                h = sigmoid(o) * np.tanh(c)
                seen.append(h)
            if layer.pooling == "last":
                pooled.append(h)
            else:
                pooled.append(np.max(seen, axis=0) if seen else np.zeros(units))
        out.append(np.concatenate(pooled))
    return np.array(out)


@pytest.mark.parametrize("pooling", ["last", "max"])
def test_student_bilstm_layer_matches_numpy(rng, pooling):
    ids = token_batch(rng, [1, 3, 9, 5, 0], 9)
    vectors = rng.normal(size=(5, 9, 6)).astype(np.float32)
    layer = run_layer_test(StudentBiLSTM, {"units": 4, "pooling": pooling, "name": "Student-BiLSTM"},
                           [ids, vectors], (5, 8))
    # Random bias too: the forget-gate start of 1 would hide a gate-order mistake.
    layer.bias.assign(rng.normal(size=(2, 16)).astype(np.float32))
    got = keras.ops.convert_to_numpy(layer([ids, vectors]))
    np.testing.assert_allclose(got, numpy_bilstm(layer, ids, vectors), atol=1e-5)
    # The same sentences in a wider batch (more padding): the same outputs.
    wider = keras.ops.convert_to_numpy(layer([np.pad(ids, [(0, 0), (0, 4)]), np.pad(vectors, [(0, 0), (0, 4), (0, 0)])]))
    np.testing.assert_allclose(wider, got, atol=1e-6)


def test_bilstm_student_model(rng):
    x = token_batch(rng, [1, 2, 4, 7, 9], 9)
    run_model_test(
        BiLSTMStudent,
        {"vocab_size": V, "num_labels": C, "embedding_dim": H, "variant": "multichannel", "units": 3, "hidden": 5,
         "pooling": "max"},
        x,
        (5, C),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        targets=np.array([0, 1, 2, 1, 0]),
    )


def test_build_bilstm_student_from_teacher_vectors(matrix, rng):
    model = build_student(matrix, C, student="bilstm", units=4, hidden=6)
    assert isinstance(model, BiLSTMStudent)
    np.testing.assert_allclose(to_numpy(model.get_layer("Student-Embedding").embeddings), matrix)
    x = token_batch(rng, [2, 5, 3], 6)
    layer = model.get_layer("Student-BiLSTM")
    vectors = matrix[x] * (x != 0)[..., None]
    states = numpy_bilstm(layer, x, vectors)
    hidden = np.maximum(states @ to_numpy(model.get_layer("Student-Hidden").kernel)
                        + to_numpy(model.get_layer("Student-Hidden").bias), 0)
    logits = hidden @ to_numpy(model.get_layer("Student-Logits").kernel) + to_numpy(model.get_layer("Student-Logits").bias)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), logits, atol=1e-4)
    with pytest.raises(ConfigError, match="student must be one of"):
        build_student(matrix, C, student="gru")
    with pytest.raises(ConfigError, match="cut from the teacher model"):
        build_student(matrix, C, student="transformer")
    with pytest.raises(ConfigError, match="pooling"):
        build_student(matrix, C, student="bilstm", pooling="mean")


# ---------------------------------------------------------------- pairs read apart (siamese)

CLS, SEP = 1, 2


def pair_batch(rng, sides, width):
    """[CLS] a [SEP] b [SEP], right-padded, words in 3..V-1; `sides`: (len a, len b) per row."""
    x = np.zeros((len(sides), width), np.int32)
    for i, (n, m) in enumerate(sides):
        row = [CLS, *rng.integers(3, V, n), SEP, *rng.integers(3, V, m), SEP]
        x[i, : len(row)] = row
    return x


def numpy_sides(x):
    """Each row's two sentences as left-aligned id rows (the tokens between [CLS] and the [SEP]s)."""
    a, b = np.zeros_like(x), np.zeros_like(x)
    for i, row in enumerate(x):
        first, second = np.flatnonzero(row == SEP)[:2]
        a[i, : first - 1] = row[1:first]
        b[i, : second - first - 1] = row[first + 1 : second]
    return a, b


def test_student_pair_split_layer(rng):
    from kbert.layers import StudentPairSplit

    x = pair_batch(rng, [(1, 1), (3, 2), (2, 5), (4, 0)], 12)
    layer = run_layer_test(StudentPairSplit, {"separator_id": SEP, "name": "Student-Pair-Split"}, x,
                           [(4, 12), (4, 12)])
    got = [keras.ops.convert_to_numpy(side) for side in layer(x)]
    a, b = numpy_sides(x)
    # Each side keeps its tokens in place; left-aligning them gives numpy_sides' rows.
    for half, expected in ((got[0], a), (got[1], b)):
        aligned = np.array([np.pad(r[r != 0], (0, 12 - np.count_nonzero(r))) for r in half])
        np.testing.assert_array_equal(aligned, expected)
    assert not np.isin(got, [CLS, SEP]).any()


def test_student_pair_match_layer(rng):
    from kbert.layers import StudentPairMatch

    a, b = rng.normal(size=(2, 3, 5)).astype(np.float32)
    layer = run_layer_test(StudentPairMatch, {"name": "Student-Pair-Match"}, [a, b], (3, 20))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([a, b])),
                               np.concatenate([a, b, a * b, np.abs(a - b)], axis=1), atol=1e-6)


def test_siamese_bilstm_student_reads_each_sentence_alone(matrix, rng):
    model = build_student(matrix, C, student="bilstm", units=4, hidden=6, separator_id=SEP)
    layer = model.get_layer("Student-BiLSTM")
    layer.bias.assign(rng.normal(size=(2, 16)).astype(np.float32))
    x = pair_batch(rng, [(2, 3), (5, 1), (1, 4)], 11)
    a, b = numpy_sides(x)
    # Each sentence alone, left-aligned, through the NumPy LSTM; then Tang's matching features.
    sa = numpy_bilstm(layer, a, matrix[a] * (a != 0)[..., None])
    sb = numpy_bilstm(layer, b, matrix[b] * (b != 0)[..., None])
    features = np.concatenate([sa, sb, sa * sb, np.abs(sa - sb)], axis=1)
    hidden = np.maximum(features @ to_numpy(model.get_layer("Student-Hidden").kernel)
                        + to_numpy(model.get_layer("Student-Hidden").bias), 0)
    logits = hidden @ to_numpy(model.get_layer("Student-Logits").kernel) + to_numpy(model.get_layer("Student-Logits").bias)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), logits, atol=1e-4)
    # Batch padding changes nothing.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(np.pad(x, [(0, 0), (0, 5)]))), logits, atol=1e-4)
    with pytest.raises(ConfigError, match="separator_id"):
        build_student(matrix, C, student="bilstm", separator_id=V)


def test_siamese_bilstm_student_model(rng):
    run_model_test(
        BiLSTMStudent,
        {"vocab_size": V, "num_labels": C, "embedding_dim": H, "units": 3, "hidden": 5, "separator_id": SEP},
        pair_batch(rng, [(1, 2), (3, 3), (2, 1), (4, 2)], 10),
        (4, C),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        targets=np.array([0, 1, 2, 1]),
    )
