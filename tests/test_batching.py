"""Training batches (kbert.batching.BucketedBatches): every row once per
epoch, seeded order, trimmed widths, and what the window changes."""

import numpy as np
import pytest

from kbert.batching import BucketedBatches, bucket_width
from kbert.errors import ConfigError

N, T, B = 203, 40, 16


@pytest.fixture
def data(rng):
    lengths = rng.integers(2, T + 1, N)
    ids = np.zeros((N, T), np.int32)
    for i, length in enumerate(lengths):
        ids[i, :length] = rng.integers(1, 99, length)
    return ids, np.arange(N), lengths  # targets: the row numbers


def _rows(batches):
    return [batches[i][1] for i in range(len(batches))]


@pytest.mark.parametrize("window", [1, 4, 50])
def test_every_row_once_per_epoch_each_batch_trimmed(data, window):
    ids, targets, lengths = data
    batches = BucketedBatches(ids, targets, lengths, batch_size=B, seed=3, window=window)
    rows = np.concatenate(_rows(batches))
    assert sorted(rows) == list(range(N))
    for i in range(len(batches)):
        x, y = batches[i]
        assert x.shape[1] == bucket_width(lengths[y].max(), T)
        np.testing.assert_array_equal(x, ids[y, : x.shape[1]])
        assert (ids[y, x.shape[1]:] == 0).all()  # nothing but padding was cut


def test_fill_tops_up_the_last_batch_with_weight_zero_rows(data):
    ids, targets, lengths = data
    batches = BucketedBatches(ids, targets, lengths, batch_size=B, seed=3, fill=True)
    seen = []
    for i in range(len(batches)):
        x, y, w = batches[i]
        assert len(y) == B
        seen.extend(y[w == 1])
    assert sorted(seen) == list(range(N))
    assert sum(int((batches[i][2] == 0).sum()) for i in range(len(batches))) == -N % B


def test_order_depends_only_on_seed_and_epoch(data):
    ids, targets, lengths = data
    a = BucketedBatches(ids, targets, lengths, batch_size=B, seed=3)
    b = BucketedBatches(ids, targets, lengths, batch_size=B, seed=3)
    first = [batch.tolist() for batch in _rows(a)]
    assert first == [batch.tolist() for batch in _rows(b)]
    a.on_epoch_end()
    b.set_epoch(1)  # a resumed run jumps straight to its epoch
    second = [batch.tolist() for batch in _rows(a)]
    assert second == [batch.tolist() for batch in _rows(b)]
    assert len(first) == len(second) and second != first


def test_window_trades_mixed_lengths_for_padding(data):
    ids, targets, lengths = data
    spread, cells = {}, {}
    for window in (1, 50):
        batches = BucketedBatches(ids, targets, lengths, batch_size=B, seed=3, window=window)
        spread[window] = np.mean([np.ptp(lengths[y]) for y in _rows(batches)])
        cells[window] = sum(batches[i][0].size for i in range(len(batches)))
    # window 1: batches are plain slices of a random permutation, so lengths mix
    # as in the data; a wide window sorts them and cuts the padding.
    assert spread[1] > 3 * spread[50]
    assert cells[50] < 0.8 * cells[1]


def test_each_process_gets_its_share_of_the_same_batches(data):
    """A multi-process job's shares, put back together in process order,
    are the one-process batches: same rows, targets, weights and width."""
    ids, labels, lengths = data
    whole = BucketedBatches(ids, labels, lengths, batch_size=8, seed=3, fill=True)
    shares = [BucketedBatches(ids, labels, lengths, batch_size=8, seed=3, fill=True, process=(p, 2)) for p in (0, 1)]
    for epoch in (0, 1):
        for batches in [whole, *shares]:
            batches.set_epoch(epoch)
        for k in range(len(whole)):
            x, y, w = whole[k]
            parts = [share[k] for share in shares]
            assert all(part[0].shape == (4, x.shape[1]) for part in parts)
            np.testing.assert_array_equal(np.concatenate([part[0] for part in parts]), x)
            np.testing.assert_array_equal(np.concatenate([part[1] for part in parts]), y)
            np.testing.assert_array_equal(np.concatenate([part[2] for part in parts]), w)
    for process, fill, batch_size in [((2, 2), True, 8), ((0, 2), False, 8), ((0, 3), True, 8)]:
        with pytest.raises(ConfigError, match="process"):
            BucketedBatches(ids, labels, lengths, batch_size=batch_size, seed=3, fill=fill, process=process)
