"""`Embedding-Position`: learned absolute positions added to the input.

The table always holds all `max_position_embeddings` rows, as in the
checkpoint; a shorter input uses the first `T` rows.  So a model built for a
fixed `seq_len` and one accepting any length share weights and export the
same checkpoint.  Packed rows (`kbert.packing`) pass `positions` [B, T]
instead: each example's positions restart at 0, so its rows of the table
are those it would read alone.
"""

import keras
from keras import ops

from kbert.errors import DataError


@keras.saving.register_keras_serializable(package="kbert")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector for each absolute position to the input.

    `Embedding-Position` in `BertModel`.  The table has
    `max_position_embeddings` rows of the input's width; by default the
    first T rows are added to a sequence of T tokens, and an input longer
    than the table is refused (`kbert.errors.DataError`).  Packed rows pass
    `positions` instead, each example's positions restarting at 0.  The
    padding mask passes through.

    Call arguments:
        inputs: the embeddings `[B, T, H]`.
        positions: the position of every token `[B, T]`, or None for
            0 .. T - 1 in every row. Defaults to None.

    Returns `[B, T, H]`.

    Args:
        max_position_embeddings: rows of the table, the longest input
            accepted (512 in BERT's checkpoints).
        initializer_range: standard deviation of the table's truncated
            normal initializer. Defaults to 0.02.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import PositionEmbedding

    embedded = np.zeros((2, 5, 8), dtype="float32")  # [B, T, H]
    layer = PositionEmbedding(max_position_embeddings=16)
    outputs = layer(embedded)  # [B, T, H], rows 0..4 of the table added
    positions = np.array([[0, 1, 2, 0, 1], [0, 1, 2, 3, 4]], dtype="int32")  # [B, T], two examples in row 0
    packed = layer(embedded, positions=positions)  # [B, T, H]
    ```
    """

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

    def call(self, inputs, positions=None):
        if positions is not None:
            # [B, T, D] + [B, T, D]
            table = ops.take(ops.convert_to_tensor(self.embeddings), ops.cast(positions, "int32"), axis=0)
            return inputs + ops.cast(table, inputs.dtype)
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

    def compute_output_shape(self, inputs_shape, positions_shape=None):
        return inputs_shape

    def get_config(self):
        args = ("max_position_embeddings", "initializer_range")
        return {**super().get_config(), **{name: getattr(self, name) for name in args}}
