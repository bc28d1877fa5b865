"""`Encoder-{n}-FeedForward`: the original's `intermediate/dense` and `output/dense`."""

import keras

from kbert.layers import activations


@keras.saving.register_keras_serializable(package="kbert")
class FeedForward(keras.layers.Layer):
    def __init__(self, intermediate_size, activation="gelu", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # position-wise: the padding mask passes through
        activations.get(activation)  # fail early on an unknown name
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.initializer_range = initializer_range

    def build(self, input_shape):
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        # The sublayers compute under this layer's dtype policy (mixed precision included).
        dense = dict(kernel_initializer=init, dtype=self.dtype_policy)
        self.intermediate = keras.layers.Dense(self.intermediate_size, name="intermediate", **dense)
        self.output_dense = keras.layers.Dense(input_shape[-1], name="output", **dense)
        self.intermediate.build(input_shape)
        self.output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_size,))

    def call(self, inputs):
        # [B, T, D] -> [B, T, I] -> [B, T, D]
        hidden = activations.get(self.activation)(self.intermediate(inputs))
        return self.output_dense(hidden)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            intermediate_size=self.intermediate_size,
            activation=self.activation,
            initializer_range=self.initializer_range,
        )
        return config
