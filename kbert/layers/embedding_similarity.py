"""`MLM-Sim`: vocabulary probabilities through the tied word-piece matrix.

As the original's `cls/predictions`: logits = x @ word_embeddings^T +
output_bias, then softmax.  The matrix comes in as an input (from
`Embedding-Token`), so only the bias is this layer's own.  Called with
`logits=True` it stops before the softmax: pre-training computes its loss
from logits, which stays exact where a probability underflows.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class EmbeddingSimilarity(keras.layers.Layer):
    def build(self, input_shape):
        _, matrix_shape = input_shape
        self.bias = self.add_weight(name="bias", shape=(matrix_shape[0],), initializer="zeros")

    def call(self, inputs, logits=False):
        hidden, matrix = inputs
        # [B, T, D] x [V, D]^T -> [B, T, V]
        scores = ops.matmul(hidden, ops.transpose(ops.cast(matrix, hidden.dtype))) + self.bias
        return scores if logits else ops.softmax(scores, axis=-1)

    def compute_mask(self, inputs, mask=None):
        # Per position: the hidden states' padding mask carries over (keras-bert's too).
        return None if mask is None else mask[0]

    def compute_output_shape(self, input_shape):
        hidden_shape, matrix_shape = input_shape
        return tuple(hidden_shape[:-1]) + (matrix_shape[0],)
