"""Length-bucketed batches: the main speed lever on CPU.

GLUE sentences are short (SST-2 averages ~13 word pieces) while features are
padded to `max_seq_len` (128): trimming each batch to its own longest row,
rounded up to a multiple of 8 so that jit-compiling backends see few distinct
shapes, removes most of the wasted work.
"""

import keras
import numpy as np

WIDTH_MULTIPLE = 8


def bucket_width(longest, width_limit, multiple=WIDTH_MULTIPLE):
    return min(-(-max(int(longest), 1) // multiple) * multiple, width_limit)


def length_buckets(lengths, batch_size, width_limit, multiple=WIDTH_MULTIPLE):
    """Yield (row indices, width): batches of similar length, shortest first."""
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, bucket_width(lengths[rows].max(), width_limit, multiple)


def predict_bucketed(model, arrays, lengths, *, batch_size=64, progress=None):
    """`model` outputs for rows of `arrays` ([N, T] each), in the rows' order.

    `progress`: a tqdm bar to advance by rows (or None).
    """
    n = len(lengths)
    out = None
    for rows, width in length_buckets(lengths, batch_size, arrays[0].shape[1]):
        batch = model.predict_on_batch([a[rows, :width] for a in arrays])
        batch = np.asarray(keras.ops.convert_to_numpy(batch), dtype=np.float32)
        if out is None:
            out = np.zeros((n,) + batch.shape[1:], dtype=np.float32)
        out[rows] = batch
        if progress is not None:
            progress.update(len(rows))
    return out


class BucketedBatches(keras.utils.PyDataset):
    """Training batches: shuffled each epoch (seeded by seed and epoch),
    grouped by length within windows of `window` batches, trimmed, and
    always full: the last batch is topped up with rows of weight 0, so that
    data-parallel devices split every batch evenly and the loss is unchanged.

    Yields `((token_ids, segment_ids), labels, sample_weight)`.
    """

    def __init__(self, token_ids, segment_ids, lengths, labels, *, batch_size, seed, window=50):
        super().__init__()
        self.token_ids, self.segment_ids = token_ids, segment_ids
        self.lengths, self.labels = np.asarray(lengths), labels
        self.batch_size, self.seed, self.window = batch_size, seed, window
        self.set_epoch(0)

    def set_epoch(self, epoch):
        """Fix the batch order of `epoch`; resuming at epoch e replays it exactly."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        pad = -len(order) % self.batch_size
        weights = np.ones(len(order) + pad, np.float32)
        if pad:
            order = np.concatenate([order, order[:pad]])
            weights[-pad:] = 0.0
        span = self.batch_size * self.window
        batches = []
        for start in range(0, len(order), span):
            chunk = np.arange(start, min(start + span, len(order)))
            chunk = chunk[np.argsort(self.lengths[order[chunk]], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        rng.shuffle(batches)
        self._batches = [(order[b], weights[b]) for b in batches]

    def __len__(self):
        return len(self._batches)

    def __getitem__(self, index):
        rows, weights = self._batches[index]
        width = bucket_width(self.lengths[rows].max(), self.token_ids.shape[1])
        x = (self.token_ids[rows, :width], self.segment_ids[rows, :width])
        return x, self.labels[rows], weights


class EpochOrder(keras.callbacks.Callback):
    """Tell a `BucketedBatches` which epoch is starting (also after a resume)."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
