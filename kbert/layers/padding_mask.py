"""`Padding-Mask`: token id 0 is padding, exactly like `input_mask` in the original."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class PaddingMask(keras.layers.Layer):
    def call(self, token_ids):
        # [B, T] bool
        return ops.not_equal(token_ids, 0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor(token_ids.shape, dtype="bool")
