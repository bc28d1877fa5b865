"""NumPy numerics shared by the stages that post-process model outputs."""

import numpy as np


def log_softmax(logits):
    """log softmax over the last axis, stable for large logits (float64 in, same dtype out)."""
    logits = np.asarray(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    """softmax over the last axis, float32: the materials' `ysm`."""
    return np.exp(log_softmax(np.asarray(logits, np.float64))).astype(np.float32)
