"""Tokenized GLUE features, cached on disk as TFRecord + JSON lines.

A cache entry is three files beside each other, keyed by the vocabulary's
content hash and the sequence length:

    CACHE/TASK/<split>.<vocabhash>.len<max_seq_len>.tf_record
    CACHE/TASK/<split>.<vocabhash>.len<max_seq_len>.jsonl
    CACHE/TASK/<split>.<vocabhash>.len<max_seq_len>.meta.json

CACHE is the GLUE data directory unless another is given (the shared data
may be read-only).  The `.tf_record` holds one `tf.train.Example` per
example with the features of `run_classifier.py`'s
`file_based_convert_examples_to_features`: `input_ids`, `input_mask`,
`segment_ids` (int64 lists of max_seq_len), `label_ids` (int64; a float
for STS-B) and `is_real_example` (int64, always 1 here), under the
original's names so that the original input pipeline reads these files.
Unlabeled (test) examples get label 0, the original's dummy label.

The `.jsonl` has one readable line per example (guid, text_a, text_b,
tokens after truncation, label, truncated) - a cache a person can audit,
instead of a pickle.  The `.meta.json` is written last and is the commit
mark: it records what the entry was built from (format version, task,
split, vocab hash, max_seq_len, cased flag, source file sha256), the
example and truncation counts, and the byte sizes of the two data files.

An entry whose meta is missing, unreadable or disagrees with the request
(another vocab content, casing, length, a changed source TSV, a torn data
file) is stale: `FeatureCache.ensure` rebuilds it, logging why, while
`FeatureCache.load` refuses it with a `DataError` saying why - loading
never silently returns features that do not match the request.

The tokenizer is duck-typed.  `kbert.tokenization.Tokenizer` is used
through `encode_batch(firsts, seconds, max_len)` (an object with
token_ids, segment_ids, lengths and per-example truncated counts); any
other object needs `encode(first, second=None, max_len=None) ->
(token_ids, segment_ids)` (0-padded, pairs truncated longest-first) and
`tokenize(first, second=None)` (tokens with [CLS]/[SEP], untruncated, to
count truncation).
TensorFlow is imported inside the functions that need it.
"""

import dataclasses
import json
import logging
import os
from typing import Optional, Sequence

import numpy as np

from kbert.atomic import atomic_output, file_sha256, read_json
from kbert.errors import ConfigError, DataError
from kbert.glue.processors import InputExample, TaskProcessor, get_processor
from kbert.tokenization import load_vocab_tokens, vocab_sha256

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
RECORD_SUFFIX = ".tf_record"
JSONL_SUFFIX = ".jsonl"
META_SUFFIX = ".meta.json"


# -- features in memory ---------------------------------------------------


@dataclasses.dataclass
class Features:
    """Model inputs of N examples as numpy arrays.

    input_ids, segment_ids: (N, max_seq_len) int32, 0-padded.
    lengths: (N,) int32, tokens before padding ([CLS] and [SEP]s included).
    labels: (N,) int64 label ids, or float32 scores for STS-B.
    """

    input_ids: np.ndarray
    segment_ids: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    @property
    def input_mask(self) -> np.ndarray:
        positions = np.arange(self.input_ids.shape[1])
        return (positions[None, :] < self.lengths[:, None]).astype(np.int32)

    def __len__(self) -> int:
        return len(self.lengths)


@dataclasses.dataclass
class Conversion:
    """What `convert_examples` made: features, per-example flags, and counts."""

    features: Features
    truncated: np.ndarray  # (N,) bool: the example lost tokens to max_seq_len

    @property
    def num_truncated(self) -> int:
        return int(self.truncated.sum())


def _sequence_length(ids: np.ndarray) -> int:
    # [PAD] is id 0 and padding only trails, so the length ends at the last
    # non-zero id (the final [SEP]).
    nonzero = np.flatnonzero(ids)
    return int(nonzero[-1]) + 1 if nonzero.size else 0


def convert_examples(
    processor: TaskProcessor, examples: Sequence[InputExample], tokenizer, max_seq_len: int
) -> Conversion:
    """Tokenize examples into fixed-length features, as run_classifier does.

    A tokenizer with `encode_batch` (kbert.tokenization's) encodes all
    examples in one call; any other is called once per example.
    """
    if max_seq_len < 3:
        raise ConfigError(f"max_seq_len must be at least 3 ([CLS] x [SEP]), got {max_seq_len}")
    label_dtype = np.float32 if processor.is_regression else np.int64
    if not examples:  # a file holding only its header
        empty = np.zeros((0, max_seq_len), np.int32)
        features = Features(empty, empty.copy(), np.zeros(0, np.int32), np.zeros(0, label_dtype))
        return Conversion(features, np.zeros(0, bool))
    encode = _encode_batch if hasattr(tokenizer, "encode_batch") else _encode_each
    input_ids, segment_ids, lengths, truncated = encode(tokenizer, examples, max_seq_len)
    expected = (len(examples), max_seq_len)
    if input_ids.shape != expected or segment_ids.shape != expected:
        raise ConfigError(
            f"the tokenizer gave {input_ids.shape} ids and {segment_ids.shape} segments "
            f"for {len(examples)} examples of max_len={max_seq_len}; expected {expected} each"
        )
    labels = np.zeros(len(examples), label_dtype)
    for i, example in enumerate(examples):
        if example.label is not None:  # unlabeled rows keep the dummy label 0
            labels[i] = processor.label_id(example.label)
    features = Features(
        input_ids.astype(np.int32), segment_ids.astype(np.int32), lengths.astype(np.int32), labels
    )
    return Conversion(features, truncated.astype(bool))


def _encode_batch(tokenizer, examples, max_seq_len):
    firsts = [e.text_a for e in examples]
    seconds = [e.text_b for e in examples]
    if all(second is None for second in seconds):
        seconds = None
    batch = tokenizer.encode_batch(firsts, seconds, max_len=max_seq_len)
    input_ids = np.asarray(batch.token_ids).reshape(len(examples), -1)
    segment_ids = np.asarray(batch.segment_ids).reshape(len(examples), -1)
    return input_ids, segment_ids, np.asarray(batch.lengths), np.asarray(batch.truncated) > 0


def _encode_each(tokenizer, examples, max_seq_len):
    n = len(examples)
    rows = [tokenizer.encode(e.text_a, e.text_b, max_len=max_seq_len) for e in examples]
    try:
        input_ids = np.array([ids for ids, _ in rows], np.int64).reshape(n, -1)
        segment_ids = np.array([segments for _, segments in rows], np.int64).reshape(n, -1)
    except ValueError as e:  # ragged rows: the tokenizer did not pad
        raise ConfigError(f"tokenizer.encode did not return {max_seq_len} ids per example ({e})") from e
    lengths = np.array([_sequence_length(ids) for ids in input_ids], np.int32)
    # Truncation shows only against the untruncated token count.
    truncated = np.array(
        [len(tokenizer.tokenize(e.text_a, e.text_b)) > max_seq_len for e in examples], bool
    ).reshape(n)
    return input_ids, segment_ids, lengths, truncated


# -- the cache ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CachePaths:
    """The three files of one cache entry."""

    record: str
    jsonl: str
    meta: str

    @classmethod
    def from_record(cls, record_path) -> "CachePaths":
        """The entry a `.tf_record` file belongs to."""
        record_path = os.fspath(record_path)
        stem = record_path[: -len(RECORD_SUFFIX)] if record_path.endswith(RECORD_SUFFIX) else record_path
        return cls(record_path, stem + JSONL_SUFFIX, stem + META_SUFFIX)


class FeatureCache:
    """Builds, validates and loads cached features for one vocabulary setup.

    Args:
        vocab_file: the checkpoint's vocab.txt; its content hash keys the cache.
        max_seq_len: the fixed sequence length of the features.
        cased: whether the tokenizer keeps case (recorded and checked).
        cache_dir: where entries go; default the data_dir of each call.
    """

    def __init__(self, vocab_file, max_seq_len: int = 128, cased: bool = False, cache_dir=None):
        self.vocab_file = os.fspath(vocab_file)
        # The vocabulary's identity (its tokens, not its file's bytes) keys the cache.
        self.vocab_hash = vocab_sha256(load_vocab_tokens(self.vocab_file))[:12]
        self.max_seq_len = int(max_seq_len)
        self.cased = bool(cased)
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)

    def paths(self, task_name: str, split: str, data_dir) -> CachePaths:
        task = get_processor(task_name).name
        root = self.cache_dir if self.cache_dir is not None else os.fspath(data_dir)
        stem = os.path.join(root, task, f"{split}.{self.vocab_hash}.len{self.max_seq_len}")
        return CachePaths(stem + RECORD_SUFFIX, stem + JSONL_SUFFIX, stem + META_SUFFIX)

    def _expected_meta(self, processor: TaskProcessor, split: str, source: str) -> dict:
        return {
            "format": FORMAT_VERSION,
            "task": processor.name,
            "split": split,
            "vocab_hash": self.vocab_hash,
            "max_seq_len": self.max_seq_len,
            "cased": self.cased,
            "source_sha256": file_sha256(source),
        }

    def stale_reason(self, task_name: str, split: str, data_dir) -> Optional[str]:
        """Why the entry cannot be used as it is, or None when it is current."""
        processor = get_processor(task_name)
        source = processor.split_path(data_dir, split)
        if not os.path.isfile(source):
            raise DataError(f"{source}: no such file")
        return _stale_reason(
            self.paths(processor.name, split, data_dir),
            self._expected_meta(processor, split, source),
        )

    def ensure(self, task_name: str, split: str, data_dir, tokenizer) -> CachePaths:
        """The entry's paths, (re)building it first when missing or stale."""
        reason = self.stale_reason(task_name, split, data_dir)
        paths = self.paths(task_name, split, data_dir)
        if reason is not None:
            logger.info("building feature cache %s: %s", paths.record, reason)
            self.build(task_name, split, data_dir, tokenizer)
        return paths

    def build(self, task_name: str, split: str, data_dir, tokenizer) -> CachePaths:
        """Read the split, tokenize it and write the entry, unconditionally."""
        processor = get_processor(task_name)
        self._check_tokenizer(tokenizer)
        source = processor.split_path(data_dir, split)
        meta = self._expected_meta(processor, split, source)
        examples = processor.examples(data_dir, split)
        conversion = convert_examples(processor, examples, tokenizer, self.max_seq_len)
        paths = self.paths(processor.name, split, data_dir)
        os.makedirs(os.path.dirname(paths.record), exist_ok=True)
        write_record_file(paths.record, conversion.features)
        write_jsonl_file(paths.jsonl, examples, conversion, load_vocab_tokens(self.vocab_file))
        meta.update(
            source=os.path.abspath(source),
            count=len(examples),
            truncated=conversion.num_truncated,
            record_bytes=os.path.getsize(paths.record),
            jsonl_bytes=os.path.getsize(paths.jsonl),
        )
        with atomic_output(paths.meta) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(meta, handle, indent=1, sort_keys=True)
                handle.write("\n")
        if conversion.num_truncated:
            logger.info(
                "%s %s: %d of %d examples truncated to %d tokens",
                processor.name, split, conversion.num_truncated, len(examples), self.max_seq_len,
            )
        return paths

    def load(self, task_name: str, split: str, data_dir) -> Features:
        """The cached features of a current entry; a stale one is a DataError."""
        reason = self.stale_reason(task_name, split, data_dir)
        paths = self.paths(task_name, split, data_dir)
        if reason is not None:
            raise DataError(f"{paths.record}: feature cache is stale ({reason}); rebuild it")
        return load_features(paths.record)

    def _check_tokenizer(self, tokenizer) -> None:
        # Only a tokenizer that states its casing can be caught disagreeing.
        cased = getattr(tokenizer, "cased", None)
        if isinstance(cased, bool) and cased != self.cased:
            raise ConfigError(
                f"tokenizer has cased={cased} but the feature cache was asked for cased={self.cased}"
            )


def read_meta(meta_path) -> dict:
    return read_json(meta_path, error=DataError, what="cache metadata")


def _stale_reason(paths: CachePaths, expected: dict) -> Optional[str]:
    if not os.path.exists(paths.meta):
        return "no cache yet"
    try:
        meta = read_meta(paths.meta)
    except DataError as e:
        return str(e)
    for key, value in expected.items():
        if meta.get(key) != value:
            return f"{key} is {meta.get(key)!r} in the cache, {value!r} wanted"
    return _torn_reason(paths, meta)


def _torn_reason(paths: CachePaths, meta: dict) -> Optional[str]:
    for path, key in ((paths.record, "record_bytes"), (paths.jsonl, "jsonl_bytes")):
        if not os.path.isfile(path):
            return f"{os.path.basename(path)} is missing"
        if os.path.getsize(path) != meta.get(key):
            return f"{os.path.basename(path)} has {os.path.getsize(path)} bytes, meta says {meta.get(key)}"
    return None


# -- file formats ---------------------------------------------------------


def write_record_file(path, features: Features) -> None:
    """Write features as tf.train.Examples under run_classifier's feature names."""
    import tensorflow as tf

    def int64s(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    def label_feature(value):
        if features.labels.dtype.kind == "f":
            return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
        return int64s([value])

    input_mask = features.input_mask
    with atomic_output(path) as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            for i in range(len(features)):
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "input_ids": int64s(features.input_ids[i]),
                            "input_mask": int64s(input_mask[i]),
                            "segment_ids": int64s(features.segment_ids[i]),
                            "label_ids": label_feature(features.labels[i]),
                            "is_real_example": int64s([1]),
                        }
                    )
                )
                writer.write(example.SerializeToString())


def write_jsonl_file(path, examples, conversion: Conversion, vocab_tokens: Sequence[str]) -> None:
    """One JSON object per example: what was read, and the tokens kept."""
    features = conversion.features
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            for i, example in enumerate(examples):
                ids = features.input_ids[i, : features.lengths[i]]
                record = {
                    "guid": example.guid,
                    "text_a": example.text_a,
                    "text_b": example.text_b,
                    "tokens": [_token(vocab_tokens, int(t)) for t in ids],
                    "label": example.label,
                    "truncated": bool(conversion.truncated[i]),
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _token(vocab_tokens: Sequence[str], token_id: int) -> str:
    return vocab_tokens[token_id] if 0 <= token_id < len(vocab_tokens) else f"[id {token_id}?]"


def read_jsonl_file(path) -> list:
    """The per-example dicts of a `.jsonl` cache file."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                records.append(json.loads(line))
            except ValueError as e:
                raise DataError(f"{path}:{line_no}: not a JSON line ({e})") from e
    return records


def iter_records(path):
    """Yield each tf.train.Example of a TFRecord file as {name: list of values}.

    Generic on purpose (no feature spec), so that any TFRecord of
    tf.train.Examples can be inspected.
    """
    import tensorflow as tf

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    try:
        for raw in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(raw.numpy())
            yield {name: _feature_values(f) for name, f in example.features.feature.items()}
    except tf.errors.DataLossError as e:
        raise DataError(f"{path}: corrupt TFRecord file ({e.message})") from e


def _feature_values(feature) -> list:
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def load_features(record_path) -> Features:
    """Load a cache entry's `.tf_record` into numpy arrays.

    The entry's `.meta.json` supplies max_seq_len, the label type and the
    example count, which is checked; a torn entry is a `DataError`.
    """
    import tensorflow as tf

    paths = CachePaths.from_record(record_path)
    meta = read_meta(paths.meta)
    reason = _torn_reason(paths, meta)
    if reason is not None:
        raise DataError(f"{paths.record}: feature cache is incomplete ({reason})")
    missing = [key for key in ("task", "max_seq_len", "count") if key not in meta]
    if missing:
        raise DataError(f"{paths.meta}: cache metadata lacks {', '.join(missing)}")
    length = int(meta["max_seq_len"])
    regression = get_processor(meta["task"]).is_regression
    label_dtype = tf.float32 if regression else tf.int64
    spec = {
        "input_ids": tf.io.FixedLenFeature([length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([length], tf.int64),
        "label_ids": tf.io.FixedLenFeature([], label_dtype),
    }
    parts = {name: [] for name in spec}
    try:
        for batch in tf.data.TFRecordDataset(paths.record).batch(2048):
            parsed = tf.io.parse_example(batch, spec)
            for name in spec:
                parts[name].append(parsed[name].numpy())
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        raise DataError(f"{paths.record}: unreadable feature cache ({e.message})") from e
    arrays = {
        name: np.concatenate(chunks) if chunks else np.zeros((0,) + tuple(spec[name].shape))
        for name, chunks in parts.items()
    }
    if len(arrays["label_ids"]) != meta.get("count"):
        raise DataError(
            f"{paths.record}: {len(arrays['label_ids'])} examples, meta says {meta.get('count')}"
        )
    return Features(
        input_ids=arrays["input_ids"].astype(np.int32),
        segment_ids=arrays["segment_ids"].astype(np.int32),
        lengths=arrays["input_mask"].sum(axis=1).astype(np.int32),
        labels=arrays["label_ids"].astype(np.float32 if regression else np.int64),
    )
