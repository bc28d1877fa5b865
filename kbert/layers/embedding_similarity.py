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
    """Vocabulary probabilities from the tied word-piece embedding matrix.

    BERT's masked-LM output (`MLM-Sim` in `BertModel`): each hidden vector is
    scored against every row of the token embedding matrix, a learned bias
    of one entry per vocabulary row is added, and a softmax turns the scores
    into probabilities.  The matrix is an input (the second output of
    `TokenEmbedding`), so input and output embeddings share one weight; the
    bias, created from the matrix's row count at build time, is this
    layer's only weight.  The Keras mask of the hidden states carries over.

    Call arguments:
        inputs: `[hidden, matrix]`: hidden states `[B, T, H]` and the
            embedding matrix `[V, H]`.
        logits: if True, return the scores before the softmax (a loss on
            logits stays exact where a probability underflows).
            Defaults to False.

    Returns `[B, T, V]`: probabilities, or logits with `logits=True`.

    Args:
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import EmbeddingSimilarity, TokenEmbedding

    token_ids = np.array([[2, 7, 8, 3, 0]])  # [B, T]
    _, matrix = TokenEmbedding(vocab_size=30, hidden_size=8)(token_ids)  # [V, H]
    hidden = np.random.default_rng(0).normal(size=(1, 5, 8)).astype("float32")  # [B, T, H]
    layer = EmbeddingSimilarity()
    probs = layer([hidden, matrix])  # [B, T, V], each row sums to 1
    logits = layer([hidden, matrix], logits=True)  # [B, T, V], before the softmax
    ```
    """

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
