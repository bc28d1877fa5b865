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
from kbert.options import LAYER_MAPS, NARROW_STARTS, POOLINGS, VARIANTS
from kbert.registry import STUDENTS

logger = logging.getLogger(__name__)


def _check_embedding(vocab_size, variant, trained_rows):
    if variant not in VARIANTS:
        raise ConfigError(f"student variant must be one of {VARIANTS}, got {variant!r}")
    if trained_rows is None:
        return
    _check_positive(trained_rows=trained_rows)
    if variant == "static":
        raise ConfigError("student `trained_rows` needs a trained embedding; the static variant trains none")
    if isinstance(vocab_size, int) and trained_rows > vocab_size:
        raise ConfigError(f"student `trained_rows` is {trained_rows}, more than the {vocab_size} rows of the vocabulary")


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
        trained_rows: None trains every embedding row; a count K trains only
            K of them (see `StudentEmbedding`; `build_student`'s
            `trained_ids` names them). Defaults to None.
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
        trained_rows=None,
        dtype=None,
        **kwargs,
    ):
        _check_embedding(vocab_size, variant, trained_rows)
        _check_positive(vocab_size=vocab_size, num_labels=num_labels, embedding_dim=embedding_dim, filters=filters)
        kernel_sizes = tuple(int(w) for w in kernel_sizes)
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ConfigError(f"student `kernel_sizes` must be positive widths, got {kernel_sizes}")

        with policy_scope(dtype):  # every layer under the model's dtype policy
            token_ids = keras.Input(shape=(seq_len,), dtype="int32", name="Student-Input-Token")
            vectors = StudentEmbedding(vocab_size, embedding_dim, variant, trained_rows,
                                       name="Student-Embedding")(token_ids)
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
        self.trained_rows = trained_rows
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
            "trained_rows": self.trained_rows,
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
        trained_rows: None trains every embedding row; a count K trains only
            K of them, as for `CNNStudent`. Defaults to None.
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
                 pooling="last", dropout=0.2, seq_len=None, separator_id=None, trained_rows=None, dtype=None,
                 **kwargs):
        _check_embedding(vocab_size, variant, trained_rows)
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
            embedding = StudentEmbedding(vocab_size, embedding_dim, variant, trained_rows, name="Student-Embedding")
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
        self.trained_rows = trained_rows
        self.dtype_spec = policy_name(dtype)

    def get_config(self):
        return {"name": self.name, "vocab_size": self.vocab_size, "num_labels": self.num_labels,
                "embedding_dim": self.embedding_dim, "variant": self.variant, "units": self.units,
                "hidden": self.hidden, "pooling": self.pooling, "dropout": self.dropout, "seq_len": self.seq_len,
                "separator_id": self.separator_id, "trained_rows": self.trained_rows, "dtype": self.dtype_spec}

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
    axes = principal_axes(matrix, dim)  # [H, dim]
    return (centred @ axes).astype(np.float32)


def principal_axes(matrix, dim):
    """[H, dim]: the top `dim` principal axes of the rows of `matrix` [V, H]
    (centred first), as orthonormal columns."""
    matrix = np.asarray(matrix, dtype=np.float64)
    centred = matrix - matrix.mean(axis=0, keepdims=True)
    # Right singular vectors are the principal axes; SVD of [V, H] costs
    # O(V H^2), seconds for BERT-base, once per student.
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    kept = float((singular[:dim] ** 2).sum() / max((singular**2).sum(), 1e-30))
    logger.info("principal axes of %s: %d, keeping %.1f%% of the variance", matrix.shape, dim, 100 * kept)
    return axes[:dim].T


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


def build_student(embedding, num_labels, *, student="cnn", variant="non-static", embedding_dim=None,
                  trained_ids=None, **kwargs):
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
        trained_ids: None trains every row of the student's embedding; the
            ids its training reads (e.g. `np.unique` of the training rows'
            token ids) train only those rows, the rest frozen at their start.
            Adam without weight decay leaves rows with no gradient where
            they start, so the student learns the same, in less time (see
            `StudentEmbedding`); `merge_trained_rows` gives the student
            without the split.
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
    if trained_ids is not None:
        trained_ids = np.unique(np.asarray(trained_ids, np.int64))
        if not trained_ids.size or not 0 <= trained_ids[0] <= trained_ids[-1] < embedding.shape[0]:
            span = f" in {trained_ids[0]}..{trained_ids[-1]}" if trained_ids.size else ""
            raise ConfigError(f"trained_ids must be one or more token ids in 0..{embedding.shape[0] - 1}, got "
                              f"{trained_ids.size} ids{span}")
        kwargs["trained_rows"] = int(trained_ids.size)
    model = model_class(embedding.shape[0], num_labels, embedding_dim=dim, variant=variant, **kwargs)
    layer = model.get_layer("Student-Embedding")
    layer.set_matrix(matrix)
    if trained_ids is not None:
        layer.set_trained_rows(trained_ids)
    return model


def merge_trained_rows(student):
    """`student` as it would be without `trained_rows`: the same class and
    weights, its embedding's trained rows written back into the whole
    table (`StudentEmbedding.merged_weights`); a student without them is
    returned as it is.  Predict, export and every reader then see a plain
    student."""
    config = student.get_config()
    if not config.get("trained_rows"):
        return student
    plain = type(student).from_config(dict(config, trained_rows=None))
    for layer in plain.layers:
        if layer.weights:
            source = student.get_layer(layer.name)
            layer.set_weights(source.merged_weights() if isinstance(source, StudentEmbedding)
                              else source.get_weights())
    return plain


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


def cut_teacher(teacher, *, layers=None, hidden=None, heads=None, intermediate=None, layer_map="bottom",
                narrow_start=None):
    """A transformer student: a `BertModel` classifier (kbert's named
    layers) smaller than `teacher`, started from the teacher's weights.

    The student's encoder layers 1..L start from the teacher layers
    `teacher_layers` picks.  At the teacher's width (hidden, heads and
    intermediate unchanged) every weight is the teacher's own: the
    embeddings, those layers, the pooler (`NSP-Dense`) and the classifier.
    A narrower student starts, with `narrow_start`:

    - "projection": the teacher's weights projected (`project_teacher`):
      its hidden vectors onto their top principal axes, its strongest
      heads and feed-forward units kept; refused for a student wider than
      the teacher in hidden size, heads, head size or feed-forward width;
    - "random": BERT's random initialisation (truncated normal, the
      teacher's `initializer_range`); the embedding tables are the
      teacher's where their width is;
    - None (the default): "projection" where it fits, else "random".

    Args:
        teacher: a `BertModel` classifier (`num_labels` set).
        layers: the student's encoder layers L (None: half the teacher's,
            rounded up).
        hidden, heads, intermediate: `hidden_size`, `num_attention_heads`
            and `intermediate_size` (None: the teacher's).
        layer_map: how the L layers are chosen (`LAYER_MAPS`).
        narrow_start: how a narrower student starts (`NARROW_STARTS`).

    Returns:
        The student `BertModel`; its `cut_from` attribute lists, per
        student layer, the teacher layer it started from (empty when it
        started at random).

    Raises:
        ConfigError: `teacher` is no `BertModel` classifier, or the sizes
            do not fit (heads must divide hidden; L at most the teacher's;
            a projection no wider than the teacher anywhere).

    Example:

    ```python
    student = kbert.cut_teacher(teacher, layers=2, hidden=256, heads=8, intermediate=1024)
    ```
    """
    if not isinstance(teacher, BertModel) or teacher.num_labels is None or teacher.head != "sequence":
        raise ConfigError("a transformer student is cut from a BertModel sequence classifier (num_labels set)")
    if narrow_start is not None and narrow_start not in NARROW_STARTS:
        raise ConfigError(f"narrow_start must be one of {NARROW_STARTS}, got {narrow_start!r}")
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
    if narrow_start is None:
        narrow_start = "projection" if _projectable(config, student.bert_config) else "random"
    if same_width or narrow_start == "projection":
        project_teacher(student, teacher, chosen)
        student.cut_from = chosen
    else:
        # Random start: only the layers whose every weight has the
        # teacher's shape (the embedding tables when hidden is kept) are
        # the teacher's.
        for layer in student.layers:
            if layer.name.startswith("Encoder-"):
                continue
            ours, theirs = layer.get_weights(), teacher.get_layer(layer.name).get_weights()
            if ours and [w.shape for w in ours] == [w.shape for w in theirs]:
                layer.set_weights(theirs)
        student.cut_from = []
    logger.info("transformer student: %d layers from %d, started from %s", layers, depth,
                f"teacher layers {', '.join(map(str, chosen))}" if student.cut_from else "random weights")
    return student


def _too_wide(teacher_config, student_config):
    """[(name, student's, teacher's)] of the sizes in which a student is
    wider than its teacher: what a projection cannot start."""
    d = teacher_config.hidden_size // teacher_config.num_attention_heads
    e = student_config.hidden_size // student_config.num_attention_heads
    return [(name, ours, theirs) for name, ours, theirs in (
        ("hidden", student_config.hidden_size, teacher_config.hidden_size),
        ("heads", student_config.num_attention_heads, teacher_config.num_attention_heads),
        ("head size (hidden / heads)", e, d),
        ("intermediate", student_config.intermediate_size, teacher_config.intermediate_size)) if ours > theirs]


def _projectable(teacher_config, student_config):
    return not _too_wide(teacher_config, student_config)


def hidden_basis(teacher, hidden):
    """[H, hidden]: the teacher's residual stream is read through these
    orthonormal columns by a student of width `hidden`: the top principal
    axes of its `Embedding-Token` rows (the identity at its own width, so
    that pruning heads or units alone changes nothing else)."""
    matrix = teacher.get_layer("Embedding-Token").get_weights()[0]
    return np.eye(hidden) if hidden == matrix.shape[1] else principal_axes(matrix, hidden)


def project_teacher(student, teacher, chosen):
    """Set a transformer `student` (`BertModel`, no wider than `teacher`
    anywhere) from the teacher's weights, its encoder layer n from teacher
    layer `chosen[n - 1]`.

    Legend: H, A, d, I are the teacher's hidden size, heads, head size and
    feed-forward width; h, a, e, i the student's.  P [H, h] is
    `hidden_basis`: a student's hidden vector is P^T times the teacher's.

    - vectors on the hidden axis (embedding rows, biases, LayerNorm's beta)
      are multiplied by P; LayerNorm's gamma, a diagonal, by P * P
      (each student axis gets the mean of the gammas it mixes);
    - kernels read from the hidden axis are P^T W, kernels written to it
      W P;
    - attention keeps the a heads with the largest product of their
      value and output kernels' norms, in the teacher's order, and the
      first e of each one's d dimensions, the same ones in query, key and
      value (so each head's scores are its own);
    - the feed-forward layer keeps the i units with the largest product
      of their intermediate column's and output row's norms.

    At the teacher's width P is the identity and nothing is dropped: the
    layers are copied.  At the teacher's hidden size (P the identity), a
    student that drops only feed-forward units whose output rows are zero
    computes exactly what the teacher computes.  (Heads cannot be dropped
    alone: at a kept hidden size, fewer heads are wider ones.)
    """
    tc, sc = teacher.bert_config, student.bert_config
    d, e = tc.hidden_size // tc.num_attention_heads, sc.hidden_size // sc.num_attention_heads
    too_wide = _too_wide(tc, sc)
    if too_wide:
        name, ours, theirs = too_wide[0]
        raise ConfigError(f"a student projected from the teacher needs {name} at most the teacher's {theirs}, "
                          f"got {ours}: start it at random (narrow_start='random')")
    basis = hidden_basis(teacher, sc.hidden_size)  # [H, h]

    def vector(v):  # [H] -> [h]
        return v @ basis

    def norm_gamma(gamma):  # [H] -> [h]
        return gamma @ (basis * basis)

    def put(name, weights, source=None):
        layer = student.get_layer(name)
        got, expected = [w.shape for w in weights], [tuple(w.shape) for w in layer.weights]
        assert got == expected, f"{name} from {source or name}: shapes {got}, expected {expected}"
        layer.set_weights([np.asarray(w, np.float32) for w in weights])

    def weights(name):
        return [w.astype(np.float64) for w in teacher.get_layer(name).get_weights()]

    for name in ("Embedding-Token", "Embedding-Segment", "Embedding-Position"):
        (table,) = weights(name)
        put(name, [table @ basis])  # [rows, H] -> [rows, h]
    gamma, beta = weights("Embedding-Norm")
    put("Embedding-Norm", [norm_gamma(gamma), vector(beta)])

    for n, source in enumerate(chosen, start=1):
        prefix, theirs = f"Encoder-{n}-", f"Encoder-{source}-"
        q, qb, k, kb, v, vb, o, ob = weights(theirs + "MultiHeadSelfAttention")  # q [H, A d], o [A d, H]
        strength = [np.linalg.norm(v[:, j * d:(j + 1) * d]) * np.linalg.norm(o[j * d:(j + 1) * d])
                    for j in range(tc.num_attention_heads)]
        heads = sorted(np.argsort(strength, kind="stable")[::-1][: sc.num_attention_heads])
        columns = np.concatenate([np.arange(j * d, j * d + e) for j in heads])  # [a e]
        put(prefix + "MultiHeadSelfAttention",
            [basis.T @ q[:, columns], qb[columns], basis.T @ k[:, columns], kb[columns],
             basis.T @ v[:, columns], vb[columns], o[columns] @ basis, vector(ob)], theirs)
        for part in ("MultiHeadSelfAttention-Norm", "FeedForward-Norm"):
            gamma, beta = weights(theirs + part)
            put(prefix + part, [norm_gamma(gamma), vector(beta)], theirs + part)
        w1, b1, w2, b2 = weights(theirs + "FeedForward")  # w1 [H, I], w2 [I, H]
        strength = np.linalg.norm(w1, axis=0) * np.linalg.norm(w2, axis=1)
        units = np.sort(np.argsort(strength, kind="stable")[::-1][: sc.intermediate_size])
        put(prefix + "FeedForward", [basis.T @ w1[:, units], b1[units], w2[units] @ basis, vector(b2)], theirs)

    kernel, bias = weights("NSP-Dense")
    put("NSP-Dense", [basis.T @ kernel @ basis, vector(bias)])
    kernel, bias = weights("Classifier-Dense")
    put("Classifier-Dense", [basis.T @ kernel, bias])
