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
                          "count": N, "seconds": s, "items_per_second": r}, ...}}

Every file is written to a temporary name and moved into place, and the
manifest is rewritten after each split, so an interrupted run leaves whole
files only; a re-run skips the splits the manifest calls complete (same
teacher, same input, file hash unchanged) and redoes the others.
"""

import dataclasses
import hashlib
import logging
import os
import time
import warnings
import zipfile

import keras
import numpy as np

import kbert
from kbert.atomic import atomic_output, read_json, write_json
from kbert.batching import predict_bucketed
from kbert.errors import ConfigError, DataError
from kbert.glue.features import file_sha256

logger = logging.getLogger(__name__)

FORMAT = "kbert-materials"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARED = "shared.npz"
# Teacher quantization modes `generate_materials` accepts: int8 is measured
# to hold SST-2 dev accuracy (benchmarks/results/teacher-variants-*.md).
QUANTIZE_MODES = (None, "int8")

# Rounding each batch's width up to a multiple of this keeps the number of
# distinct input shapes small, so JAX and tf.function compile a handful of
# programs instead of one per sentence length.

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


@dataclasses.dataclass
class EncodedSplit:
    """One split as the teacher's tokenizer encoded it.

    Attributes:
        token_ids: int [N, T], 0-padded on the right.
        segment_ids: int [N, T].
        labels: int [N], gold label ids, -1 where there is none.
        sentences: str [N] (single sentences) or [N, 2] (pairs).
        lengths: int [N], or None to count the non-zero ids.
    """

    token_ids: np.ndarray
    segment_ids: np.ndarray
    labels: np.ndarray
    sentences: np.ndarray
    lengths: np.ndarray = None


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

    @property
    def num_labels(self):
        return self.manifest["num_labels"]

    @property
    def vocab_sha256(self):
        return self.manifest["vocab"]["sha256"]


# ---------------------------------------------------------------- hashing


def vocab_sha256(vocab):
    """Hash of a vocabulary in id order; two vocabularies agree iff it does."""
    digest = hashlib.sha256()
    for token in vocab:
        digest.update(token.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


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


def softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def run_teacher(teacher, token_ids, segment_ids, lengths, *, batch_size=64, desc=None, verbose=True):
    """Teacher logits float32 [N, C] in the rows' order, via length buckets."""
    from tqdm.auto import tqdm

    with tqdm(total=len(token_ids), desc=desc, unit="item", disable=not verbose, leave=True) as bar:
        return predict_bucketed(teacher, [token_ids, segment_ids], lengths, batch_size=batch_size, progress=bar)


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
    return {
        "x": token_ids[:, :trim].astype(np.int32),
        "segment": segment_ids[:, :trim].astype(np.int32),
        "length": lengths.astype(np.int32),
        "label": labels.astype(np.int32),
        "sentence": sentences,
    }


def _read_manifest(directory):
    path = os.path.join(directory, MANIFEST)
    manifest = read_json(path, error=DataError, what="manifest",
                         missing="no manifest; not a materials directory")
    if manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not a kbert materials manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version")
        raise DataError(f"{path}: format_version {version!r}, this kbert reads {FORMAT_VERSION}")
    return manifest


def _reusable(manifest, name, directory, inputs_sha256):
    entry = manifest["splits"].get(name)
    if not entry or not entry.get("complete") or entry.get("inputs_sha256") != inputs_sha256:
        return False
    path = os.path.join(directory, entry["file"])
    return os.path.exists(path) and file_sha256(path) == entry.get("sha256")


def _start_manifest(out_dir, identity):
    """The existing manifest if it is for the same teacher and setup, else a new one."""
    if not os.path.exists(os.path.join(out_dir, MANIFEST)):
        return dict(identity, splits={})
    manifest = _read_manifest(out_dir)
    for key in ("task", "max_seq_len", "cased", "teacher", "vocab"):
        if manifest.get(key) != identity[key]:
            raise DataError(
                f"{os.path.join(out_dir, MANIFEST)}: materials of another {key} "
                f"({manifest.get(key)!r}, now {identity[key]!r}); use a new directory"
            )
    manifest.update(identity)
    manifest.setdefault("splits", {})
    return manifest


def generate_materials(
    teacher, splits, out_dir, *, vocab, task, max_seq_len, teacher_id, cased=False, batch_size=64, verbose=True,
    quantize=None,
):
    """Run the teacher over every split and write the materials directory.

    Args:
        teacher: a `BertModel(..., num_labels=C)` (inputs [token ids,
            segment ids], output logits [B, C]) with an `Embedding-Token` layer.
        splits: {split name: `EncodedSplit` or a mapping with its fields}.
        out_dir: created if missing; see the module docstring for the layout.
        vocab: the teacher's tokens in id order.
        task: task name recorded in the manifest (e.g. "SST-2").
        max_seq_len: the encoding's maximum length.
        teacher_id: a human-readable name of the teacher (e.g. its run dir).
        cased: the tokenizer's casing, recorded so that new text can be
            encoded for the student the same way.
        batch_size: teacher batch size.
        verbose: show a progress bar per split.
        quantize: None, or "int8": run the teacher through Keras' int8
            quantization (`Model.quantize`) for speed.  The weights are
            hashed and the embedding matrix read before quantizing (the
            `Embedding-Token` layer is not quantized anyway); the mode is
            recorded with the teacher's identity.

    Returns:
        The manifest (a dict), as written to `out_dir/manifest.json`.
    """
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
        top_id = int(arrays["x"].max(initial=0))
        if top_id >= len(vocab):
            raise DataError(f"split {name!r}: token id {top_id} is outside the vocabulary ({len(vocab)})")
        top_label = int(arrays["label"].max(initial=-1))
        if top_label >= num_labels:
            raise DataError(f"split {name!r}: label {top_label} is outside the teacher's {num_labels} labels")

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
    if quantize not in QUANTIZE_MODES:
        raise ConfigError(f"quantize={quantize!r}: expected one of {QUANTIZE_MODES}")
    if quantize:
        # Recorded only when used, so that float materials keep one identity.
        identity["teacher"]["quantization"] = quantize
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns once per layer it leaves in float
            teacher.quantize(quantize)
    manifest = _start_manifest(out_dir, identity)
    manifest_path = os.path.join(out_dir, MANIFEST)

    shared_path = os.path.join(out_dir, SHARED)
    shared = manifest.get("shared")
    if not (shared and os.path.exists(shared_path) and file_sha256(shared_path) == shared.get("sha256")):
        _write_npz(shared_path, {"embedding": matrix, "vocab": np.asarray(vocab, dtype=str)})
        manifest["shared"] = {"file": SHARED, "sha256": file_sha256(shared_path)}
        write_json(manifest_path, manifest)

    for name, arrays in encoded.items():
        inputs_sha256 = _arrays_sha256(arrays["x"], arrays["segment"], arrays["label"], arrays["sentence"])
        if _reusable(manifest, name, out_dir, inputs_sha256):
            logger.info("split %s: complete already, skipped", name)
            continue
        file_name = f"{name}.npz"
        # Mark the split incomplete before the long part, so that a crash
        # leaves a manifest that cannot be mistaken for a finished split.
        manifest["splits"][name] = {"file": file_name, "complete": False, "count": len(arrays["x"])}
        write_json(manifest_path, manifest)

        started = time.perf_counter()
        y = run_teacher(
            teacher, arrays["x"], arrays["segment"], arrays["length"],
            batch_size=batch_size, desc=f"teacher on {name}", verbose=verbose,
        )
        if y is None:  # an empty split
            y = np.zeros((0, num_labels), np.float32)
        seconds = time.perf_counter() - started
        if not np.isfinite(y).all():
            raise DataError(f"split {name!r}: the teacher produced NaN or inf logits")
        path = os.path.join(out_dir, file_name)
        _write_npz(path, dict(arrays, y=y, ysm=softmax(y)))
        manifest["splits"][name] = {
            "file": file_name,
            "complete": True,
            "sha256": file_sha256(path),
            "inputs_sha256": inputs_sha256,
            "count": len(y),
            "seconds": round(seconds, 3),
            "items_per_second": round(len(y) / seconds, 1) if seconds > 0 else None,
        }
        write_json(manifest_path, manifest)
        logger.info("split %s: %d items in %.1f s (%.1f it/s)", name, len(y), seconds, len(y) / max(seconds, 1e-9))
    return manifest


# ---------------------------------------------------------------- loading


def _open_npz(path, names):
    """Read the named arrays of an .npz, or raise DataError naming the file."""
    if not os.path.exists(path):
        raise DataError(f"{path}: missing")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = sorted(set(names) - set(archive.files))
            if missing:
                raise DataError(f"{path}: not kbert materials, missing arrays {missing}")
            return {name: archive[name] for name in names}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        # Truncated zips, object arrays (allow_pickle=False) and non-npz
        # files all end here.
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
    path = os.path.join(directory, entry.get("file", f"{name}.npz"))
    if os.path.exists(path) and file_sha256(path) != entry.get("sha256"):
        raise DataError(f"{path}: the file changed since it was written (hash differs from {MANIFEST})")
    arrays = _open_npz(path, SPLIT_ARRAYS)
    for array_name, (kind, ndim) in SPLIT_ARRAYS.items():
        _check_array(path, array_name, arrays[array_name], kind, ndim)
    split = MaterialsSplit(**arrays)
    n = len(split.x)
    for array_name in SPLIT_ARRAYS:
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
    if split.x.size and (split.x.min() < 0 or split.x.max() >= manifest["vocab"]["size"]):
        raise DataError(f"{path}: token ids outside the vocabulary of {manifest['vocab']['size']}")
    if not np.array_equal((split.x != 0).sum(axis=1), split.length):
        raise DataError(f"{path}: `length` disagrees with the non-zero ids of `x`")
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
    try:
        rows, size = manifest["embedding"]["rows"], manifest["vocab"]["size"]
        entries = dict(manifest["splits"])
        shared_entry = manifest["shared"]
        manifest["num_labels"]
    except (KeyError, TypeError) as e:
        raise DataError(f"{manifest_path}: incomplete manifest (no {e})") from None
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

    shared_path = os.path.join(directory, shared_entry.get("file", SHARED))
    if os.path.exists(shared_path) and file_sha256(shared_path) != shared_entry.get("sha256"):
        raise DataError(f"{shared_path}: the file changed since it was written (hash differs from {MANIFEST})")
    shared = _open_npz(shared_path, ("embedding", "vocab"))
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
        names = [name for name, entry in entries.items() if entry.get("complete")]
        for name in sorted(set(entries) - set(names)):
            logger.warning("%s: split %s is incomplete; left out (re-run the generator)", directory, name)
    else:
        names = list(splits)
        for name in names:
            if not entries.get(name, {}).get("complete"):
                raise DataError(f"{manifest_path}: split {name!r} is missing or incomplete")
    loaded = {name: _load_split(directory, name, entries[name], manifest) for name in names}
    return Materials(directory, manifest, tokens, shared["embedding"], loaded)


# ---------------------------------------------------------------- from a run


def materials_from_run(run_dir, out_dir, *, task=None, data_dir=None, splits=("train", "dev", "test"),
                       max_seq_len=None, augment=0, seed=0, batch_size=64, verbose=True, quantize=None):
    """Teaching materials of a fine-tuning run (`kbert finetune`) on a GLUE task.

    Reads the run's `model.keras`, `vocab.txt` and `run.json` (task,
    max_seq_len, casing), encodes each split as the teacher's features were
    encoded, adds `augment` Tang et al. copies per training sentence as the
    "augmented" split, and calls `generate_materials` (`quantize`: see
    there).  Returns the manifest.
    """
    from kbert import augment as augmentation
    from kbert.evaluation import load_run_model
    from kbert.glue import get_processor, resolve_data_dir
    from kbert.tokenization import Tokenizer, load_vocab

    teacher, run, _ = load_run_model(run_dir)
    if run.get("kind") != "teacher":
        raise ConfigError(f"{run_dir}: a {run.get('kind')!r} run; materials need a fine-tuned teacher")
    options = run.get("options", {})
    processor = get_processor(task or run.get("task") or options.get("task"))
    if run.get("task") and run["task"] != processor.name:
        raise ConfigError(f"{run_dir}: the teacher was fine-tuned on {run['task']}, not {processor.name}")
    if processor.is_regression:
        raise ConfigError(f"{processor.name} is a regression task; the CNN student distils classifiers only")
    max_len = max_seq_len or int(run.get("max_seq_len") or options.get("max_seq_len", 128))
    cased = bool(run.get("cased", options.get("cased", False)))
    vocab_path = os.path.join(run_dir, "vocab.txt")
    token_dict = load_vocab(vocab_path)
    # Augmented sentences carry a literal [MASK] word: keep it one token.
    tokenizer = Tokenizer(token_dict, cased=cased, never_split=(augmentation.MASK,))
    data_dir = resolve_data_dir(data_dir)

    def encode(firsts, seconds, labels):
        batch = tokenizer.encode_batch(firsts, seconds, max_len=max_len)
        sentences = np.asarray(firsts if seconds is None else list(zip(firsts, seconds)), dtype=str)
        return EncodedSplit(batch.token_ids, batch.segment_ids, np.asarray(labels, np.int32), sentences,
                            batch.lengths)

    encoded, train = {}, None
    for name in splits:
        examples = processor.examples(data_dir, name)
        firsts = [e.text_a for e in examples]
        seconds = [e.text_b for e in examples] if any(e.text_b is not None for e in examples) else None
        labels = [-1 if e.label is None else processor.label_id(e.label) for e in examples]
        encoded[name] = encode(firsts, seconds, labels)
        if name == "train":
            train = (firsts, seconds)
    if augment:
        if train is None:
            raise ConfigError("augment needs the train split")
        firsts, seconds = train
        sources = firsts if seconds is None else list(zip(firsts, seconds))
        copies = [text for _, text in augmentation.augment(sources, augment, seed)]
        encoded["augmented"] = encode(
            [c if seconds is None else c[0] for c in copies],
            None if seconds is None else [c[1] for c in copies],
            [-1] * len(copies),
        )
        logger.info("augmented: %d sentences, %.2f extra teacher passes over train",
                    len(copies), augmentation.expected_passes(len(firsts), len(copies)))
    vocab = [token for token, _ in sorted(token_dict.items(), key=lambda item: item[1])]
    return generate_materials(
        teacher, encoded, out_dir, vocab=vocab, task=processor.name, max_seq_len=max_len,
        teacher_id=os.path.abspath(run_dir), cased=cased, batch_size=batch_size, verbose=verbose,
        quantize=quantize,
    )
