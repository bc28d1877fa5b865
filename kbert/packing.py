"""Exact sequence packing: random batches without the padding.

A random batch of GLUE sentences is mostly padding once trimmed to its
longest row (SST-2, batches of 32: ~3.3 token slots per real token).
Packing lays the same examples end to end in as few rows of `pack_len`
slots as hold them (first-fit decreasing), and keeps the result exact
(Krell et al. 2021, "Efficient Sequence Packing without
Cross-contamination"):

- attention stays inside each example: a block-diagonal mask from
  per-token example ids (`Packing-Mask`);
- positions restart at 0 for each example (`Input-Position`), segment ids
  are kept;
- the head reads each example's own `[CLS]` (`Packing-Gather`), so logits,
  loss and metrics are per example, in the batch's order, exactly as
  unpacked.

Shape legend: N = examples in the batch, R = packed rows, L = `pack_len`,
D = hidden size.

The rows R of a batch vary with its lengths; L and N do not, so a
jit-compiling backend compiles once per distinct R (a handful: SST-2 with
batches of 32 in rows of 128 needs 3 to 6).
"""

import numpy as np

from kbert.batching import BucketedBatches, bucket_width, check_rows
from kbert.checks import is_int
from kbert.errors import ConfigError, DataError

# Input order of a packed model (`kbert.model.packed_classifier`).  The
# [CLS] indices come first: Keras weighs each batch's loss in the epoch's
# mean by the first input's batch size, which must be the N examples, not
# the R rows.
PACKED_INPUTS = ("Input-Cls", "Input-Token", "Input-Segment", "Input-Position", "Input-Example")


def first_fit_decreasing(lengths, pack_len):
    """Rows of example indices whose lengths sum to at most `pack_len` each:
    longest first, each into the first row with room."""
    lengths = np.asarray(lengths)
    rows, room = [], []
    for i in np.argsort(-lengths, kind="stable"):
        length = int(lengths[i])
        for r, free in enumerate(room):
            if length <= free:
                rows[r].append(int(i))
                room[r] -= length
                break
        else:
            rows.append([int(i)])
            room.append(pack_len - length)
    return rows


def pack(arrays, lengths, pack_len):
    """The packed inputs of one batch: `arrays` (token ids, segment ids),
    each [N, T], `lengths` [N] (each 1..pack_len).

    Returns (cls [N], token [R, L], segment [R, L], position [R, L],
    example [R, L]), in `PACKED_INPUTS` order: cls[i] is the flat index
    (row * L + offset) of example i's first token, and example ids count
    1, 2, ... within a row (0 = empty slot).
    """
    token_ids, segment_ids = arrays
    n = len(lengths)
    rows = first_fit_decreasing(lengths, pack_len)
    shape = (len(rows), pack_len)
    token, segment, position, example = (np.zeros(shape, np.int32) for _ in range(4))
    cls = np.zeros(n, np.int32)
    for r, members in enumerate(rows):
        offset = 0
        for k, i in enumerate(members, start=1):
            length = int(lengths[i])
            span = slice(offset, offset + length)
            token[r, span] = token_ids[i, :length]
            segment[r, span] = segment_ids[i, :length]
            position[r, span] = np.arange(length)
            example[r, span] = k
            cls[i] = r * pack_len + offset
            offset += length
    return cls, token, segment, position, example


def check_pack_len(pack_len, lengths):
    """Refuse a `pack_len` that is no positive integer or that some of
    `lengths` do not fit (an empty example has no `[CLS]` to read)."""
    if not is_int(pack_len, 1):
        raise ConfigError(f"pack_len must be a positive integer, got {pack_len!r}")
    lengths = np.asarray(lengths)
    if len(lengths) and (lengths.min() < 1 or lengths.max() > pack_len):
        bad = int(lengths.min() if lengths.min() < 1 else lengths.max())
        row = int(np.argmax(lengths == bad))
        raise DataError(f"row {row}: length {bad} does not fit packed rows of 1..{pack_len} tokens")


class PackedBatches(BucketedBatches):
    """`BucketedBatches` (the same examples in the same order for a given
    seed and epoch, so a packed run sees exactly the batches of an unpacked
    one), each packed into rows of `pack_len` slots.  (Only the row count
    varies, on the batch axis, which Keras' TensorFlow trainer always leaves
    open: the order's width swap is kept only so that the orders agree.)

    `inputs` are (token ids, segment ids), [N, T] each.  Batches are
    `((cls, token, segment, position, example), targets[, sample_weight])`
    as `packed_classifier` takes them.  `pack_len` None: the longest
    example, rounded up to a multiple of 8 (SST-2: 72, MRPC: 104): rows
    as short as every example allows, since a slot costs more in longer
    rows (attention; on this CPU a MiniLM training step costs ~25% more
    per slot in rows of 128 than of 64).
    """

    def __init__(self, inputs, targets, lengths, *, batch_size, seed, pack_len=None, epoch=0, fill=False,
                 window=1):
        if not isinstance(inputs, tuple) or len(inputs) != 2:
            raise ConfigError("packed batches take (token ids, segment ids)")
        lengths = check_rows([np.asarray(a) for a in inputs], lengths, targets)
        if pack_len is None:
            pack_len = bucket_width(lengths.max() if len(lengths) else 1, inputs[0].shape[1])
        check_pack_len(pack_len, lengths)
        self.pack_len = pack_len
        super().__init__(inputs, targets, lengths, batch_size=batch_size, seed=seed, epoch=epoch,
                         fill=fill, window=window)

    def __getitem__(self, index):
        rows, weights = self._batches[index]
        x = pack([a[rows] for a in self.inputs], self.lengths[rows], self.pack_len)
        return (x, self.targets[rows], weights) if self.fill else (x, self.targets[rows])

    def slot_counts(self):
        """(token slots, real tokens) over the epoch's batches."""
        batches = self.batch_rows()
        slots = sum(len(first_fit_decreasing(self.lengths[rows], self.pack_len)) * self.pack_len for rows in batches)
        return slots, int(sum(self.lengths[rows].sum() for rows in batches))
