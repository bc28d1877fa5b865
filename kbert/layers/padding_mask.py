"""`Padding-Mask`: token id 0 is padding, exactly like `input_mask` in the original."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class PaddingMask(keras.layers.Layer):
    """The attention mask of token ids: True at every id that is not 0.

    `Padding-Mask` in `BertModel`: token id 0 is padding, so this is the
    original's `input_mask`, computed from the ids instead of fed as an
    input.  Every encoder's `MultiHeadSelfAttention` reads it as its
    `attention_mask`.

    Call arguments:
        token_ids: integer ids `[B, T]`.

    Returns `[B, T]` bool.

    Args:
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import PaddingMask

    token_ids = np.array([[2, 7, 8, 3, 0, 0], [2, 9, 10, 11, 12, 3]], dtype="int32")  # [B, T]
    mask = PaddingMask()(token_ids)  # [B, T] bool, False at the zeros
    ```
    """

    def call(self, token_ids):
        # [B, T] bool
        return ops.not_equal(token_ids, 0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor(token_ids.shape, dtype="bool")
