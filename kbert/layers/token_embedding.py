"""`Embedding-Token`: word-piece embeddings that also hand out their matrix.

The masked-LM head of the original ties its output projection to this
matrix (`cls/predictions` reuses `bert/embeddings/word_embeddings`), so, as in
keras-bert, the layer returns `[embedded, matrix]` and `MLM-Sim` takes the
matrix as an input instead of owning a copy.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class TokenEmbedding(keras.layers.Layer):
    """Word-piece embeddings that also output their matrix.

    `Embedding-Token` in `BertModel`.  It looks up each id's row of a
    `[V, H]` matrix and returns the matrix as a second output, so that the
    masked-LM head (`EmbeddingSimilarity`) reuses it instead of keeping a
    copy, as the original ties them.  Token id 0 is padding: the first
    output carries a Keras mask that is False there, which mask-aware
    layers downstream respect.

    Call arguments:
        token_ids: integer ids `[B, T]`.

    Returns `[embedded, matrix]`: `[B, T, H]` and `[V, H]`, both in the
    layer's compute dtype.

    Args:
        vocab_size: rows V of the matrix, the vocabulary size.
        hidden_size: width H of each embedding.
        initializer_range: standard deviation of the matrix's truncated
            normal initializer. Defaults to 0.02.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import TokenEmbedding

    token_ids = np.array([[2, 7, 8, 3, 0], [2, 9, 10, 11, 3]], dtype="int32")  # [B, T], 0 = padding
    layer = TokenEmbedding(vocab_size=30, hidden_size=8)
    embedded, matrix = layer(token_ids)  # [B, T, H], [V, H]
    mask = layer.compute_mask(token_ids)[0]  # [B, T] bool, False at the padding
    ```
    """

    def __init__(self, vocab_size, hidden_size, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocab_size, self.hidden_size),
            initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
        )

    def call(self, token_ids):
        # In the compute dtype on every backend (TensorFlow does not autocast
        # a variable read through convert_to_tensor under a mixed policy).
        matrix = ops.cast(self.embeddings, self.compute_dtype)
        # [B, T] -> [B, T, D]
        embedded = ops.take(matrix, ops.cast(token_ids, "int32"), axis=0)
        return [embedded, matrix]

    def compute_mask(self, token_ids, mask=None):
        # Token id 0 is padding, as keras-bert's `mask_zero=True`: the Keras
        # mask then follows the sequence through every encoder, so a
        # mask-aware layer stacked on the output (pooling, LSTM) skips padding.
        return [ops.not_equal(token_ids, 0), None]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape) + (self.hidden_size,), (self.vocab_size, self.hidden_size)]

    def get_config(self):
        args = ("vocab_size", "hidden_size", "initializer_range")
        return {**super().get_config(), **{name: getattr(self, name) for name in args}}
