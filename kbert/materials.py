"""Teaching materials: what a fine-tuned teacher says about every sentence.

Distilling into the CNN student (Tang et al. 2019) trains on the teacher's
logits, not on the teacher itself, so the teacher runs once per sentence
and its answers are stored.  `generate_materials` writes them and
`load_materials` reads them back, checking everything it can.

Layout of a materials directory (all arrays in NumPy `.npz` archives, which
load with `allow_pickle=False`: strings are fixed-width unicode arrays,
never Python objects)::

    manifest.json       what made the files, and whether each split is complete
    shared.npz
        embedding       float32 [V, H]  the teacher's `Embedding-Token` matrix
        vocab           unicode [V]     the teacher's vocabulary, in id order
    <split>.npz         one per split ("train", "dev", "test", "augmented", ...)
        x               int32   [N, T]  teacher token ids, 0-padded on the right;
                                        T is the split's longest sentence
                                        (at most max_seq_len)
        segment         int32   [N, T]  teacher segment ids
        length          int32   [N]     tokens per row (non-zero ids)
        y               float32 [N, C]  teacher logits
        ysm             float32 [N, C]  softmax(y)
        label           int32   [N]     gold label id, -1 where the split has none
        sentence        unicode [N] or [N, 2]  the raw sentence (or pair)
        source          int32   [N]     (augmented split only) the train row
                                        each sentence was made from
        pooled          float16 [N, H]  (with --pooled) the teacher's pooled
                                        [CLS] vector (`NSP-Dense`'s output)
        line            int64   [N]     (unlabeled shards only) the row's line
                                        in its input file, from 1

`manifest.json`::

    {"format": "kbert-materials", "format_version": 1, "kbert_version": ...,
     "task": "SST-2", "max_seq_len": 128, "cased": false, "num_labels": C,
     "teacher": {"id": ..., "sha256": <hash of the teacher's weights>},
     "vocab": {"size": V, "sha256": <hash of the tokens>},
     "embedding": {"rows": V, "dim": H},
     "shared": {"file": "shared.npz", "sha256": ...},
     "splits": {"train": {"file": "train.npz", "complete": true,
                          "sha256": <hash of the file>,
                          "inputs_sha256": <hash of the encoded input>,
                          "count": N, "seconds": s, "items_per_second": r,
                          "resumed_rows": n}, ...}}

(`items_per_second`: the rows this call ran the teacher on, per second;
`resumed_rows`, only after a kill: the rows read from the killed pass's
saved chunks.)

Every file is written to a temporary name and moved into place, and the
manifest is rewritten after each split, so an interrupted run leaves whole
files only; a re-run skips the splits the manifest calls complete (same
teacher, same input, file hash unchanged) and redoes the others.  Within a
split, the teacher pass saves its logits every `CHUNK_ROWS` rows in
`{split}.parts/` (removed once the manifest calls the split complete), so a re-run
after a kill computes only the chunks not saved, and gives the logits the
uninterrupted pass gives, bit for bit.  The masked LM's rewrites of
augmented copies (`fill_masks`) are kept the same way in
`augmented-mlm.parts/`, which stays after the pass, so that a re-run does
not rewrite them again.

The user's own text (`MaterialsOptions.unlabeled`) becomes the splits
"unlabeled-00000", "unlabeled-00001", ...: shards of at most `shard_rows`
rows, read, encoded, labelled and written one at a time (memory holds
about two shards' lines, plus 8 bytes a distinct line for the duplicate
check), each with
its input file and line range in the manifest; `kbert distill` trains on
them all as the split "unlabeled".
"""

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import time
import zipfile
import zlib

import keras
import numpy as np

import kbert
from kbert import runs
from kbert.atomic import atomic_output, file_sha256, read_json, refuse_overlap, write_json
from kbert.checks import is_int
from kbert.corpus import expand_inputs, read_records
from kbert.errors import ConfigError, DataError, KbertError
from kbert.inference import predict_bucketed
from kbert.numeric import softmax
from kbert.options import SPLITS, MaterialsOptions
from kbert.raydata import Actor, actor_count, check_backend, map_actors, ray_module, ray_session
from kbert.tokenization import load_vocab_tokens, vocab_sha256
from kbert.variants import apply_variant
from kbert.views import pooled_output_model, sequence_output_model

logger = logging.getLogger(__name__)

FORMAT = "kbert-materials"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARED = "shared.npz"

SPLIT_ARRAYS = {
    # name: (dtype kind check, ndim or None for "1 or 2")
    "x": ("int32", 2),
    "segment": ("int32", 2),
    "length": ("int32", 1),
    "y": ("float32", 2),
    "ysm": ("float32", 2),
    "label": ("int32", 1),
    "sentence": ("unicode", None),
}
# Arrays a split may hold: the augmented split's source rows, which let
# `kbert distill` hold train rows out together with what was made from them.
# And the teacher's pooled vectors, for `kbert distill --pooled-weight`.
OPTIONAL_ARRAYS = {"source": ("int32", 1), "pooled": ("float16", 2), "line": ("int64", 1)}
# The user's unlabeled text: shards UNLABELED-00000, ..., one split to `kbert distill`.
UNLABELED = "unlabeled"


@dataclasses.dataclass
class EncodedSplit:
    """One split as the teacher's tokenizer encoded it.

    Attributes:
        token_ids: int [N, T], 0-padded on the right.
        segment_ids: int [N, T].
        labels: int [N], gold label ids, -1 where there is none.
        sentences: str [N] (single sentences) or [N, 2] (pairs).
        lengths: int [N], or None to count the non-zero ids.
        truncated: how many rows the encoding cut to fit max_seq_len
            (None: not known), recorded in the manifest.
        sources: int [N], for augmented rows the train row each was made
            from (None: not recorded).
        lines: int [N], for unlabeled rows the line of its input file each
            was read from (None: not recorded).
    """

    token_ids: np.ndarray
    segment_ids: np.ndarray
    labels: np.ndarray
    sentences: np.ndarray
    lengths: np.ndarray = None
    truncated: int = None
    sources: np.ndarray = None
    lines: np.ndarray = None


@dataclasses.dataclass
class MaterialsSplit:
    """A loaded split; see the module docstring for the arrays."""

    x: np.ndarray
    segment: np.ndarray
    length: np.ndarray
    y: np.ndarray
    ysm: np.ndarray
    label: np.ndarray
    sentence: np.ndarray
    source: np.ndarray = None
    pooled: np.ndarray = None
    line: np.ndarray = None

    def __len__(self):
        return len(self.x)


@dataclasses.dataclass
class Materials:
    """A loaded, validated materials directory."""

    directory: str
    manifest: dict
    vocab: list
    embedding: np.ndarray
    splits: dict
    static: np.ndarray = None

    @property
    def num_labels(self):
        return self.manifest["num_labels"]

    @property
    def vocab_sha256(self):
        return self.manifest["vocab"]["sha256"]

    def rows(self, name):
        """How many rows `split(name)` has (0 when there is no such split)."""
        if name != UNLABELED:
            return len(self.splits[name]) if name in self.splits else 0
        return sum(len(split) for n, split in self.splits.items() if is_unlabeled_shard(n))

    def split(self, name):
        """The loaded split `name`, or None.  "unlabeled" is every
        unlabeled shard that is loaded, one after the other, as one split."""
        if name != UNLABELED:
            return self.splits.get(name)
        shards = [self.splits[n] for n in sorted(self.splits) if is_unlabeled_shard(n)]
        return concatenate_splits(shards) if shards else None


def is_unlabeled_shard(name):
    """Whether a split name is one of the unlabeled shards' ("unlabeled-00000")."""
    prefix, _, number = name.partition("-")
    return prefix == UNLABELED and number.isdigit()


def concatenate_splits(splits):
    """One `MaterialsSplit` of `splits`' rows in order, `x` and `segment`
    padded to the widest; an optional array is kept if every split has it."""
    width = max(split.x.shape[1] for split in splits)

    def pad(array):
        return np.pad(array, [(0, 0), (0, width - array.shape[1])])

    fields = {"x": np.concatenate([pad(s.x) for s in splits]),
              "segment": np.concatenate([pad(s.segment) for s in splits])}
    for field in dataclasses.fields(MaterialsSplit):
        if field.name in fields:
            continue
        values = [getattr(s, field.name) for s in splits]
        if all(v is not None for v in values):
            fields[field.name] = np.concatenate(values)
    return MaterialsSplit(**fields)


# ---------------------------------------------------------------- hashing


def teacher_sha256(model):
    """Hash of a model's weights: names, shapes, dtypes and values, in order."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value))
        digest.update(f"{weight.path}|{value.dtype}|{value.shape}\n".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _arrays_sha256(*arrays):
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}|{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- atomic writes


def _write_npz(path, arrays):
    # Compressed: the 0-padding of x and segment shrinks several-fold.
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


# ---------------------------------------------------------------- batching


def run_teacher(teacher, token_ids, segment_ids, lengths, *, batch_size=64, packing=True, desc=None,
                verbose=True, progress=None):
    """Teacher logits float32 [N, C] in the rows' order (packed or length-sorted).

    `progress`: a tqdm bar to advance (one spanning several calls); None
    shows a bar of its own (with `verbose`)."""
    from tqdm.auto import tqdm

    if progress is not None:
        return predict_bucketed(teacher, [token_ids, segment_ids], lengths, batch_size=batch_size,
                                progress=progress, packing=packing)
    with tqdm(total=len(token_ids), desc=desc, unit="item", disable=not verbose, leave=True) as bar:
        return predict_bucketed(teacher, [token_ids, segment_ids], lengths, batch_size=batch_size, progress=bar,
                                packing=packing)


def static_vectors(teacher, vocab, *, batch_size=64, verbose=True):
    """Model2Vec-style static vectors [V, H] float32 from a `BertModel`
    teacher: each vocabulary token alone between `[CLS]` and `[SEP]`,
    through every encoder layer; its row is the last layer's output at the
    token.  (PCA to the student's width and frequency weighting follow in
    `kbert.student.static_start`, where the width and the training text are
    known.)"""
    from tqdm.auto import tqdm

    from kbert.model import BertModel

    if not isinstance(teacher, BertModel):
        raise ConfigError("static vectors need a BertModel teacher (its encoder layers)")
    for special in ("[CLS]", "[SEP]"):
        if special not in vocab:
            raise DataError(f"the vocabulary has no {special} token for static vectors")
    encoder = sequence_output_model(teacher)
    ids = np.zeros((len(vocab), 3), np.int32)
    ids[:, 0], ids[:, 1], ids[:, 2] = vocab.index("[CLS]"), np.arange(len(vocab)), vocab.index("[SEP]")
    out = np.zeros((len(vocab), teacher.bert_config.hidden_size), np.float32)
    step = max(batch_size, 256)  # 3-token rows: larger calls are cheap
    with tqdm(total=len(vocab), desc="static vectors", unit="token", disable=not verbose) as bar:
        for start in range(0, len(vocab), step):
            rows = ids[start : start + step]
            hidden = encoder.predict_on_batch([rows, np.zeros_like(rows)])  # [b, 3, H]
            out[start : start + len(rows)] = keras.ops.convert_to_numpy(hidden)[:, 1]
            bar.update(len(rows))
    return out


def pooled_vectors(pooler, token_ids, segment_ids, lengths, *, batch_size=64, progress=None):
    """float16 [N, H]: a teacher's pooled `[CLS]` vectors (`NSP-Dense`'s
    output, the input of its classifier) through its `pooled_output_model`
    view `pooler`, in length-sorted batches (`progress`: a bar to advance)."""
    pooled = predict_bucketed(pooler, [token_ids, segment_ids], lengths, batch_size=batch_size, progress=progress)
    return np.zeros((0, pooler.output_shape[-1]), np.float16) if pooled is None else pooled.astype(np.float16)


# ---------------------------------------------------------------- generation


def _check_encoded(name, split, max_seq_len):
    """Validate an `EncodedSplit` (or mapping with its fields) -> dict of arrays."""
    if not isinstance(split, EncodedSplit):
        try:
            split = EncodedSplit(**dict(split))
        except TypeError as e:
            raise DataError(f"split {name!r}: expected EncodedSplit fields, {e}") from None
    token_ids = np.asarray(split.token_ids)
    if token_ids.ndim != 2 or not np.issubdtype(token_ids.dtype, np.integer):
        raise DataError(
            f"split {name!r}: token_ids must be an integer [N, T] array, got {token_ids.dtype} {token_ids.shape}"
        )
    n, width = token_ids.shape
    if width > max_seq_len:
        raise DataError(f"split {name!r}: token_ids are {width} wide, more than max_seq_len {max_seq_len}")
    segment_ids = np.asarray(split.segment_ids)
    if segment_ids.shape != token_ids.shape:
        raise DataError(f"split {name!r}: segment_ids {segment_ids.shape} differ from token_ids {token_ids.shape}")
    counted = (token_ids != 0).sum(axis=1)
    lengths = counted if split.lengths is None else np.asarray(split.lengths)
    if lengths.shape != (n,) or not np.array_equal(lengths, counted):
        raise DataError(f"split {name!r}: lengths disagree with the non-zero token ids")
    labels = np.asarray(split.labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"split {name!r}: labels must be integer [{n}], got {labels.dtype} {labels.shape}")
    sentences = np.asarray(split.sentences, dtype=str)
    if sentences.ndim not in (1, 2) or len(sentences) != n:
        raise DataError(f"split {name!r}: sentences must be [{n}] or [{n}, k], got {sentences.shape}")
    # Store only as wide as the longest row: most GLUE sentences are short.
    trim = max(int(lengths.max(initial=0)), 1)
    arrays = {
        "x": token_ids[:, :trim].astype(np.int32),
        "segment": segment_ids[:, :trim].astype(np.int32),
        "length": lengths.astype(np.int32),
        "label": labels.astype(np.int32),
        "sentence": sentences,
    }
    if split.sources is not None:
        sources = np.asarray(split.sources)
        if sources.shape != (n,) or not np.issubdtype(sources.dtype, np.integer) or (n and sources.min() < 0):
            raise DataError(f"split {name!r}: sources must be row indices [{n}], got {sources.dtype} {sources.shape}")
        arrays["source"] = sources.astype(np.int32)
    if split.lines is not None:
        lines = np.asarray(split.lines)
        if lines.shape != (n,) or not np.issubdtype(lines.dtype, np.integer) or (n and lines.min() < 1):
            raise DataError(f"split {name!r}: lines must be line numbers from 1 [{n}], got {lines.dtype} {lines.shape}")
        arrays["line"] = lines.astype(np.int64)
    return arrays


def _scores(task, labels, logits):
    """The GLUE task's metrics of `logits` against `labels`; accuracy alone
    for another task."""
    from kbert.glue import TASKS, compute_metrics

    if task in TASKS:
        return compute_metrics(task, labels, logits)
    return {"accuracy": float(np.mean(np.argmax(logits, axis=-1) == labels))}


def _check_ids_and_labels(name, arrays, vocab_size, num_labels):
    top_id = int(arrays["x"].max(initial=0))
    if top_id >= vocab_size:
        raise DataError(f"split {name!r}: token id {top_id} is outside the vocabulary ({vocab_size})")
    top_label = int(arrays["label"].max(initial=-1))
    if top_label >= num_labels:
        raise DataError(f"split {name!r}: label {top_label} is outside the teacher's {num_labels} labels")


def _is_file_name(value):
    # A bare name inside the directory: never a path that leads elsewhere.
    return isinstance(value, str) and value not in ("", ".", "..") and os.path.basename(value) == value \
        and "\\" not in value


def _is_hex(value):
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


# field -> (check, what it must be); "a.b" is field b of object a.
MANIFEST_FIELDS = {
    "task": (lambda v: isinstance(v, str) and v != "", "a task name"),
    "max_seq_len": (lambda v: is_int(v, 1), "a positive integer"),
    "cased": (lambda v: isinstance(v, bool), "true or false"),
    "num_labels": (lambda v: is_int(v, 1), "a positive integer"),
    "teacher": (lambda v: isinstance(v, dict), "an object"),
    "teacher.id": (lambda v: isinstance(v, str), "a string"),
    "teacher.sha256": (_is_hex, "a sha256 hex digest"),
    "vocab": (lambda v: isinstance(v, dict), "an object"),
    "vocab.size": (lambda v: is_int(v, 1), "a positive integer"),
    "vocab.sha256": (_is_hex, "a sha256 hex digest"),
    "embedding": (lambda v: isinstance(v, dict), "an object"),
    "embedding.rows": (lambda v: is_int(v, 1), "a positive integer"),
    "embedding.dim": (lambda v: is_int(v, 1), "a positive integer"),
    "splits": (lambda v: isinstance(v, dict), "an object"),
}
SHARED_FIELDS = {"file": (_is_file_name, "a file name in the directory"), "sha256": (_is_hex, "a sha256 hex digest")}
SPLIT_FIELDS = {
    "file": (_is_file_name, "a file name in the directory"),
    "complete": (lambda v: isinstance(v, bool), "true or false"),
    "count": (lambda v: is_int(v, 0), "a row count"),
}
COMPLETE_SPLIT_FIELDS = {"sha256": (_is_hex, "a sha256 hex digest"),
                         "inputs_sha256": (_is_hex, "a sha256 hex digest")}


def _check_fields(path, where, value, fields):
    for name, (check, expected) in fields.items():
        owner = value
        for part in name.split(".")[:-1]:
            owner = owner.get(part, {}) if isinstance(owner, dict) else {}
        field = owner.get(name.split(".")[-1]) if isinstance(owner, dict) else None
        if not check(field):
            raise DataError(f"{path}: `{where}{name}` is {field!r}, expected {expected}")


def _read_manifest(directory):
    """The manifest of `directory`, every field's type checked (DataError naming it)."""
    path = os.path.join(directory, MANIFEST)
    manifest = read_json(path, error=DataError, what="manifest",
                         missing="no manifest; not a materials directory")
    if manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not a kbert materials manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version")
        raise DataError(f"{path}: format_version {version!r}, this kbert reads {FORMAT_VERSION}")
    _check_fields(path, "", manifest, MANIFEST_FIELDS)
    if "shared" in manifest:
        if not isinstance(manifest["shared"], dict):
            raise DataError(f"{path}: `shared` is {manifest['shared']!r}, expected an object")
        _check_fields(path, "shared.", manifest["shared"], SHARED_FIELDS)
    for name, entry in manifest["splits"].items():
        if not isinstance(entry, dict):
            raise DataError(f"{path}: `splits.{name}` is {entry!r}, expected an object")
        _check_fields(path, f"splits.{name}.", entry, SPLIT_FIELDS)
        if entry["complete"]:
            _check_fields(path, f"splits.{name}.", entry, COMPLETE_SPLIT_FIELDS)
    return manifest


def _reusable(manifest, name, directory, inputs_sha256):
    entry = manifest["splits"].get(name)
    if not entry or not entry.get("complete") or entry.get("inputs_sha256") != inputs_sha256:
        return False
    path = os.path.join(directory, entry["file"])
    return os.path.isfile(path) and file_sha256(path) == entry.get("sha256")


def _start_manifest(out_dir, identity):
    """The existing manifest if it is for the same teacher and setup, else a new one."""
    if not os.path.exists(os.path.join(out_dir, MANIFEST)):
        return dict(identity, splits={})
    manifest = _read_manifest(out_dir)
    keys = ("task", "max_seq_len", "cased", "teacher", "vocab")
    _refuse_another_setup(out_dir, {key: manifest.get(key) for key in keys}, {key: identity[key] for key in keys})
    manifest.update(identity)
    manifest.setdefault("splits", {})
    return manifest


def _refuse_other_materials(out_dir, *, task, max_seq_len, cased, teacher, vocab):
    """`_start_manifest`'s refusal of materials of another task, length,
    casing, teacher or vocabulary in `out_dir`, for a long step that writes
    there before the manifest is read (the masked LM's rewrites)."""
    if not os.path.exists(os.path.join(out_dir, MANIFEST)):
        return
    manifest = _read_manifest(out_dir)
    now = {"task": task, "max_seq_len": int(max_seq_len), "cased": bool(cased),
           "teacher": teacher_sha256(teacher), "vocab": vocab_sha256(vocab)}
    before = {**{key: manifest.get(key) for key in ("task", "max_seq_len", "cased")},
              **{key: (manifest.get(key) or {}).get("sha256") for key in ("teacher", "vocab")}}
    _refuse_another_setup(out_dir, before, now)


def _refuse_another_setup(out_dir, before, now):
    """DataError naming the first field where the manifest in `out_dir`
    (`before`) differs from this call (`now`)."""
    for key, value in now.items():
        if before[key] != value:
            raise DataError(f"{os.path.join(out_dir, MANIFEST)}: materials of another {key} "
                            f"({before[key]!r}, now {value!r}); use a new directory")


def _stored_static(out_dir, teacher, vocab):
    """The static vectors an earlier call stored in `out_dir` for this very
    teacher and vocabulary, else None: a resumed or extended call then skips
    the pass over every vocabulary token."""
    shared_path = os.path.join(out_dir, SHARED)
    if not (os.path.exists(os.path.join(out_dir, MANIFEST)) and os.path.isfile(shared_path)):
        return None
    manifest = _read_manifest(out_dir)
    shared = manifest.get("shared") or {}
    if not (shared.get("static") and file_sha256(shared_path) == shared.get("sha256")
            and (manifest.get("teacher") or {}).get("sha256") == teacher_sha256(teacher)
            and (manifest.get("vocab") or {}).get("sha256") == vocab_sha256(vocab)):
        return None
    return _open_npz(shared_path, ("static",))["static"]


def _teacher_inputs(arrays, start, stop, options, tokenizer):
    """What the teacher reads for rows [start, stop) of a split: {"x",
    "segment", "length"} and, with windows, "owner" (each window's row in
    the chunk): long single sentences are read whole, as overlapping windows."""
    if options.long_inputs != "windows":
        return {key: arrays[key][start:stop] for key in ("x", "segment", "length")}
    sentences = arrays["sentence"][start:stop]
    if sentences.ndim != 1:
        raise ConfigError("--long-inputs windows reads single sentences; this task's inputs are pairs")
    windows = tokenizer.encode_windows([str(t) for t in sentences], options.max_seq_len, options.stride)
    return {"x": windows.token_ids, "segment": windows.segment_ids, "length": windows.lengths,
            "owner": windows.owner}


def _teacher_logits(model, inputs, rows, options, desc=None, verbose=False, progress=None):
    """float32 [rows, C]: the teacher's logits of `_teacher_inputs`, a row's
    the mean of its windows' where there are windows."""
    if "owner" not in inputs:
        return run_teacher(model, inputs["x"], inputs["segment"], inputs["length"], batch_size=options.batch_size,
                           packing=options.packing, desc=desc, verbose=verbose, progress=progress)
    windows = run_teacher(model, inputs["x"], inputs["segment"], inputs["length"], batch_size=options.batch_size,
                          packing=options.packing, verbose=False)
    if progress is not None:
        progress.update(rows)  # sentences, not their windows
    y = np.zeros((rows, windows.shape[1]), np.float64)
    np.add.at(y, inputs["owner"], windows.astype(np.float64))
    return (y / np.bincount(inputs["owner"], minlength=rows)[:, None]).astype(np.float32)


# Rows of a split a teacher pass computes between saves: a killed pass
# resumes at its first unsaved chunk (`_Parts`), and Ray's actors take a
# chunk a task.  About 25 s of MiniLM's pass on one core here: little to
# lose, and enough tasks to keep every actor busy to the end of a job.
CHUNK_ROWS = 10_000
# Unlabeled rows per actor that a Ray job waits for: each job starts its
# actors anew (about 10 s here), so it should run them for minutes; at most
# RAY_GROUP_ROWS, which the caller's memory holds together.
RAY_ROWS_PER_ACTOR = 50_000
RAY_GROUP_ROWS = 200_000
PARTS_KEY = "key.json"
# Augmented copies per chunk of the masked LM's rewrites (`fill_masks`):
# about 45 s of rewriting on two cores, the most a kill can lose.
MLM_CHUNK_COPIES = 2048
MLM_PARTS = "augmented-mlm"


def _parts_role(split):
    return "masked LM's rewrites" if split == MLM_PARTS else "teacher pass's parts"


class _Parts:
    """`{split}.parts/` in a materials directory: each teacher's logits for
    a split, one `.npy` file per chunk of `CHUNK_ROWS` rows, written
    atomically as the pass goes and removed once the manifest calls the
    split complete.  `key.json` records what the logits depend on (the
    split's input hash, the teacher, the chunk size, batch size, packing,
    backend and kbert version); parts under another key are another pass's
    and are discarded.

    `MLM_PARTS.parts/` holds the masked LM's rewrites of the augmented
    copies the same way (`fill_masks`), a JSON file per chunk of
    `MLM_CHUNK_COPIES` copies, under its own key."""

    # What this class writes: the key, the chunks, and the temporaries of
    # `atomic_output` a killed writer leaves (`.NAME.PID.XXXX.tmp`).
    OWN = re.compile(r"^\.?(key\.json|teacher-\d+-chunk-\d{5}\.npy|pooled-chunk-\d{5}\.npy"
                     r"|masked-lm-chunk-\d{5}\.json)(\.\d+\..*\.tmp)?$")

    def __init__(self, out_dir, split, key):
        self.out_dir, self.split = out_dir, split
        self.directory = os.path.join(out_dir, f"{split}.parts")
        key_path = os.path.join(self.directory, PARTS_KEY)
        if os.path.islink(self.directory) or (os.path.lexists(self.directory) and not os.path.isdir(self.directory)):
            # Never read (or write through) a link: its parts are not this pass's to trust.
            raise DataError(f"{self.directory}: not a directory kbert made for the {_parts_role(split)}; "
                            "move it away")
        if os.path.lexists(self.directory):
            try:
                stored = read_json(key_path, error=DataError, what=_parts_role(split))
            except DataError:  # killed before its key was written, or damaged: start the pass over
                stored = None
            if stored != json.loads(json.dumps(key)):  # compared as the file holds it
                self.remove()
        try:
            os.makedirs(self.directory, exist_ok=True)
            if not os.path.isfile(key_path):
                write_json(key_path, key)
        except OSError as e:  # a file of that name, a full disk, ...
            raise DataError(f"{self.directory}: cannot hold the {_parts_role(split)} ({e})") from None

    def path(self, teacher, chunk):
        """A teacher's logits of a chunk; `teacher` "pooled": the first
        teacher's pooled vectors (`--pooled`)."""
        name = "pooled" if teacher == "pooled" else f"teacher-{teacher}"
        return os.path.join(self.directory, f"{name}-chunk-{chunk:05d}.npy")

    def missing(self, teachers, rows, num_labels):
        """The chunks of a split of `rows` rows that no earlier pass saved
        whole for every teacher: (chunk, start, stop, [teacher, ...])."""
        chunks = []
        for c, start in enumerate(range(0, rows, CHUNK_ROWS)):
            stop = min(start + CHUNK_ROWS, rows)
            todo = [k for k in range(teachers) if self.load(k, c, (stop - start, num_labels)) is None]
            if todo:
                chunks.append((c, start, stop, todo))
        return chunks

    def load(self, teacher, chunk, shape, dtype=np.float32):
        """The saved logits (or pooled vectors) of one chunk, or None if not
        saved (or not whole: torn, of another shape or type, or not finite)."""
        path = self.path(teacher, chunk)
        if not os.path.isfile(path):
            return None
        try:
            logits = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            logger.warning("%s: unreadable (%s), computed again", path, e)
            return None
        if (isinstance(logits, np.ndarray) and logits.shape == shape and logits.dtype == dtype
                and np.isfinite(logits).all()):
            return logits
        logger.warning("%s: not this chunk's logits, computed again", path)
        return None

    def fill_path(self, chunk):
        return os.path.join(self.directory, f"masked-lm-chunk-{chunk:05d}.json")

    def load_fill(self, chunk, rows, pairs):
        """A chunk's saved rewrites ({"rows", "texts", "cut"}), or None if
        not saved (or not whole, or not for these copies: `pairs`, texts
        of two sentences)."""
        path = self.fill_path(chunk)
        if not os.path.isfile(path):
            return None
        try:
            saved = read_json(path, error=DataError, what="masked LM rewrites")
        except DataError as e:
            logger.warning("%s, computed again", e)
            return None

        def is_text(text):  # a sentence, or a pair's two (JSON keeps a pair as a list)
            if not pairs:
                return isinstance(text, str)
            return isinstance(text, list) and len(text) == 2 and all(isinstance(side, str) for side in text)

        if (isinstance(saved, dict) and saved.get("rows") == rows and isinstance(saved.get("texts"), list)
                and isinstance(saved.get("cut"), list) and len(saved["texts"]) == len(saved["cut"]) == len(rows)
                and all(is_text(text) for text in saved["texts"])
                and all(isinstance(flag, bool) for flag in saved["cut"])):
            return saved
        logger.warning("%s: not this chunk's rewrites, computed again", path)
        return None

    def save_fill(self, chunk, saved):
        try:
            write_json(self.fill_path(chunk), saved)
        except OSError as e:
            raise DataError(f"{self.fill_path(chunk)}: cannot save the masked LM's rewrites ({e})") from None

    def save(self, teacher, chunk, logits):
        try:
            with atomic_output(self.path(teacher, chunk)) as tmp, open(tmp, "wb") as f:
                np.save(f, logits)
        except OSError as e:
            raise DataError(f"{self.path(teacher, chunk)}: cannot save the teacher's logits ({e})") from None

    def remove(self):
        self.discard(self.out_dir, self.split)

    @staticmethod
    def discard(out_dir, split):
        """Remove `{split}.parts/` if present: only the files `_Parts`
        writes (the key last, so that a kill midway leaves parts still
        keyed)."""
        directory = os.path.join(out_dir, f"{split}.parts")
        if not os.path.lexists(directory):
            return
        if os.path.islink(directory) or not os.path.isdir(directory):
            raise DataError(f"{directory}: not a directory kbert made for the {_parts_role(split)}; move it away")
        try:
            entries = sorted(os.listdir(directory), key=lambda entry: entry == PARTS_KEY)
            foreign = [entry for entry in entries if not _Parts.OWN.match(entry)]
            if foreign:
                raise DataError(f"{directory}: holds files kbert did not write ({', '.join(foreign[:3])}); "
                                "move them away")
            for entry in entries:
                os.remove(os.path.join(directory, entry))
            os.rmdir(directory)
        except OSError as e:
            raise DataError(f"{directory}: cannot remove the {_parts_role(split)} ({e})") from None


def _chunked_pooled(teacher, arrays, parts, name, options, verbose):
    """float16 [N, H]: the teacher's pooled vectors of a split, a chunk of
    `CHUNK_ROWS` rows at a time, each saved in `parts` as it completes and
    read back from there when an earlier (killed) pass saved it."""
    from tqdm.auto import tqdm

    from kbert.model import BertModel

    if not isinstance(teacher, BertModel) or teacher.num_labels is None or teacher.head != "sequence":
        raise ConfigError("pooled vectors need a BertModel sequence classifier teacher (its NSP-Dense pooler)")
    pooler = pooled_output_model(teacher)  # one view for every chunk: its compiled steps are kept
    rows, width = len(arrays["x"]), teacher.bert_config.hidden_size
    pieces = []
    with tqdm(total=rows, desc=f"pooled on {name}", unit="item", disable=not verbose, leave=True) as bar:
        for c, start in enumerate(range(0, rows, CHUNK_ROWS)):
            stop = min(start + CHUNK_ROWS, rows)
            pooled = parts.load("pooled", c, (stop - start, width), np.float16)
            if pooled is None:
                pooled = pooled_vectors(pooler, arrays["x"][start:stop], arrays["segment"][start:stop],
                                        arrays["length"][start:stop], batch_size=options.batch_size, progress=bar)
                parts.save("pooled", c, pooled)
            else:
                bar.update(stop - start)
            pieces.append(pooled)
    return np.concatenate(pieces) if pieces else np.zeros((0, width), np.float16)


def _chunked_logits(model, teacher_name, k, arrays, parts, name, num_labels, options, tokenizer, desc, verbose,
                    progress=None):
    """(teacher k's logits float32 [N, C] for a split's rows, the rows
    computed here): `CHUNK_ROWS` rows at a time, each chunk saved in
    `parts` as it completes and read back from there when an earlier
    (killed) pass saved it.  `progress`: a bar spanning several splits to
    advance, instead of one of the split's own."""
    from tqdm.auto import tqdm

    n = len(arrays["x"])
    chunks, computed = [], 0
    own = progress is None
    with (tqdm(total=n, desc=desc, unit="item", disable=not verbose, leave=True) if own
          else contextlib.nullcontext(progress)) as bar:
        for c, start in enumerate(range(0, n, CHUNK_ROWS)):
            stop = min(start + CHUNK_ROWS, n)
            y = parts.load(k, c, (stop - start, num_labels))
            if y is not None:
                bar.update(stop - start)
            else:
                y = _teacher_logits(model, _teacher_inputs(arrays, start, stop, options, tokenizer), stop - start,
                                    options, desc=desc, verbose=verbose, progress=bar)
                _check_finite(y, name, teacher_name)
                parts.save(k, c, y)
                computed += stop - start
            chunks.append(y)
    return (np.concatenate(chunks) if chunks else np.zeros((0, num_labels), np.float32)), computed


def _check_finite(logits, name, teacher_name):
    if not np.isfinite(logits).all():
        raise DataError(f"split {name!r}: the teacher {teacher_name} produced NaN or inf logits")


# ---------------------------------------------------------------- on Ray Data


def _to_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _from_bytes(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


class ChunkWorker(Actor):
    """A Ray Data actor: loads every teacher run once, on the caller's
    backend, checks that its weights are the ones the call hashed, and
    answers chunks: the `_teacher_inputs` of a chunk's rows in, the logits
    of each teacher named with it out (`y0`, `y1`, ... by teacher), computed
    as the local engine computes them."""

    def start(self, run_dirs, settings):
        check_backend(settings["backend"])
        self.models = []
        for run_dir, expected in zip(run_dirs, settings["teachers"]):
            model, _ = runs.load_model(run_dir)
            if teacher_sha256(model) != expected:
                raise DataError(f"{run_dir}: the teacher's weights changed after the materials call began")
            if settings["options"].int8:
                apply_variant(model, "int8")
            self.models.append(model)
        self.options = settings["options"]

    def answer(self, batch):
        out = {"job": [], "logits": []}
        for job, teachers, data in zip(batch["job"], batch["teachers"], batch["inputs"]):
            inputs = _from_bytes(data)
            rows = int(inputs.pop("rows"))
            out["job"].append(int(job))
            out["logits"].append(_to_bytes({f"y{k}": _teacher_logits(self.models[k], inputs, rows, self.options)
                                            for k in json.loads(str(teachers))}))
        return out


class _RayPass:
    """The Ray engine's side of a materials call: the missing chunks of
    several splits as one Ray Data job (`kbert.raydata`), a chunk a task
    with every teacher still to run on it, their logits saved in each
    split's parts as they come back; the Ray session opens on the first
    chunk to compute and closes with `stack`."""

    def __init__(self, stack, run_dirs, settings, tokenizer, verbose):
        if run_dirs is None or len(run_dirs) != len(settings["teachers"]):
            raise ConfigError("generate_materials with engine 'ray' needs the run directory of every teacher "
                              "(teacher_runs): each actor loads the teachers itself")
        # Absolute: the actors resolve paths in their own working directories.
        self.stack, self.run_dirs = stack, [os.path.abspath(os.fspath(d)) for d in run_dirs]
        self.settings, self.tokenizer, self.verbose, self.ray, self._workers = settings, tokenizer, verbose, None, None

    @property
    def workers(self):
        """The actors a job may use, counted once (this opens the session)."""
        options = self.settings["options"]
        if self.ray is None:
            self.ray = self.stack.enter_context(ray_session(options.ray_address, self.settings["backend"],
                                                            self.verbose))
            self._workers = actor_count(self.ray, options.workers, 1 << 30)
        return self._workers

    def compute(self, begun, num_labels, teacher_names, progress=None):
        """Compute and save the missing chunks of `begun`'s splits ((name,
        arrays, parts) triples); returns {name: (teacher-rows computed,
        seconds)}: the rows times the teachers run on them, and the split's
        share of the job's time (the session's start included)."""
        from tqdm.auto import tqdm

        started = time.perf_counter()
        options = self.settings["options"]
        jobs = [(name, arrays, parts, c, start, stop, todo) for name, arrays, parts in begun
                for c, start, stop, todo in parts.missing(len(teacher_names), len(arrays["x"]), num_labels)]
        if not jobs:
            return {}
        workers = min(self.workers, len(jobs))
        # One copy of a chunk's inputs, whatever the teachers.
        items = [{"job": j, "teachers": json.dumps(todo),
                  "inputs": _to_bytes(dict(_teacher_inputs(arrays, start, stop, options, self.tokenizer),
                                           rows=np.int64(stop - start)))}
                 for j, (name, arrays, parts, c, start, stop, todo) in enumerate(jobs)]
        computed, total = {}, sum((stop - start) * len(todo) for *_, start, stop, todo in jobs)
        with (tqdm(total=total, desc=f"teachers on Ray ({workers} actors)", unit="item", disable=not self.verbose)
              if progress is None else contextlib.nullcontext(progress)) as bar:
            for row in map_actors(self.ray, items, ChunkWorker, (self.run_dirs, self.settings), workers):
                name, arrays, parts, c, start, stop, todo = jobs[int(row["job"])]
                logits = _from_bytes(row["logits"])
                for k in todo:
                    y = logits.get(f"y{k}")
                    if y is None or y.shape != (stop - start, num_labels) or y.dtype != np.float32:
                        raise DataError(f"split {name!r}: a Ray worker returned no float32 "
                                        f"{[stop - start, num_labels]} logits of teacher {k} for chunk {c}")
                    _check_finite(y, name, teacher_names[k])
                    parts.save(k, c, y)
                computed[name] = computed.get(name, 0) + (stop - start) * len(todo)
                bar.update((stop - start) * len(todo))
        seconds = time.perf_counter() - started
        return {name: (n, seconds * n / total) for name, n in computed.items()}


def generate_materials(teacher, splits, out_dir, *, vocab, teacher_id, options, cased=False, verbose=True,
                       tokenizer=None, static=None, unlabeled=None, ensemble=(), teacher_runs=None):
    """Run the teacher over every split and write the materials directory.

    Args:
        teacher: a `BertModel(..., num_labels=C)` (inputs [token ids,
            segment ids], output logits [B, C]) with an `Embedding-Token` layer.
        splits: {split name: `EncodedSplit` or a mapping with its fields}.
        out_dir: created if missing; see the module docstring for the layout.
        vocab: the teacher's tokens in id order.
        teacher_id: a human-readable name of the teacher (e.g. its run dir).
        options: `MaterialsOptions` with `task` (recorded in the manifest,
            e.g. "SST-2") and `max_seq_len` (the encoding's maximum) set;
            `batch_size` and `int8` are used, the others were used by
            whoever encoded `splits`.
        cased: the tokenizer's casing, recorded so that new text can be
            encoded for the student the same way.
        verbose: show a progress bar per split.
        tokenizer: the teacher's `Tokenizer`, needed (only) for
            `options.long_inputs == "windows"`.
        static: the teacher's `static_vectors`, if already computed (with
            `options.static_embedding`).
        unlabeled: None, or the unlabeled shards (`unlabeled_shards`):
            (split name, `EncodedSplit`, manifest fields) triples, each
            encoded, labelled and written before the next is read; shards
            an earlier call wrote beyond the last one given are removed.
        ensemble: more teachers, as (model, id) pairs, of the same task
            and vocabulary: the stored logits `y` are the mean of every
            teacher's (`teacher`'s and theirs), and each labelled split
            records every teacher's score and the ensemble's.  The
            embedding, static and pooled vectors stay `teacher`'s own.
        teacher_runs: with `options.engine` "ray", the run directories
            (`kbert.runs`) of `teacher` and the ensemble's, in order: each
            Ray actor loads them itself (and refuses weights other than
            these models').  Unlabeled shards then go to Ray in groups of
            `RAY_ROWS_PER_ACTOR` rows an actor, at most `RAY_GROUP_ROWS`,
            which memory holds together.

    Returns:
        The manifest (a dict), as written to `out_dir/manifest.json`.
    """
    if options.task is None or options.max_seq_len is None:
        raise ConfigError("generate_materials needs options.task and options.max_seq_len set")
    if options.long_inputs == "windows" and tokenizer is None:
        raise ConfigError("generate_materials needs the tokenizer for long_inputs='windows'")
    task, max_seq_len = options.task, options.max_seq_len
    for model in [teacher, *(m for m, _ in ensemble)]:
        if getattr(model, "head", "sequence") != "sequence":
            raise ConfigError(f"a teacher labels rows: a {model.head} head's logits are per position")
    os.makedirs(out_dir, exist_ok=True)
    vocab = [str(token) for token in vocab]
    matrix = np.asarray(keras.ops.convert_to_numpy(teacher.get_layer("Embedding-Token").embeddings.value), np.float32)
    if matrix.shape[0] != len(vocab):
        raise DataError(
            f"the vocabulary has {len(vocab)} tokens but the teacher's embedding has {matrix.shape[0]} rows"
        )
    num_labels = int(teacher.output_shape[-1])
    encoded = {name: _check_encoded(name, split, max_seq_len) for name, split in splits.items()}
    for name, arrays in encoded.items():
        _check_ids_and_labels(name, arrays, len(vocab), num_labels)

    logger.info("hashing the teacher's weights")
    identity = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kbert_version": kbert.__version__,
        "task": task,
        "max_seq_len": int(max_seq_len),
        "cased": bool(cased),
        "num_labels": num_labels,
        "teacher": {"id": str(teacher_id), "sha256": teacher_sha256(teacher)},
        "vocab": {"size": len(vocab), "sha256": vocab_sha256(vocab)},
        "embedding": {"rows": int(matrix.shape[0]), "dim": int(matrix.shape[1])},
    }
    if options.int8:
        # Recorded only when used, so that float materials keep one identity.
        identity["teacher"]["quantization"] = "int8"
        apply_variant(teacher, "int8")
    if options.long_inputs == "windows":
        identity["teacher"]["long_inputs"] = {"windows": True, "stride": options.stride}
    if ensemble:
        members = [{"id": str(teacher_id), "sha256": identity["teacher"]["sha256"]}]
        for model, member_id in ensemble:
            if int(model.output_shape[-1]) != num_labels:
                raise ConfigError(f"{member_id}: {int(model.output_shape[-1])} labels, the first teacher "
                                  f"{teacher_id} has {num_labels}")
            members.append({"id": str(member_id), "sha256": teacher_sha256(model)})  # before any quantizing
            same = [m["id"] for m in members[:-1] if m["sha256"] == members[-1]["sha256"]]
            if same:
                raise ConfigError(f"{member_id}: the same weights as the teacher {same[0]}; an ensemble's "
                                  "teachers must differ")
            if options.int8:
                apply_variant(model, "int8")
        identity["teacher"]["ensemble"] = members
    teachers = [(teacher, str(teacher_id))] + list(ensemble)
    manifest = _start_manifest(out_dir, identity)
    manifest_path = os.path.join(out_dir, MANIFEST)

    shared_path = os.path.join(out_dir, SHARED)
    shared = manifest.get("shared")
    if not (shared and os.path.isfile(shared_path) and file_sha256(shared_path) == shared.get("sha256")
            and (shared.get("static") or not options.static_embedding)):
        arrays = {"embedding": matrix, "vocab": np.asarray(vocab, dtype=str)}
        if options.static_embedding:
            arrays["static"] = static if static is not None else static_vectors(
                teacher, vocab, batch_size=options.batch_size, verbose=verbose)
        _write_npz(shared_path, arrays)
        manifest["shared"] = {"file": SHARED, "sha256": file_sha256(shared_path),
                              **({"static": True} if options.static_embedding else {})}
        write_json(manifest_path, manifest)

    def begin_split(name, arrays):
        """(inputs hash, parts) of a split to compute, marked incomplete in
        the manifest; None for a split complete already."""
        inputs_sha256 = _arrays_sha256(arrays["x"], arrays["segment"], arrays["label"], arrays["sentence"],
                                       *[arrays[k] for k in ("source", "line") if k in arrays])
        if _reusable(manifest, name, out_dir, inputs_sha256) and (
                manifest["splits"][name].get("pooled") or not options.pooled):
            logger.info("split %s: complete already, skipped", name)
            _Parts.discard(out_dir, name)  # a kill between the manifest and the parts' removal left them
            return None
        # Mark the split incomplete before the long part, so that a crash
        # leaves a manifest that cannot be mistaken for a finished split.
        manifest["splits"][name] = {"file": f"{name}.npz", "complete": False, "count": len(arrays["x"])}
        write_json(manifest_path, manifest)
        # The parts' key: what the logits depend on.  The backend is the
        # caller's on either engine (Ray's workers check theirs against it).
        return inputs_sha256, _Parts(out_dir, name, {
            "inputs_sha256": inputs_sha256, "teacher": identity["teacher"], "chunk_rows": CHUNK_ROWS,
            "batch_size": options.batch_size, "packing": options.packing, "backend": keras.backend.backend(),
            "kbert_version": kbert.__version__})

    def write_splits(pending, progress=None):
        """Compute and write `pending`'s splits ((name, arrays, split,
        extra, begun) tuples): on Ray, their missing chunks first, as one
        job.  `progress`: a bar spanning them (else each split has its own)."""
        if not pending:
            return
        on_ray = {} if ray_pass is None else ray_pass.compute(
            [(name, arrays, begun[1]) for name, arrays, _, _, begun in pending], num_labels,
            [teacher_name for _, teacher_name in teachers], progress)
        for name, arrays, split, extra, begun in pending:
            write_split(name, arrays, split, extra, begun, *on_ray.get(name, (0, 0.0)), progress=progress)

    def write_split(name, arrays, split, extra, begun, ray_rows, ray_seconds, progress=None):
        """`ray_rows`: the teacher-rows Ray computed for it, in `ray_seconds`
        (and showed on its own bar: the chunks are read back quietly)."""
        inputs_sha256, parts = begun
        file_name = f"{name}.npz"
        started = time.perf_counter()
        each, computed = [], 0
        for k, (model, teacher_name) in enumerate(teachers):
            desc = f"teacher on {name}" if len(teachers) == 1 else f"teacher {k + 1}/{len(teachers)} on {name}"
            y, rows = _chunked_logits(model, teacher_name, k, arrays, parts, name, num_labels, options, tokenizer,
                                      desc, verbose and not ray_rows, None if ray_rows else progress)
            each.append(y)
            computed += rows
        y = each[0] if len(each) == 1 else np.mean(np.stack(each).astype(np.float64), axis=0).astype(np.float32)
        scores = {}
        if len(each) > 1 and len(y) and (arrays["label"] >= 0).all():
            # What the ensemble is worth against its members, on the split's own labels.
            scores = {"scores": {"ensemble": _scores(task, arrays["label"], y),
                                 "members": [_scores(task, arrays["label"], m) for m in each]}}
        if options.pooled:
            arrays = dict(arrays, pooled=_chunked_pooled(teacher, arrays, parts, name, options, verbose))
        seconds = time.perf_counter() - started + ray_seconds
        fresh = (computed + ray_rows) // len(teachers)
        path = os.path.join(out_dir, file_name)
        _write_npz(path, dict(arrays, y=y, ysm=softmax(y)))
        cut = getattr(split, "truncated", None)
        manifest["splits"][name] = {
            "file": file_name,
            "complete": True,
            **extra,
            **scores,
            **({} if cut is None else {"truncated": int(cut), "long_inputs": options.long_inputs}),
            **({"pooled": True} if options.pooled else {}),
            **({"engine": "ray"} if ray_rows else {}),
            "sha256": file_sha256(path),
            "inputs_sha256": inputs_sha256,
            "count": len(y),
            "seconds": round(seconds, 3),
            # The rows this call ran the teachers on, per second: a resumed
            # pass read the others from its saved chunks.
            "items_per_second": round(fresh / seconds, 1) if seconds > 0 and fresh else None,
            **({"resumed_rows": len(y) - fresh} if fresh < len(y) else {}),
        }
        write_json(manifest_path, manifest)
        parts.remove()  # only now: until the manifest says complete, a kill resumes from them
        logger.info("split %s: %d items in %.1f s (%.1f it/s)", name, fresh, seconds, fresh / max(seconds, 1e-9))

    from tqdm.auto import tqdm

    with contextlib.ExitStack() as stack:
        ray_pass = None
        if options.engine == "ray":
            settings = {"backend": keras.backend.backend(), "options": options,
                        "teachers": [identity["teacher"]["sha256"]] + [
                            member["sha256"] for member in identity["teacher"].get("ensemble", [])[1:]]}
            ray_pass = _RayPass(stack, teacher_runs, settings, tokenizer, verbose)
        pending = []
        for name, arrays in encoded.items():
            begun = begin_split(name, arrays)
            if begun is not None:
                pending.append((name, arrays, splits[name], {}, begun))
            if pending and ray_pass is None:  # one split at a time; on Ray, all in one job
                write_splits(pending)
                pending = []
        write_splits(pending)
        written, pending, shards, bar = set(), [], iter(unlabeled or ()), None
        while True:
            try:
                name, split, extra = next(shards)
                arrays = _check_encoded(name, split, max_seq_len)
                _check_ids_and_labels(name, arrays, len(vocab), num_labels)
            except StopIteration:
                break
            except KbertError:
                write_splits(pending, bar)  # damage further on: the shards read before it are kept, as locally
                raise
            begun = begin_split(name, arrays)
            written.add(name)
            if begun is not None:
                pending.append((name, arrays, split, extra, begun))
            if bar is None:  # one bar over every shard (their number is known only at the end)
                bar = stack.enter_context(tqdm(desc="teachers on unlabeled text", unit="item", disable=not verbose))
            # Locally one shard at a time; on Ray, enough for minutes of
            # every actor (each job starts its actors anew), within a cap.
            if pending and (ray_pass is None or sum(len(p[1]["x"]) for p in pending)
                            >= min(ray_pass.workers * RAY_ROWS_PER_ACTOR, RAY_GROUP_ROWS)):
                write_splits(pending, bar)
                pending = []
        write_splits(pending, bar)
    if unlabeled is not None:
        # Shards of a longer input an earlier call read: not this input's.
        for name in sorted(n for n in manifest["splits"] if is_unlabeled_shard(n) and n not in written):
            entry = manifest["splits"].pop(name)
            write_json(manifest_path, manifest)
            stale = os.path.join(out_dir, entry["file"])
            if _is_file_name(entry["file"]) and os.path.isfile(stale):
                os.remove(stale)
            _Parts.discard(out_dir, name)
            logger.info("split %s: not in this input any more, removed", name)
    return manifest


# ---------------------------------------------------------------- loading


def _open_npz(path, names, optional=()):
    """Read the named arrays of an .npz (and those of `optional` it holds),
    or raise DataError naming the file."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing, or not a file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = sorted(set(names) - set(archive.files))
            if missing:
                raise DataError(f"{path}: not kbert materials, missing arrays {missing}")
            return {name: archive[name] for name in (*names, *optional) if name in archive.files}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zlib.error, RuntimeError) as e:
        # Truncated zips, corrupt deflate streams, object arrays
        # (allow_pickle=False) and non-npz files all end here; a flipped
        # flag bit makes zipfile call an entry encrypted (RuntimeError) or
        # of an unsupported kind (NotImplementedError, a RuntimeError).
        raise DataError(f"{path}: unreadable .npz ({type(e).__name__}: {e})") from None


def _check_array(path, name, array, kind, ndim):
    if kind == "unicode":
        ok_dtype = array.dtype.kind == "U"
    else:
        ok_dtype = array.dtype == np.dtype(kind)
    if not ok_dtype:
        raise DataError(f"{path}: `{name}` has dtype {array.dtype}, expected {kind}")
    if (ndim is None and array.ndim not in (1, 2)) or (ndim is not None and array.ndim != ndim):
        raise DataError(f"{path}: `{name}` has shape {array.shape}, expected {ndim or '1 or 2'} dimensions")


def _load_split(directory, name, entry, manifest):
    path = os.path.join(directory, entry["file"])
    if os.path.isfile(path) and file_sha256(path) != entry["sha256"]:
        raise DataError(f"{path}: the file changed since it was written (hash differs from {MANIFEST})")
    arrays = _open_npz(path, SPLIT_ARRAYS, OPTIONAL_ARRAYS)
    checks = dict(SPLIT_ARRAYS, **OPTIONAL_ARRAYS)
    for array_name in arrays:
        _check_array(path, array_name, arrays[array_name], *checks[array_name])
    split = MaterialsSplit(**arrays)
    n = len(split.x)
    for array_name in arrays:
        if len(arrays[array_name]) != n:
            raise DataError(f"{path}: `{array_name}` has {len(arrays[array_name])} rows, `x` has {n}")
    if entry.get("count") != n:
        raise DataError(f"{path}: {n} rows, but {MANIFEST} says {entry.get('count')}")
    if split.segment.shape != split.x.shape:
        raise DataError(f"{path}: `segment` {split.segment.shape} differs from `x` {split.x.shape}")
    c = manifest["num_labels"]
    if split.y.shape[1] != c or split.ysm.shape != split.y.shape:
        raise DataError(f"{path}: logits are {split.y.shape} / {split.ysm.shape}, {MANIFEST} says {c} labels")
    if not (np.isfinite(split.y).all() and np.isfinite(split.ysm).all()):
        raise DataError(f"{path}: NaN or inf in the teacher's logits")
    if split.pooled is not None and not np.isfinite(split.pooled).all():
        raise DataError(f"{path}: NaN or inf in the teacher's pooled vectors")
    if split.x.size and (split.x.min() < 0 or split.x.max() >= manifest["vocab"]["size"]):
        raise DataError(f"{path}: token ids outside the vocabulary of {manifest['vocab']['size']}")
    # Ids are non-zero exactly before each row's length: 0-padding on the right.
    if not np.array_equal(split.x != 0, np.arange(split.x.shape[1]) < split.length[:, None]):
        raise DataError(f"{path}: `length` disagrees with the non-zero ids of `x` (0 only as right padding)")
    if split.segment.size and not np.isin(split.segment, (0, 1)).all():
        raise DataError(f"{path}: segment ids other than 0 and 1")
    if np.any(split.segment[split.x == 0]):
        raise DataError(f"{path}: a padding position has segment id 1")
    # ysm is derived from y; a disagreement means one of them was altered.
    if split.y.size and not np.allclose(split.ysm, softmax(split.y), rtol=1e-4, atol=1e-6):
        raise DataError(f"{path}: `ysm` is not softmax(`y`)")
    if split.label.size and (split.label.min() < -1 or split.label.max() >= c):
        raise DataError(f"{path}: gold labels outside -1..{c - 1}")
    return split


def load_materials(directory, *, splits=None, vocab=None):
    """Load and validate a materials directory.

    Args:
        directory: written by `generate_materials`.
        splits: names of the splits to load (None: every complete one);
            a named split that is missing or incomplete is an error.
        vocab: the vocabulary the caller expects (a token list or its
            `vocab_sha256`); materials of another vocabulary are an error.

    Returns:
        `Materials`.

    Raises:
        DataError: naming the file, on anything missing, truncated, foreign
            or inconsistent.
    """
    manifest = _read_manifest(directory)
    manifest_path = os.path.join(directory, MANIFEST)
    if "shared" not in manifest:
        raise DataError(f"{manifest_path}: incomplete manifest (no `shared`)")
    rows, size = manifest["embedding"]["rows"], manifest["vocab"]["size"]
    entries, shared_entry = manifest["splits"], manifest["shared"]
    if rows != size:
        raise DataError(f"{manifest_path}: vocabulary of {size} tokens but an embedding of {rows} rows")

    if vocab is not None:
        expected = vocab if isinstance(vocab, str) else vocab_sha256(vocab)
        if expected != manifest["vocab"]["sha256"]:
            raise DataError(
                f"{manifest_path}: these materials were made with another vocabulary "
                f"({size} tokens, sha256 {manifest['vocab']['sha256'][:12]}) than expected "
                f"(sha256 {expected[:12]}); regenerate them with the student's teacher"
            )

    shared_path = os.path.join(directory, shared_entry["file"])
    if os.path.isfile(shared_path) and file_sha256(shared_path) != shared_entry["sha256"]:
        raise DataError(f"{shared_path}: the file changed since it was written (hash differs from {MANIFEST})")
    shared = _open_npz(shared_path, ("embedding", "vocab"), ("static",))
    if "static" in shared:
        _check_array(shared_path, "static", shared["static"], "float32", 2)
        if shared["static"].shape[0] != size or not np.isfinite(shared["static"]).all():
            raise DataError(f"{shared_path}: `static` must be {size} finite rows, got {shared['static'].shape}")
    _check_array(shared_path, "embedding", shared["embedding"], "float32", 2)
    _check_array(shared_path, "vocab", shared["vocab"], "unicode", 1)
    if shared["embedding"].shape[0] != len(shared["vocab"]) or len(shared["vocab"]) != size:
        raise DataError(
            f"{shared_path}: {len(shared['vocab'])} vocabulary tokens, {shared['embedding'].shape[0]} "
            f"embedding rows, {MANIFEST} says {size}"
        )
    if not np.isfinite(shared["embedding"]).all():
        raise DataError(f"{shared_path}: NaN or inf in the embedding")
    tokens = shared["vocab"].tolist()
    if vocab_sha256(tokens) != manifest["vocab"]["sha256"]:
        raise DataError(f"{shared_path}: the vocabulary differs from the one {MANIFEST} names")

    if splits is None:
        names = [name for name, entry in entries.items() if entry["complete"]]
        for name in sorted(set(entries) - set(names)):
            logger.warning("%s: split %s is incomplete; left out (re-run the generator)", directory, name)
    else:
        names = list(splits)
        for name in names:
            if name not in entries or not entries[name]["complete"]:
                raise DataError(f"{manifest_path}: split {name!r} is missing or incomplete")
    loaded = {name: _load_split(directory, name, entries[name], manifest) for name in names}
    return Materials(directory, manifest, tokens, shared["embedding"], loaded, shared.get("static"))


# ---------------------------------------------------------------- contextual augmentation


def _whole_words(tokens):
    """bool [V]: the tokens a masked word may become: whole words (no
    "##" continuation), not `[...]` specials or unused slots."""
    return np.array([not (t.startswith("##") or (t.startswith("[") and t.endswith("]")) or not t.strip())
                     for t in tokens])


def fill_masks(copies, originals, checkpoint, *, max_seq_len, seed, top_k=20, temperature=1.0, batch_size=64,
               out_dir=None, verbose=True):
    """Rewrite every `[MASK]` word of augmented copies with a word a masked
    language model predicts there (Wu et al. 2019, "Conditional BERT
    contextual augmentation"; TinyBERT's BERT-based replacement).

    Args:
        copies: (source row, text or (first, second)) pairs, as
            `kbert.augment.augment` gives them; a mask is the word `[MASK]`.
        originals: the source rows' texts, indexed by source row.
        checkpoint: anything `load_checkpoint(..., training=True)` reads
            with its MLM head (a checkpoint without one is a CheckpointError).
        max_seq_len: the longest encoding; a copy with a mask beyond it
            keeps its masks.
        seed: each copy draws from its own generator, (seed, its index).
        top_k, temperature: each mask's word is drawn from the softmax of
            the MLM's logits / temperature over its `top_k` likeliest whole
            words (`_whole_words`).
        batch_size: rows per MLM call.
        out_dir: where to keep the rewrites as they are made
            (`MLM_PARTS.parts/`, a chunk of `MLM_CHUNK_COPIES` copies at a
            time, keyed by the copies, the checkpoint's weights and these
            options), so that a call after a kill, or a re-run, rewrites
            only the chunks not saved and returns what the uninterrupted
            call returns.  None: nothing is kept.

    Returns:
        The copies, each mask rewritten, in order; a rewritten copy equal to
        its source or to an earlier copy is dropped.
    """
    from tqdm.auto import tqdm

    from kbert.augment import MASK, normalise
    from kbert.tokenization import Tokenizer, load_vocab_tokens
    from kbert.views import pretraining_model
    from kbert.weights.loading import load_checkpoint

    bert = load_checkpoint(checkpoint, training=True, seq_len=None)
    if bert.vocab_file is None:
        raise ConfigError(f"--mlm {checkpoint}: no vocab.txt beside the checkpoint")
    tokens = load_vocab_tokens(bert.vocab_file)
    # The masked LM reads text as its own vocabulary was made: an uncased
    # one has no capital letter outside its [...] specials.
    cased = any(any(c.isupper() for c in t) for t in tokens if not (t.startswith("[") and t.endswith("]")))
    tokenizer = Tokenizer.from_vocab_file(bert.vocab_file, cased=cased, never_split=(MASK,),
                                          vocab_size=bert.bert_config.vocab_size)
    if MASK not in tokens:
        raise ConfigError(f"--mlm {checkpoint}: its vocabulary has no {MASK} token")
    # Rows of the output matrix past vocab.txt's tokens (a padded vocabulary) are never drawn.
    allowed = np.zeros(bert.bert_config.vocab_size, bool)
    allowed[: len(tokens)] = _whole_words(tokens)[: bert.bert_config.vocab_size]
    mask_id = tokens.index(MASK)
    if not allowed.any():
        raise ConfigError(f"--mlm {checkpoint}: its vocabulary has no whole-word token to predict")
    predict = pretraining_model(bert)
    k_kept = min(top_k, int(allowed.sum()))
    pairs = bool(copies) and not isinstance(copies[0][1], str)
    sides = [[text] if not pairs else list(text) for _, text in copies]
    masked = [k for k, texts in enumerate(sides) if any(MASK in text.split() for text in texts)]
    order = sorted(masked, key=lambda k: sum(len(part.split()) for part in sides[k]))  # similar lengths together
    parts = None
    if out_dir is not None:
        parts = _Parts(out_dir, MLM_PARTS, {
            "copies_sha256": hashlib.sha256(json.dumps([[int(k), text] for k, text in copies]).encode()).hexdigest(),
            "checkpoint_sha256": teacher_sha256(bert), "vocab_sha256": vocab_sha256(tokens),
            "max_seq_len": int(max_seq_len), "seed": int(seed), "top_k": int(top_k), "temperature": float(temperature),
            "batch_size": int(batch_size), "chunk_copies": MLM_CHUNK_COPIES, "backend": keras.backend.backend(),
            "kbert_version": kbert.__version__})

    def rewrite(rows):
        """{"rows", "texts", "cut"}: `rows`' copies rewritten, batch by batch."""
        texts, cut = [], []
        for start in range(0, len(rows), batch_size):
            batch_rows = rows[start : start + batch_size]
            batch = tokenizer.encode_batch([sides[k][0] for k in batch_rows],
                                           [sides[k][1] for k in batch_rows] if pairs else None, max_len=max_seq_len)
            positions = [np.flatnonzero(ids == mask_id) for ids in batch.token_ids]  # the masks, in text order
            width = max(len(p) for p in positions)
            chosen = np.zeros((len(batch_rows), width), np.int32)  # position 0 ([CLS]) pads: its logits unread
            for i, p in enumerate(positions):
                chosen[i, : len(p)] = p
            logits = keras.ops.convert_to_numpy(
                predict.predict_on_batch([batch.token_ids, batch.segment_ids, chosen])["mlm"])  # [B, P, V]
            for i, k in enumerate(batch_rows):
                if len(positions[i]) != sum(part.split().count(MASK) for part in sides[k]):
                    texts.append(copies[k][1])  # a mask was cut off: which is which is unknown
                    cut.append(True)
                    continue
                rng = np.random.default_rng([seed, 29, k])
                scores = np.where(allowed, logits[i, : len(positions[i])].astype(np.float64) / temperature,
                                  -np.inf)  # [masks, V]
                likeliest = np.argpartition(-scores, k_kept - 1, axis=-1)[:, :k_kept]  # [masks, k], any order
                top = np.take_along_axis(scores, likeliest, axis=-1)
                p = np.exp(top - top.max(axis=-1, keepdims=True))
                picks = [row[rng.choice(k_kept, p=q / q.sum())] for row, q in zip(likeliest, p)]
                texts.append(_rewrite(sides[k], [tokens[int(pick)] for pick in picks], MASK))
                cut.append(False)
        return {"rows": rows, "texts": texts, "cut": cut}

    filled, cut, resumed = {}, 0, 0
    with tqdm(total=len(order), desc="masked LM", unit="copy", disable=not verbose) as bar:
        for c, start in enumerate(range(0, len(order), MLM_CHUNK_COPIES)):
            rows = order[start : start + MLM_CHUNK_COPIES]
            saved = None if parts is None else parts.load_fill(c, rows, pairs)
            if saved is None:
                saved = rewrite(rows)
                if parts is not None:
                    parts.save_fill(c, saved)
            else:
                resumed += len(rows)
            for k, text, was_cut in zip(rows, saved["texts"], saved["cut"]):
                filled[k] = tuple(text) if pairs else text  # JSON keeps a pair as a list
                cut += bool(was_cut)
            bar.update(len(rows))
    if resumed:
        logger.info("masked LM: %d of %d copies read back from %s", resumed, len(order), parts.directory)
    result, seen = [], set()
    for k, (source, text) in enumerate(copies):
        new = filled.get(k, text)
        key = new if not pairs else tuple(new)
        if key == normalise(originals[source]) or key in seen:
            continue
        seen.add(key)
        result.append((source, new))
    logger.info("masked LM: %d of %d copies rewritten, %d kept after dropping repeats (%d with a mask past "
                "max_seq_len left as they were)", len(filled) - cut, len(copies), len(result), cut)
    return result


def _rewrite(parts, words, mask):
    """`parts` (one text, or a pair's two) with their mask words, in order,
    replaced by `words` (masks past the end of `words` stay)."""
    words = iter(words)
    out = []
    for part in parts:
        out.append(" ".join(next(words, word) if word == mask else word for word in part.split()))
    return out[0] if len(out) == 1 else tuple(out)


# ---------------------------------------------------------------- unlabeled text


def _text_keys(texts, cased):
    """int64 [N]: an 8-byte digest of each text (a sentence, or a pair as a
    tuple), the duplicate check's key: its words, whitespace collapsed,
    lower-cased for an uncased teacher, so that texts the teacher reads
    alike count as one."""
    def normal(text):
        return " ".join(text.split()) if cased else " ".join(text.lower().split())

    keys = ["\t".join(normal(part) for part in text) if isinstance(text, tuple) else normal(text) for text in texts]
    return np.array([int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little",
                                    signed=True) for key in keys], np.int64)


class SeenTexts:
    """The keys of every text seen so far, 8 bytes each: sorted runs,
    merged pairwise as they grow (a binary counter's carries), so that a
    lookup searches O(log N) runs."""

    def __init__(self, keys=()):
        self.runs = []
        self.add(np.asarray(keys, np.int64))

    def __contains__(self, key):
        return bool(self.contains(np.array([key], np.int64))[0])

    def contains(self, keys):
        """bool [N]: which of `keys` were seen."""
        found = np.zeros(len(keys), bool)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            found |= run[at] == keys
        return found

    def add(self, keys):
        if not len(keys):
            return
        self.runs.append(np.unique(keys))
        while len(self.runs) > 1 and len(self.runs[-1]) >= len(self.runs[-2]):
            newest = self.runs.pop()
            self.runs[-1] = np.union1d(self.runs[-1], newest)


def unlabeled_shards(paths, *, pairs, shard_rows, encode, seen, cased=False):
    """The unlabeled splits, one shard at a time: (name, `EncodedSplit`,
    manifest fields) for every `shard_rows` new rows of each file in turn.

    Args:
        paths: the input files (`kbert.corpus.expand_inputs`), each read
            by `kbert.corpus.read_records` (text, JSON lines or Parquet).
        pairs: read each record as two sentences.
        shard_rows: rows a shard holds at most; a shard never spans files.
        encode: (firsts, seconds or None, labels) -> `EncodedSplit`.
        seen: `SeenTexts` of the texts not to take again (the task's
            splits', keyed by `_text_keys`); each row taken joins it.
        cased: the teacher's casing: for an uncased one, texts that differ
            only in case or spacing are one text.

    A record (its line, or its row in Parquet) is taken when it is not
    blank and its text was not seen; the same input gives the same shards,
    so a re-run finds them complete.
    """
    index = 0

    def shard(path, taken):
        nonlocal index
        lines = np.array([number for number, _ in taken], np.int64)
        texts = [text for _, text in taken]
        firsts = [t[0] for t in texts] if pairs else texts
        split = encode(firsts, [t[1] for t in texts] if pairs else None, [-1] * len(texts))
        split.lines = lines
        name = f"{UNLABELED}-{index:05d}"
        index += 1
        return name, split, {"input": os.path.abspath(path), "lines": [int(lines[0]), int(lines[-1])]}

    for path in paths:
        kept, pending, skipped = [], [], 0
        for number, text in read_records(path, pairs=pairs, blank="skip"):
            pending.append((number, text))
            # Checked in batches (one digest array each), enough to fill the shard.
            if len(pending) >= max(shard_rows - len(kept), min(shard_rows, 1024)):
                new, dropped = _new_rows(pending, seen, cased)
                kept, pending, skipped = kept + new, [], skipped + dropped
                while len(kept) >= shard_rows:
                    yield shard(path, kept[:shard_rows])
                    kept = kept[shard_rows:]
        new, dropped = _new_rows(pending, seen, cased)
        kept, skipped = kept + new, skipped + dropped
        while kept:
            yield shard(path, kept[:shard_rows])
            kept = kept[shard_rows:]
        logger.info("%s: %d lines already seen, skipped", path, skipped)


def _new_rows(taken, seen, cased):
    """(the rows of `taken` whose text is new, in order, each first copy
    only; how many were dropped); the new ones join `seen`."""
    if not taken:
        return taken, 0
    keys = _text_keys([text for _, text in taken], cased)
    _, first = np.unique(keys, return_index=True)
    keep = np.zeros(len(keys), bool)
    keep[first] = True
    keep &= ~seen.contains(keys)
    seen.add(keys[keep])
    return [row for row, kept in zip(taken, keep) if kept], int((~keep).sum())


# ---------------------------------------------------------------- from a run


def materials_from_run(run_dir, out_dir, options=MaterialsOptions(), *, data_dir=None, verbose=True):
    """Teaching materials of a fine-tuning run (`kbert finetune`) on a GLUE task.

    Reads the run (`kbert.runs`: model, vocabulary, task, max_seq_len,
    casing), encodes each split as the teacher's features were encoded,
    adds `options.augment` Tang et al. copies per training sentence as the
    "augmented" split, and calls `generate_materials`.  Returns the manifest.

    `run_dir` may be a list of runs, a teacher ensemble: fine-tuned on the
    same task with the same vocabulary, max_seq_len and casing (refused by
    name otherwise), their logits averaged (`generate_materials`'
    `ensemble`); the first is the one the embedding, static and pooled
    vectors, and a transformer student, come from.
    """
    from kbert import augment as augmentation
    from kbert.glue import get_processor, resolve_data_dir, split_texts

    run_dirs = [run_dir] if isinstance(run_dir, (str, os.PathLike)) else list(run_dir)
    if not run_dirs:
        raise ConfigError("materials need a fine-tuned teacher run (--model)")
    real = [os.path.realpath(d) for d in run_dirs]
    for k, path in enumerate(real):
        if path in real[:k]:
            raise ConfigError(f"--model {run_dirs[k]}: names the teacher {run_dirs[real.index(path)]} again")
    run_dir = run_dirs[0]
    if options.engine == "ray":
        ray_module()  # a ConfigError saying what to install, before anything loads
    data_dir = resolve_data_dir(data_dir)
    processor = get_processor(options.task or runs.read_run(run_dir).task)
    unlabeled = expand_inputs(options.unlabeled, "--unlabeled")
    # Refused before the teacher loads: materials written into the run or
    # the task's data would sit among (and could replace) what they read.
    read = [*run_dirs, processor.task_dir(data_dir), *unlabeled]
    if options.mlm is not None:
        from kbert.weights.loading import checkpoint_directory

        read.append(checkpoint_directory(options.mlm))
    refuse_overlap(out_dir, read, flag="--output", error=ConfigError)
    teacher, record = runs.load_model(run_dir)
    members = []
    for k, other in enumerate(run_dirs):
        model, other_record = (teacher, record) if k == 0 else runs.load_model(other)
        if other_record.kind != "teacher":
            raise ConfigError(f"{other}: a {other_record.kind!r} run; materials need a fine-tuned teacher")
        if other_record.task != processor.name:
            raise ConfigError(f"{other}: the teacher was fine-tuned on {other_record.task}, not {processor.name}")
        if k == 0:
            continue
        for field in ("max_seq_len", "cased", "num_labels"):
            if getattr(other_record, field) != getattr(record, field):
                raise ConfigError(f"{other}: {field} {getattr(other_record, field)!r}, but the first teacher "
                                  f"{run_dir} has {getattr(record, field)!r}; an ensemble's teachers must agree")
        if vocab_sha256(load_vocab_tokens(runs.vocab_file(other))) != vocab_sha256(
                load_vocab_tokens(runs.vocab_file(run_dir))):
            raise ConfigError(f"{other}: another vocabulary than the first teacher {run_dir}'s; an ensemble's "
                              "teachers must share one")
        members.append((model, os.path.abspath(other)))
    if processor.is_regression:
        raise ConfigError(f"{processor.name} is a regression task; the CNN student distils classifiers only")
    options = dataclasses.replace(options, task=processor.name, max_seq_len=options.max_seq_len or record.max_seq_len)
    if options.augment and "train" not in options.splits:
        raise ConfigError("--augment needs the train split")
    # Augmented sentences carry a literal [MASK] word: keep it one token.
    tokenizer = runs.load_tokenizer(run_dir, record, teacher, never_split=(augmentation.MASK,))

    def encode(firsts, seconds, labels):
        batch = tokenizer.encode_batch(firsts, seconds, max_len=options.max_seq_len)
        sentences = np.asarray(firsts if seconds is None else list(zip(firsts, seconds)), dtype=str)
        return EncodedSplit(batch.token_ids, batch.segment_ids, np.asarray(labels, np.int32), sentences,
                            batch.lengths, batch.num_truncated)

    encoded = {}
    for name in options.splits:
        examples = processor.examples(data_dir, name)
        firsts, seconds = split_texts(examples)
        labels = [-1 if e.label is None else processor.label_id(e.label) for e in examples]
        encoded[name] = encode(firsts, seconds, labels)
        if name == "train":
            train = (firsts, seconds)
    vocab = load_vocab_tokens(runs.vocab_file(run_dir))
    static = None
    if options.static_embedding:
        static = _stored_static(out_dir, teacher, vocab)
        if static is None:
            static = static_vectors(teacher, vocab, batch_size=options.batch_size, verbose=verbose)
    if options.augment:
        firsts, seconds = train
        sources = firsts if seconds is None else list(zip(firsts, seconds))
        neighbours = None
        if options.neighbours:
            vectors = static if static is not None else keras.ops.convert_to_numpy(
                teacher.get_layer("Embedding-Token").embeddings.value)
            neighbours = augmentation.nearest_neighbours(vectors, vocab, options.neighbours)
        drawn = augmentation.augment(sources, options.augment, options.seed, neighbours=neighbours,
                                     p_neighbour=options.p_neighbour)
        if options.mlm is not None:
            # Refused now rather than after an hour of rewriting left its parts there.
            _refuse_other_materials(out_dir, task=options.task, max_seq_len=options.max_seq_len, cased=record.cased,
                                    teacher=teacher, vocab=vocab)
            drawn = fill_masks(drawn, sources, options.mlm, max_seq_len=options.max_seq_len,
                               seed=options.seed, top_k=options.mlm_top_k, temperature=options.mlm_temperature,
                               batch_size=options.batch_size, out_dir=out_dir, verbose=verbose)
        copies = [text for _, text in drawn]
        encoded["augmented"] = encode(
            [c if seconds is None else c[0] for c in copies],
            None if seconds is None else [c[1] for c in copies],
            [-1] * len(copies),
        )
        encoded["augmented"].sources = np.array([index for index, _ in drawn], np.int64)
        logger.info("augmented: %d sentences, %.2f extra teacher passes over train",
                    len(copies), augmentation.expected_passes(len(firsts), len(copies)))
    shards = None
    if unlabeled:
        pairs = processor.labeled_layout.text_b is not None
        # Every split of the task, whichever this call encodes: dev and test
        # too, since a student trained on their sentences would be scored
        # on what it was taught.
        seen = SeenTexts()
        for name in SPLITS:
            if os.path.isfile(processor.split_path(data_dir, name)):
                firsts, seconds = split_texts(processor.examples(data_dir, name))
                seen.add(_text_keys(firsts if seconds is None else list(zip(firsts, seconds)), record.cased))
        shards = unlabeled_shards(unlabeled, pairs=pairs, shard_rows=options.shard_rows, encode=encode, seen=seen,
                                  cased=record.cased)
    return generate_materials(teacher, encoded, out_dir, vocab=vocab, teacher_id=os.path.abspath(run_dir),
                              options=options, cased=record.cased, verbose=verbose, tokenizer=tokenizer,
                              static=static, unlabeled=shards, ensemble=members,
                              teacher_runs=run_dirs if options.engine == "ray" else None)
