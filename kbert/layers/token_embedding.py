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
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            initializer_range=self.initializer_range,
        )
        return config
