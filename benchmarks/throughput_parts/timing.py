"""Batches, warm-up and the timed loop; the machine's float32 matmul peak.

Batches are sliced before any timing.  Warm-up runs one batch of every
distinct input shape [batch, width], so jit compilation (JAX compiles per
shape) and retracing (TensorFlow) stay out of the timed part.  The timed loop
then runs whole passes over the sentences until --min-seconds have passed,
clocked with `time.perf_counter`; every call returns host arrays (Keras'
`predict_on_batch` converts to NumPy; PyTorch on CPU is synchronous), so the
work is done when the clock stops.  items_per_second = sentences * passes /
seconds.

The machine's float32 peak is the best of five 4096 x 4096 matmuls (NumPy,
and PyTorch when installed; 2048 x 2048 ones reach only about 60% of it
here), measured once per run; every row reports its fraction of it.  On a
busy machine the peak can be measured low, and a row can then exceed 100%.
"""

import importlib.util
import time

import numpy as np

from benchmarks.throughput_parts.flops import flops_per_sentence
from kbert.batching import length_buckets


def plan_batches(lengths, batch_size, mode, max_len):
    """One pass over the sentences as [(row indices, width)]."""
    if mode == "padded":
        n = len(lengths)
        return [(np.arange(s, min(s + batch_size, n)), max_len) for s in range(0, n, batch_size)]
    return list(length_buckets(lengths, batch_size, max_len))


def slice_batches(arrays, batches):
    """[(token_ids, segment_ids)] per batch, contiguous, cut before timing."""
    return [
        tuple(np.ascontiguousarray(arrays[k][rows, :width]) for k in ("token_ids", "segment_ids"))
        for rows, width in batches
    ]


def warm_up(predict, inputs):
    """One call per distinct input shape (compiles and traces happen here)."""
    seen = set()
    for ids, segs in inputs:
        if ids.shape not in seen:
            seen.add(ids.shape)
            predict(ids, segs)
    return len(seen)


def timed_passes(predict, inputs, min_seconds, bar=None):
    """Whole passes over `inputs` until `min_seconds`; returns (passes, seconds)."""
    passes = 0
    start = time.perf_counter()
    while True:
        for ids, segs in inputs:
            predict(ids, segs)
            if bar is not None:
                bar.update(len(ids))
        passes += 1
        seconds = time.perf_counter() - start
        if seconds >= min_seconds:
            return passes, seconds
        if bar is not None:
            bar.total += sum(len(ids) for ids, _ in inputs)
            bar.refresh()


def work_done(model, batches, lengths):
    """(processed tokens, processed FLOPs, useful FLOPs) of one pass."""
    tokens = sum(len(rows) * width for rows, width in batches)
    processed = sum(len(rows) * flops_per_sentence(model, width) for rows, width in batches)
    useful = sum(flops_per_sentence(model, n) for n in lengths)
    return tokens, processed, useful


def best_seconds(run, repeats):
    """The fastest of `repeats` timed calls of `run`, after one untimed call."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure_peak(n=4096, repeats=5):
    """float32 matmul GFLOP/s of this machine: {"numpy": ..., "torch": ...}."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    flops = 2 * n**3
    peaks = {"numpy": flops / best_seconds(lambda: a @ b, repeats) / 1e9}
    if importlib.util.find_spec("torch") is not None:
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        peaks["torch"] = flops / best_seconds(lambda: torch.mm(ta, tb), repeats) / 1e9
    return peaks
