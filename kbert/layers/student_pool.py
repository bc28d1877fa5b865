"""`Student-Pool`: max-over-time pooling that only looks inside the sentence.

Takes the token ids and the outputs of the `Student-Conv-{w}` layers; for
each, a window (output position i of a width-w full convolution covers
tokens i - w + 1 .. i) counts only if it covers at least one real token
(id != 0).  Windows lying wholly in batch padding are left out, so a
sentence's features do not depend on how long the other sentences of its
batch are, and length-bucketed batches give the same numbers as one big
padded batch.  The pooled features of all widths are concatenated.

A sentence of only padding has no window; its features are 0.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class StudentPool(keras.layers.Layer):
    """Max-over-time pooling of the CNN student's maps, inside the sentence.

    `Student-Pool` of `CNNStudent`.  For each `StudentConv` output (position
    i of a width-w map covers tokens i - w + 1 .. i), the maximum over the
    positions whose window touches at least one real token (id not 0) is
    taken, so windows lying wholly in batch padding never count and a
    sentence pools the same in any batch.  The pooled features of all
    widths are concatenated; a sentence of only padding gets zeros.

    Call arguments:
        inputs: `[token_ids, map_1, map_2, ...]`: ids `[B, T]`, then one map
            `[B, T + w - 1, F]` for each width w of `kernel_sizes`, in
            that order.

    Returns `[B, F_1 + F_2 + ...]`.

    Args:
        kernel_sizes: the filter width of each map, in input order.
            Defaults to (3, 4, 5).
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import StudentPool

    rng = np.random.default_rng(0)
    token_ids = np.array([[7, 8, 0, 0, 0], [7, 8, 9, 10, 11]], dtype="int32")  # [B, T], 0 = padding
    map_2 = rng.normal(size=(2, 6, 4)).astype("float32")  # [B, T + 1, F], width 2
    map_3 = rng.normal(size=(2, 7, 4)).astype("float32")  # [B, T + 2, F], width 3
    pooled = StudentPool(kernel_sizes=(2, 3))([token_ids, map_2, map_3])  # [B, 8]
    ```
    """

    def __init__(self, kernel_sizes=(3, 4, 5), **kwargs):
        super().__init__(**kwargs)
        self.kernel_sizes = tuple(kernel_sizes)

    @staticmethod
    def _window_mask(token_ids, width):
        """[B, T] ids -> [B, T + w - 1] bool: does window i touch a token?"""
        real = ops.cast(ops.not_equal(token_ids, 0), "int32")
        pad = width - 1
        real = ops.pad(real, [[0, 0], [pad, pad]])
        length = ops.shape(token_ids)[1] + pad
        # A window of w positions touches a token iff the sum over it is > 0;
        # w is small, so adding w shifted slices is cheap and backend-neutral.
        total = real[:, 0:length]
        for k in range(1, width):
            total = total + real[:, k : k + length]
        return ops.greater(total, 0)

    def call(self, inputs):
        token_ids, maps = inputs[0], inputs[1:]
        if len(maps) != len(self.kernel_sizes):
            raise ValueError(
                f"Student-Pool expects {len(self.kernel_sizes)} feature maps, got {len(maps)}"
            )
        pooled = []
        for width, values in zip(self.kernel_sizes, maps):
            valid = ops.expand_dims(self._window_mask(token_ids, width), -1)
            # Below any real value: float16's lowest finite number is -65504.
            lowest = ops.cast(-65504.0 if values.dtype == "float16" else -3.0e38, values.dtype)
            best = ops.max(ops.where(valid, values, lowest), axis=1)
            any_valid = ops.any(valid, axis=1)
            pooled.append(ops.where(any_valid, best, ops.zeros_like(best)))
        return ops.concatenate(pooled, axis=-1)

    def compute_output_shape(self, input_shape):
        features = sum(shape[-1] for shape in input_shape[1:])
        return (input_shape[0][0], features)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_sizes=list(self.kernel_sizes))
        return config
