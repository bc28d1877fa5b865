"""`Student-BiLSTM`: the bidirectional LSTM of Tang et al. (2019)'s student.

Shape legend: B = batch, T = tokens, E = input width, H = units per
direction, G = 4 H (the gates i, f, g, o, in Keras' order).

Takes the token ids (0 = padding) and their vectors.  Both directions run
in one `keras.ops.fori_loop` over time: the input projections of every step are
computed before the loop in one matmul ([B, T, E] x [E, 2G]), so each step
only multiplies the recurrent state.  The backward direction reads the
sequence reversed.  A padding step leaves the state as it was, so batch
padding (always on the right) changes nothing: the forward state stops at
the sentence's last token, and the backward one starts from zeros at it.
A sentence's output is therefore the same in any batch, as `Student-Pool`
makes it for the CNN.

Output, by `pooling`:
    "last"  [B, 2H]: the forward direction's state after the last token and
            the backward one's after the first, concatenated (Tang et al.)
    "max"   [B, 2H]: the max over the sentence's tokens of each step's
            outputs (padding steps left out; a sentence of only padding
            gives zeros)
"""

import keras
from keras import ops

from kbert.options import POOLINGS


@keras.saving.register_keras_serializable(package="kbert")
class StudentBiLSTM(keras.layers.Layer):
    """A bidirectional LSTM over a sentence's vectors that skips padding.

    `Student-BiLSTM` of `BiLSTMStudent` (Tang et al. 2019).  Both directions
    run over the token vectors; a step at token id 0 leaves the state as
    it was, so a sentence gives the same result in any batch, however long
    its padding.  The two directions are then reduced to one vector per
    sentence, by `pooling`:

    - "last": the forward state after the sentence's last token and the
      backward state after its first, concatenated;
    - "max": the maximum over the sentence's tokens of each direction's
      outputs (a sentence of only padding gives zeros).

    The gates follow Keras' LSTM (order i, f, g, o; the forget gates' bias
    starts at 1).

    Call arguments:
        inputs: `[token_ids, vectors]`: ids `[B, T]` (0: padding, on the
            right) and their vectors `[B, T, E]`.

    Returns `[B, 2 * units]`: the forward direction's features, then the
    backward one's.

    Args:
        units: width of each direction's state. Defaults to 100.
        pooling: "last" or "max", as above. Defaults to "last".
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import StudentBiLSTM

    token_ids = np.array([[7, 8, 9, 0, 0], [7, 8, 9, 10, 11]], dtype="int32")  # [B, T], 0 = padding
    vectors = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")  # [B, T, E]
    layer = StudentBiLSTM(units=4)
    states = layer([token_ids, vectors])  # [B, 2 * units]
    maxed = StudentBiLSTM(units=4, pooling="max")([token_ids, vectors])  # [B, 2 * units]
    ```
    """

    def __init__(self, units=100, pooling="last", **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.units = units
        self.pooling = pooling

    def build(self, input_shape):
        width, gates = input_shape[1][-1], 4 * self.units
        # Both directions' input kernels side by side: [E, 2G].
        self.kernel = self.add_weight(name="kernel", shape=(width, 2 * gates),
                                      initializer="glorot_uniform")
        # One recurrent kernel per direction: [2, H, G].
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(2, self.units, gates),
                                                initializer=_Orthogonal())
        # Keras' unit_forget_bias: the forget gates start at 1.
        self.bias = self.add_weight(name="bias", shape=(2, gates), initializer=_ForgetBias(self.units))

    def call(self, inputs):
        token_ids, vectors = inputs
        batch, units = ops.shape(vectors)[0], self.units
        real = ops.not_equal(token_ids, 0)  # [B, T]
        projected = ops.matmul(vectors, self.kernel)  # [B, T, 2G]
        projected = ops.reshape(projected, (batch, -1, 2, 4 * units))  # [B, T, 2, G]
        # Time first; direction 1 reads the sentence backwards.
        forward = ops.transpose(projected[:, :, 0], (1, 0, 2))  # [T, B, G]
        backward = ops.flip(ops.transpose(projected[:, :, 1], (1, 0, 2)), axis=0)  # [T, B, G]
        steps = ops.stack([forward, backward], axis=1) + self.bias[None, :, None, :]  # [T, 2, B, G]
        mask = ops.transpose(real, (1, 0))  # [T, B]
        masks = ops.stack([mask, ops.flip(mask, axis=0)], axis=1)[..., None]  # [T, 2, B, 1]
        recurrent = self.recurrent_kernel

        # One step of both directions: the state (h, c) moves only at a real
        # token; `best` keeps the running max of the outputs at real tokens.
        # A fori_loop, not a scan: with static bounds JAX lowers it to a scan
        # (so it differentiates), and TensorFlow's while_loop takes a width
        # known only at run time (a graph traced for any width; Keras 3.15's
        # TensorFlow scan does not).
        # The inputs ride in the carry, unchanged, rather than in the
        # closure: jax2onnx turns closed-over values into constants, which
        # a traced (batch-dependent) tensor cannot be.
        def step(t, carry):
            h, c, best, steps, masks = carry  # [2, B, H] x 3, [T, 2, B, G], [T, 2, B, 1]
            x, m = steps[t], masks[t]  # [2, B, G], [2, B, 1]
            z = x + ops.einsum("dbh,dhg->dbg", h, recurrent)  # [2, B, G]
            i, f, g, o = ops.split(z, 4, axis=-1)
            c_new = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
            h_new = ops.sigmoid(o) * ops.tanh(c_new)
            return (ops.where(m, h_new, h), ops.where(m, c_new, c),
                    ops.where(m, ops.maximum(best, h_new), best), steps, masks)

        # Taken from a tensor, not built from its shape: an exported graph's
        # batch is symbolic, and JAX's ONNX export refuses ops.zeros/ops.full
        # of a symbolic shape (InconclusiveDimensionOperation).
        zeros = ops.zeros_like(steps[0][..., :units])  # [2, B, H]
        lowest = zeros - 3.0e38
        h, _, best, _, _ = ops.fori_loop(0, ops.shape(steps)[0], step, (zeros, zeros, lowest, steps, masks))
        if self.pooling == "max":
            # A sentence of only padding has no output: zeros, not -3e38.
            h = ops.where(ops.any(real, axis=1)[None, :, None], best, ops.zeros_like(best))
        return ops.concatenate([h[0], h[1]], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, pooling=self.pooling)
        return config


class _Orthogonal(keras.initializers.Initializer):
    """Keras' orthogonal initializer for each direction's [H, G] kernel."""

    def __call__(self, shape, dtype=None):
        return ops.stack([keras.initializers.Orthogonal()(shape[1:], dtype=dtype) for _ in range(shape[0])])


class _ForgetBias(keras.initializers.Initializer):
    def __init__(self, units):
        self.units = units

    def __call__(self, shape, dtype=None):
        gates = ops.concatenate([ops.zeros((self.units,)), ops.ones((self.units,)), ops.zeros((2 * self.units,))])
        return ops.cast(ops.tile(gates[None], (shape[0], 1)), dtype or "float32")

    def get_config(self):
        return {"units": self.units}
