"""`Student-Pair-Split`: a sentence pair's token ids as its two sentences.

Shape legend: B = batch, T = tokens.

The teacher's ids of a pair are `[CLS] a1 .. an [SEP] b1 .. bm [SEP]` and
then padding (id 0).  The layer returns two [B, T] id tensors, side a's
and side b's, each token left where it was, with every other position
(the [CLS], the [SEP]s, the other side, padding) set to 0.
`Student-BiLSTM` leaves its state alone at id 0 wherever it occurs, so
each side reads exactly as it would alone; the same layers then read both
sides (Tang et al. 2019's siamese BiLSTM for sentence pairs).  Two
tensors, not one of 2B rows: an exported graph's batch is symbolic, and
jax2onnx cannot carry "twice the batch" from one layer to the next.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class StudentPairSplit(keras.layers.Layer):
    """Splits a sentence pair's token ids into its two sentences.

    `Student-Pair-Split` of `BiLSTMStudent` when it reads sentence pairs.
    The teacher's ids of a pair are `[CLS] a1 .. an [SEP] b1 .. bm [SEP]`
    and padding (0).  Side a's output keeps the tokens of the first
    sentence where they are and sets every other position to 0; side b's
    does the same for the second sentence.  Since `StudentBiLSTM` skips id
    0 wherever it occurs, each side then reads as that sentence alone.

    Call arguments:
        token_ids: the pair's ids `[B, T]`, `[CLS]` at position 0.

    Returns `[side_a, side_b]`, each `[B, T]`.

    Args:
        separator_id: the vocabulary id of `[SEP]`.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import StudentPairSplit

    # [CLS] = 2, [SEP] = 3.
    token_ids = np.array([[2, 7, 8, 3, 9, 10, 11, 3, 0]], dtype="int32")  # [B, T]
    side_a, side_b = StudentPairSplit(separator_id=3)(token_ids)  # [B, T] each
    # side_a: [[0, 7, 8, 0, 0, 0, 0, 0, 0]], side_b: [[0, 0, 0, 0, 9, 10, 11, 0, 0]]
    ```
    """

    def __init__(self, separator_id, **kwargs):
        super().__init__(**kwargs)
        self.separator_id = separator_id

    def call(self, token_ids):
        separator = ops.cast(ops.equal(token_ids, self.separator_id), "int32")  # [B, T]
        before = ops.cumsum(separator, axis=1) - separator  # [B, T]: separators strictly before
        words = ops.logical_and(ops.not_equal(token_ids, 0), ops.equal(separator, 0))  # [B, T]
        # Position 0 is [CLS]: a cumsum of ones, not arange, so the width may be unknown.
        after_cls = ops.cumsum(ops.ones_like(token_ids), axis=1) > 1  # [B, T]
        side_a = ops.logical_and(ops.logical_and(words, after_cls), ops.equal(before, 0))
        side_b = ops.logical_and(words, ops.equal(before, 1))
        zeros = ops.zeros_like(token_ids)
        return [ops.where(side_a, token_ids, zeros), ops.where(side_b, token_ids, zeros)]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape), tuple(input_shape)]

    def get_config(self):
        config = super().get_config()
        config.update(separator_id=self.separator_id)
        return config
