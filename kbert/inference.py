"""Inference over many rows: length-sorted batches, or packed rows where
packing pays (the same logits from fewer padded slots).

Above the model and the batching: `predict_bucketed` is what materials,
evaluation, prediction and distillation call; a `BertModel` classifier's
rows go through its packed view (`kbert.views.packed_classifier`), any
other model's through length-sorted batches.
"""

import time
import weakref

import keras
import numpy as np

from kbert.batching import bucket_width, check_rows, id_lengths, length_buckets, padded_inside
from kbert.checks import is_int
from kbert.errors import ConfigError
from kbert.model import BertModel
from kbert.packing import layout, packed_plan
from kbert.views import packed_classifier

# The packed view of each model `predict_packed` has read (it shares the
# model's layers and holds no reference to the model itself), so that
# repeated calls reuse one view and its compiled predict function.
_VIEWS = weakref.WeakKeyDictionary()


# Packing pays when it computes at most this fraction of the token slots of
# length-sorted batches: a packed slot costs a little more (rows as long as
# the longest example, where most sorted batches are shorter).  Measured
# (benchmarks/results/teacher-passes.md, MiniLM): MRPC at 0.96 of the slots
# ran no faster packed; SST-2 at 0.87 and less, 1.03x to 1.23x faster.
PACKING_PAYS = 0.9


def predict_bucketed(model, arrays, lengths=None, *, batch_size=64, progress=None, packing=True):
    """`model` outputs for rows of `arrays` ([N, T] each), in the rows' order.

    `lengths` default to `id_lengths(arrays[0])`; `progress`: a tqdm
    bar to advance by rows (or None).  A `BertModel` classifier reads the
    rows packed (`kbert.packing`: the same logits from fewer padded slots,
    one compiled shape per pass) where that computes at most 0.9 of the
    slots of length-sorted batches, unless `packing` is False; otherwise,
    and for any other model, length-sorted batches of `batch_size` rows.
    """
    if not is_int(batch_size, 1):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if getattr(model, "head", "sequence") != "sequence":
        # Its outputs are per position, as wide as each batch: no one array of rows.
        raise ConfigError(f"predict_bucketed gives a row of outputs an input; a {model.head} head's are per "
                          "position: call the model on batches of one width")
    arrays = [np.asarray(a) for a in arrays]
    if lengths is None and arrays and arrays[0].ndim == 2:
        lengths = id_lengths(arrays[0])
    lengths = check_rows(arrays, lengths)
    if packing:
        # Packed rows hold each row's real tokens, as the token ids say: a
        # longer `lengths` would pack padding as tokens (the padding mask
        # drops them unpacked), and a [PAD] inside a row can only be read
        # unpacked.
        real = id_lengths(arrays[0])
        plan = None if len(padded_inside(arrays[0], real)) else inference_plan(model, arrays, real, batch_size)
        if plan is not None:
            return predict_packed(model, arrays, real, plan, progress=progress)
    # A model that checks its inputs (BertModel) sees every batch as NumPy
    # through predict_on_batch: ids and widths are checked there, batch by batch.
    n = len(lengths)
    out = None
    for rows, width in length_buckets(lengths, batch_size, arrays[0].shape[1]):
        inputs = [a[rows, :width] for a in arrays]
        # A one-input model (the CNN student) takes the array itself, not a list.
        batch = model.predict_on_batch(inputs if len(inputs) > 1 else inputs[0])
        batch = np.asarray(keras.ops.convert_to_numpy(batch), dtype=np.float32)
        if out is None:
            out = np.zeros((n,) + batch.shape[1:], dtype=np.float32)
        out[rows] = batch
        if progress is not None:
            progress.update(len(rows))
    return out


def predict_positions(model, arrays, lengths=None, *, batch_size=64, progress=None):
    """A token or span model's outputs at every position of the rows of
    `arrays` ([N, T] each), in the rows' order: one float32 array per
    output, [N, T, ...] (a token head's logits [N, T, K]; a span head's
    start and end logits [N, T] each), zero beyond each row's length.

    Rows go in length-sorted batches of `batch_size`, each trimmed to its
    bucket's width; `progress` is a tqdm bar advanced by rows (or None).
    """
    if not is_int(batch_size, 1):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if getattr(model, "head", None) not in ("token", "span"):
        raise ConfigError("predict_positions reads a token or span head's outputs; a classifier's rows go "
                          "through predict_bucketed")
    arrays = [np.asarray(a) for a in arrays]
    if lengths is None and arrays and arrays[0].ndim == 2:
        lengths = id_lengths(arrays[0])
    lengths = check_rows(arrays, lengths)
    n, width_limit = arrays[0].shape
    outs = None
    for rows, width in length_buckets(lengths, batch_size, width_limit):
        batch = model.predict_on_batch([a[rows, :width] for a in arrays])
        batch = batch if isinstance(batch, (list, tuple)) else [batch]
        batch = [np.asarray(keras.ops.convert_to_numpy(b), dtype=np.float32) for b in batch]
        if outs is None:
            outs = [np.zeros((n, width_limit) + b.shape[2:], np.float32) for b in batch]
        for out, b in zip(outs, batch):
            out[rows, :width] = b
        if progress is not None:
            progress.update(len(rows))
    return outs or []


def time_bucketed(model, arrays, lengths=None, *, batch_size=32, repeats=2):
    """(outputs, seconds): `predict_bucketed` once to warm up (compilation
    excluded; its outputs are returned), then the best of `repeats` timed passes."""
    outputs = predict_bucketed(model, arrays, lengths, batch_size=batch_size)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_bucketed(model, arrays, lengths, batch_size=batch_size)
        times.append(time.perf_counter() - started)
    return outputs, min(times)


def latency_one_by_one(model, arrays, lengths=None, *, count=200):
    """Median seconds to classify one row alone (batch 1, the row trimmed
    to its width bucket), over the first `count` rows of `arrays`, after a
    warm-up pass over the same rows (a jit-compiling backend compiles each
    width once, outside the timing)."""
    arrays = [np.asarray(a)[:count] for a in arrays]
    if lengths is None:
        lengths = id_lengths(arrays[0])
    lengths = check_rows(arrays, np.asarray(lengths)[:count])
    if not len(lengths):
        raise ConfigError("latency_one_by_one needs at least one row")
    rows = [[a[i : i + 1, : bucket_width(lengths[i], a.shape[1])] for a in arrays] for i in range(len(lengths))]

    def one(inputs):
        # A one-input model (the CNN student) takes the array itself, not a list.
        keras.ops.convert_to_numpy(model.predict_on_batch(inputs if len(inputs) > 1 else inputs[0]))

    for inputs in rows:
        one(inputs)
    times = []
    for inputs in rows:
        started = time.perf_counter()
        one(inputs)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def inference_plan(model, arrays, lengths, batch_size):
    """`packed_plan`'s calls for these rows, or None where packing does not
    apply (`model` must be a `BertModel` classifier with no task ids and no
    fixed seq_len, over (token ids, segment ids), and every row must hold a
    `[CLS]`) or does not pay (`PACKING_PAYS`)."""
    if not (isinstance(model, BertModel) and model.num_labels is not None and model.head == "sequence"
            and model.task_num is None
            and model.seq_len is None and len(arrays) == 2 and len(lengths) and lengths.min() >= 1):
        return None
    width = arrays[0].shape[1]
    pack_len, plan = packed_plan(lengths, width, batch_size)
    sorted_slots = sum(len(batch) * w for batch, w in length_buckets(lengths, batch_size, width))
    return plan if len(plan) * len(plan[0]) * pack_len <= PACKING_PAYS * sorted_slots else None


def predict_packed(model, arrays, lengths, plan, *, progress=None):
    """Logits [N, labels] of a `BertModel` classifier for rows of `arrays`
    (token ids, segment ids [N, T]; `lengths` [N]), in the rows' order, read
    through `plan` (`inference_plan`'s calls): every call the same shape
    (its rows and its [CLS] count padded to the pass's largest), so a
    jit-compiling backend compiles once per pass.  Equal to the unpacked
    model's logits (tests/test_packing.py).
    """
    pack_len = bucket_width(lengths.max(), arrays[0].shape[1])
    # The unpacked rows are checked as BertModel checks its inputs: ids and widths.
    model.input_limits.check([a[:, :pack_len] for a in arrays])
    view = _VIEWS.get(model)
    if view is None:
        view = _VIEWS[model] = packed_classifier(model)
    rows_per_call = len(plan[0])
    examples_per_call = max(sum(len(members) for members in call) for call in plan)
    out = np.zeros((len(lengths), model.num_labels), np.float32)
    for call in plan:
        members = [i for row in call for i in row]
        cls, *packed = layout(arrays, lengths, call + [[]] * (rows_per_call - len(call)), pack_len)
        cls = np.pad(cls, (0, examples_per_call - len(cls)))  # extra [CLS] reads of slot 0, dropped
        logits = view.predict_on_batch([cls, *packed])
        out[members] = np.asarray(keras.ops.convert_to_numpy(logits), np.float32)[: len(members)]
        if progress is not None:
            progress.update(len(members))
    return out
