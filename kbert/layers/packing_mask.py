"""`Packing-Mask`: which keys each query of a packed row may attend to.

Shape legend: R = packed rows, L = slots per row.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class PackingMask(keras.layers.Layer):
    """Per-query attention mask that keeps packed examples apart.

    `Packing-Mask` in the packed classifier: a packed row numbers the
    examples it holds 1, 2, ... slot by slot, and 0 marks an empty slot.  A
    query may attend to a key when both belong to the same example; no
    query attends to an empty slot, so a query at an empty slot attends to
    nothing, as an all-padding row does unpacked.  The result is the
    `[B, T, T]` form of `MultiHeadSelfAttention`'s `attention_mask`.

    Call arguments:
        example_ids: the example number of each slot `[R, L]`
            (0: empty).

    Returns `[R, L, L]` bool: `[r, query, key]`.

    Args:
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import PackingMask

    example_ids = np.array([[1, 1, 2, 2, 0], [1, 1, 1, 1, 1]], dtype="int32")  # [R, L]
    mask = PackingMask()(example_ids)  # [R, L, L] bool
    ```
    """

    def call(self, example_ids):
        # example_ids [R, L]: 1, 2, ... per example of the row, 0 = empty slot.
        same = ops.equal(example_ids[:, :, None], example_ids[:, None, :])  # [R, L, L]
        # An empty slot is nobody's key; an empty query row then sees only
        # -10000 scores, as an all-padding row does unpacked.
        return ops.logical_and(same, ops.not_equal(example_ids, 0)[:, None, :])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[1])

    def compute_output_spec(self, example_ids):
        shape = example_ids.shape
        return keras.KerasTensor((shape[0], shape[1], shape[1]), dtype="bool")
