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
    """Adds one learned vector per task to every position of the embeddings.

    `Embedding-Task` in `BertModel` with `task_num` (keras-bert's
    `use_task_embed`): each example's task id selects a row of the table,
    which is added to all its positions.  The constructor has keras-bert's
    signature.  The padding mask of the embeddings passes through.

    Call arguments:
        inputs: `[hidden, task_ids]`: the embeddings `[B, T, H]` and one
            task id per example `[B, 1]`.

    Returns `[B, T, H]`.

    Args:
        input_dim: rows of the table: task ids 0 .. input_dim - 1.
        output_dim: width of the table, the embeddings' width H (checked
            at build time).
        embeddings_initializer: the table's initializer, a name or a
            `keras.initializers.Initializer`. Defaults to "uniform" (Keras'
            uniform in [-0.05, 0.05], as keras-bert).
        mask_zero: if True, task id 0 adds nothing. Defaults to False.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import TaskEmbedding

    hidden = np.zeros((2, 5, 8), dtype="float32")  # [B, T, H]
    task_ids = np.array([[0], [2]], dtype="int32")  # [B, 1]
    layer = TaskEmbedding(input_dim=3, output_dim=8)
    outputs = layer([hidden, task_ids])  # [B, T, H], row 0 added to example 0, row 2 to example 1
    ```
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
