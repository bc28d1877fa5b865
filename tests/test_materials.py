"""Teaching materials: writing, reading back, refusing bad files, resuming."""

import hashlib
import json
import shutil

import keras
import numpy as np
import pytest

import kbert
from kbert import materials as materials_module
from kbert.batching import length_buckets
from kbert.config import BertConfig
from kbert.errors import DataError
from kbert.materials import EncodedSplit, MaterialsOptions, generate_materials, load_materials, run_teacher
from kbert.model import BertModel

V, T = 50, 10
VOCAB = ["[PAD]"] + [f"w{i}" for i in range(1, V)]


def make_teacher(seed=0):
    keras.utils.set_random_seed(seed)
    config = BertConfig(vocab_size=V, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    return BertModel(config, num_labels=2)


def make_split(rng, n, labeled=True, pair=False):
    lengths = rng.integers(2, T + 1, n)
    x = np.zeros((n, T), np.int32)
    segment = np.zeros((n, T), np.int32)
    for i, length in enumerate(lengths):
        x[i, :length] = rng.integers(1, V, length)
        if pair:
            segment[i, length // 2 : length] = 1
    labels = rng.integers(0, 2, n) if labeled else np.full(n, -1)
    words = [" ".join(f"w{j}" for j in row[row > 0]) for row in x]
    sentences = np.array([[w, w] for w in words] if pair else words)
    return EncodedSplit(x, segment, labels, sentences, lengths)


@pytest.fixture(scope="module")
def teacher():
    return make_teacher()


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(7)
    return {
        "train": make_split(rng, 40, pair=True),
        "dev": make_split(rng, 12),
        "augmented": make_split(rng, 20, labeled=False),
    }


def vocab_sha256(tokens):
    """The vocabulary identity, computed here independently of kbert."""
    return hashlib.sha256("".join(f"{token}\n" for token in tokens).encode("utf-8")).hexdigest()


def generate(teacher, splits, out_dir, batch_size=64, int8=False):
    # One batch per split: few shapes, so JAX compiles the teacher only a few times.
    options = MaterialsOptions(task="SST-2", max_seq_len=T, batch_size=batch_size, int8=int8)
    return generate_materials(teacher, splits, str(out_dir), vocab=VOCAB, teacher_id="random-teacher",
                              options=options, verbose=False)


@pytest.fixture(scope="module")
def materials_dir(teacher, splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("materials")
    generate(teacher, splits, out)
    return out


@pytest.fixture
def copy_dir(materials_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(materials_dir, target)
    return target


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_manifest(directory, change):
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def refresh_hash(directory, split):
    """Make the manifest vouch for a tampered file, so the array checks are what fires."""
    def change(manifest):
        entry = manifest["shared"] if split == "shared" else manifest["splits"][split]
        entry["sha256"] = sha256(directory / entry["file"])
    edit_manifest(directory, change)


def rewrite_npz(path, **changes):
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays.update(changes)
    for name in [name for name, value in changes.items() if value is None]:
        del arrays[name]
    np.savez(path, **arrays)


# ---------------------------------------------------------------- round trip


def test_round_trip(materials_dir, teacher, splits):
    materials = load_materials(str(materials_dir))
    assert set(materials.splits) == {"train", "dev", "augmented"}
    assert materials.vocab == VOCAB and materials.num_labels == 2
    np.testing.assert_array_equal(
        materials.embedding, keras.ops.convert_to_numpy(teacher.get_layer("Embedding-Token").embeddings.value)
    )
    for name, encoded in splits.items():
        split = materials.splits[name]
        width = int(encoded.lengths.max())
        np.testing.assert_array_equal(split.x, encoded.token_ids[:, :width])
        np.testing.assert_array_equal(split.segment, encoded.segment_ids[:, :width])
        np.testing.assert_array_equal(split.length, encoded.lengths)
        np.testing.assert_array_equal(split.label, encoded.labels)
        np.testing.assert_array_equal(split.sentence, encoded.sentences)
        assert split.x.dtype == np.int32 and split.y.dtype == np.float32 and split.sentence.dtype.kind == "U"
        # Length-bucketed batches, put back in order, equal one padded batch.
        direct = keras.ops.convert_to_numpy(teacher.predict_on_batch([encoded.token_ids, encoded.segment_ids]))
        np.testing.assert_allclose(split.y, direct, atol=1e-5)
        np.testing.assert_allclose(split.ysm, np.exp(direct) / np.exp(direct).sum(1, keepdims=True), atol=1e-5)

    manifest = materials.manifest
    assert manifest["kbert_version"] == kbert.__version__
    assert manifest["teacher"]["id"] == "random-teacher" and len(manifest["teacher"]["sha256"]) == 64
    assert manifest["vocab"] == {"size": V, "sha256": vocab_sha256(VOCAB)}
    for name, entry in manifest["splits"].items():
        assert entry["complete"] and entry["count"] == len(splits[name].token_ids)
        assert entry["seconds"] >= 0 and entry["items_per_second"] > 0


def test_bucketed_teacher_runs_keep_the_order(teacher):
    rng = np.random.default_rng(3)
    encoded = make_split(rng, 10)
    encoded.token_ids[:, 8:] = 0  # short rows: the batches get trimmed to width 8
    encoded.lengths = (encoded.token_ids != 0).sum(1)
    direct = keras.ops.convert_to_numpy(teacher.predict_on_batch([encoded.token_ids, encoded.segment_ids]))
    for packing in (True, False):
        got = run_teacher(teacher, encoded.token_ids, encoded.segment_ids, encoded.lengths, batch_size=5,
                          packing=packing, verbose=False)
        np.testing.assert_allclose(got, direct, atol=1e-5)


def test_npz_loads_without_pickle(materials_dir):
    for name in ("shared.npz", "train.npz"):
        with np.load(materials_dir / name, allow_pickle=False) as archive:
            for key in archive.files:
                assert archive[key].dtype != object


def test_length_buckets_cover_every_row_once():
    lengths = np.array([5, 1, 9, 3, 3, 17, 2])
    seen = []
    for rows, width in length_buckets(lengths, 3, width_limit=16):
        assert width % 8 == 0 or width == 16
        assert width >= min(lengths[rows].max(), 16)
        seen.extend(rows)
    assert sorted(seen) == list(range(len(lengths)))


# ---------------------------------------------------------------- bad files


def truncate(directory):
    data = (directory / "train.npz").read_bytes()
    (directory / "train.npz").write_bytes(data[: len(data) // 2])
    refresh_hash(directory, "train")
    return "train.npz"


def foreign_npz(directory):
    np.savez(directory / "train.npz", weights=np.zeros(3))
    refresh_hash(directory, "train")
    return "train.npz"


def pickled_npz(directory):
    rewrite_npz(directory / "train.npz", sentence=np.array(["a"] * 40, dtype=object))
    refresh_hash(directory, "train")
    return "train.npz"


def not_a_zip(directory):
    (directory / "dev.npz").write_text("hello")
    refresh_hash(directory, "dev")
    return "dev.npz"


def changed_file(directory):
    rewrite_npz(directory / "dev.npz", label=np.zeros(12, np.int32))  # hash left as it was
    return "dev.npz"


def count_disagrees(directory):
    edit_manifest(directory, lambda m: m["splits"]["dev"].update(count=13))
    return "dev.npz"


def embedding_rows_disagree(directory):
    with np.load(directory / "shared.npz") as archive:
        embedding = archive["embedding"]
    rewrite_npz(directory / "shared.npz", embedding=embedding[:-1])
    refresh_hash(directory, "shared")
    return "shared.npz"


def vocab_in_manifest_disagrees(directory):
    edit_manifest(directory, lambda m: m["vocab"].update(size=V + 1))
    return "manifest.json"


def missing_manifest(directory):
    (directory / "manifest.json").unlink()
    return "manifest.json"


def missing_split_file(directory):
    (directory / "augmented.npz").unlink()
    return "augmented.npz"


def array_changed(split, name, change):
    """Damage: replace one array of a split's .npz (the manifest vouches for the new file)."""
    def damage(directory):
        with np.load(directory / f"{split}.npz") as archive:
            value = archive[name].copy()
        rewrite_npz(directory / f"{split}.npz", **{name: change(value)})
        refresh_hash(directory, split)
        return f"{split}.npz"
    damage.__name__ = f"{split}_{name}_changed"
    return damage


def rows_short(y):
    return y[:-1]


def nan_inside(y):
    y[3, 1] = np.nan
    return y


def as_float(x):
    return x.astype(np.float32)


def one_longer(length):
    return length + 1


def ysm_not_softmax(y):
    return y[:, ::-1].copy()


def segment_of_three(segment):
    segment[0, 0] = 3
    return segment


def segment_on_padding(segment):
    segment[segment == 0] = 1  # dev rows are single sentences: padding included
    return segment


def zero_inside_a_row(x):
    x[0, 0] = 0  # a 0 before the row's end: length still counts non-zero ids
    x[0, 1:] = np.where(x[0, 1:] == 0, 5, x[0, 1:])
    return x


def manifest_changed(change, file="manifest.json"):
    """Damage: a malformed manifest field (these escaped as Python errors before)."""
    def damage(directory):
        edit_manifest(directory, change)
        return file
    damage.__name__ = "manifest_" + change.__name__
    return damage


def splits_is_a_list(m):
    m["splits"] = ["train"]


def split_entry_is_a_string(m):
    m["splits"]["dev"] = "dev.npz"


def count_is_a_string(m):
    m["splits"]["dev"]["count"] = "12"


def file_is_a_directory(m):
    m["splits"]["dev"]["file"] = "."


def file_is_a_path_elsewhere(m):
    m["splits"]["dev"]["file"] = "../dev.npz"


def vocab_is_a_number(m):
    m["vocab"] = 7


def num_labels_is_a_bool(m):
    m["num_labels"] = True


def shared_has_no_file(m):
    del m["shared"]["file"]


def hash_is_a_list(m):
    m["splits"]["train"]["sha256"] = [1]


def corrupt_deflate(directory):
    """A flipped byte inside a compressed member: zlib's error, not ours, before."""
    data = bytearray((directory / "dev.npz").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (directory / "dev.npz").write_bytes(bytes(data))
    refresh_hash(directory, "dev")
    return "dev.npz"


@pytest.mark.parametrize(
    "damage",
    [truncate, foreign_npz, pickled_npz, not_a_zip, changed_file, count_disagrees,
     array_changed("dev", "y", rows_short), array_changed("dev", "y", nan_inside), array_changed("dev", "x", as_float),
     array_changed("dev", "length", one_longer), embedding_rows_disagree, vocab_in_manifest_disagrees, missing_manifest,
     missing_split_file, corrupt_deflate,
     array_changed("dev", "ysm", ysm_not_softmax), array_changed("dev", "segment", segment_of_three),
     array_changed("dev", "segment", segment_on_padding), array_changed("dev", "x", zero_inside_a_row),
     *(manifest_changed(change) for change in (
         splits_is_a_list, split_entry_is_a_string, count_is_a_string, file_is_a_directory,
         file_is_a_path_elsewhere, vocab_is_a_number, num_labels_is_a_bool, shared_has_no_file, hash_is_a_list))],
    ids=lambda damage: damage.__name__,
)
def test_bad_materials_raise_data_error_naming_the_file(copy_dir, damage):
    file_name = damage(copy_dir)
    with pytest.raises(DataError, match=file_name.replace(".", r"\.")):
        load_materials(str(copy_dir))


def test_vocab_mismatch(materials_dir):
    other = VOCAB[:-1] + ["zzz"]
    with pytest.raises(DataError, match="another vocabulary"):
        load_materials(str(materials_dir), vocab=other)
    assert load_materials(str(materials_dir), vocab=vocab_sha256(VOCAB), splits=["dev"]).splits.keys() == {"dev"}


def test_incomplete_split_is_left_out_or_refused(copy_dir):
    edit_manifest(copy_dir, lambda m: m["splits"]["augmented"].update(complete=False))
    assert "augmented" not in load_materials(str(copy_dir)).splits
    with pytest.raises(DataError, match="incomplete"):
        load_materials(str(copy_dir), splits=["augmented"])


# ---------------------------------------------------------------- generation input


def test_bad_encoded_input(teacher, splits, tmp_path):
    good = splits["dev"]
    bad_length = EncodedSplit(good.token_ids, good.segment_ids, good.labels, good.sentences, good.lengths + 1)
    with pytest.raises(DataError, match="lengths"):
        generate(teacher, {"dev": bad_length}, tmp_path)
    outside = EncodedSplit(good.token_ids * 0 + V, good.segment_ids, good.labels, good.sentences)
    with pytest.raises(DataError, match="outside the vocabulary"):
        generate(teacher, {"dev": outside}, tmp_path)
    too_wide = EncodedSplit(np.pad(good.token_ids, [(0, 0), (0, 1)]), np.pad(good.segment_ids, [(0, 0), (0, 1)]),
                            good.labels, good.sentences)
    with pytest.raises(DataError, match="max_seq_len"):
        generate(teacher, {"dev": too_wide}, tmp_path)


# ---------------------------------------------------------------- resuming


class CountingTeacher:
    """Counts the rows the teacher is asked about; can fail on a chosen call."""

    def __init__(self, teacher, fail_on_call=None):
        self.teacher, self.rows, self.calls, self.fail_on_call = teacher, 0, 0, fail_on_call

    def __getattr__(self, name):
        return getattr(self.teacher, name)

    def predict_on_batch(self, inputs):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        self.rows += len(inputs[0])
        return self.teacher.predict_on_batch(inputs)


def test_rerun_skips_complete_splits_and_redoes_incomplete(copy_dir, teacher, splits):
    counting = CountingTeacher(teacher)
    generate(counting, splits, copy_dir)
    assert counting.rows == 0  # everything was complete

    edit_manifest(copy_dir, lambda m: m["splits"]["dev"].update(complete=False))
    rewrite_npz(copy_dir / "augmented.npz", label=np.zeros(20, np.int32))  # file no longer matches its hash
    counting = CountingTeacher(teacher)
    manifest = generate(counting, splits, copy_dir)
    assert counting.rows == len(splits["dev"].token_ids) + len(splits["augmented"].token_ids)
    assert all(entry["complete"] for entry in manifest["splits"].values())
    load_materials(str(copy_dir))


def test_interrupted_run_resumes(teacher, splits, tmp_path):
    # One call per split: train, then dev, which fails.
    counting = CountingTeacher(teacher, fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        generate(counting, splits, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["splits"]["train"]["complete"] and not manifest["splits"]["dev"]["complete"]
    assert not list(tmp_path.glob("*.tmp"))  # no half-written file left behind
    assert "dev" not in load_materials(str(tmp_path)).splits

    counting = CountingTeacher(teacher)
    generate(counting, splits, tmp_path)
    assert counting.rows == len(splits["dev"].token_ids) + len(splits["augmented"].token_ids)
    assert set(load_materials(str(tmp_path)).splits) == {"train", "dev", "augmented"}


def test_another_teacher_into_the_same_directory(copy_dir, splits):
    with pytest.raises(DataError, match="another teacher"):
        generate(make_teacher(seed=1), splits, copy_dir)


# ---------------------------------------------------------------- int8 teacher


@pytest.mark.single_backend  # int8 itself is checked on every backend in test_variants
def test_int8_teacher_is_close_to_float_recorded_and_never_mixed(materials_dir, splits, tmp_path):
    # A fresh copy of the same teacher: quantize() changes a model in place.
    quantized = make_teacher()
    out = tmp_path / "int8"
    manifest = generate(quantized, splits, out, int8=True)
    assert manifest["teacher"]["quantization"] == "int8"
    float_materials, int8_materials = load_materials(str(materials_dir)), load_materials(str(out))
    # Hashed and read before quantizing: the same teacher, the same float embedding.
    assert manifest["teacher"]["sha256"] == float_materials.manifest["teacher"]["sha256"]
    np.testing.assert_array_equal(int8_materials.embedding, float_materials.embedding)
    for name in splits:
        y_float, y_int8 = float_materials.splits[name].y, int8_materials.splits[name].y
        assert not np.array_equal(y_float, y_int8), "int8 changed nothing: not quantized"
        # Per-channel int8 weights: logits within a few percent of their spread.
        np.testing.assert_allclose(y_int8, y_float, atol=0.05 * np.abs(y_float).max() + 1e-3)
    with pytest.raises(DataError, match="another teacher"):
        generate(make_teacher(), splits, out)  # float materials into an int8 directory


def test_options_are_frozen_and_checked():
    for bad in (dict(augment=-1), dict(batch_size=0), dict(max_seq_len=0), dict(splits=()), dict(splits="dev"),
                dict(augment="2"), dict(int8=1)):
        with pytest.raises(kbert.ConfigError):
            MaterialsOptions(**bad)
    assert MaterialsOptions(splits=["dev"]).splits == ("dev",)
    with pytest.raises(AttributeError):
        MaterialsOptions().augment = 2


def test_windows_give_each_long_sentence_the_mean_of_its_windows_logits(tmp_path):
    """--long-inputs windows: y of a 20-piece sentence at max_seq_len 10 is
    the mean of the teacher's logits on windows of 8 pieces, 4 apart,
    computed here; x stays the truncated encoding."""
    from kbert.tokenization import Tokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(4, V)]
    tokenizer = Tokenizer({t: i for i, t in enumerate(vocab)})
    long_ids = list(range(4, 24))
    sentences = np.array([" ".join(f"w{i}" for i in long_ids), "w5 w6"])
    batch = tokenizer.encode_batch(list(sentences), max_len=T)
    split = EncodedSplit(batch.token_ids, batch.segment_ids, np.array([0, 1]), sentences, batch.lengths)
    teacher = make_teacher()
    options = MaterialsOptions(task="SST-2", max_seq_len=T, long_inputs="windows", stride=4)
    manifest = generate_materials(teacher, {"dev": split}, str(tmp_path), vocab=vocab, teacher_id="t",
                                  options=options, verbose=False, tokenizer=tokenizer)
    assert manifest["teacher"]["long_inputs"] == {"windows": True, "stride": 4}
    got = load_materials(str(tmp_path)).splits["dev"]

    def logits(ids):
        return keras.ops.convert_to_numpy(teacher([np.array([ids]), np.zeros((1, len(ids)), "int32")]))[0]

    windows = [[2, *long_ids[s:s + 8], 3] for s in (0, 4, 8, 12)]
    np.testing.assert_allclose(got.y[0], np.mean([logits(w) for w in windows], axis=0), atol=1e-5)
    np.testing.assert_allclose(got.y[1], logits([2, 5, 6, 3]), atol=1e-5)
    np.testing.assert_array_equal(got.x, batch.token_ids[:, : got.x.shape[1]])
    with pytest.raises(kbert.ConfigError, match="pairs"):
        pairs = EncodedSplit(batch.token_ids, batch.segment_ids, np.array([0, 1]),
                             np.array([[s, s] for s in sentences]), batch.lengths)
        generate_materials(teacher, {"dev": pairs}, str(tmp_path / "p"), vocab=vocab, teacher_id="t",
                           options=options, verbose=False, tokenizer=tokenizer)


def test_static_vectors_are_each_tokens_last_layer_output(splits, tmp_path):
    from kbert.student import static_start

    teacher = make_teacher(seed=5)
    vocab = ["[PAD]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(3, V)]
    options = MaterialsOptions(task="SST-2", max_seq_len=T, static_embedding=True)
    generate_materials(teacher, {"dev": splits["dev"]}, str(tmp_path), vocab=vocab, teacher_id="t", options=options,
                       verbose=False)
    static = load_materials(str(tmp_path)).static
    assert static.shape == (V, 16)
    # The reference: a headless BertModel with the teacher's weights, copied by
    # layer name, on "[CLS] token [SEP]", read at the token.
    plain = BertModel(teacher.bert_config)
    for layer in plain.layers:
        if layer.weights:
            layer.set_weights(teacher.get_layer(layer.name).get_weights())
    for token in (1, 7, V - 1):
        hidden = keras.ops.convert_to_numpy(plain([np.array([[1, token, 2]]), np.zeros((1, 3), np.int32)]))
        np.testing.assert_allclose(static[token], hidden[0, 1], atol=1e-5)

    # PCA to 4 columns, then each row times 1e-3 / (1e-3 + p(token)).
    counts = np.arange(V, dtype=np.float64)
    start = static_start(static, counts, 4)
    centred = static - static.mean(0)
    _, _, axes = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    projected = centred @ axes[:4].T
    weights = 1e-3 / (1e-3 + counts / counts.sum())
    # Principal axes are defined up to sign: compare column by column.
    for k in range(4):
        column = projected[:, k] * weights
        sign = np.sign(column @ start[:, k])
        np.testing.assert_allclose(start[:, k], sign * column, atol=1e-4)


@pytest.mark.single_backend  # the chunks' files and their bookkeeping; pooled vectors are tested on every backend below
def test_killed_pooled_vectors_resume_at_their_first_unsaved_chunk(splits, tmp_path, monkeypatch):
    """`--pooled` vectors are saved chunk by chunk with the logits: killed
    in the second chunk, a re-run computes the chunks not saved only, and
    the materials are the uninterrupted run's, bit for bit."""
    monkeypatch.setattr(materials_module, "CHUNK_ROWS", 16)  # train's 40 rows: chunks of 16, 16, 8
    teacher = make_teacher(seed=6)
    options = MaterialsOptions(task="SST-2", max_seq_len=T, batch_size=8, pooled=True)

    def write(out):
        generate_materials(teacher, {"train": splits["train"]}, str(out), vocab=VOCAB, teacher_id="t",
                           options=options, verbose=False)

    write(tmp_path / "whole")
    real_pooled, calls = materials_module.pooled_vectors, []

    def counted(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_pooled(*args, **kwargs)

    monkeypatch.setattr(materials_module, "pooled_vectors", counted)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path / "killed")
    assert sorted(p.name for p in (tmp_path / "killed" / "train.parts").iterdir()) == [
        "key.json", "pooled-chunk-00000.npy", "teacher-0-chunk-00000.npy", "teacher-0-chunk-00001.npy",
        "teacher-0-chunk-00002.npy"]
    calls.clear()
    monkeypatch.setattr(materials_module, "pooled_vectors", lambda *a, **k: (calls.append(len(a[1])),
                                                                             real_pooled(*a, **k))[1])
    write(tmp_path / "killed")
    assert calls == [16, 8]  # the second and third chunks only
    assert not (tmp_path / "killed" / "train.parts").exists()
    a = load_materials(str(tmp_path / "whole")).splits["train"]
    b = load_materials(str(tmp_path / "killed")).splits["train"]
    np.testing.assert_array_equal(a.pooled, b.pooled)
    np.testing.assert_array_equal(a.y, b.y)


def test_pooled_vectors_and_a_student_that_matches_them(splits, tmp_path):
    from kbert.distillation import DistillOptions, distill
    from kbert.student import CNNStudent

    teacher = make_teacher(seed=6)
    options = MaterialsOptions(task="SST-2", max_seq_len=T, pooled=True)
    generate_materials(teacher, {"train": splits["train"], "dev": splits["dev"]}, str(tmp_path / "m"), vocab=VOCAB,
                       teacher_id="t", options=options, verbose=False)
    materials = load_materials(str(tmp_path / "m"))
    train = materials.splits["train"]
    assert train.pooled.dtype == np.float16 and train.pooled.shape == (len(train), 16)
    # The reference: a headless BertModel with the pooler, the teacher's weights copied by name.
    plain = BertModel(teacher.bert_config, with_pooler=True)
    for layer in plain.layers:
        if layer.weights:
            layer.set_weights(teacher.get_layer(layer.name).get_weights())
    for i in (0, 7, len(train) - 1):
        n = int(train.length[i])
        _, pooled = plain([train.x[i : i + 1, :n], train.segment[i : i + 1, :n]])
        np.testing.assert_allclose(train.pooled[i], keras.ops.convert_to_numpy(pooled)[0], atol=2e-3)  # float16

    # Trained one epoch, then resumed (the trainer reloads from its checkpoint) for a second.
    distill(str(tmp_path / "m"), str(tmp_path / "s"),
            DistillOptions(epochs=1, batch_size=20, pooled_weight=1.0, holdout=0.0, seed=1), verbose=0)
    record = distill(str(tmp_path / "m"), str(tmp_path / "s"),
                     DistillOptions(epochs=2, batch_size=20, pooled_weight=1.0, holdout=0.0, seed=1), resume=True,
                     verbose=0)
    assert [h["epoch"] for h in record.results["history"]] == [1, 2]
    student = keras.saving.load_model(tmp_path / "s" / "student.keras")
    assert isinstance(student, CNNStudent) and student.output.shape[-1] == 2  # the projection is not kept
    logits = keras.ops.convert_to_numpy(student(materials.splits["dev"].x))
    agreement = float((logits.argmax(1) == materials.splits["dev"].y.argmax(1)).mean())
    assert record.results["dev_agreement"] == pytest.approx(agreement, abs=1e-6)
    # Materials without pooled vectors are refused by name.
    generate_materials(teacher, {"train": splits["train"], "dev": splits["dev"]}, str(tmp_path / "plain"),
                       vocab=VOCAB, teacher_id="t", options=MaterialsOptions(task="SST-2", max_seq_len=T),
                       verbose=False)
    with pytest.raises(kbert.ConfigError, match="--pooled"):
        distill(str(tmp_path / "plain"), str(tmp_path / "s2"), DistillOptions(epochs=1, pooled_weight=1.0), verbose=0)


def test_an_npz_entry_flagged_encrypted_is_a_data_error(tmp_path):
    """One flipped flag bit makes zipfile call an entry encrypted and raise
    RuntimeError, which escaped the materials reader."""
    from kbert.materials import _open_npz

    np.savez(tmp_path / "x.npz", a=np.arange(10))
    data = bytearray((tmp_path / "x.npz").read_bytes())
    data[6] |= 1  # general-purpose flag, bit 0 (encrypted), of the first local header
    data[data.find(b"PK\x01\x02") + 8] |= 1  # and of its central directory entry
    (tmp_path / "x.npz").write_bytes(bytes(data))
    with pytest.raises(DataError, match="x.npz: unreadable .npz .RuntimeError"):
        _open_npz(str(tmp_path / "x.npz"), ["a"])


def test_a_killed_teacher_pass_resumes_at_its_first_unsaved_chunk(teacher, splits, tmp_path, monkeypatch):
    """A split's pass saves its logits every CHUNK_ROWS rows: killed in the
    third chunk, a re-run computes only the chunks not saved, and the
    materials are the uninterrupted run's, bit for bit."""
    monkeypatch.setattr(materials_module, "CHUNK_ROWS", 16)  # train's 40 rows: chunks of 16, 16, 8
    whole = tmp_path / "whole"
    generate(teacher, {"train": splits["train"]}, whole, batch_size=8)
    assert not (whole / "train.parts").exists()  # removed once train.npz holds the logits

    real_run_teacher = materials_module.run_teacher
    rows = []

    def dies_in_the_third_chunk(*args, **kwargs):
        if len(rows) == 2:
            raise KeyboardInterrupt
        rows.append(len(args[1]))
        return real_run_teacher(*args, **kwargs)

    killed = tmp_path / "killed"
    monkeypatch.setattr(materials_module, "run_teacher", dies_in_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        generate(teacher, {"train": splits["train"]}, killed, batch_size=8)
    assert sorted(p.name for p in (killed / "train.parts").iterdir()) == [
        "key.json", "teacher-0-chunk-00000.npy", "teacher-0-chunk-00001.npy"]
    assert not (killed / "train.npz").exists()
    # The same parts behind a link are refused, not read: a link's files are not this pass's to trust.
    (killed / "train.parts").rename(tmp_path / "elsewhere")
    (killed / "train.parts").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="train.parts: not a directory kbert made"):
        generate(teacher, {"train": splits["train"]}, killed, batch_size=8)
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir())[:2] == ["key.json", "teacher-0-chunk-00000.npy"]
    (killed / "train.parts").unlink()
    (tmp_path / "elsewhere").rename(killed / "train.parts")

    rows.clear()
    monkeypatch.setattr(materials_module, "run_teacher", lambda *a, **k: (rows.append(len(a[1])),
                                                                          real_run_teacher(*a, **k))[1])
    generate(teacher, {"train": splits["train"]}, killed, batch_size=8)
    assert rows == [8]  # the third chunk only
    assert not (killed / "train.parts").exists()
    entry = json.loads((killed / "manifest.json").read_text())["splits"]["train"]
    assert entry["resumed_rows"] == 32 and entry["count"] == 40  # its rate counts the 8 rows computed
    a, b = load_materials(str(whole)).splits["train"], load_materials(str(killed)).splits["train"]
    np.testing.assert_array_equal(a.y, b.y)
    direct = keras.ops.convert_to_numpy(teacher.predict_on_batch([splits["train"].token_ids,
                                                                  splits["train"].segment_ids]))
    np.testing.assert_allclose(b.y, direct, atol=1e-5)  # and they are the teacher's logits

    # Parts of another pass (another batch size here) are discarded, not mixed in.
    rows.clear()
    monkeypatch.setattr(materials_module, "run_teacher", dies_in_the_third_chunk)
    other = tmp_path / "other"
    with pytest.raises(KeyboardInterrupt):
        generate(teacher, {"train": splits["train"]}, other, batch_size=8)
    rows.clear()
    monkeypatch.setattr(materials_module, "run_teacher", lambda *a, **k: (rows.append(len(a[1])),
                                                                          real_run_teacher(*a, **k))[1])
    # A hard kill (no clean-up) also leaves atomic_output's temporary file.
    (other / "train.parts" / ".teacher-0-chunk-00002.npy.999999.x1y2.tmp").write_bytes(b"torn")
    generate(teacher, {"train": splits["train"]}, other, batch_size=4)
    assert rows == [16, 16, 8]
    assert not (other / "train.parts").exists()
    # Parts a kill left after the manifest called the split complete go on the next call.
    (other / "train.parts").mkdir()
    (other / "train.parts" / "teacher-0-chunk-00000.npy").write_bytes(b"")
    rows.clear()
    generate(teacher, {"train": splits["train"]}, other, batch_size=4)
    assert rows == [] and not (other / "train.parts").exists()
    # A file kbert did not write is never removed with the parts.
    (whole / "train.parts").mkdir()
    (whole / "train.parts" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="did not write"):
        materials_module._Parts(str(whole), "train", {"another": "key"})
    assert (whole / "train.parts" / "notes.txt").read_text() == "mine"


@pytest.mark.single_backend  # the engine's bookkeeping: the same on every backend
def test_ray_groups_unlabeled_shards_and_keeps_those_read_before_damage(teacher, splits, tmp_path, monkeypatch):
    """On Ray, unlabeled shards wait for a group of RAY_ROWS_PER_ACTOR rows
    an actor; damage further on in the input still leaves every shard read
    before it written, as the local engine does.  (Ray's own part runs in
    test_ray_engine.py; here a stand-in records the jobs and the caller
    computes their chunks, as it does for chunks Ray left unsaved.)"""
    jobs = []

    class Recording(materials_module._RayPass):
        workers = 2

        def compute(self, begun, num_labels, teacher_names, progress=None):
            jobs.append([name for name, _, _ in begun])
            return {}

    monkeypatch.setattr(materials_module, "_RayPass", Recording)
    monkeypatch.setattr(materials_module, "RAY_ROWS_PER_ACTOR", 10)  # jobs of 20 rows or more
    rng = np.random.default_rng(5)

    def shards():
        for k in range(3):
            yield f"unlabeled-{k:05d}", make_split(rng, 12, labeled=False), {"lines": [12 * k + 1, 12 * k + 12]}
        raise DataError("corpus.txt:37: not UTF-8")

    options = MaterialsOptions(task="SST-2", max_seq_len=T, engine="ray")
    with pytest.raises(DataError, match="corpus.txt:37"):
        generate_materials(teacher, {"dev": splits["dev"]}, str(tmp_path), vocab=VOCAB, teacher_id="t",
                           options=options, verbose=False, unlabeled=shards(), teacher_runs=["teacher-run"])
    assert jobs == [["dev"], ["unlabeled-00000", "unlabeled-00001"], ["unlabeled-00002"]]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [name for name, entry in manifest["splits"].items() if entry["complete"]] == [
        "dev", "unlabeled-00000", "unlabeled-00001", "unlabeled-00002"]
