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
    """Vectors [B, T, D] -> feature maps [B, T + w - 1, filters], ReLU.

    Args:
        filters: number of feature maps (Kim: 100).
        kernel_size: filter width w in tokens.
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
