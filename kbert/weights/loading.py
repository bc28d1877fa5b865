"""`load_checkpoint`: a BERT checkpoint on disk -> a `BertModel` with every weight assigned.

Strict in nanoGPT's way: every model weight comes from the checkpoint (only
a classifier head that the checkpoint lacks is initialised, as
`run_classifier.py` would, and keras-bert's task table; the pre-training
heads only when asked), every shape is checked before anything is read,
and every checkpoint variable is accounted for in the `LoadReport`.
"""

import dataclasses
import logging
import os
import re
import warnings

import numpy as np

from kbert import presets
from kbert.atomic import read_json
from kbert.config import BertConfig
from kbert.errors import CheckpointError, ConfigError
from kbert.model import BertModel
from kbert.tokenization import load_vocab_tokens
from kbert.weights import name_map
from kbert.weights.readers import FLOAT_DTYPES, OriginalCheckpoint, SafetensorsCheckpoint

logger = logging.getLogger(__name__)


class CheckpointWarning(UserWarning):
    """A checkpoint holds variables that no row of the name map explains."""


@dataclasses.dataclass(frozen=True)
class Assignment:
    name: str  # checkpoint variable
    slot: str  # Keras variable path
    shape: tuple  # Keras shape
    transform: str = None


@dataclasses.dataclass(frozen=True)
class LoadReport:
    path: str
    format: str
    assigned: tuple  # of Assignment
    initialized: tuple = ()  # Keras slots initialised, not loaded (classifier head)
    unused_expected: tuple = ()  # optimizer slots, step counters
    unused_heads: tuple = ()  # mapped variables of heads this model did not build
    unexpected: tuple = ()  # no row of the name map explains them

    def __str__(self):
        lines = [f"loaded {len(self.assigned)} variables from {self.path} ({self.format} format)"]
        for a in self.assigned:
            note = f"  ({a.transform})" if a.transform else ""
            lines.append(f"  {a.name} -> {a.slot} {list(a.shape)}{note}")
        for title, names in (
            ("initialised (not in the checkpoint)", self.initialized),
            ("unused: optimizer state and counters", self.unused_expected),
            ("unused: heads not built", self.unused_heads),
            ("UNEXPECTED (not in the name map)", self.unexpected),
        ):
            if names:
                lines.append(f"{title}: {len(names)}")
                if names is not self.unused_expected:  # Adam slots: the count is enough
                    lines.extend(f"  {n}" for n in names)
        return "\n".join(lines)


@dataclasses.dataclass
class Checkpoint:
    """An opened checkpoint: its reader, its config and its vocab file."""

    reader: object
    config: BertConfig
    vocab_file: str = None
    head: str = None  # the head its config names (Hugging Face's `architectures`), if any


def open_checkpoint(path, config=None):
    """Open a preset name, a checkpoint directory or a checkpoint prefix.

    The config is compared with the checkpoint's index (names and shapes,
    no tensor read) and the vocabulary's length with `vocab_size` before
    anything is built, so a config that claims more than the checkpoint
    holds is refused at once instead of allocating what it claims.
    """
    checkpoint = _open(path, config)
    check_config_against_index(checkpoint)
    _check_vocab_size(checkpoint)
    return checkpoint


def _located(path):
    """`path` with a preset name replaced by its installed folder and a kbert
    run directory by its exported checkpoint."""
    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(f"a checkpoint is a preset name or a path, not {path!r}")
    if presets.is_preset(path) and not os.path.exists(path):
        path = presets.preset_path(path)
    path = os.fspath(path)
    exported = os.path.join(path, "checkpoint")
    if os.path.isfile(os.path.join(path, "run.json")) and os.path.isfile(os.path.join(exported, "bert_config.json")):
        path = exported  # a kbert run directory (finetune, pretrain): its original-format export
    return path


def checkpoint_directory(path):
    """The directory whose files `load_checkpoint(path)` reads (a preset's
    installed folder, a run's exported checkpoint, a directory, a prefix's
    directory), read nothing: what a command's `--output` must not overlap."""
    path = _located(path)
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def _open(path, config):
    path = _located(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "bert_config.json")) or (
            config is not None and _find_prefix(path, required=False)
        ):
            return _open_original(_find_prefix(path), config, path)
        if os.path.isfile(os.path.join(path, "config.json")):
            return _open_hf(path, config)
        if os.path.isfile(os.path.join(path, "pytorch_model.bin")):
            raise CheckpointError(
                f"{path}: only pytorch_model.bin found; kbert never unpickles a "
                "downloaded file. Convert it to model.safetensors first."
            )
        raise CheckpointError(
            f"{path}: neither an original checkpoint (bert_config.json + "
            "bert_model.ckpt.*) nor a Hugging Face one (config.json + model.safetensors)"
        )
    prefix = path[: -len(".index")] if path.endswith(".index") else path
    if not os.path.isfile(prefix + ".index"):
        raise CheckpointError(f"{path}: no checkpoint found ({prefix}.index does not exist)")
    return _open_original(prefix, config, os.path.dirname(prefix))


def _find_prefix(directory, required=True):
    standard = os.path.join(directory, "bert_model.ckpt")
    if os.path.isfile(standard + ".index"):
        return standard
    state = os.path.join(directory, "checkpoint")  # written by tf.train.Saver
    if os.path.isfile(state):
        try:
            with open(state, encoding="utf-8") as f:
                lines = f.readlines()
        except UnicodeDecodeError as e:
            raise CheckpointError(f"{state}: checkpoint state file is not UTF-8 text: {e}") from None
        except OSError as e:
            raise CheckpointError(f"{state}: cannot read checkpoint state file: {e}") from None
        for line in lines:
            if line.startswith("model_checkpoint_path:"):
                prefix = line.split(":", 1)[1].strip().strip('"')
                return prefix if os.path.isabs(prefix) else os.path.join(directory, prefix)
    indexes = sorted(f[: -len(".index")] for f in os.listdir(directory) if f.endswith(".index"))
    if len(indexes) == 1:
        return os.path.join(directory, indexes[0])
    if required:
        found = ", ".join(indexes) or "none"
        raise CheckpointError(
            f"{directory}: cannot tell which checkpoint to load (bert_model.ckpt.index "
            f"missing; checkpoints found: {found})"
        )
    return None


def _read_config(config, default_path):
    if isinstance(config, BertConfig):
        return config
    if isinstance(config, dict):
        return BertConfig.from_dict(config)
    if config is not None and not isinstance(config, (str, os.PathLike)):
        raise ConfigError(f"config must be a path, a dict or a BertConfig, not {config!r}")
    return BertConfig.from_json_file(config if config is not None else default_path)


def _vocab(directory):
    vocab = os.path.join(directory, "vocab.txt")
    return vocab if os.path.isfile(vocab) else None


def _open_original(prefix, config, directory):
    config = _read_config(config, os.path.join(directory, "bert_config.json"))
    return Checkpoint(OriginalCheckpoint(prefix), config, _vocab(directory))


def _open_hf(directory, config):
    source = os.path.join(directory, "config.json")
    values = read_json(source, error=ConfigError, what="config")
    if config is None:
        config = BertConfig.from_hf_dict(values, source)
    else:
        config = _read_config(config, None)
    architectures = values.get("architectures") if isinstance(values, dict) else None
    named = {name_map.HF_ARCHITECTURES[a] for a in architectures
             if isinstance(a, str) and a in name_map.HF_ARCHITECTURES} if isinstance(architectures, list) else set()
    if len(named) > 1:
        raise CheckpointError(f"{source}: `architectures` names several heads ({', '.join(sorted(named))})")
    if not (
        os.path.isfile(os.path.join(directory, "model.safetensors"))
        or os.path.isfile(os.path.join(directory, "model.safetensors.index.json"))
    ):
        if os.path.isfile(os.path.join(directory, "pytorch_model.bin")):
            raise CheckpointError(
                f"{directory}: only pytorch_model.bin found; kbert never unpickles a "
                "downloaded file. Convert it to model.safetensors first."
            )
        raise CheckpointError(f"{directory}: config.json found but no model.safetensors")
    return Checkpoint(SafetensorsCheckpoint(directory), config, _vocab(directory), next(iter(named), None))


def check_config_against_index(checkpoint):
    """Refuse a config that the checkpoint's index contradicts, before any
    model is built: every encoder layer the config counts must be there, and
    the tensors that carry the config's sizes (vocab_size, hidden_size,
    type_vocab_size, max_position_embeddings, intermediate_size) must have
    them.  Once these agree, the model is no bigger than the checkpoint, and
    `plan_assignments` checks every other shape on it."""
    reader, config = checkpoint.reader, checkpoint.config
    # Encoder layers are "bert/encoder/layer_{i}/..." or "encoder.layer.{i}....".
    before, after = next(r.name for r in reader.table if "{i}" in r.name).split("{i}")
    pattern = re.compile("^" + re.escape(before) + r"(\d+)" + re.escape(after[:1]))
    present = {int(m.group(1)) for m in map(pattern.match, reader.shapes) if m}
    wanted = config.num_hidden_layers
    missing = [i for i in range(wanted) if i not in present]
    if missing:
        shown = f"{before}{missing[0]}" + (f" .. {before}{missing[-1]}" if len(missing) > 1 else "")
        raise CheckpointError(
            f"{reader.path}: the config says num_hidden_layers={wanted}, but the checkpoint "
            f"holds {len(present)} encoder layers; {len(missing)} missing: {shown}"
        )
    hidden = config.hidden_size
    needs = {
        "Embedding-Token/embeddings": (config.vocab_size, hidden),
        "Embedding-Position/embeddings": (config.max_position_embeddings, hidden),
        "Embedding-Segment/embeddings": (config.type_vocab_size, hidden),
        "Encoder-1-FeedForward/intermediate/kernel": (hidden, config.intermediate_size),
    }
    rows = {r.slot: r for t in reader.table for r in t.expand(1)}
    for slot, expected in needs.items():
        _check_shape(reader, rows[slot], expected)


def _check_shape(reader, row, expected):
    """One checkpoint variable against the Keras shape its slot needs."""
    if row.name not in reader.shapes:
        heads = any(row.layer in group for group in name_map.PRETRAINING_HEADS)
        raise CheckpointError(
            f"{reader.path}: variable {row.name!r} (for {row.slot}, shape {list(expected)}) "
            "is missing from the checkpoint"
            + ("; fresh_heads=True starts the pre-training heads it lacks from scratch" if heads else "")
        )
    stored = tuple(reader.shapes[row.name])
    want = tuple(expected)[::-1] if row.transform == name_map.TRANSPOSE else tuple(expected)
    if stored != want:
        raise CheckpointError(
            f"{reader.path}: variable {row.name!r} has shape {list(stored)} but "
            f"{row.slot} needs {list(want)} (from the config)"
        )


def _check_vocab_size(checkpoint):
    """A vocab.txt with more lines than `vocab_size` gives ids the embedding
    table lacks.  Google's code never compares the two (tf.gather fails on an
    out-of-range id on CPU and returns zeros on GPU/TPU, and only when such a
    token occurs); kbert refuses at load.  Fewer lines is legal: tables are
    sometimes padded (to a multiple of 8, or as in the shared fixture) with
    rows no token reaches."""
    if checkpoint.vocab_file is None:
        return
    lines = len(load_vocab_tokens(checkpoint.vocab_file))  # ids are line numbers
    if lines > checkpoint.config.vocab_size:
        raise CheckpointError(
            f"{checkpoint.vocab_file}: {lines} lines (token ids 0..{lines - 1}) but the "
            f"config's vocab_size is {checkpoint.config.vocab_size}: ids from "
            f"{checkpoint.config.vocab_size} on would have no embedding row"
        )


_ARCHITECTURE_OF = {head: architecture for architecture, head in name_map.HF_ARCHITECTURES.items()}
_HEAD_WORDS = {name_map.CLASSIFIER_LAYER: "classifier", name_map.TOKEN_CLASSIFIER_LAYER: "token classifier",
               name_map.SPAN_LAYER: "span"}


def _classifier_rows(reader, layer=name_map.CLASSIFIER_LAYER):
    """{row name: checkpoint name} of a head's layer (`name_map.HEAD_LAYERS`),
    resolving run_classifier's scopes; {} when the checkpoint has no such head.

    A head is all there or not at all: one of its two tensors alone, or
    tensors of the wrong rank (a span head of other than 2 outputs), is a
    `CheckpointError`.
    """
    rows = [r for r in reader.table if r.layer == layer]
    if not rows:
        return {}
    scopes = name_map.CLASSIFIER_SCOPES if reader.format == "original" and layer != name_map.SPAN_LAYER else ("",)
    what = _HEAD_WORDS[layer]
    found = {}
    for scope in scopes:
        present = [r for r in rows if scope + r.name in reader.shapes]
        if present and len(present) < len(rows):
            have = ", ".join(
                f"{scope + r.name!r} {list(reader.shapes[scope + r.name])}" for r in present
            )
            lacking = ", ".join(repr(scope + r.name) for r in rows if r not in present)
            raise CheckpointError(
                f"{reader.path}: half a {what} head: {have} is there but {lacking} "
                "is missing"
            )
        if present:
            found[scope] = {r.name: scope + r.name for r in rows}
    if len(found) > 1:
        raise CheckpointError(
            f"{reader.path}: {what} head found under several scopes "
            f"({', '.join(repr(s) for s in found)}); cannot tell which to load"
        )
    if not found:
        return {}
    names = next(iter(found.values()))
    kernel = next(r for r in rows if r.weight == "kernel")
    bias = next(r for r in rows if r.weight == "bias")
    kernel_shape, bias_shape = reader.shapes[names[kernel.name]], reader.shapes[names[bias.name]]
    labels_axis = 0 if kernel.transform == name_map.TRANSPOSE else -1
    labels = "2" if layer == name_map.SPAN_LAYER else "num_labels"
    if (len(bias_shape) != 1 or len(kernel_shape) != 2 or kernel_shape[labels_axis] != bias_shape[0]
            or layer == name_map.SPAN_LAYER and bias_shape[0] != 2):
        layout = f"[{labels}, hidden_size]" if labels_axis == 0 else f"[hidden_size, {labels}]"
        raise CheckpointError(
            f"{reader.path}: {what} head {names[kernel.name]!r} has shape "
            f"{list(kernel_shape)} and {names[bias.name]!r} has shape {list(bias_shape)}; "
            f"expected {layout} and [{labels}]"
        )
    return names


def checkpoint_heads(checkpoint):
    """What the checkpoint holds beyond the encoder: MLM/NSP, pooler, classifier size."""
    reader = checkpoint.reader
    names = {r.slot: r.name for r in reader.table if "{" not in r.name}
    has = lambda layer: any(  # noqa: E731
        slot.startswith(layer + "/") and name in reader.shapes for slot, name in names.items()
    )
    classifier = _classifier_rows(reader)
    num_labels = None
    if classifier:
        bias = next(name for row, name in classifier.items() if "bias" in row)
        num_labels = reader.shapes[bias][0]
    return {
        "training": has("MLM-Sim") and has("NSP"),
        "pooler": has("NSP-Dense"),
        "num_labels": num_labels,  # of a sequence or token classifier: the same tensors
        # Seen, not checked: a span head is checked when a model builds it.
        "span": any(r.name in reader.shapes for r in reader.table if r.layer == name_map.SPAN_LAYER),
        # What the checkpoint's config says its head is (Hugging Face's `architectures`), or None.
        "head": checkpoint.head,
    }


def default_heads(checkpoint):
    """The `BertModel` head options that carry every head the checkpoint
    holds, as `kbert names` and `kbert convert` build them: the pre-training
    heads (MLM + NSP, pooler included) when both are there, else the
    classifier (pooler included), else the pooler alone."""
    heads = checkpoint_heads(checkpoint)
    if not heads["training"] and heads["span"] and (heads["head"] == "span" or not heads["num_labels"]):
        return {"training": False, "num_labels": None, "with_pooler": False, "head": "span"}
    return {
        "training": heads["training"],
        "num_labels": None if heads["training"] else heads["num_labels"],
        "with_pooler": heads["pooler"] and not heads["training"] and not heads["num_labels"],
        "head": "token" if heads["head"] == "token" and heads["num_labels"] and not heads["training"] else "sequence",
    }


def _fresh_layers(reader, rows, fresh_heads):
    """The layers that may keep their initial values when the checkpoint
    lacks them (see `name_map.FRESH_LAYERS`); with `fresh_heads`, the
    pre-training heads too, each group wholly missing or wholly there."""
    fresh = set(name_map.FRESH_LAYERS)
    if not fresh_heads:
        return fresh
    for group in name_map.PRETRAINING_HEADS:
        members = [r for r in rows if r.layer in group]
        present = [r.name for r in members if r.name in reader.shapes]
        if present and len(present) < len(members):
            lacking = [r.name for r in members if r.name not in reader.shapes]
            raise CheckpointError(
                f"{reader.path}: half a {'/'.join(group)} head: {', '.join(present)} is there but "
                f"{', '.join(lacking)} is missing"
            )
        if not present:
            fresh.update(group)
    return fresh


def plan_assignments(model, checkpoint, fresh_heads=False):
    """Match model variables with checkpoint variables; check every shape.

    Returns the `LoadReport` (without reading any tensor).
    """
    reader = checkpoint.reader
    slots = {v.path: v for v in model.weights}
    # The classifier's tensors are checked on every load (a sequence and a
    # token classifier share them); a span head's only when the model has one.
    built = {v.path.split("/", 1)[0] for v in model.weights}
    heads = {layer: _classifier_rows(reader, layer) if layer != name_map.SPAN_LAYER or layer in built
             else {r.name: r.name for r in reader.table if r.layer == layer}
             for layer in name_map.HEAD_LAYERS.values()}
    rows = name_map.expand(reader.table, checkpoint.config.num_hidden_layers)
    fresh = _fresh_layers(reader, rows, fresh_heads)
    assigned, initialized, heads_not_built = [], [], []
    for row in rows:
        name = heads[row.layer].get(row.name) if row.layer in heads else row.name
        if row.slot not in slots:
            if name is not None and name in reader.shapes:
                heads_not_built.append(name)
            continue
        variable = slots.pop(row.slot)
        expected = tuple(variable.shape)
        if row.layer in fresh and (name is None or name not in reader.shapes):
            initialized.append(row.slot)
            continue
        _check_shape(reader, dataclasses.replace(row, name=name), expected)
        dtype = reader.dtypes[name]
        if dtype not in FLOAT_DTYPES:
            raise CheckpointError(
                f"{reader.path}: variable {name!r} has dtype {dtype}; kbert loads weights "
                f"of {', '.join(FLOAT_DTYPES)} only"
            )
        assigned.append(Assignment(name, row.slot, expected, row.transform))
    if slots:
        # A model weight with no row in the table is a bug in kbert, not bad input.
        raise CheckpointError(f"no name-map row for model variables: {', '.join(sorted(slots))}")
    # A sequence and a token classifier read the same tensors: one built is
    # the other's "not built", which it is not.
    heads_not_built = sorted(set(heads_not_built) - {a.name for a in assigned})
    used = {a.name for a in assigned} | set(heads_not_built)
    expected_re = name_map.EXPECTED_UNUSED[reader.format]
    leftovers = sorted(n for n in reader.shapes if n not in used)
    return LoadReport(
        path=reader.path,
        format=reader.format,
        assigned=tuple(assigned),
        initialized=tuple(initialized),
        unused_expected=tuple(n for n in leftovers if expected_re.search(n)),
        unused_heads=tuple(heads_not_built),
        unexpected=tuple(n for n in leftovers if not expected_re.search(n)),
    )


def assign_weights(model, checkpoint, fresh_heads=False):
    """Read each planned tensor once and assign it; returns the `LoadReport`."""
    report = plan_assignments(model, checkpoint, fresh_heads)
    slots = {v.path: v for v in model.weights}
    for a in report.assigned:
        value = name_map.apply_transform(checkpoint.reader.read(a.name), a.transform)
        if value.shape != a.shape:  # the index and the data disagree: corrupt file
            raise CheckpointError(
                f"{checkpoint.reader.path}: variable {a.name!r} read with shape "
                f"{list(value.shape)}, index says {list(a.shape)}"
            )
        slots[a.slot].assign(_cast(value, slots[a.slot].dtype, a.name, checkpoint.reader.path))
    if report.unexpected:
        warnings.warn(
            f"{report.path}: {len(report.unexpected)} variable(s) not in the name map were "
            f"left unused: {', '.join(report.unexpected[:5])}"
            + (" ..." if len(report.unexpected) > 5 else ""),
            CheckpointWarning,
            stacklevel=3,
        )
    logger.info("%s", report)
    return report


def _cast(value, dtype, name, path):
    """A float tensor as the variable's dtype (float32 unless a policy says
    otherwise): float16 and bfloat16 widen exactly, float64 rounds to the
    nearest float32.  Anything else, or a value that is not finite once cast
    (NaN, inf, or a float64 beyond float32's range), is refused."""
    if value.dtype.name not in FLOAT_DTYPES:
        raise CheckpointError(
            f"{path}: variable {name!r} read with dtype {value.dtype.name}; kbert loads "
            f"weights of {', '.join(FLOAT_DTYPES)} only"
        )
    with np.errstate(over="ignore"):  # an overflow is refused just below
        cast = value.astype(dtype)
    if not np.isfinite(cast).all():
        raise CheckpointError(
            f"{path}: variable {name!r} ({value.dtype.name}) holds values that are not finite "
            f"as {dtype} (NaN, inf, or beyond its range)"
        )
    return cast


def load_checkpoint(
    path,
    *,
    config=None,
    training=False,
    trainable=None,
    seq_len=None,
    output_layer_num=1,
    num_labels=None,
    with_pooler=False,
    task_num=None,
    fresh_heads=False,
    dtype=None,
    head=None,
):
    """Build a `BertModel` from a checkpoint and assign all its weights.

    Args:
        path: a preset name (`"minilm-l6"`), a directory holding
            `bert_config.json` + `bert_model.ckpt.*` (or HF `config.json` +
            `model.safetensors`), a checkpoint prefix, or a kbert run
            directory (`kbert finetune`, `kbert pretrain`): its checkpoint/.
        config: the `bert_config.json` to use (path, dict or `BertConfig`);
            needed when `path` is a prefix in a directory without one.
        training, trainable, seq_len, output_layer_num, num_labels,
        with_pooler, task_num: see `BertModel`.
        fresh_heads: let the pre-training heads (MLM, NSP, pooler) that
            the checkpoint lacks entirely start from their initializers, to
            continue pre-training a checkpoint saved without them (a
            sentence encoder such as the `minilm-l6` preset).  The report
            lists them under `initialized`.
        dtype: the model's Keras dtype policy (see `BertModel`), e.g.
            "mixed_bfloat16" or "mixed_float16": the checkpoint's float32
            weights go into float32 variables and the model computes in
            the low precision; "bfloat16" stores them in bfloat16 too.
        head: the classifier to build (see `BertModel`): "sequence" (with
            `num_labels`), "token" (`num_labels` defaults to the
            checkpoint's) or "span".  None: the classifier the checkpoint's
            config names (Hugging Face's `architectures`: sequence or
            token) when `num_labels` asks for one, else "sequence";
            without `num_labels`, no head.  A sequence and a token
            classifier are stored under the same names, so only the config
            tells them apart: asking for the one it does not name is a
            `CheckpointError` naming both (an original checkpoint has no
            such field: there `head` decides).  A span head has names of
            its own; another head asked for beside it starts fresh.

    Returns the model; `model.load_report` says what went where and
    `model.vocab_file` is the checkpoint's `vocab.txt` (or None).
    """
    checkpoint = open_checkpoint(path, config)
    stored = checkpoint_heads(checkpoint)
    classifiers = ("sequence", "token")  # stored under the same names
    if head is None:
        head = stored["head"] if num_labels is not None and stored["head"] in classifiers else "sequence"
    elif head not in name_map.HEAD_LAYERS:
        raise ConfigError(f"head must be one of {', '.join(name_map.HEAD_LAYERS)}, got {head!r}")
    asked = head != "sequence" or num_labels is not None
    # Only the config tells a sequence from a token classifier; a span head
    # has names of its own, so another head starts fresh beside it.
    if (asked and stored["num_labels"] is not None and {head, stored["head"]} == set(classifiers)):
        raise CheckpointError(
            f"{checkpoint.reader.path}: the checkpoint's config names a {stored['head']} head "
            f"({_ARCHITECTURE_OF[stored['head']]}), but head={head!r} was asked"
        )
    if head == "token" and num_labels is None:
        num_labels = stored["num_labels"]
        if num_labels is None:
            raise ConfigError(f"{checkpoint.reader.path}: head='token' needs num_labels: the checkpoint has no "
                              "token classifier to take it from")
    if num_labels is not None:
        if stored["num_labels"] is not None and stored["num_labels"] != num_labels:
            raise CheckpointError(
                f"{checkpoint.reader.path}: num_labels={num_labels} but the checkpoint's "
                f"classifier has {stored['num_labels']} labels"
            )
    model = BertModel(
        checkpoint.config,
        training=training,
        trainable=trainable,
        seq_len=seq_len,
        output_layer_num=output_layer_num,
        num_labels=num_labels,
        with_pooler=with_pooler,
        task_num=task_num,
        dtype=dtype,
        head=head,
    )
    model.load_report = assign_weights(model, checkpoint, fresh_heads)
    model.vocab_file = checkpoint.vocab_file
    return model


def checkpoint_mapping(path, *, config=None, **model_options):
    """The original name -> Keras variable path mapping (with shapes), like the
    original's logged `assignment_map`.  Builds the heads the checkpoint has
    unless `model_options` say otherwise; reads no tensor."""
    checkpoint = open_checkpoint(path, config)
    options = default_heads(checkpoint)
    options.update(model_options)
    model = BertModel(checkpoint.config, **options)
    return plan_assignments(model, checkpoint)
