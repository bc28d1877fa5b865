"""`SpanSplit`: a span head's `[B, T, 2]` logits as start and end logits."""

import keras


@keras.saving.register_keras_serializable(package="kbert")
class SpanSplit(keras.layers.Layer):
    """The two channels of a span head's logits apart: `run_squad.py`'s
    `unstack(transpose(logits, [2, 0, 1]))`, Hugging Face's
    `qa_outputs(...).split(1, dim=-1)`.  No mask follows: a span loss is
    one cross-entropy over the positions an example (the answer's start
    among them), not one a position; padded positions are never the gold
    answer, and decoding (`kbert.squad.best_answers`) reads only the
    context's.

    Call arguments:
        inputs: `[B, T, 2]`, a dense layer of width 2 on every position.

    Returns `[start [B, T], end [B, T]]`.

    Args:
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import SpanSplit

    logits = np.arange(2 * 5 * 2, dtype="float32").reshape(2, 5, 2)  # [B, T, 2]
    start, end = SpanSplit()(logits)  # [B, T] each
    ```
    """

    def call(self, inputs):
        # [B, T, 2] -> [B, T], [B, T]
        return [inputs[..., 0], inputs[..., 1]]

    def compute_mask(self, inputs, mask=None):
        return [None, None]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[:-1]), tuple(input_shape[:-1])]
