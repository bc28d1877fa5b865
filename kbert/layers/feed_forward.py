"""`Encoder-{n}-FeedForward`: the original's `intermediate/dense` and `output/dense`."""

import keras

from kbert.layers import activations


@keras.saving.register_keras_serializable(package="kbert")
class FeedForward(keras.layers.Layer):
    """The position-wise feed-forward network of a transformer block.

    `Encoder-{n}-FeedForward` in `BertModel`, the original's
    `intermediate/dense` and `output/dense`: a dense layer widening each
    position to `intermediate_size` with the activation, then one back to
    the input's width.  Both weights are made at build time, the output
    width taken from the input.  Positions are independent, so the padding
    mask passes through.

    Call arguments:
        inputs: hidden states `[B, T, H]`.

    Returns `[B, T, H]`.

    Args:
        intermediate_size: width I of the inner layer (3072 in BERT-base).
        activation: the inner layer's activation by its `bert_config.json`
            name: "gelu" (the tanh approximation, as the original),
            "gelu_exact", "relu", "tanh" or "linear". Defaults to "gelu".
        initializer_range: standard deviation of the truncated normal
            initializer of both kernels. Defaults to 0.02.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import FeedForward

    hidden = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")  # [B, T, H]
    layer = FeedForward(intermediate_size=16)
    outputs = layer(hidden)  # [B, T, H], through [B, T, I] inside
    ```
    """

    def __init__(self, intermediate_size, activation="gelu", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # position-wise: the padding mask passes through
        activations.get(activation)  # fail early on an unknown name
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.initializer_range = initializer_range

    def build(self, input_shape):
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        # The sublayers compute under this layer's dtype policy (mixed precision
        # included) and are frozen with it: Keras' `trainable = False` reaches
        # only the sublayers that exist then, and a frozen layer reloaded from
        # .keras is built after its flag is set.
        dense = dict(kernel_initializer=init, dtype=self.dtype_policy, trainable=self.trainable)
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
        args = ("intermediate_size", "activation", "initializer_range")
        return {**super().get_config(), **{name: getattr(self, name) for name in args}}
