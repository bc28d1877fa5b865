"""`Packing-Mask`: which keys each query of a packed row may attend to.

Shape legend: R = packed rows, L = slots per row.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class PackingMask(keras.layers.Layer):
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
