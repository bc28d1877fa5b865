"""`Embedding-Position`: learned absolute positions added to the input.

The table always holds all `max_position_embeddings` rows, as in the
checkpoint; a shorter input uses the first `T` rows.  So a model built for a
fixed `seq_len` and one accepting any length share weights and export the
same checkpoint.
"""

import keras
from keras import ops

from kbert.errors import DataError


@keras.saving.register_keras_serializable(package="kbert")
class PositionEmbedding(keras.layers.Layer):
    def __init__(self, max_position_embeddings, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # the padding mask passes through
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_position_embeddings, input_shape[-1]),
            initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
        )

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        if isinstance(length, int) and length > self.max_position_embeddings:
            raise DataError(
                f"{self.name}: input length {length} exceeds "
                f"max_position_embeddings {self.max_position_embeddings}"
            )
        table = ops.slice(
            ops.convert_to_tensor(self.embeddings), (0, 0), (length, ops.shape(self.embeddings)[1])
        )
        # [B, T, D] + [1, T, D]
        return inputs + ops.cast(table[None], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            max_position_embeddings=self.max_position_embeddings,
            initializer_range=self.initializer_range,
        )
        return config
