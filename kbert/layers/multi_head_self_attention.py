"""`Encoder-{n}-MultiHeadSelfAttention`: the original's `attention/self` plus
`attention/output/dense`.

Shape legend (as in Google's modeling.py):
    B = batch size, F = `from` sequence length, T = `to` sequence length,
    N = number of heads, H = size of each head, D = hidden size (N * H).
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class MultiHeadSelfAttention(keras.layers.Layer):
    """BERT's multi-head self-attention, output projection included.

    `Encoder-{n}-MultiHeadSelfAttention` in `BertModel`.  The query, key and
    value projections split the hidden size H into `num_attention_heads`
    heads of H / N features; each head takes a softmax over the keys of its
    scaled dot products, and the heads' weighted values are joined and
    projected back to H.  Keys that `attention_mask` rules out get -10000
    added to their scores, exactly as the original does (not minus
    infinity: the value shows in the outputs at padded positions).  The
    Keras padding mask passes through untouched; only `attention_mask`
    decides what is attended to.

    Call arguments:
        inputs: hidden states `[B, T, H]`.
        attention_mask: None (attend to everything), `[B, T]` (1 or True:
            a key to attend to) or `[B, T, T]` (per query and key, as packed
            rows need). Defaults to None.
        training: apply the dropout on the attention probabilities.
            Defaults to None (Keras' learning phase).
        return_probabilities: if True, return the attention probabilities
            `[B, N, T, T]` instead of the output. Defaults to False.

    Returns `[B, T, H]` (or `[B, N, T, T]`).

    Args:
        num_attention_heads: number of heads N; must divide the input's
            hidden size H.
        attention_probs_dropout_prob: dropout rate on the attention
            probabilities while training. Defaults to 0.1.
        initializer_range: standard deviation of the truncated normal
            initializer of the four kernels. Defaults to 0.02.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import MultiHeadSelfAttention

    hidden = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")  # [B, T, H]
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])  # [B, T], 0 = padding
    layer = MultiHeadSelfAttention(num_attention_heads=2)
    outputs = layer(hidden, attention_mask=mask)  # [B, T, H]
    probs = layer(hidden, attention_mask=mask, return_probabilities=True)  # [B, N, T, T]
    ```
    """

    def __init__(
        self,
        num_attention_heads,
        attention_probs_dropout_prob=0.1,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # The Keras padding mask passes through; attention itself reads the
        # explicit `attention_mask` (the original's additive -10000).
        self.supports_masking = True
        self.num_attention_heads = num_attention_heads
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range

    def build(self, inputs_shape, attention_mask_shape=None):
        input_shape = inputs_shape
        hidden_size = input_shape[-1]
        if hidden_size % self.num_attention_heads:
            raise ValueError(
                f"{self.name}: hidden size {hidden_size} is not a multiple of "
                f"{self.num_attention_heads} heads"
            )
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        # The sublayers compute under this layer's dtype policy (mixed precision
        # included) and are frozen with it: Keras' `trainable = False` reaches
        # only the sublayers that exist then, and a frozen layer reloaded from
        # .keras is built after its flag is set.
        dense = dict(kernel_initializer=init, dtype=self.dtype_policy, trainable=self.trainable)
        self.query = keras.layers.Dense(hidden_size, name="query", **dense)
        self.key = keras.layers.Dense(hidden_size, name="key", **dense)
        self.value = keras.layers.Dense(hidden_size, name="value", **dense)
        self.output_dense = keras.layers.Dense(hidden_size, name="output", **dense)
        for dense in (self.query, self.key, self.value, self.output_dense):
            dense.build(input_shape)
        self.dropout = keras.layers.Dropout(self.attention_probs_dropout_prob, dtype=self.dtype_policy)

    def _split_heads(self, x, batch, length):
        # [B, T, D] -> [B, N, T, H].  B and T are read from the layer's input,
        # not from `x`: tf2onnx turns a Dense on [B, T, D] into a matmul on
        # [B*T, D] whose shape it then reports as x's.
        head_size = ops.shape(x)[-1] // self.num_attention_heads
        x = ops.reshape(x, (batch, length, self.num_attention_heads, head_size))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, inputs, attention_mask=None, training=None, return_probabilities=False):
        # return_probabilities: the softmax over keys [B, N, F, T] instead of
        # the output, for attention maps (`kbert.attention_probabilities`).
        hidden_size = ops.shape(inputs)[-1]
        head_size = hidden_size // self.num_attention_heads
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        query = self._split_heads(self.query(inputs), batch, length)  # [B, N, F, H]
        key = self._split_heads(self.key(inputs), batch, length)  # [B, N, T, H]
        value = self._split_heads(self.value(inputs), batch, length)  # [B, N, T, H]

        # [B, N, F, T]
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))
        scores = scores * ops.cast(1.0 / math.sqrt(head_size), scores.dtype)
        if attention_mask is not None:
            # The original adds -10000 (not -inf) to the scores of padded keys:
            # the exact value matters for outputs at padded query positions
            # and for rows that are all padding.  A [B, F, T] mask (packed
            # rows: each query sees its own example's keys) is per query.
            if len(attention_mask.shape) == 3:
                mask = ops.cast(attention_mask[:, None, :, :], scores.dtype)  # [B, 1, F, T]
            else:
                mask = ops.cast(attention_mask[:, None, None, :], scores.dtype)  # [B, 1, 1, T]
            scores = scores + (1.0 - mask) * -10000.0
        probs = ops.softmax(scores, axis=-1)  # [B, N, F, T]
        if return_probabilities:
            return probs
        probs = self.dropout(probs, training=training)

        context = ops.matmul(probs, value)  # [B, N, F, H]
        context = ops.transpose(context, (0, 2, 1, 3))  # [B, F, N, H]
        context = ops.reshape(context, (batch, length, hidden_size))
        return self.output_dense(context)  # [B, F, D]

    # No compute_output_shape: the shape depends on `return_probabilities`,
    # which Keras does not pass to it, so Keras traces `call` symbolically.

    def get_config(self):
        args = ("num_attention_heads", "attention_probs_dropout_prob", "initializer_range")
        return {**super().get_config(), **{name: getattr(self, name) for name in args}}
