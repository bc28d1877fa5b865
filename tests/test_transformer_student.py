"""The transformer student: a smaller `BertModel` cut from the teacher's own
layers (`kbert.student.cut_teacher`), distilled like the other students,
and a BERT like any other afterwards (original-format export and reload,
predict and ONNX export)."""

import re

import keras
import numpy as np
import pytest
from test_serving import run_in_runtime

from kbert import BertModel, ConfigError, DataError, DistillOptions, distill, export_checkpoint, export_run, load_checkpoint, load_classifier, runs
from kbert.config import BertConfig
from kbert.materials import EncodedSplit, MaterialsOptions, generate_materials
from kbert.serving import EXPORTED_BY, TOLERANCE
from kbert.student import cut_teacher, teacher_layers
from kbert.tokenization import Tokenizer

import needs

V, H, C, T, DEPTH = 40, 16, 2, 8, 4
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, V)]


def logits(model, x, segments):
    return np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch([x, segments])), np.float64)


def centred_error(ours, theirs):
    """Mean squared error of the logits about their means: what depends on
    the sentence, not a constant offset a bias learns at once."""
    return np.mean(((ours - ours.mean(0)) - (theirs - theirs.mean(0))) ** 2)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A random 4-layer BERT classifier saved as a complete teacher run.  Its
    weights are drawn wide (initializer_range 0.3, not 0.02) and its
    classifier scaled up, so that its logits depend on the sentence: a
    target a student can learn."""
    keras.utils.set_random_seed(3)
    config = BertConfig(vocab_size=V, hidden_size=H, num_hidden_layers=DEPTH, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=T, initializer_range=0.3)
    teacher = BertModel(config, num_labels=C)
    dense = teacher.get_layer("Classifier-Dense")  # its own init is 0.02: logits spread 100x wider
    dense.kernel.assign(keras.ops.convert_to_numpy(dense.kernel) * 100.0)
    directory = tmp_path_factory.mktemp("teacher")
    runs.save_model(directory, teacher, "teacher")
    runs.write_vocab(directory, VOCAB)
    runs.write_run(directory, runs.RunRecord(kind="teacher", status="complete", options={}, task="BOW",
                                             labels=None, num_labels=C, max_seq_len=T))
    return directory


def random_split(rng, n, labeled=True):
    lengths = rng.integers(3, T + 1, n)
    x = np.zeros((n, T), np.int32)
    segments = np.zeros((n, T), np.int32)
    for i, length in enumerate(lengths):
        x[i, :length] = rng.integers(5, V, length)
        segments[i, length // 2 : length] = 1  # a pair's second side: the student must read segments too
    labels = rng.integers(0, C, n) if labeled else np.full(n, -1)
    return EncodedSplit(x, segments, labels, np.array([f"s{i}" for i in range(n)]), lengths)


@pytest.fixture(scope="module")
def materials_dir(teacher_run, tmp_path_factory):
    rng = np.random.default_rng(0)
    teacher, _ = runs.load_model(teacher_run)
    splits = {"train": random_split(rng, 400, labeled=False), "dev": random_split(rng, 100)}
    out = tmp_path_factory.mktemp("materials")
    generate_materials(teacher, splits, str(out), vocab=VOCAB, teacher_id=str(teacher_run),
                       options=MaterialsOptions(task="BOW", max_seq_len=T, batch_size=100), verbose=False)
    return str(out)


def test_teacher_layers_spread_evenly_or_take_the_bottom():
    assert teacher_layers(3, 6, "spread") == [2, 4, 6]  # DistilBERT: every other layer
    assert teacher_layers(2, 6, "spread") == [3, 6]
    assert teacher_layers(4, 12, "spread") == [3, 6, 9, 12]
    assert teacher_layers(1, 6, "spread") == [6]
    assert teacher_layers(6, 6, "spread") == [1, 2, 3, 4, 5, 6]
    assert teacher_layers(2, 6) == teacher_layers(2, 6, "bottom") == [1, 2]
    with pytest.raises(ConfigError, match="cannot be cut from a teacher of 6"):
        teacher_layers(7, 6)
    with pytest.raises(ConfigError, match="layer_map"):
        teacher_layers(2, 6, "top")


def test_a_cut_starts_from_the_teachers_chosen_layers(teacher_run):
    teacher, _ = runs.load_model(teacher_run)
    assert cut_teacher(teacher, layers=2).cut_from == [1, 2]  # the default: the bottom layers
    student = cut_teacher(teacher, layers=2, layer_map="spread")
    assert student.cut_from == [2, 4] and student.bert_config.num_hidden_layers == 2
    names = {layer.name for layer in student.layers if layer.weights}
    assert not {name for name in names if name.startswith("Encoder-3")}
    for layer in student.layers:
        if not layer.weights:
            continue
        encoder = re.fullmatch(r"Encoder-(\d+)-(.+)", layer.name)
        source = f"Encoder-{[2, 4][int(encoder[1]) - 1]}-{encoder[2]}" if encoder else layer.name
        for ours, theirs in zip(layer.get_weights(), teacher.get_layer(source).get_weights(), strict=True):
            np.testing.assert_array_equal(ours, theirs, err_msg=layer.name)
    # The whole teacher, kept whole, computes what the teacher does.
    whole = cut_teacher(teacher, layers=DEPTH)
    x = np.array([[2, 7, 9, 3, 0]], np.int32)
    np.testing.assert_allclose(logits(whole, x, x * 0), logits(teacher, x, x * 0), atol=1e-5)
    # Narrower and started at random: nothing of the encoder is the teacher's.
    narrow = cut_teacher(teacher, layers=2, hidden=8, heads=2, intermediate=16, narrow_start="random")
    assert narrow.cut_from == [] and narrow.bert_config.hidden_size == 8
    assert logits(narrow, x, x * 0).shape == (1, C)
    with pytest.raises(ConfigError, match="multiple of heads"):
        cut_teacher(teacher, layers=2, hidden=10, heads=4)
    with pytest.raises(ConfigError, match="narrow_start"):
        cut_teacher(teacher, layers=2, narrow_start="zeros")
    # A projection cannot widen anything: the teacher has 2 heads of 8. The default then starts at random.
    for sizes, name in (({"heads": 4, "hidden": 16}, "heads"), ({"heads": 1, "hidden": 16}, "head size"),
                        ({"intermediate": 64}, "intermediate")):
        with pytest.raises(ConfigError, match=rf"needs {name}\b"):
            cut_teacher(teacher, layers=2, narrow_start="projection", **sizes)
        assert cut_teacher(teacher, layers=2, **sizes).cut_from == []
    assert cut_teacher(teacher, layers=2, hidden=8, heads=1).cut_from == [1, 2]  # narrower: projected by default


def test_a_narrow_student_projected_from_the_teacher(teacher_run):
    """The projection rule (`project_teacher`), computed again here in
    NumPy from its documentation: P, the teacher's token embeddings' top
    principal axes; vectors times P, kernels P^T W / W P, LayerNorm's gamma
    times P * P; the strongest heads (|value| * |output|, first e of each
    head's d dimensions) and units (|intermediate column| * |output row|)."""
    teacher, _ = runs.load_model(teacher_run)
    h, a, i = 8, 1, 20  # of 16, 2 and 32: head size 8 of 8
    student = cut_teacher(teacher, layers=2, hidden=h, heads=a, intermediate=i, layer_map="spread")
    assert student.cut_from == [2, 4]
    tokens = teacher.get_layer("Embedding-Token").get_weights()[0].astype(np.float64)
    centred = tokens - tokens.mean(0)
    eigenvalues, vectors = np.linalg.eigh(centred.T @ centred)
    basis = vectors[:, np.argsort(eigenvalues)[::-1][:h]]  # [16, 8], each column up to its sign

    def same(ours, expected, name):
        # An eigenvector's sign is arbitrary: compare up to each hidden axis's sign, found from the token table.
        np.testing.assert_allclose(ours, expected, atol=2e-5, err_msg=name)

    ours = student.get_layer("Embedding-Token").get_weights()[0]
    signs = np.sign(np.sum(ours * (tokens @ basis), axis=0))
    basis = basis * signs
    same(ours, tokens @ basis, "Embedding-Token")
    gamma, beta = teacher.get_layer("Embedding-Norm").get_weights()
    ours_gamma, ours_beta = student.get_layer("Embedding-Norm").get_weights()
    same(ours_gamma, gamma @ basis**2, "Embedding-Norm gamma")
    same(ours_beta, beta @ basis, "Embedding-Norm beta")
    for n, source in enumerate([2, 4], start=1):
        q, qb, k, kb, v, vb, o, ob = teacher.get_layer(f"Encoder-{source}-MultiHeadSelfAttention").get_weights()
        strength = [np.linalg.norm(v[:, j * 8:(j + 1) * 8]) * np.linalg.norm(o[j * 8:(j + 1) * 8]) for j in (0, 1)]
        kept = slice(8 * int(np.argmax(strength)), 8 * int(np.argmax(strength)) + 8)
        expected = [basis.T @ q[:, kept], qb[kept], basis.T @ k[:, kept], kb[kept], basis.T @ v[:, kept], vb[kept],
                    o[kept] @ basis, ob @ basis]
        for got, want in zip(student.get_layer(f"Encoder-{n}-MultiHeadSelfAttention").get_weights(), expected,
                             strict=True):
            same(got, want, f"Encoder-{n}-MultiHeadSelfAttention")
        w1, b1, w2, b2 = teacher.get_layer(f"Encoder-{source}-FeedForward").get_weights()
        units = sorted(np.argsort(-np.linalg.norm(w1, axis=0) * np.linalg.norm(w2, axis=1))[:i])
        expected = [basis.T @ w1[:, units], b1[units], w2[units] @ basis, b2 @ basis]
        for got, want in zip(student.get_layer(f"Encoder-{n}-FeedForward").get_weights(), expected, strict=True):
            same(got, want, f"Encoder-{n}-FeedForward")
    kernel, bias = teacher.get_layer("Classifier-Dense").get_weights()
    same(student.get_layer("Classifier-Dense").get_weights()[0], basis.T @ kernel, "Classifier-Dense")
    kernel, bias = teacher.get_layer("NSP-Dense").get_weights()
    same(student.get_layer("NSP-Dense").get_weights()[0], basis.T @ kernel @ basis, "NSP-Dense")


def test_dropping_silent_units_changes_nothing(teacher_run):
    """At the teacher's hidden width, a student that keeps only the
    feed-forward units whose output rows are not zero computes exactly what
    the teacher computes: the kept units, and only they, are the ones
    `project_teacher` ranks strongest, in their order."""
    teacher, _ = runs.load_model(teacher_run)
    silenced = BertModel(teacher.bert_config, num_labels=C)
    silenced.set_weights(teacher.get_weights())
    rng = np.random.default_rng(1)
    for n in range(1, DEPTH + 1):
        layer = silenced.get_layer(f"Encoder-{n}-FeedForward")
        w1, b1, w2, b2 = layer.get_weights()
        w2[rng.permutation(32)[:12]] = 0.0  # 12 of 32 units silent, a different 12 in each layer
        layer.set_weights([w1, b1, w2, b2])
    student = cut_teacher(silenced, layers=DEPTH, intermediate=20)
    assert student.bert_config.intermediate_size == 20 and student.cut_from == [1, 2, 3, 4]
    x = np.array([[2, 7, 9, 3, 0], [2, 11, 3, 5, 3]], np.int32)
    segments = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], np.int32)
    np.testing.assert_allclose(logits(student, x, segments), logits(silenced, x, segments), atol=1e-5)
    # Keeping fewer units than are live does change the logits: the check above can fail.
    fewer = cut_teacher(silenced, layers=DEPTH, intermediate=10)
    assert np.abs(logits(fewer, x, segments) - logits(silenced, x, segments)).max() > 1e-3


def test_the_transformer_student_distils_and_is_a_bert_afterwards(teacher_run, materials_dir, tmp_path):
    from kbert.materials import load_materials

    teacher, _ = runs.load_model(teacher_run)
    dev = load_materials(materials_dir).splits["dev"]
    target = logits(teacher, dev.x, dev.segment)
    start = cut_teacher(teacher, layers=2)
    before = centred_error(logits(start, dev.x, dev.segment), target)

    options = DistillOptions(student="transformer", layers=2, epochs=4, batch_size=20, learning_rate=1e-3, seed=1)
    record = distill(materials_dir, str(tmp_path / "student"), options, verbose=0)
    assert record.options["learning_rate"] == 1e-3 and record.options["layers"] == 2
    student = keras.saving.load_model(tmp_path / "student" / "student.keras")
    assert isinstance(student, BertModel) and student.bert_config.num_hidden_layers == 2
    after = centred_error(logits(student, dev.x, dev.segment), target)
    assert after < 0.5 * before, (before, after)  # it learned the teacher's logits beyond its start
    np.testing.assert_allclose(record.results["dev_agreement"],
                               np.mean(logits(student, dev.x, dev.segment).argmax(1) == target.argmax(1)))

    # A BERT like any other: the original format, reloaded, holds its weights bit for bit and gives its logits.
    export_checkpoint(student, tmp_path / "original", vocab_file=str(tmp_path / "student" / "vocab.txt"))
    reloaded = load_checkpoint(tmp_path / "original", num_labels=C)
    weighted = [layer for layer in student.layers if layer.weights]
    assert sorted(layer.name for layer in weighted) == sorted(layer.name for layer in reloaded.layers if layer.weights)
    for layer in weighted:
        for ours, theirs in zip(layer.get_weights(), reloaded.get_layer(layer.name).get_weights(), strict=True):
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), layer.name
    np.testing.assert_array_equal(logits(reloaded, dev.x[:8], dev.segment[:8]), logits(student, dev.x[:8], dev.segment[:8]))

    # It serves like any student run: predict reads its run directory, and
    # its ONNX export gives the same logits in onnxruntime.
    texts = ["w5 w9 w12", "w7 w7 w30 w31 w8", "w39"]
    encoded = Tokenizer.from_vocab_file(tmp_path / "student" / "vocab.txt", cased=False).encode_batch(texts, max_len=T)
    predicted = [p.logits for p in load_classifier(tmp_path / "student").predict(texts)]
    np.testing.assert_allclose(predicted, logits(student, encoded.token_ids, encoded.segment_ids), atol=1e-5)
    if keras.backend.backend() in EXPORTED_BY["onnx"]:
        needs.module("onnxruntime")
        export_run(tmp_path / "student", tmp_path / "onnx", "onnx")
        np.testing.assert_allclose(run_in_runtime(tmp_path / "onnx", [encoded.token_ids, encoded.segment_ids]),
                                   predicted, atol=TOLERANCE)


@pytest.mark.single_backend  # the written checkpoint's names and shapes; the writer is tested on every backend
def test_keras_bert_builds_the_exported_transformer_student(teacher_run, tmp_path):
    """keras-bert's own loader reads the student's original-format export: its
    encoder layers give what kbert's student gives."""
    needs.module("keras_bert")
    needs.module("tf_keras")
    from reference_cache import run_reference

    teacher, _ = runs.load_model(teacher_run)
    student = cut_teacher(teacher, layers=2, layer_map="spread")
    directory = tmp_path / "original"
    export_checkpoint(student, directory, vocab_file=str(teacher_run / "vocab.txt"))
    split = random_split(np.random.default_rng(5), 4)
    names = ["Embedding-Norm"] + [f"Encoder-{n}-{part}-Norm" for n in (1, 2)
                                  for part in ("MultiHeadSelfAttention", "FeedForward")]
    inputs, out = tmp_path / "inputs.npz", tmp_path / "keras_bert.npz"
    tokens, segments = split.token_ids, split.segment_ids
    np.savez(inputs, tokens=tokens, segments=segments)
    run_reference(["encoder", directory / "bert_config.json", directory / "bert_model.ckpt", inputs, out, *names],
                  inputs=[directory, inputs], words=["encoder", "bert_model.ckpt", *names], out_dir=tmp_path,
                  outputs=[out.name])
    theirs = dict(np.load(out))
    probe = keras.Model(student.inputs, [student.get_layer(name).output for name in names])
    ours = [keras.ops.convert_to_numpy(o) for o in probe([tokens, segments])]
    for name, value in zip(names, ours, strict=True):
        # Outputs at padded positions are neither model's contract: compare the real tokens.
        real = tokens > 0
        np.testing.assert_allclose(value[real], theirs[name][real], atol=1e-5, rtol=0, err_msg=name)


@pytest.mark.single_backend  # an option's default: the same on every backend
def test_the_default_step_size_is_the_students_own(materials_dir, tmp_path):
    record = distill(materials_dir, str(tmp_path), DistillOptions(student="transformer", layers=1, epochs=1,
                                                                  seed=1), verbose=0)
    assert record.options["learning_rate"] == 5e-5


def test_options_that_shape_a_small_students_embedding_are_refused():
    for option in ({"embedding": "static"}, {"variant": "static"}, {"embedding_dim": 8}, {"pooled_weight": 0.5}):
        with pytest.raises(ConfigError, match="starts from the teacher's own layers"):
            DistillOptions(student="transformer", **option)
    with pytest.raises(ConfigError, match="layers must be >= 1"):
        DistillOptions(student="transformer", layers=0)


def test_a_changed_or_missing_teacher_is_refused(teacher_run, materials_dir, tmp_path):
    import json
    import shutil

    copy = tmp_path / "materials"
    shutil.copytree(materials_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["teacher"]["sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="the teacher's weights changed"):
        distill(str(copy), str(tmp_path / "a"), DistillOptions(student="transformer", epochs=1), verbose=0)
    manifest["teacher"]["id"] = str(tmp_path / "nowhere")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="holds no teacher run"):
        distill(str(copy), str(tmp_path / "b"), DistillOptions(student="transformer", epochs=1), verbose=0)


def test_an_output_inside_the_teacher_run_is_refused_before_anything_is_written(teacher_run, materials_dir):
    before = sorted(p.name for p in teacher_run.rglob("*"))
    for output in (teacher_run / "student", teacher_run.parent):
        with pytest.raises(ConfigError, match="--output"):
            distill(materials_dir, str(output), DistillOptions(student="transformer", epochs=1), verbose=0)
    assert sorted(p.name for p in teacher_run.rglob("*")) == before
