"""`Student-Pair-Match`: the two sentences' vectors of a pair as one feature vector.

Shape legend: B = batch, D = a sentence vector's width.

Takes [2B, D], side a's rows then side b's (`Student-Pair-Split`'s order),
and returns [B, 4D] = [a, b, a * b, |a - b|]: Tang et al. (2019)'s
matching features for sentence pairs (from InferSent, Conneau et al.
2017).  The product and the absolute difference say how the two sides
agree, which a layer reading [a, b] alone would have to learn.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class StudentPairMatch(keras.layers.Layer):
    """[2B, D] -> [B, 4D]."""

    def call(self, states):
        a, b = ops.split(states, 2, axis=0)  # [B, D] each
        return ops.concatenate([a, b, a * b, ops.abs(a - b)], axis=-1)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // 2
        return (batch, 4 * input_shape[-1])
