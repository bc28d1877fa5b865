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

Training only the rows a transfer set uses (`trained_rows`): Adam leaves a
row whose gradient is zero at every step exactly where it started (its
moments stay zero, so its step is 0 / (0 + epsilon)), so a table of which
training reads K of V rows learns the same with only those K rows trainable.
The other V - K rows, and their two Adam slots, then cost nothing per step;
on SST-2 (K = 11,572 of 30,522) that was most of a small student's step
(benchmarks/results/student-steps.md).  `merged_weights` writes the K rows
back into the whole table, for a student saved without them.
"""

import keras
import numpy as np
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

    With `trained_rows=K`, the trained channel's `embeddings` [V, E] are
    frozen and `trained` [K, E] holds the K rows training may change
    (`set_trained_rows` names them; until then no row trains); `row_slots`
    [V] maps each id to its row of `trained`, K for the frozen ones.  The
    output is the same as without: ids of trained rows read `trained`, the
    rest `embeddings`.  The training is the same as without when no row
    outside the K is read and the optimizer moves no row whose gradient is
    zero: Adam without weight decay (an AdamW decays every row; a global
    gradient-norm clip sums the same squares in another order).

    Call arguments:
        token_ids: integer ids `[B, T]`.

    Returns `[B, T, output_dim]`, or `[B, T, 2 * output_dim]` for
    "multichannel".

    Args:
        vocab_size: rows of the matrix, the teacher's vocabulary size V.
        output_dim: width E of one channel.
        variant: "static", "non-static" or "multichannel".
            Defaults to "non-static".
        trained_rows: None trains every row; a count K (1..V) trains only
            the K rows `set_trained_rows` names (not with "static", which
            trains none). Defaults to None.
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

    def __init__(self, vocab_size, output_dim, variant="non-static", trained_rows=None, **kwargs):
        super().__init__(**kwargs)
        # ValueError, not a kbert error: these are programming mistakes
        # caught at construction, like Keras' own layers do.
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if trained_rows is not None and (variant == "static" or not 1 <= trained_rows <= vocab_size):
            raise ValueError(f"trained_rows must be None or in 1..{vocab_size} (not with the static variant), "
                             f"got {trained_rows!r} ({variant})")
        self.vocab_size = vocab_size
        self.output_dim = output_dim
        self.variant = variant
        self.trained_rows = trained_rows

    @property
    def channels(self):
        return 2 if self.variant == "multichannel" else 1

    def build(self, input_shape):
        init = keras.initializers.RandomUniform(-0.25, 0.25)  # Kim's range for unknown words
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocab_size, self.output_dim),
            initializer=init,
            trainable=self.variant != "static" and self.trained_rows is None,
        )
        if self.variant == "multichannel":
            self.static_embeddings = self.add_weight(
                name="static_embeddings",
                shape=(self.vocab_size, self.output_dim),
                initializer=init,
                trainable=False,
            )
        if self.trained_rows is not None:
            # Zeros and a constant: these initializers draw no random numbers,
            # so the layers built after this one start as they would without.
            self.trained = self.add_weight(
                name="trained", shape=(self.trained_rows, self.output_dim), initializer="zeros", trainable=True
            )
            self.row_slots = self.add_weight(
                name="row_slots",
                shape=(self.vocab_size,),
                dtype="int32",
                initializer=keras.initializers.Constant(self.trained_rows),
                trainable=False,
            )

    def trained_ids(self):
        """The ids of the trained rows (NumPy), in the order of `trained`'s
        rows; empty until `set_trained_rows` names them."""
        slots = ops.convert_to_numpy(self.row_slots.value)
        ids = np.flatnonzero(slots < self.trained_rows)
        return ids[np.argsort(slots[ids])]

    def set_matrix(self, matrix):
        """Copy a [vocab_size, output_dim] matrix into every channel."""
        self.embeddings.assign(matrix)
        if self.variant == "multichannel":
            self.static_embeddings.assign(matrix)
        ids = self.trained_ids() if self.trained_rows is not None else ()
        if len(ids):  # none named yet: `set_trained_rows` copies them when it names them
            self.trained.assign(np.asarray(matrix)[ids])

    def set_trained_rows(self, ids):
        """Train the rows of these K ids (distinct, in 0..V-1), starting
        from their current values; every other row is frozen."""
        if self.trained_rows is None:
            raise ValueError("set_trained_rows needs a layer built with trained_rows")
        ids = np.asarray(ids).reshape(-1)
        if (ids.size != self.trained_rows or np.unique(ids).size != ids.size
                or ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"set_trained_rows takes {self.trained_rows} distinct ids in 0..{self.vocab_size - 1}, "
                             f"got {ids.size} ids")
        slots = np.full(self.vocab_size, self.trained_rows, np.int32)
        slots[ids] = np.arange(ids.size, dtype=np.int32)
        self.row_slots.assign(slots)
        self.trained.assign(ops.convert_to_numpy(self.embeddings.value)[ids])

    def merged_weights(self):
        """This layer's weights as a layer without `trained_rows` holds them
        (NumPy): the trained rows written back into the whole table."""
        table = ops.convert_to_numpy(self.embeddings.value).copy()
        if self.trained_rows is not None:
            table[self.trained_ids()] = ops.convert_to_numpy(self.trained.value)
        if self.variant == "multichannel":
            return [table, ops.convert_to_numpy(self.static_embeddings.value)]
        return [table]

    def call(self, token_ids):
        token_ids = ops.cast(token_ids, "int32")
        vectors = ops.take(self.embeddings, token_ids, axis=0)  # [B, T, E]
        if self.trained_rows is not None:
            slots = ops.take(self.row_slots, token_ids, axis=0)  # [B, T], K: a frozen row
            # Frozen ids read some trained row too (clipped into range); the
            # `where` drops it, and with it that read's gradient.
            trained = ops.take(self.trained, ops.minimum(slots, self.trained_rows - 1), axis=0)
            vectors = ops.where(ops.expand_dims(slots < self.trained_rows, -1), trained, vectors)
        if self.variant == "multichannel":
            frozen = ops.take(self.static_embeddings, token_ids, axis=0)
            vectors = ops.concatenate([frozen, vectors], axis=-1)
        not_padding = ops.cast(ops.not_equal(token_ids, 0), vectors.dtype)
        return vectors * ops.expand_dims(not_padding, -1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim * self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, output_dim=self.output_dim, variant=self.variant,
                      trained_rows=self.trained_rows)
        return config
