"""Length-bucketed batches: the main speed lever on CPU.

GLUE sentences are short (SST-2 averages ~13 word pieces) while features are
padded to `max_seq_len` (128): trimming each batch to its own longest row,
rounded up to a multiple of 8 so that jit-compiling backends see few distinct
shapes, removes most of the wasted work.
"""


import keras
import numpy as np

from kbert.checks import is_int
from kbert.errors import ConfigError, DataError

WIDTH_MULTIPLE = 8
# Training batches are sorted by length within windows of this many batches
# (`BucketedBatches`); a window of 1 gives plain random batches.
BUCKET_WINDOW = 50


def bucket_width(longest, width_limit, multiple=WIDTH_MULTIPLE):
    return min(-(-max(int(longest), 1) // multiple) * multiple, width_limit)


def length_buckets(lengths, batch_size, width_limit, multiple=WIDTH_MULTIPLE):
    """Yield (row indices, width): batches of similar length, shortest first."""
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, bucket_width(lengths[rows].max(), width_limit, multiple)


def id_lengths(token_ids):
    """Each row's extent [N]: one past its last non-zero id (0 = `[PAD]`)."""
    token_ids = np.asarray(token_ids)
    nonzero = token_ids != 0
    return np.where(nonzero.any(axis=1), token_ids.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)


def padded_inside(token_ids, lengths):
    """Rows whose first `lengths` ids hold a 0 (`[PAD]`): a padding mask
    drops it, so only unpacked batches read such rows as the model does."""
    token_ids = np.asarray(token_ids)
    inside = (token_ids == 0) & (np.arange(token_ids.shape[1])[None, :] < np.asarray(lengths)[:, None])
    return np.flatnonzero(inside.any(axis=1))


def check_rows(arrays, lengths, targets=None):
    """`lengths` as an array, once `arrays` ([N, T] each, token ids first),
    `lengths` ([N], 0..T, each at least its row's `id_lengths`: a shorter
    one would cut real tokens off) and `targets` (N rows) are found to line
    up; else a `DataError`."""
    if not arrays:
        raise DataError("no input arrays given")
    for k, a in enumerate(arrays):
        if a.ndim != 2 or a.dtype.kind not in "iuf":
            raise DataError(f"input array {k} must be ids [rows, length], got shape {list(a.shape)} "
                            f"of {a.dtype}")
        # Each input is [rows, length] as the token ids are, or [rows, 1]
        # (keras-bert's task ids: one per row).
        if a.shape[0] != arrays[0].shape[0]:
            raise DataError(f"input array {k} has {a.shape[0]} rows but input array 0 (the token ids) "
                            f"has {arrays[0].shape[0]}")
        if a.shape[1] not in (arrays[0].shape[1], 1):
            raise DataError(f"input array {k} has shape {list(a.shape)} but input array 0 (the token ids) "
                            f"has {list(arrays[0].shape)}: each input is [rows, length] or [rows, 1]")
    lengths = np.asarray(lengths)
    n, width = arrays[0].shape
    if lengths.shape != (n,):
        raise DataError(f"lengths has shape {list(lengths.shape)}, the input arrays {n} rows")
    if n:
        numeric = lengths.dtype.kind in "iuf"
        bad = ~((lengths >= 0) & (lengths <= width) & (lengths == np.floor(lengths))) if numeric else None
        if not numeric or bad.any():
            value = lengths[bad][0] if numeric else lengths.flat[0]
            raise DataError(f"lengths must be integers in 0..{width}, got {value!r}")
        short = np.flatnonzero(lengths < id_lengths(arrays[0]))
        if len(short):
            row = int(short[0])
            raise DataError(f"lengths: row {row} has length {lengths[row]}, but its token ids run to "
                            f"position {int(id_lengths(arrays[0][row:row + 1])[0])}")
    if targets is not None and len(targets) != n:
        raise DataError(f"targets have {len(targets)} rows but the input arrays {n}")
    return lengths


class BucketedBatches(keras.utils.PyDataset):
    """Training batches: shuffled each epoch (the order depends only on seed
    and epoch, so a resumed run replays it), grouped by length within
    windows of `window` batches, each trimmed to its longest row.

    `inputs` is one [N, T] array or a tuple of them (token ids first: their
    lengths are `lengths`).  With `fill=True` the last batch is topped up with
    rows of weight 0, so every batch is full (data-parallel devices split it
    evenly) and the loss is unchanged; batches are then
    `(inputs, targets, sample_weight)`, else `(inputs, targets)`.

    `process=(index, count)` gives one process of a multi-process job
    (`keras.distribution.initialize`) its share of each batch: every
    process draws the same batches, each as wide as its longest row, and
    keeps rows `[index * B / count, (index + 1) * B / count)`, as Keras'
    JAX trainer expects each process's local part of the global batch.

    `position_targets=IGNORED` says the targets are one per position
    ([N, T], a token classifier's): each batch's are trimmed with its
    inputs, and a fill row's set to IGNORED, so that a loss averaging over
    labelled positions leaves it out.  With per-position targets, or
    `weight_each_target=True` (a span head's [N, 2] start and end), the
    sample weights are shaped as each batch's targets.
    """

    def __init__(self, inputs, targets, lengths, *, batch_size, seed, epoch=0, fill=False,
                 window=BUCKET_WINDOW, process=(0, 1), position_targets=None, weight_each_target=False):
        super().__init__()
        self.inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        if targets is None or not hasattr(targets, "__len__"):
            raise DataError(f"targets: training batches need one target per row, got {type(targets).__name__}")
        self.targets = targets
        self.lengths = check_rows([np.asarray(a) for a in self.inputs], lengths, targets)
        if not len(self.lengths):
            raise DataError("no rows to batch: the input arrays are empty")
        if not is_int(batch_size, 1) or not is_int(window, 1):
            raise ConfigError(f"batch_size and window must be positive integers, got {batch_size!r}, {window!r}")
        index, count = process
        if not is_int(count, 1) or not is_int(index, 0) or index >= count or count > 1 and (
                not fill or batch_size % count):
            raise ConfigError(f"process {process!r}: needs 0 <= index < count, full batches (fill=True) and a "
                              f"batch_size ({batch_size}) that count divides")
        self.batch_size, self.seed, self.fill, self.window = batch_size, seed, fill, window
        if position_targets is not None and np.shape(targets)[1:] != self.inputs[0].shape[1:]:
            raise DataError(f"per-position targets must be [rows, length] as the token ids "
                            f"{list(self.inputs[0].shape)}, got {list(np.shape(targets))}")
        self.position_targets = position_targets
        self.weight_each_target = weight_each_target or position_targets is not None
        self.process = (index, count)
        self.set_epoch(epoch)

    def set_epoch(self, epoch):
        """Fix the batch order of `epoch`."""
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        weights = np.ones(len(order), np.float32)
        pad = -len(order) % self.batch_size if self.fill else 0
        if pad:
            order = np.concatenate([order, order[:pad]])
            weights = np.concatenate([weights, np.zeros(pad, np.float32)])
        span = self.batch_size * self.window
        batches = []
        for start in range(0, len(order), span):
            chunk = np.arange(start, min(start + span, len(order)))
            chunk = chunk[np.argsort(self.lengths[order[chunk]], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        batches = [batches[i] for i in rng.permutation(len(batches))]
        # Keras' TensorFlow trainer fixes the tf.data signature from the first
        # two batches: if their widths were equal, a wider batch later would
        # fail.  Bring a batch of another width to second place.
        widths = [self._width(order[b]) for b in batches]
        other = next((i for i, w in enumerate(widths) if w != widths[0]), None)
        if other is not None and len(batches) > 2:
            batches[1], batches[other] = batches[other], batches[1]
        self._batches = [(order[b], weights[b]) for b in batches]

    def _width(self, rows):
        return bucket_width(self.lengths[rows].max(), self.inputs[0].shape[1])

    # How a model reads these batches: "padded" [N, T] rows, or "packed"
    # rows (`kbert.packing.PackedBatches`).  A model's input boundary asks
    # this rather than the class, so the model needs no batch classes.
    batch_layout = "padded"

    def unpacked_rows(self):
        """Every row the batches are cut from, up to the widest batch's width:
        what a checking model reads once, before the first step."""
        width = self.widest
        return [a[:, :width] for a in self.inputs]

    @property
    def widest(self):
        """The width of the widest batch: what a model must accept.  (A
        model that checks its inputs, `BertModel`, checks all rows up to it
        once when `fit` starts, before the first step.)"""
        return bucket_width(self.lengths.max(), self.inputs[0].shape[1]) if len(self.lengths) else 0

    def __len__(self):
        return len(self._batches)

    def batch_rows(self):
        """The rows (indices into the inputs) of each batch of the epoch, in order."""
        return [rows for rows, _ in self._batches]

    def __getitem__(self, index):
        rows, weights = self._batches[index]
        width = self._width(rows)  # the whole batch's: every process's share is as wide
        process, count = self.process
        share = len(rows) // count
        rows, weights = rows[process * share:(process + 1) * share], weights[process * share:(process + 1) * share]
        x = tuple(a[rows, :width] for a in self.inputs)
        x = x if len(x) > 1 else x[0]
        y = self.targets[rows]
        if self.position_targets is not None:
            y = np.where(weights[:, None] > 0, y[:, :width], self.position_targets)
        if self.weight_each_target:
            # One weight a target: Keras weighs a [B, T] loss by [B, T] weights.
            weights = np.repeat(weights[:, None], y.shape[1], axis=1)
        return (x, y, weights) if self.fill else (x, y)

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)


class EpochOrder(keras.callbacks.Callback):
    """Tell a `BucketedBatches` which epoch is starting: after a
    BackupAndRestore resume, the epoch is only known once fit has begun."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
