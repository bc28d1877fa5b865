"""`MLM`: the masked-LM probabilities, masked by `Input-Masked` as in keras-bert.

The values pass through unchanged; the Keras mask (positions where
`Input-Masked` is non-zero) restricts a compiled loss to the masked
positions.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class MaskedOutput(keras.layers.Layer):
    def call(self, inputs):
        return inputs[0]

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs[1], 0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]
