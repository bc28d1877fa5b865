"""`Embedding-Task`: one learned vector per task, added at every position.

keras-bert's multi-task input (`use_task_embed=True`): `Input-Task` holds
one task id per example, shape [B, 1]; its row of the table is added to the
embedding sum before `Embedding-Dropout`.  Google's checkpoints have no such
table, so it starts from its initializer (keras-bert's: uniform in
[-0.05, 0.05]); kbert's export writes it as `bert/embeddings/task_embeddings`.
The padding mask of the embeddings passes through.
"""

import keras
from keras import ops

from kbert.errors import ConfigError


@keras.saving.register_keras_serializable(package="kbert")
class TaskEmbedding(keras.layers.Layer):
    """keras-bert's signature.

    Args:
        input_dim: rows of the table (task ids 0..input_dim-1).
        output_dim: the embeddings' width (hidden_size).
        embeddings_initializer: the table's initializer.
        mask_zero: task id 0 adds nothing.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = embeddings_initializer  # a name or a serialized initializer
        self.mask_zero = mask_zero

    def build(self, input_shape):
        hidden_shape, _ = input_shape
        if hidden_shape[-1] != self.output_dim:
            raise ConfigError(f"{self.name}: output_dim {self.output_dim} but the embeddings are {hidden_shape[-1]} wide")
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=keras.initializers.get(self.embeddings_initializer),
        )

    def call(self, inputs):
        hidden, tasks = inputs  # [B, T, D], [B, 1]
        tasks = ops.cast(tasks, "int32")
        rows = ops.take(ops.cast(self.embeddings, hidden.dtype), tasks, axis=0)  # [B, 1, D]
        if self.mask_zero:
            rows = rows * ops.cast(ops.not_equal(tasks, 0), hidden.dtype)[..., None]
        return hidden + rows

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else mask[0]

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            embeddings_initializer=(
                self.embeddings_initializer
                if isinstance(self.embeddings_initializer, (str, dict))
                else keras.initializers.serialize(self.embeddings_initializer)
            ),
            mask_zero=self.mask_zero,
        )
        return config
