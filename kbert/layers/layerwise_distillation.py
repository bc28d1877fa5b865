"""`Layerwise-Distillation`: the losses that match a student's layers to its teacher's.

Shape legend: B = batch, T = tokens, H = the student's hidden width, G =
the teacher's, N = the student's attention heads, M = the teacher's,
C = labels.

The logits pass through unchanged; the layer adds to the model's loss
(TinyBERT, Jiao et al. 2020; MiniLM, Wang et al. 2020):

- hidden states: the mean squared error between each student layer's
  output, projected to the teacher's width by a learned `Projection-K`
  when the widths differ (TinyBERT's W_h), and its teacher layer's output,
  over the real tokens;
- attention: the KL divergence from each teacher layer's attention
  distribution over keys to its student layer's, over the real query
  tokens and the heads (MiniLM's distribution loss, at every mapped layer
  as TinyBERT matches every one).  When the head counts differ, both sides'
  distributions are first averaged over their heads.
"""

import keras
from keras import ops

# Probabilities are clipped here before their logarithm: padded keys get
# probability ~0 on both sides, and 0 * log 0 must read as 0.
EPSILON = 1e-12


@keras.saving.register_keras_serializable(package="kbert")
class LayerwiseDistillation(keras.layers.Layer):
    """Adds hidden-state and attention losses between paired student and
    teacher layers; returns the student's logits unchanged.

    Call arguments:
        inputs: one flat list, `[logits [B, C], mask [B, T],` the
            `hidden_layers` student hidden states `[B, T, H]`, their
            teacher's `[B, T, G]`, the `attention_layers` student attention
            probabilities `[B, N, T, T]`, their teacher's `[B, M, T, T]]`.

    Returns the logits `[B, C]`.

    Args:
        hidden_weight: the hidden-state loss's weight (0: not computed).
        attention_weight: the attention loss's weight (0: not computed).
        hidden_layers: how many hidden-state pairs the inputs hold.
        attention_layers: how many attention pairs the inputs hold.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import LayerwiseDistillation

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3)).astype("float32")  # [B, C]
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype="bool")  # [B, T]
    student = rng.normal(size=(2, 4, 8)).astype("float32")  # [B, T, H]
    teacher = rng.normal(size=(2, 4, 16)).astype("float32")  # [B, T, G]: projected from H
    layer = LayerwiseDistillation(hidden_weight=1.0, hidden_layers=1)
    out = layer([logits, mask, student, teacher])  # the logits; layer.losses holds the loss
    ```
    """

    def __init__(self, hidden_weight=0.0, attention_weight=0.0, hidden_layers=0, attention_layers=0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_weight = float(hidden_weight)
        self.attention_weight = float(attention_weight)
        self.hidden_layers = int(hidden_layers)
        self.attention_layers = int(attention_layers)
        # The hidden states come with the embeddings' padding mask; the
        # layer reads padding from its `mask` input, and its logits have none.
        self.supports_masking = True

    def build(self, input_shape):
        k = self.hidden_layers
        student, teacher = input_shape[2 : 2 + k], input_shape[2 + k : 2 + 2 * k]
        # A learned projection only where a student layer is narrower or wider than its teacher's.
        self.projections = [
            None if s[-1] == t[-1] else keras.layers.Dense(t[-1], use_bias=False, name=f"Projection-{i + 1}",
                                                           dtype=self.dtype_policy, trainable=self.trainable)
            for i, (s, t) in enumerate(zip(student, teacher))
        ]
        for projection, shape in zip(self.projections, student):
            if projection is not None:
                projection.build(shape)

    def call(self, inputs):
        logits, mask = inputs[0], ops.cast(inputs[1], "float32")  # [B, C], [B, T]
        k, a = self.hidden_layers, self.attention_layers
        hidden = inputs[2 : 2 + 2 * k]
        attention = inputs[2 + 2 * k : 2 + 2 * k + 2 * a]
        tokens = ops.maximum(ops.sum(mask), 1.0)
        total = ops.zeros((), "float32")
        if self.hidden_weight and k:
            losses = []
            for projection, student, teacher in zip(self.projections, hidden[:k], hidden[k:]):
                student = ops.cast(student if projection is None else projection(student), "float32")
                error = ops.mean(ops.square(student - ops.cast(teacher, "float32")), axis=-1)  # [B, T]
                losses.append(ops.sum(error * mask) / tokens)
            total = total + self.hidden_weight * ops.mean(ops.stack(losses))
        if self.attention_weight and a:
            losses = []
            for student, teacher in zip(attention[:a], attention[a:]):
                student, teacher = ops.cast(student, "float32"), ops.cast(teacher, "float32")
                if student.shape[1] != teacher.shape[1]:  # other head counts: the heads' mean distribution
                    student = ops.mean(student, axis=1, keepdims=True)
                    teacher = ops.mean(teacher, axis=1, keepdims=True)
                # [B, N, T]: KL over the keys of each query
                kl = ops.sum(teacher * (ops.log(teacher + EPSILON) - ops.log(student + EPSILON)), axis=-1)
                losses.append(ops.sum(kl * mask[:, None, :]) / (tokens * kl.shape[1]))
            total = total + self.attention_weight * ops.mean(ops.stack(losses))
        self.add_loss(total)
        return logits

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(hidden_weight=self.hidden_weight, attention_weight=self.attention_weight,
                      hidden_layers=self.hidden_layers, attention_layers=self.attention_layers)
        return config
