"""`Student-Conv-{w}`: one bank of Kim (2014)'s convolution filters of width w.

The input is padded with w - 1 zero vectors on both sides before a "valid"
convolution (a "full" convolution, as Kim's own code pads every sentence),
so a sentence shorter than the filter still has windows and the result is
defined for every sentence with at least one token.  Output position i is
the window over input positions i - w + 1 .. i, which `Student-Pool` uses
to tell windows that touch the sentence from windows lying in padding.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class StudentConv(keras.layers.Layer):
    """One width of the CNN student's convolution filters, over every window.

    `Student-Conv-{w}` of `CNNStudent` (Kim 2014).  The vectors get
    `kernel_size - 1` zero vectors on each side before a ReLU convolution,
    so every window that overlaps the sentence is scored, even in a
    sentence shorter than the filter.  Output position i covers input
    positions i - w + 1 .. i; `StudentPool` uses that to leave out windows
    lying wholly in padding.

    Call arguments:
        vectors: token vectors `[B, T, E]`.

    Returns feature maps `[B, T + kernel_size - 1, filters]`.

    Args:
        filters: number of filters, the output's width (Kim used 100).
            Defaults to 100.
        kernel_size: the filter width w, in tokens. Defaults to 3.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import StudentConv

    vectors = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")  # [B, T, E]
    maps = StudentConv(filters=4, kernel_size=3)(vectors)  # [B, T + 2, filters]
    ```
    """

    def __init__(self, filters=100, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size

    def build(self, input_shape):
        self.conv = keras.layers.Conv1D(
            self.filters,
            self.kernel_size,
            padding="valid",
            activation="relu",
            name="conv",
            dtype=self.dtype_policy,  # computes under this layer's policy (mixed precision included)
        )
        length = input_shape[1]
        if length is not None:
            length += 2 * (self.kernel_size - 1)
        self.conv.build((input_shape[0], length, input_shape[2]))

    def call(self, vectors):
        pad = self.kernel_size - 1
        vectors = ops.pad(vectors, [[0, 0], [pad, pad], [0, 0]])
        return self.conv(vectors)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + self.kernel_size - 1
        return (input_shape[0], length, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size)
        return config
