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

from kbert.batching import BucketedBatches, bucket_width, check_rows, id_lengths, padded_inside
from kbert.checks import is_int
from kbert.errors import ConfigError, DataError

# Input order of a packed model (`kbert.views.packed_classifier`).  The
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


def best_fit_decreasing(lengths, pack_len):
    """Rows as `first_fit_decreasing` fills them, for a whole dataset:
    longest first, each into the row with the least room that holds it
    (rows kept by their room, so O(N * pack_len) rather than O(N * rows))."""
    lengths = np.asarray(lengths)
    rows = []
    by_room = [[] for _ in range(pack_len + 1)]  # by_room[k]: rows with k free slots
    for i in np.argsort(-lengths, kind="stable"):
        length = int(lengths[i])
        for room in range(length, pack_len + 1):
            if by_room[room]:
                r = by_room[room].pop()
                break
        else:
            r, room = len(rows), pack_len
            rows.append([])
        rows[r].append(int(i))
        by_room[room - length].append(r)
    return rows


def layout(arrays, lengths, rows, pack_len):
    """Packed inputs of the examples that `rows` (lists of example indices)
    place: (cls, token, segment, position, example) in `PACKED_INPUTS`
    order, cls listing the rows' members in order: cls[k] is the flat index
    (row * L + offset) of their k-th member's first token; example ids count
    1, 2, ... within a row (0 = empty slot, and a row with no members is
    all empty).  `arrays` (token ids, segment ids) [N, T], `lengths` [N].
    """
    token_ids, segment_ids = arrays
    shape = (len(rows), pack_len)
    token, segment, position, example = (np.zeros(shape, np.int32) for _ in range(4))
    cls = np.zeros(sum(len(members) for members in rows), np.int32)
    k = 0
    for r, members in enumerate(rows):
        offset = 0
        for number, i in enumerate(members, start=1):
            length = int(lengths[i])
            span = slice(offset, offset + length)
            token[r, span] = token_ids[i, :length]
            segment[r, span] = segment_ids[i, :length]
            position[r, span] = np.arange(length)
            example[r, span] = number
            cls[k] = r * pack_len + offset
            offset += length
            k += 1
    return cls, token, segment, position, example


def pack(arrays, lengths, pack_len):
    """The packed inputs of one batch: `arrays` (token ids, segment ids),
    each [N, T], `lengths` [N] (each 1..pack_len), first-fit decreasing.

    Returns `layout`'s (cls [N], token, segment, position, example [R, L]),
    with cls[i] example i's: in the batch's order.
    """
    rows = first_fit_decreasing(lengths, pack_len)
    placed, *packed = layout(arrays, lengths, rows, pack_len)
    cls = np.zeros(len(lengths), np.int32)
    cls[[i for members in rows for i in members]] = placed
    return (cls, *packed)


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

    batch_layout = "packed"

    def __init__(self, inputs, targets, lengths, *, batch_size, seed, pack_len=None, epoch=0, fill=False,
                 window=1):
        if not isinstance(inputs, tuple) or len(inputs) != 2:
            raise ConfigError("packed batches take (token ids, segment ids)")
        arrays = [np.asarray(a) for a in inputs]
        check_rows(arrays, lengths, targets)
        if arrays[1].shape != arrays[0].shape:
            raise DataError(f"segment ids have shape {list(arrays[1].shape)} but token ids {list(arrays[0].shape)}")
        # The real tokens, as the ids say (`lengths` may be longer than that:
        # packed, the padding between would be read as tokens).
        lengths = id_lengths(inputs[0])
        if not len(lengths):
            raise DataError("no rows to batch: the input arrays are empty")
        inside = padded_inside(inputs[0], lengths)
        if len(inside):
            raise DataError(f"row {int(inside[0])}: a [PAD] id (0) among its tokens, which the padding mask "
                            f"drops; packing cannot (train with --no-packing, packing=False)")
        if pack_len is None:
            pack_len = bucket_width(lengths.max(), inputs[0].shape[1])
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


def packed_plan(lengths, width, batch_size):
    """(pack_len, calls) of a packed pass over rows of these `lengths` (each
    1..`width`): `best_fit_decreasing` over all of them in rows of the
    longest one rounded up to 8, cut into equal calls (lists of rows, each
    a list of example indices) of about as many rows as hold `batch_size`
    examples of mean length (so a call costs about what a length-sorted
    batch does)."""
    pack_len = bucket_width(lengths.max(), width)
    rows = best_fit_decreasing(lengths, pack_len)
    calls = -(-len(rows) // max(1, int(np.ceil(batch_size * float(np.mean(lengths)) / pack_len))))
    per_call = -(-len(rows) // calls)
    return pack_len, [rows[start : start + per_call] for start in range(0, len(rows), per_call)]
