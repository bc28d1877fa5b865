"""`Packing-Gather`: each example's `[CLS]` vector out of packed rows.

Shape legend: R = packed rows, L = slots per row, D = hidden size,
N = examples.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class PackingGather(keras.layers.Layer):
    """Gathers each packed example's `[CLS]` vector from packed rows.

    `Packing-Gather` in the packed classifier (`kbert.views.packed_classifier`):
    a packed row holds several short examples one after another, so each
    example's `[CLS]` sits at some offset of some row.  The rows are viewed
    as one list of R * L vectors and the vectors at the flat indices
    `row * L + offset` are taken, one per example, in the order given.

    Call arguments:
        inputs: the encoder output of the packed rows `[R, L, H]` (R rows
            of L slots).
        cls: the flat index of each example's `[CLS]` `[N]`.

    Returns `[N, H]`, without a mask.

    Args:
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import PackingGather

    hidden = np.random.default_rng(0).normal(size=(2, 6, 8)).astype("float32")  # [R, L, H]
    # Row 0 packs examples at offsets 0 and 3, row 1 one at offset 0: row * L + offset.
    cls = np.array([0, 3, 6], dtype="int32")  # [N]
    vectors = PackingGather()(hidden, cls)  # [N, H]
    ```
    """

    def call(self, inputs, cls):
        # inputs [R, L, D], cls [N] flat indices row * L + offset -> [N, D]
        flat = ops.reshape(inputs, (-1, ops.shape(inputs)[-1]))  # [R*L, D]
        return ops.take(flat, ops.cast(cls, "int32"), axis=0)

    def compute_mask(self, inputs, mask=None):
        return None  # one vector per example: no sequence mask past here

    def compute_output_shape(self, inputs_shape, cls_shape):
        return (cls_shape[0], inputs_shape[-1])

    def compute_output_spec(self, inputs, cls):
        return keras.KerasTensor((cls.shape[0], inputs.shape[-1]), dtype=inputs.dtype)
