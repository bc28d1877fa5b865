"""`Student-Embedding`: the CNN student's word vectors, taken from the teacher.

Kim (2014) compares three ways to use pre-trained word vectors, and this
layer offers all of them under his names:

    static        one channel, frozen
    non-static    one channel, fine-tuned with the rest of the student
    multichannel  two channels from the same start, one frozen and one
                  fine-tuned; the channels are concatenated on the feature
                  axis, so each convolution filter has its own weights per
                  channel and sums them, as in Kim's own code

The layer is created with a random matrix; `kbert.student.build_student`
then copies the teacher's `Embedding-Token` rows in (the matrix is a weight,
so it travels in the `.keras` file and never in the config).

Padding positions (token id 0) come out as zero vectors, not as the
teacher's `[PAD]` row: the convolutions then see the zero padding Kim used
around each sentence, whatever the batch's padded length.
"""

import keras
from keras import ops

from kbert.options import VARIANTS


@keras.saving.register_keras_serializable(package="kbert")
class StudentEmbedding(keras.layers.Layer):
    """The student's word vectors, with Kim (2014)'s three ways to train them.

    `Student-Embedding` of `CNNStudent` and `BiLSTMStudent`.  The matrix
    starts random (uniform in [-0.25, 0.25]); `set_matrix` copies the
    teacher's vectors in, as `kbert.student.build_student` does.  The
    `variant` decides what training may change:

    - "static": one frozen channel;
    - "non-static": one channel, trained with the rest of the student;
    - "multichannel": two channels from the same start, a frozen one and
      a trained one, concatenated on the feature axis (frozen first).

    Token id 0 (padding) gives a zero vector.

    Call arguments:
        token_ids: integer ids `[B, T]`.

    Returns `[B, T, output_dim]`, or `[B, T, 2 * output_dim]` for
    "multichannel".

    Args:
        vocab_size: rows of the matrix, the teacher's vocabulary size V.
        output_dim: width E of one channel.
        variant: "static", "non-static" or "multichannel".
            Defaults to "non-static".
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import StudentEmbedding

    token_ids = np.array([[2, 7, 8, 3, 0]], dtype="int32")  # [B, T], 0 = padding
    layer = StudentEmbedding(vocab_size=30, output_dim=8, variant="multichannel")
    layer.build(token_ids.shape)
    layer.set_matrix(np.random.default_rng(0).normal(size=(30, 8)).astype("float32"))  # [V, E]
    vectors = layer(token_ids)  # [B, T, 2 * E], zeros at the padding
    ```
    """

    def __init__(self, vocab_size, output_dim, variant="non-static", **kwargs):
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            # ValueError, not a kbert error: this is a programming mistake
            # caught at construction, like Keras' own layers do.
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.vocab_size = vocab_size
        self.output_dim = output_dim
        self.variant = variant

    @property
    def channels(self):
        return 2 if self.variant == "multichannel" else 1

    def build(self, input_shape):
        init = keras.initializers.RandomUniform(-0.25, 0.25)  # Kim's range for unknown words
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocab_size, self.output_dim),
            initializer=init,
            trainable=self.variant != "static",
        )
        if self.variant == "multichannel":
            self.static_embeddings = self.add_weight(
                name="static_embeddings",
                shape=(self.vocab_size, self.output_dim),
                initializer=init,
                trainable=False,
            )

    def set_matrix(self, matrix):
        """Copy a [vocab_size, output_dim] matrix into every channel."""
        self.embeddings.assign(matrix)
        if self.variant == "multichannel":
            self.static_embeddings.assign(matrix)

    def call(self, token_ids):
        token_ids = ops.cast(token_ids, "int32")
        vectors = ops.take(self.embeddings, token_ids, axis=0)
        if self.variant == "multichannel":
            frozen = ops.take(self.static_embeddings, token_ids, axis=0)
            vectors = ops.concatenate([frozen, vectors], axis=-1)
        not_padding = ops.cast(ops.not_equal(token_ids, 0), vectors.dtype)
        return vectors * ops.expand_dims(not_padding, -1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim * self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, output_dim=self.output_dim, variant=self.variant)
        return config
