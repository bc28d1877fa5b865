"""`Packing-Gather`: each example's `[CLS]` vector out of packed rows.

Shape legend: R = packed rows, L = slots per row, D = hidden size,
N = examples.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class PackingGather(keras.layers.Layer):
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
