"""`MLM`: the masked-LM probabilities, masked by `Input-Masked` as in keras-bert.

The values pass through unchanged; the Keras mask (positions where
`Input-Masked` is non-zero) restricts a compiled loss to the masked
positions.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class MaskedOutput(keras.layers.Layer):
    """Passes the masked-LM output through, masked to the predicted positions.

    `MLM` in `BertModel` with `training=True`: the values of the first input
    come out unchanged, and the Keras mask of the output is True where the
    second input (`Input-Masked`) is non-zero.  A loss compiled on the model
    then counts only the positions whose token was masked out for
    prediction, as in keras-bert.

    Call arguments:
        inputs: `[values, masked]`: the vocabulary probabilities `[B, T, V]`
            and the masked positions `[B, T]` (non-zero: predicted).

    Returns `values` unchanged, with the mask `[B, T]`.

    Args:
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import MaskedOutput

    probs = np.full((2, 5, 30), 1 / 30, dtype="float32")  # [B, T, V]
    masked = np.array([[0, 1, 0, 0, 0], [0, 0, 1, 1, 0]])  # [B, T], 1 = predict this token
    layer = MaskedOutput()
    outputs = layer([probs, masked])  # [B, T, V], the same values
    mask = layer.compute_mask([probs, masked])  # [B, T] bool, where a loss counts
    ```
    """

    def call(self, inputs):
        return inputs[0]

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs[1], 0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]
