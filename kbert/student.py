"""The students, as named Keras layers: `CNNStudent`, Kim (2014)'s
sentence CNN, and `BiLSTMStudent`, Tang et al. (2019)'s BiLSTM.

The CNN:

    Student-Input-Token    int32 [B, T], token id 0 = padding
    Student-Embedding      [B, T, D * channels]   (teacher's word-piece vectors)
    Student-Conv-3/-4/-5   [B, T + w - 1, 100]    (ReLU, full convolution)
    Student-Pool           [B, 300]               (max over the sentence only)
    Student-Dropout        rate 0.5
    Student-Logits         [B, C]                 (max-norm 3 on each column, Kim's l2 constraint)

The BiLSTM (Tang et al.: one layer, the two directions' last states
concatenated, a ReLU layer, the logits):

    Student-Input-Token    int32 [B, T]
    Student-Embedding      [B, T, D * channels]
    Student-BiLSTM         [B, 2 units]           (`pooling` "last" or "max")
    Student-Hidden         [B, hidden]            (ReLU)

and for sentence pairs read apart (`separator_id` set; Tang et al.'s
siamese reading), each side alone through the same layers, then matched:

    Student-Pair-Split     2 x [B, T]             (side a's ids, side b's)
    Student-Embedding      2 x [B, T, D * channels]   (one layer, called on each side)
    Student-BiLSTM         2 x [B, 2 units]           (one layer, called on each side)
    Student-Pair-Match     [B, 8 units]           ([a, b, a * b, |a - b|])
    Student-Hidden ...
    Student-Dropout
    Student-Logits         [B, C]

A student reads the teacher's token ids ([CLS] ... [SEP], both sentences
of a pair with their [SEP] between them) and ignores segment ids.  Like
`BertModel`, it is a functional model whose `get_config()` returns exactly
its constructor's arguments, so a `.keras` file reloads on any backend.

`build_student` makes one from the teacher's `Embedding-Token` matrix; with
`embedding_dim` smaller than the teacher's hidden size, the matrix is first
projected onto its top principal directions, which keeps the student small
(a 30k x 768 matrix is most of a CNN student's size) while keeping as much
of the vectors' spread as a linear map of that width can.
"""

import logging

import keras
import numpy as np

from kbert.config import BertConfig
from kbert.errors import ConfigError
from kbert.layers.student_bilstm import StudentBiLSTM
from kbert.layers.student_conv import StudentConv
from kbert.layers.student_embedding import StudentEmbedding
from kbert.layers.student_pair_match import StudentPairMatch
from kbert.layers.student_pair_split import StudentPairSplit
from kbert.layers.student_pool import StudentPool
from kbert.model import BertModel, policy_name, policy_scope
from kbert.options import LAYER_MAPS, POOLINGS, VARIANTS
from kbert.registry import STUDENTS

logger = logging.getLogger(__name__)


def _check_positive(**values):
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"student `{name}` must be a positive integer, got {value!r}")


@keras.saving.register_keras_serializable(package="kbert")
class CNNStudent(keras.Model):
    """The CNN student.

    Kim (2014)'s sentence classifier, distilled from a BERT teacher: word
    vectors (`StudentEmbedding`), one bank of ReLU filters per width
    (`StudentConv`), max-over-time pooling inside each sentence
    (`StudentPool`), dropout and a dense layer of logits.  It reads the
    teacher's token ids `[B, T]` (0: padding; a pair's two sentences with
    `[SEP]` between) and outputs logits `[B, num_labels]`.  Built this way
    its vectors are random; `kbert.student.build_student` starts them
    from the teacher's.

    Args:
        vocab_size: rows of the embedding matrix (the teacher's vocabulary).
        num_labels: number of logits C.
        embedding_dim: width of one embedding channel. Defaults to 300.
        variant: "static", "non-static" or "multichannel" (Kim's names;
            see `StudentEmbedding`). Defaults to "non-static".
        filters: feature maps per filter width. Defaults to 100.
        kernel_sizes: the filter widths. Defaults to (3, 4, 5).
        dropout: rate of `Student-Dropout`. Defaults to 0.5.
        max_norm: max l2 norm of each `Student-Logits` column (None: none).
            Defaults to 3.0.
        seq_len: fix the input length (None accepts any). Defaults to None.
        dtype: a Keras dtype policy for every layer (None: the global one;
            see `kbert.model.policy_scope`). Defaults to None.
        **kwargs: arguments of `keras.Model`, such as `name`.

    Example:

    ```python
    import numpy as np
    from kbert import CNNStudent

    student = CNNStudent(vocab_size=30, num_labels=3, embedding_dim=8, filters=4, kernel_sizes=(2, 3))
    token_ids = np.array([[2, 7, 8, 3, 0], [2, 9, 10, 11, 3]], dtype="int32")  # [B, T], 0 = padding
    logits = student(token_ids)  # [B, C]
    ```
    """

    def __init__(
        self,
        vocab_size,
        num_labels,
        embedding_dim=300,
        variant="non-static",
        filters=100,
        kernel_sizes=(3, 4, 5),
        dropout=0.5,
        max_norm=3.0,
        seq_len=None,
        dtype=None,
        **kwargs,
    ):
        if variant not in VARIANTS:
            raise ConfigError(f"student variant must be one of {VARIANTS}, got {variant!r}")
        _check_positive(vocab_size=vocab_size, num_labels=num_labels, embedding_dim=embedding_dim, filters=filters)
        kernel_sizes = tuple(int(w) for w in kernel_sizes)
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ConfigError(f"student `kernel_sizes` must be positive widths, got {kernel_sizes}")

        with policy_scope(dtype):  # every layer under the model's dtype policy
            token_ids = keras.Input(shape=(seq_len,), dtype="int32", name="Student-Input-Token")
            vectors = StudentEmbedding(vocab_size, embedding_dim, variant, name="Student-Embedding")(token_ids)
            maps = [
                StudentConv(filters, width, name=f"Student-Conv-{width}")(vectors) for width in kernel_sizes
            ]
            pooled = StudentPool(kernel_sizes, name="Student-Pool")([token_ids] + maps)
            pooled = keras.layers.Dropout(dropout, name="Student-Dropout")(pooled)
            constraint = None if max_norm is None else keras.constraints.MaxNorm(max_norm, axis=0)
            logits = keras.layers.Dense(num_labels, kernel_constraint=constraint, name="Student-Logits")(pooled)
            super().__init__(inputs=token_ids, outputs=logits, **({"dtype": dtype} if dtype is not None else {}), **kwargs)

        self.vocab_size = vocab_size
        self.num_labels = num_labels
        self.embedding_dim = embedding_dim
        self.variant = variant
        self.filters = filters
        self.kernel_sizes = kernel_sizes
        self.dropout = dropout
        self.max_norm = max_norm
        self.seq_len = seq_len
        self.dtype_spec = policy_name(dtype)

    def get_config(self):
        return {
            "name": self.name,
            "vocab_size": self.vocab_size,
            "num_labels": self.num_labels,
            "embedding_dim": self.embedding_dim,
            "variant": self.variant,
            "filters": self.filters,
            "kernel_sizes": list(self.kernel_sizes),
            "dropout": self.dropout,
            "max_norm": self.max_norm,
            "seq_len": self.seq_len,
            "dtype": self.dtype_spec,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="kbert")
class BiLSTMStudent(keras.Model):
    """Tang et al. (2019)'s BiLSTM student.

    Word vectors (`StudentEmbedding`), a bidirectional LSTM that skips
    padding (`StudentBiLSTM`), a ReLU layer, dropout and a dense layer of
    logits.  It reads the teacher's token ids `[B, T]` (0: padding) and
    outputs logits `[B, num_labels]`.  With `separator_id`, a sentence
    pair is split at `[SEP]` (`StudentPairSplit`), the same embedding and
    LSTM read each sentence, and the two results are matched
    (`StudentPairMatch`) before the ReLU layer.  Built this way its
    vectors are random; `kbert.student.build_student` starts them from
    the teacher's.

    Args:
        vocab_size: rows of the embedding matrix (the teacher's vocabulary).
        num_labels: number of logits C.
        embedding_dim: width of one embedding channel. Defaults to 300.
        variant: "static", "non-static" or "multichannel", as for
            `CNNStudent`. Defaults to "non-static".
        units: state width of each LSTM direction. Defaults to 100.
        hidden: width of the ReLU layer on the pooled states.
            Defaults to 200.
        pooling: "last" (Tang et al.) or "max" over the outputs.
            Defaults to "last".
        dropout: rate of `Student-Dropout`. Defaults to 0.2.
        seq_len: fix the input length (None accepts any). Defaults to None.
        separator_id: None reads a pair as one sequence, [SEP] between;
            the id of [SEP] reads its two sentences apart and matches them
            (see the module docstring). Defaults to None.
        dtype: a Keras dtype policy for every layer (None: the global one;
            see `kbert.model.policy_scope`). Defaults to None.
        **kwargs: arguments of `keras.Model`, such as `name`.

    Example:

    ```python
    import numpy as np
    from kbert import BiLSTMStudent

    # Sentence pairs, [CLS] = 2 and [SEP] = 3, read side by side.
    student = BiLSTMStudent(vocab_size=30, num_labels=2, embedding_dim=8, units=4, hidden=8, separator_id=3)
    token_ids = np.array([[2, 7, 8, 3, 9, 3, 0], [2, 9, 3, 10, 11, 12, 3]], dtype="int32")  # [B, T]
    logits = student(token_ids)  # [B, C]
    ```
    """

    def __init__(self, vocab_size, num_labels, embedding_dim=300, variant="non-static", units=100, hidden=200,
                 pooling="last", dropout=0.2, seq_len=None, separator_id=None, dtype=None, **kwargs):
        if variant not in VARIANTS:
            raise ConfigError(f"student variant must be one of {VARIANTS}, got {variant!r}")
        if pooling not in POOLINGS:
            raise ConfigError(f"student pooling must be one of {POOLINGS}, got {pooling!r}")
        _check_positive(vocab_size=vocab_size, num_labels=num_labels, embedding_dim=embedding_dim, units=units,
                        hidden=hidden)
        if separator_id is not None and not 0 < separator_id < vocab_size:
            raise ConfigError(f"student `separator_id` must be a token id in 1..{vocab_size - 1}, got {separator_id!r}")
        with policy_scope(dtype):  # every layer under the model's dtype policy
            token_ids = keras.Input(shape=(seq_len,), dtype="int32", name="Student-Input-Token")
            sides = ([token_ids] if separator_id is None
                     else StudentPairSplit(separator_id, name="Student-Pair-Split")(token_ids))
            embedding = StudentEmbedding(vocab_size, embedding_dim, variant, name="Student-Embedding")
            bilstm = StudentBiLSTM(units, pooling, name="Student-BiLSTM")
            states = [bilstm([ids, embedding(ids)]) for ids in sides]  # the same weights on both sides of a pair
            states = states[0] if separator_id is None else StudentPairMatch(name="Student-Pair-Match")(states)
            x = keras.layers.Dense(hidden, activation="relu", name="Student-Hidden")(states)
            x = keras.layers.Dropout(dropout, name="Student-Dropout")(x)
            logits = keras.layers.Dense(num_labels, name="Student-Logits")(x)
            super().__init__(inputs=token_ids, outputs=logits, **({"dtype": dtype} if dtype is not None else {}), **kwargs)
        self.vocab_size, self.num_labels, self.embedding_dim = vocab_size, num_labels, embedding_dim
        self.variant, self.units, self.hidden, self.pooling = variant, units, hidden, pooling
        self.dropout, self.seq_len, self.separator_id = dropout, seq_len, separator_id
        self.dtype_spec = policy_name(dtype)

    def get_config(self):
        return {"name": self.name, "vocab_size": self.vocab_size, "num_labels": self.num_labels,
                "embedding_dim": self.embedding_dim, "variant": self.variant, "units": self.units,
                "hidden": self.hidden, "pooling": self.pooling, "dropout": self.dropout, "seq_len": self.seq_len,
                "separator_id": self.separator_id, "dtype": self.dtype_spec}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# The CNN's name before the registry; `.keras` files saved then carry it.
StudentModel = CNNStudent
keras.saving.get_custom_objects()["kbert>StudentModel"] = CNNStudent


def project_embeddings(matrix, dim):
    """[V, H] -> [V, dim]: the rows' coordinates on their top `dim` principal axes.

    Rows are centred first, as PCA needs: the principal axes describe the
    spread around the mean row.  Dropping the mean shifts every token's
    vector by the same amount, which a filter's bias largely absorbs.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if not 1 <= dim <= matrix.shape[1]:
        raise ConfigError(f"embedding_dim {dim} is outside 1..{matrix.shape[1]} (the teacher's hidden size)")
    if dim == matrix.shape[1]:
        return matrix.astype(np.float32)
    centred = matrix - matrix.mean(axis=0, keepdims=True)
    # Right singular vectors are the principal axes; SVD of [V, H] costs
    # O(V H^2), seconds for BERT-base, once per student.
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    kept = float((singular[:dim] ** 2).sum() / max((singular**2).sum(), 1e-30))
    logger.info("projected embeddings %s -> %d dims, keeping %.1f%% of the variance", matrix.shape, dim, 100 * kept)
    return (centred @ axes[:dim].T).astype(np.float32)


def static_start(vectors, counts, dim, sif=1e-3):
    """Model2Vec's recipe for a student's starting vectors, from the static
    vectors the teacher gave each token (`kbert.materials.static_vectors`):
    PCA to `dim`, then frequency weighting, each row scaled by
    sif / (sif + p(token)) (the smooth inverse frequency of Arora et al.
    2017, which Model2Vec uses), p from `counts` [V] (the token's
    occurrences in the training text): frequent tokens ("the", ",") shrink,
    rare and unseen ones keep their length."""
    counts = np.asarray(counts, np.float64)
    if counts.shape != (len(vectors),):
        raise ConfigError(f"token counts have shape {counts.shape}, the vectors {len(vectors)} rows")
    p = counts / max(counts.sum(), 1.0)
    return (project_embeddings(vectors, dim) * (sif / (sif + p))[:, None]).astype(np.float32)


def build_student(embedding, num_labels, *, student="cnn", variant="non-static", embedding_dim=None, **kwargs):
    """A student whose `Student-Embedding` starts from the teacher's matrix.

    Args:
        embedding: the starting vectors [V, H] (NumPy): the teacher's
            `Embedding-Token` matrix, or the materials' static vectors.
        num_labels: number of logits C.
        student: a registered student's name (`kbert.registry.STUDENTS`):
            "cnn" (`CNNStudent`) or "bilstm" (`BiLSTMStudent`).
        variant: "static", "non-static" or "multichannel".
        embedding_dim: None keeps H; smaller projects the matrix (see
            `project_embeddings`).
        **kwargs: the other arguments of the student's class.
    """
    if student not in STUDENTS:
        raise ConfigError(f"student must be one of {tuple(STUDENTS)}, got {student!r}")
    if STUDENTS[student].start != "embedding":
        raise ConfigError(f"the {student} student is cut from the teacher model, not built from its token "
                          "vectors: use kbert.student.cut_teacher")
    embedding = np.asarray(embedding)
    if embedding.ndim != 2:
        raise ConfigError(f"the teacher's embedding matrix must be [V, H], got shape {embedding.shape}")
    dim = embedding.shape[1] if embedding_dim is None else int(embedding_dim)
    matrix = project_embeddings(embedding, dim)
    model_class = STUDENTS[student].load()
    model = model_class(embedding.shape[0], num_labels, embedding_dim=dim, variant=variant, **kwargs)
    model.get_layer("Student-Embedding").set_matrix(matrix)
    return model


def teacher_layers(layers, depth, layer_map="bottom"):
    """The 1-based teacher encoder layers a student of `layers` layers keeps
    from `depth`, in order: "bottom" the first ones (nearest the
    embeddings; the default, chosen on held-out SST-2 rows), "spread"
    evenly, ending with the last (for depth 6: 3 layers keep 2, 4, 6; 2
    keep 3, 6), as DistilBERT keeps every other layer."""
    if layer_map not in LAYER_MAPS:
        raise ConfigError(f"layer_map must be one of {LAYER_MAPS}, got {layer_map!r}")
    _check_positive(layers=layers)
    if layers > depth:
        raise ConfigError(f"a student of {layers} layers cannot be cut from a teacher of {depth}")
    if layer_map == "bottom":
        return list(range(1, layers + 1))
    return [int(np.floor((i + 1) * depth / layers + 0.5)) for i in range(layers)]


def cut_teacher(teacher, *, layers=None, hidden=None, heads=None, intermediate=None, layer_map="bottom"):
    """A transformer student: a `BertModel` classifier (kbert's named
    layers) smaller than `teacher`, started from the teacher's weights.

    Every part whose shape matches the teacher's starts as the teacher's
    own: the embeddings, the pooler (`NSP-Dense`), the classifier and, at
    the teacher's width (hidden, heads and intermediate unchanged), the
    encoder layers `teacher_layers` picks, renumbered 1..L.  At another
    width the student starts from BERT's random initialisation (truncated
    normal, the teacher's `initializer_range`) wherever shapes differ.

    Args:
        teacher: a `BertModel` classifier (`num_labels` set).
        layers: the student's encoder layers L (None: half the teacher's,
            rounded up).
        hidden, heads, intermediate: `hidden_size`, `num_attention_heads`
            and `intermediate_size` (None: the teacher's).
        layer_map: how the L layers are chosen (`LAYER_MAPS`).

    Returns:
        The student `BertModel`; its `cut_from` attribute lists, per
        student layer, the teacher layer it started from (empty at another
        width).

    Raises:
        ConfigError: `teacher` is no `BertModel` classifier, or the sizes
            do not fit (heads must divide hidden; L at most the teacher's).
    """
    if not isinstance(teacher, BertModel) or teacher.num_labels is None:
        raise ConfigError("a transformer student is cut from a BertModel classifier (num_labels set)")
    config = teacher.bert_config
    depth = config.num_hidden_layers
    layers = -(-depth // 2) if layers is None else layers
    chosen = teacher_layers(layers, depth, layer_map)
    sizes = dict(num_hidden_layers=layers, hidden_size=hidden or config.hidden_size,
                 num_attention_heads=heads or config.num_attention_heads,
                 intermediate_size=intermediate or config.intermediate_size)
    _check_positive(**sizes)
    if sizes["hidden_size"] % sizes["num_attention_heads"]:
        raise ConfigError(f"hidden {sizes['hidden_size']} is not a multiple of heads {sizes['num_attention_heads']}")
    student = BertModel(BertConfig.from_dict(dict(config.to_dict(), **sizes)), num_labels=teacher.num_labels,
                        seq_len=teacher.seq_len)
    same_width = all(sizes[name] == getattr(config, name) for name in
                     ("hidden_size", "num_attention_heads", "intermediate_size"))
    pairs = [(layer.name, layer.name) for layer in student.layers if not layer.name.startswith("Encoder-")]
    if same_width:
        for n, source in enumerate(chosen, start=1):
            pairs += [(layer.name, layer.name.replace(f"Encoder-{n}-", f"Encoder-{source}-", 1))
                      for layer in student.layers if layer.name.startswith(f"Encoder-{n}-")]
    copied = []
    for name, source in pairs:
        ours, theirs = student.get_layer(name).get_weights(), teacher.get_layer(source).get_weights()
        if ours and [w.shape for w in ours] == [w.shape for w in theirs]:
            student.get_layer(name).set_weights(theirs)
            copied.append(name)
    student.cut_from = chosen if same_width else []
    logger.info("transformer student: %d layers (%s) from %d; %d layers started from the teacher", layers,
                ", ".join(map(str, chosen)) if same_width else "fresh", depth, len(copied))
    return student
