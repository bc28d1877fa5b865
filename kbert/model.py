"""`BertModel`: BERT as keras-bert's named layers, as one serializable Keras model.

The graph and its layer names follow keras-bert, so that code written
against `model.get_layer("Encoder-3-FeedForward-Norm")` keeps working:

    Input-Token, Input-Segment [, Input-Task] [, Input-Masked]
    Embedding-Token, Embedding-Segment, Embedding-Token-Segment,
    Embedding-Position, [Embedding-Task,] Embedding-Dropout, Embedding-Norm,
    Padding-Mask
    Encoder-{n}-MultiHeadSelfAttention[-Dropout|-Add|-Norm]   n = 1..L
    Encoder-{n}-FeedForward[-Dropout|-Add|-Norm]
    [Encoder-Output]                    (output_layer_num > 1)
    MLM-Dense, MLM-Norm, MLM-Sim, MLM   (training=True)
    Extract, NSP-Dense, NSP             (training=True)
    Extract, NSP-Dense, Classifier-Dropout, Classifier-Dense  (num_labels=k)
    Extract, NSP-Dense                  (with_pooler=True)

It is a functional model whose `get_config()` returns exactly its
constructor's arguments (the `bert_config.json` fields among them), so a
`.keras` file reloads on any backend.

Inputs are checked where they enter, on the host, before Keras traces or
runs anything: `__call__`, `predict`, `predict_on_batch`, `evaluate`,
`test_on_batch`, `fit` and `train_on_batch` refuse, with a `DataError`
naming the input, a token id outside `0..vocab_size-1`, a segment id outside
`0..type_vocab_size-1`, a task id outside `0..task_num-1` (or not of
shape [batch, 1]), a non-integral id, a length beyond
`max_position_embeddings` (or other than a fixed `seq_len`) and inputs of
different shapes.  The check reads NumPy arrays, lists and eager tensors;
batches of a `keras.utils.PyDataset` or a generator are checked one by one
as they are produced, and a `BucketedBatches` all at once before the first
step.  Inside the compiled step it would cost every batch a reduction and a
device sync, so it is not there: a `tf.data.Dataset` reaches the model
unchecked on TensorFlow and JAX.  (PyTorch's trainer calls the model
eagerly, so there `__call__` checks each batch of a torch `DataLoader` as
it comes, at the cost of one host copy per batch.)  A refused input leaves the model
as it was; on JAX, whose trainer detaches the variables while a loop runs,
they are reattached if anything fails inside one.
"""

import collections
import contextlib
import threading
import types

import keras
import numpy as np

from kbert.compat import state_kept_on_error
from kbert.config import LAYER_NORM_EPSILON, BertConfig
from kbert.errors import ConfigError, DataError
from kbert.layers import (
    EmbeddingSimilarity,
    EmbeddingSum,
    Extract,
    FeedForward,
    MaskedOutput,
    MultiHeadSelfAttention,
    PackingGather,
    PackingMask,
    PaddingMask,
    PositionEmbedding,
    TaskEmbedding,
    TokenEmbedding,
    activations,
)
from kbert.packing import PACKED_INPUTS


def _initializer(config):
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


@contextlib.contextmanager
def policy_scope(dtype):
    """Build layers under Keras dtype policy `dtype` (a name such as
    "mixed_bfloat16", or a `keras.DTypePolicy`; None: the global one).

    Every layer made inside takes it as its own policy, so a whole model
    computes in the policy's precision with its variables in the variable
    dtype; the global policy is restored afterwards.
    """
    if dtype is None:
        yield
        return
    before = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(dtype)
    except ValueError as e:
        raise ConfigError(f"dtype: {e}") from None
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def policy_name(dtype):
    """A policy argument as get_config stores it: None or its name."""
    return None if dtype is None else keras.DTypePolicy(dtype).name if isinstance(dtype, str) else dtype.name


def _norm(name):
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


def _encoder(x, mask, config, n, layer=None):
    """One transformer block, post-LayerNorm as in the original.  `layer`
    (name -> an existing layer) reuses a model's blocks on other inputs
    (`packed_classifier`); by default the layers are made here."""

    def get(name, make):
        return layer(name) if layer is not None else make(name)

    prefix = f"Encoder-{n}-MultiHeadSelfAttention"
    attention = get(prefix, lambda name: MultiHeadSelfAttention(
        num_attention_heads=config.num_attention_heads,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        initializer_range=config.initializer_range,
        name=name,
    ))(x, attention_mask=mask)
    dropout = lambda name: keras.layers.Dropout(config.hidden_dropout_prob, name=name)  # noqa: E731
    attention = get(f"{prefix}-Dropout", dropout)(attention)
    x = get(f"{prefix}-Add", lambda name: keras.layers.Add(name=name))([x, attention])
    x = get(f"{prefix}-Norm", _norm)(x)

    prefix = f"Encoder-{n}-FeedForward"
    ffn = get(prefix, lambda name: FeedForward(
        intermediate_size=config.intermediate_size,
        activation=config.activation,
        initializer_range=config.initializer_range,
        name=name,
    ))(x)
    ffn = get(f"{prefix}-Dropout", dropout)(ffn)
    x = get(f"{prefix}-Add", lambda name: keras.layers.Add(name=name))([x, ffn])
    return get(f"{prefix}-Norm", _norm)(x)


def _apply_trainable(model, trainable):
    """keras-bert's `trainable`: a bool, or name prefixes of trainable layers."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(trainable, bool):
            layer.trainable = trainable
        else:
            layer.trainable = any(layer.name.startswith(p) for p in trainable)


def _encoder_indices(output_layer_num, depth):
    """The 0-based encoders whose outputs `output_layer_num` concatenates, in
    order: the last m for an int m; for keras-bert's list of indices
    (negative from the end), the reverse of the listed order, as there."""
    if not isinstance(output_layer_num, list):
        if isinstance(output_layer_num, bool) or not isinstance(output_layer_num, (int, np.integer)):
            raise ConfigError(
                f"output_layer_num must be an integer or a list of encoder indices, got {output_layer_num!r}"
            )
        if not 1 <= output_layer_num <= depth:
            raise ConfigError(f"output_layer_num {output_layer_num} is outside 1..num_hidden_layers ({depth})")
        return list(range(depth - output_layer_num, depth))
    if not output_layer_num:
        raise ConfigError("output_layer_num must not be an empty list")
    for index in output_layer_num:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -depth <= index < depth:
            raise ConfigError(
                f"output_layer_num: {index!r} is not an encoder index in "
                f"{-depth}..{depth - 1} (num_hidden_layers {depth})"
            )
    return [int(index) % depth for index in reversed(output_layer_num)]


class InputLimits:
    """What a `BertModel` accepts, as plain numbers (picklable, so that
    PyDataset workers can check batches in their own processes)."""

    def __init__(self, config, seq_len, names, task_num=None):
        self.vocab_size = config.vocab_size
        self.type_vocab_size = config.type_vocab_size
        self.max_position_embeddings = config.max_position_embeddings
        self.seq_len = seq_len
        self.task_num = task_num
        # "Input-Token", "Input-Segment"[, "Input-Task"][, "Input-Masked"]
        self.names = tuple(names)

    def check(self, inputs):
        """Refuse what `inputs` (the model's input structure) holds outside
        the model.  Returns True if every input was concrete and checked,
        False if some were symbolic or traced (those are left to Keras)."""
        arrays = self._by_name(inputs)
        shape = first = None
        for name, a in arrays.items():
            if a is None or name == "Input-Task":
                continue
            if a.ndim != 2:
                raise DataError(f"{name}: expected ids of shape [batch, length], got shape {list(a.shape)}")
            if a.dtype.kind not in "iuf":
                raise DataError(f"{name}: expected integer ids, got dtype {a.dtype}")
            if shape is None:
                shape, first = a.shape, name
            elif a.shape != shape:
                raise DataError(f"{name} has shape {list(a.shape)} but {first} has {list(shape)}")
        if shape is not None:
            length = shape[1]
            if self.seq_len is not None and length != self.seq_len:
                raise DataError(f"{first}: length {length}, but the model was built for seq_len={self.seq_len}")
            if length > self.max_position_embeddings:
                raise DataError(
                    f"{first}: length {length} exceeds max_position_embeddings "
                    f"{self.max_position_embeddings}"
                )
        tasks = arrays.get("Input-Task")
        if tasks is not None:
            batch = None if shape is None else shape[0]
            if tasks.ndim != 2 or tasks.shape[1] != 1 or batch is not None and tasks.shape[0] != batch:
                raise DataError(f"Input-Task: expected one task id per example, shape [{batch or 'batch'}, 1], "
                                f"got shape {list(tasks.shape)}")
            if tasks.dtype.kind not in "iuf":
                raise DataError(f"Input-Task: expected integer ids, got dtype {tasks.dtype}")
        limits = {"Input-Token": ("vocab_size", self.vocab_size),
                  "Input-Segment": ("type_vocab_size", self.type_vocab_size),
                  "Input-Task": ("task_num", self.task_num)}
        for name, (field, limit) in limits.items():
            if arrays.get(name) is not None:
                _refuse_outside(name, arrays[name], limit, field)
        return all(a is not None for a in arrays.values())

    def check_packed(self, inputs):
        """Refuse packed inputs (`kbert.packing.PACKED_INPUTS`: [CLS] flat
        indices [N], token, segment, position and example ids [R, L]) that
        the shared layers would read outside their tables: the same id
        limits as `check`, positions in 0..max_position_embeddings-1, rows
        no longer than max_position_embeddings, example ids >= 0 and [CLS]
        indices inside the R * L slots.  (Out of range, a gather reads
        zeros or NaN instead of failing, and one training step turns every
        weight into NaN.)  Returns True if every input was concrete."""
        if isinstance(inputs, dict):
            if set(inputs) != set(PACKED_INPUTS):
                raise DataError(f"a packed model takes inputs {', '.join(PACKED_INPUTS)}; "
                                f"got {', '.join(map(str, inputs))}")
            inputs = [inputs[name] for name in PACKED_INPUTS]
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(PACKED_INPUTS):
            raise DataError(f"a packed model takes {len(PACKED_INPUTS)} inputs, [{', '.join(PACKED_INPUTS)}], "
                            f"got {_describe(inputs)}")
        arrays = [_host_array(v, name) for name, v in zip(PACKED_INPUTS, inputs)]
        if any(a is None for a in arrays):
            return False
        (cls_name, *row_names), (cls, *rows) = PACKED_INPUTS, arrays
        for name, a in zip(PACKED_INPUTS, arrays):
            if a.dtype.kind not in "iuf":
                raise DataError(f"{name}: expected integer ids, got dtype {a.dtype}")
        if cls.ndim != 1:
            raise DataError(f"{cls_name}: expected one flat index per example, shape [examples], "
                            f"got shape {list(cls.shape)}")
        for name, a in zip(row_names, rows):
            if a.ndim != 2 or a.shape != rows[0].shape:
                raise DataError(f"{name}: expected shape [rows, length] as {row_names[0]} "
                                f"{list(rows[0].shape)}, got {list(a.shape)}")
        length = rows[0].shape[1]
        if length > self.max_position_embeddings:
            raise DataError(f"{row_names[0]}: packed rows of {length} slots exceed max_position_embeddings "
                            f"{self.max_position_embeddings}")
        limits = (("vocab_size", self.vocab_size), ("type_vocab_size", self.type_vocab_size),
                  ("max_position_embeddings", self.max_position_embeddings), (None, None))
        for name, a, (field, limit) in zip(row_names, rows, limits):
            _refuse_outside(name, a, limit, field)
        _refuse_outside(cls_name, cls, rows[0].size, "rows x slots")
        return True

    def check_batch(self, batch):
        """A batch as a PyDataset or a generator yields it: (x[, y[, w]])."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        self.check(x)
        return batch

    def check_packed_batch(self, batch):
        """`check_batch` for a packed model's batches."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        self.check_packed(x)
        return batch

    def _by_name(self, inputs):
        if isinstance(inputs, dict):
            if set(inputs) != set(self.names):
                raise DataError(
                    f"the model takes inputs {', '.join(self.names)}; got {', '.join(map(str, inputs))}"
                )
            return {name: _host_array(inputs[name], name) for name in self.names}
        if isinstance(inputs, (list, tuple)) and len(inputs) == len(self.names):
            return {name: _host_array(v, name) for name, v in zip(self.names, inputs)}
        raise DataError(
            f"the model takes {len(self.names)} inputs, [{', '.join(self.names)}], "
            f"got {_describe(inputs)}"
        )


def _refuse_outside(name, a, limit, field):
    """Refuse ids in `a` that are not integers in 0..limit-1 (`limit` None:
    any non-negative integer), naming the input, the first bad id and where
    it is."""
    if not a.size:
        return
    if a.dtype.kind == "f":
        fractional = a != np.floor(a)  # NaN too
        if fractional.any():
            where = np.argwhere(fractional)[0]
            raise DataError(f"{name}: id {a[tuple(where)]} at {where.tolist()} is not an integer")
    low, high = a.min(), a.max()
    if low < 0 or limit is not None and high >= limit:
        bad = low if low < 0 else high
        where = np.argwhere(a == bad)[0]
        allowed = f"0..{limit - 1} ({field} {limit})" if limit is not None else "0 or more"
        raise DataError(f"{name}: id {bad.item()} at {where.tolist()} is outside {allowed}")


def _describe(value):
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    shape = getattr(value, "shape", None)
    return f"one {type(value).__name__}" + (f" of shape {list(shape)}" if shape is not None else "")


def _host_array(value, name):
    """`value` as a NumPy array when it is concrete (NumPy, a list, an
    eager tensor), or None when it is symbolic or traced."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, keras.KerasTensor):
        return None
    if value is None or isinstance(value, (str, bytes, dict, set)):
        raise DataError(f"{name}: expected an array of ids, got {type(value).__name__} {str(value)[:40]!r}")
    if isinstance(value, (list, tuple)) and not len(value):
        # Keras flattens an empty list away: the model would see one input fewer.
        raise DataError(f"{name}: an empty list, not an array of ids")
    if isinstance(value, (list, tuple, int, float, np.generic)):
        try:
            return np.asarray(value)
        except ValueError as e:  # ragged lists
            raise DataError(f"{name}: not a rectangular array of ids: {e}") from None
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        if isinstance(value, jax.core.Tracer):
            return None
        if isinstance(value, jax.Array):
            return np.asarray(value)
    elif backend == "tensorflow":
        import tensorflow as tf

        if isinstance(value, tf.Tensor):
            return value.numpy() if tf.executing_eagerly() and hasattr(value, "numpy") else None
    elif backend == "torch":
        import torch

        if isinstance(value, torch.Tensor) and not torch.compiler.is_compiling():
            return value.detach().cpu().numpy()
    return None


class _CheckedBatches(keras.utils.PyDataset):
    """A PyDataset whose batches are checked, by `check_batch` (a bound
    method of `InputLimits`: picklable for worker processes), as they are
    produced."""

    def __init__(self, inner, check_batch):
        super().__init__(
            workers=inner.workers,
            use_multiprocessing=inner.use_multiprocessing,
            max_queue_size=inner.max_queue_size,
        )
        self.inner, self.check_batch = inner, check_batch

    def __len__(self):
        return len(self.inner)

    @property
    def num_batches(self):
        return self.inner.num_batches

    def __getitem__(self, index):
        return self.check_batch(self.inner[index])

    def on_epoch_begin(self):
        self.inner.on_epoch_begin()

    def on_epoch_end(self):
        self.inner.on_epoch_end()


# Models inside a boundary that checked (or is checking) all of its data:
# their __call__ does not check again (on torch the trainer calls the model
# eagerly on every batch).
_CHECKED = threading.local()


@contextlib.contextmanager
def _inside_boundary(model, checked):
    counts = _CHECKED.__dict__.setdefault("counts", collections.Counter())
    if checked:
        counts[id(model)] += 1
    try:
        yield
    finally:
        if checked:
            counts[id(model)] -= 1


def _is_inside_boundary(model):
    return _CHECKED.__dict__.get("counts", {}).get(id(model), 0) > 0


class _InputBoundary:
    """The input boundary of a model (see the module docstring): every
    entry point checks concrete inputs on the host before Keras traces or
    runs anything.  A subclass says how one input structure is checked
    (`_check`) and what batch objects it checks whole (`_checked_whole`)."""

    def _check(self, x):
        raise NotImplementedError

    def _check_batch(self, batch):
        raise NotImplementedError

    def _checked_whole(self, x):
        """True once a batch object of this model's own kind was checked in
        full, None if `x` is none."""
        return None

    def _checked_data(self, x):
        """(x, fully checked): arrays checked now, batches as they come."""
        whole = self._checked_whole(x)
        if whole is not None:
            return x, whole
        if isinstance(x, keras.utils.PyDataset):
            return _CheckedBatches(x, self._check_batch), True
        if isinstance(x, types.GeneratorType):
            return (self._check_batch(batch) for batch in x), True
        if x is None or not isinstance(x, (list, tuple, dict, np.ndarray)) and _host_array(x, "x") is None:
            return x, False  # tf.data, DataLoader, ...: not checked (see the module docstring)
        return x, self._check(x)

    @contextlib.contextmanager
    def _boundary(self, checked):
        with _inside_boundary(self, checked), state_kept_on_error(self):
            yield

    def __call__(self, *args, **kwargs):
        inputs = args[0] if args else kwargs.get("inputs")
        if inputs is not None and not _is_inside_boundary(self):
            self._check(inputs)
        return super().__call__(*args, **kwargs)

    def predict(self, x, *args, **kwargs):
        x, checked = self._checked_data(x)
        with self._boundary(checked):
            return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x):
        checked = self._check(x)
        with self._boundary(checked):
            return super().predict_on_batch(x)

    def evaluate(self, x=None, *args, **kwargs):
        x, checked = self._checked_data(x)
        with self._boundary(checked):
            return super().evaluate(x, *args, **kwargs)

    def test_on_batch(self, x, *args, **kwargs):
        checked = self._check(x)
        with self._boundary(checked):
            return super().test_on_batch(x, *args, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        checked = self._check(x)
        with self._boundary(checked):
            return super().train_on_batch(x, *args, **kwargs)

    def fit(self, x=None, *args, **kwargs):
        x, checked = self._checked_data(x)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)):
            self._check(validation[0])
        elif validation is not None:
            kwargs["validation_data"], checked_validation = self._checked_data(validation)
            checked = checked and checked_validation
        with self._boundary(checked):
            return super().fit(x, *args, **kwargs)


@keras.saving.register_keras_serializable(package="kbert")
class BertModel(_InputBoundary, keras.Model):
    """BERT with keras-bert's layer names.

    Args:
        bert_config: the `bert_config.json` fields (a dict or `BertConfig`).
        training: add `Input-Masked` and the `MLM` and `NSP` heads.
        trainable: bool, or a list of layer-name prefixes (keras-bert's
            meaning); None means `training` (keras-bert's default), or True
            when a classifier head is asked for, since it exists to be trained.
        seq_len: fix the input length (None accepts any length up to
            `max_position_embeddings`).
        output_layer_num: concatenate the outputs of the last m encoders;
            or a list of encoder indices (0-based, negative counting from
            the end), concatenated in reverse order, as keras-bert does.
        task_num: add keras-bert's task embedding (`use_task_embed`): an
            `Input-Task` of one id in 0..task_num-1 per example, whose
            `Embedding-Task` row is added to every position.
        num_labels: add a classifier on the pooled output with k logits.
        with_pooler: also output the pooled `[CLS]` vector (`NSP-Dense`,
            the original's `bert/pooler`), as `[sequence, pooled]`.
        dtype: a Keras dtype policy for every layer (None: the global
            one), e.g. "mixed_bfloat16": computed in bfloat16, variables
            in float32 (`policy_scope`).
    """

    def __init__(
        self,
        bert_config,
        training=False,
        trainable=None,
        seq_len=None,
        output_layer_num=1,
        num_labels=None,
        with_pooler=False,
        task_num=None,
        dtype=None,
        **kwargs,
    ):
        with policy_scope(dtype):
            self._build(bert_config, training, trainable, seq_len, output_layer_num, num_labels, with_pooler,
                        task_num, dtype, **kwargs)

    def _build(self, bert_config, training, trainable, seq_len, output_layer_num, num_labels, with_pooler,
               task_num, dtype, **kwargs):
        config = bert_config if isinstance(bert_config, BertConfig) else BertConfig.from_dict(bert_config)
        if isinstance(output_layer_num, tuple):
            output_layer_num = list(output_layer_num)  # as get_config's JSON gives it back
        chosen = _encoder_indices(output_layer_num, config.num_hidden_layers)
        for name, value in (("seq_len", seq_len), ("num_labels", num_labels), ("task_num", task_num)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        for name, value in (("training", training), ("with_pooler", with_pooler)):
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {value!r}")
        if not (
            trainable is None
            or isinstance(trainable, (bool, np.bool_))
            or isinstance(trainable, (list, tuple)) and all(isinstance(p, str) for p in trainable)
        ):
            raise ConfigError(f"trainable must be a bool or a list of layer-name prefixes, got {trainable!r}")
        if seq_len is not None and not 1 <= seq_len <= config.max_position_embeddings:
            raise ConfigError(
                f"seq_len {seq_len} is outside 1..max_position_embeddings "
                f"({config.max_position_embeddings})"
            )
        if task_num is not None and task_num < 1:
            raise ConfigError(f"task_num must be at least 1, got {task_num}")
        if num_labels is not None and (training or num_labels < 1):
            raise ConfigError(
                "num_labels needs a positive count and training=False "
                f"(got num_labels={num_labels}, training={training})"
            )

        token_ids = keras.Input(shape=(seq_len,), dtype="int32", name="Input-Token")
        segment_ids = keras.Input(shape=(seq_len,), dtype="int32", name="Input-Segment")
        inputs = [token_ids, segment_ids]

        embedded, matrix = TokenEmbedding(
            config.vocab_size,
            config.hidden_size,
            initializer_range=config.initializer_range,
            name="Embedding-Token",
        )(token_ids)
        segment = keras.layers.Embedding(
            config.type_vocab_size,
            config.hidden_size,
            embeddings_initializer=_initializer(config),
            name="Embedding-Segment",
        )(segment_ids)
        x = EmbeddingSum(name="Embedding-Token-Segment")([embedded, segment])
        x = PositionEmbedding(
            config.max_position_embeddings,
            initializer_range=config.initializer_range,
            name="Embedding-Position",
        )(x)
        if task_num is not None:
            # keras-bert: a float [B, 1] input, cast to int32 by the layer.
            task_ids = keras.Input(shape=(1,), dtype="int32", name="Input-Task")
            inputs.append(task_ids)
            x = TaskEmbedding(task_num, config.hidden_size, name="Embedding-Task")([x, task_ids])
        x = keras.layers.Dropout(config.hidden_dropout_prob, name="Embedding-Dropout")(x)
        x = _norm("Embedding-Norm")(x)
        mask = PaddingMask(name="Padding-Mask")(token_ids)

        layer_outputs = []
        for n in range(1, config.num_hidden_layers + 1):
            x = _encoder(x, mask, config, n)
            layer_outputs.append(x)

        if training:
            masked = keras.Input(shape=(seq_len,), dtype="int32", name="Input-Masked")
            inputs.append(masked)
            mlm = keras.layers.Dense(
                config.hidden_size,
                activation=activations.get(config.activation),
                kernel_initializer=_initializer(config),
                name="MLM-Dense",
            )(x)
            mlm = _norm("MLM-Norm")(mlm)
            mlm = EmbeddingSimilarity(name="MLM-Sim")([mlm, matrix])
            mlm = MaskedOutput(name="MLM")([mlm, masked])
            pooled = self._pooler(x, config)
            nsp = keras.layers.Dense(
                2, activation="softmax", kernel_initializer=_initializer(config), name="NSP"
            )(pooled)
            outputs = [mlm, nsp]
        elif num_labels is not None:
            pooled = self._pooler(x, config)
            # run_classifier.py: dropout 0.1 on the pooled output, then
            # output_weights (truncated normal 0.02) and output_bias (zeros).
            pooled = keras.layers.Dropout(0.1, name="Classifier-Dropout")(pooled)
            outputs = keras.layers.Dense(
                num_labels,
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="Classifier-Dense",
            )(pooled)
        else:
            if len(chosen) > 1:
                x = keras.layers.Concatenate(name="Encoder-Output")([layer_outputs[i] for i in chosen])
            else:
                x = layer_outputs[chosen[0]]
            outputs = [x, self._pooler(layer_outputs[-1], config)] if with_pooler else x

        super().__init__(inputs=inputs, outputs=outputs, **({"dtype": dtype} if dtype is not None else {}), **kwargs)
        self.dtype_spec = policy_name(dtype)
        self.bert_config = config
        self.training_heads = training
        self.seq_len = seq_len
        self.output_layer_num = output_layer_num
        self.num_labels = num_labels
        self.with_pooler = with_pooler
        self.task_num = task_num
        self.trainable_spec = trainable
        if trainable is None:
            trainable = training or num_labels is not None
        _apply_trainable(self, trainable)
        self.input_limits = InputLimits(config, seq_len, [i.name for i in inputs], task_num)

    # -- the input boundary (`_InputBoundary`, the module docstring) ------

    def _check(self, x):
        return self.input_limits.check(x)

    def _check_batch(self, batch):
        return self.input_limits.check_batch(batch)

    def _checked_whole(self, x):
        if getattr(x, "batch_layout", None) != "padded":  # not a batch object (or packed: refused by Keras' shapes)
            return None
        rows = x.unpacked_rows()
        self.input_limits.check(rows if len(rows) > 1 else rows[0])
        return True

    @staticmethod
    def _pooler(x, config):
        first = Extract(0, name="Extract")(x)
        return keras.layers.Dense(
            config.hidden_size,
            activation="tanh",
            kernel_initializer=_initializer(config),
            name="NSP-Dense",
        )(first)

    def get_config(self):
        return {
            "name": self.name,
            "bert_config": self.bert_config.to_dict(),
            "training": self.training_heads,
            "trainable": self.trainable_spec,
            "seq_len": self.seq_len,
            "output_layer_num": self.output_layer_num,
            "num_labels": self.num_labels,
            "with_pooler": self.with_pooler,
            "task_num": self.task_num,
            "dtype": self.dtype_spec,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def attention_probabilities(model, layer):
    """A Keras model from `model`'s inputs to encoder `layer`'s attention
    probabilities [B, heads, queries, keys] (1-based `layer`, as the layer
    names): keras-bert's attention-map reading, built from the same weights.

    Raises:
        ConfigError: `model` has no such encoder.
    """
    names = {layer.name for layer in model.layers}
    name = f"Encoder-{layer}-MultiHeadSelfAttention"
    if name not in names:
        raise ConfigError(f"the model has no layer {name!r}")
    source = "Embedding-Norm" if layer == 1 else f"Encoder-{layer - 1}-FeedForward-Norm"
    probabilities = model.get_layer(name)(
        model.get_layer(source).output, attention_mask=model.get_layer("Padding-Mask").output,
        return_probabilities=True)
    return keras.Model(model.inputs, probabilities, name=f"attention_{layer}")


class PackedClassifier(_InputBoundary, keras.Model):
    """A `BertModel` classifier's layers (the same objects, so the same
    variables) over packed rows (`kbert.packing`): inputs each example's
    `[CLS]` index [N] and token, segment, position and example ids [R, L]
    (`PACKED_INPUTS`); output the logits [N, labels], equal to the unpacked
    model's.

    Its inputs are checked on the host at every entry point, as
    `BertModel`'s are (`InputLimits.check_packed`): arrays at once,
    `PackedBatches` whole (their unpacked rows) before the first step,
    other batch objects as they come.  `predict` is refused: packed batches
    come shuffled, so its outputs would not line up with any rows
    (`predict_on_batch` serves `kbert.inference.predict_packed`).  It is a
    view, not saved: save the `BertModel` itself.
    """

    def _check(self, x):
        return self.input_limits.check_packed(x)

    def _check_batch(self, batch):
        return self.input_limits.check_packed_batch(batch)

    def _checked_whole(self, x):
        layout = getattr(x, "batch_layout", None)
        if layout == "padded":
            raise DataError(f"a packed classifier reads PackedBatches, got {type(x).__name__}: "
                            f"use the BertModel it was made from")
        if layout != "packed":
            return None
        limits = self.input_limits
        limits.check(x.unpacked_rows())  # the unpacked rows: ids and widths
        if x.pack_len > limits.max_position_embeddings:
            raise DataError(f"pack_len {x.pack_len} exceeds max_position_embeddings "
                            f"{limits.max_position_embeddings}")
        return True

    def predict(self, *args, **kwargs):
        # Packed batches come in their shuffled training order: outputs
        # concatenated batch after batch would not line up with the rows.
        raise ConfigError("a packed classifier trains; predict with the BertModel it was made from")


def packed_classifier(model):
    """The `PackedClassifier` view of `model` (a `BertModel` with `num_labels`).

    Raises:
        ConfigError: `model` is no classifier, or has a task embedding (its
            ids are per example, not per token).
    """
    if not isinstance(model, BertModel) or model.num_labels is None:
        raise ConfigError("packing needs a BertModel classifier (num_labels set)")
    if model.task_num is not None:
        raise ConfigError("packing does not carry task ids (task_num): train this model with --no-packing")
    cls = keras.Input(shape=(), dtype="int32", name=PACKED_INPUTS[0])
    token_ids, segment_ids, positions, example_ids = (
        keras.Input(shape=(None,), dtype="int32", name=name) for name in PACKED_INPUTS[1:])
    layer = model.get_layer
    embedded, _ = layer("Embedding-Token")(token_ids)  # [R, L, D]
    x = layer("Embedding-Token-Segment")([embedded, layer("Embedding-Segment")(segment_ids)])
    x = layer("Embedding-Position")(x, positions=positions)
    x = layer("Embedding-Norm")(layer("Embedding-Dropout")(x))
    mask = PackingMask(name="Packing-Mask")(example_ids)  # [R, L, L]
    for n in range(1, model.bert_config.num_hidden_layers + 1):
        x = _encoder(x, mask, model.bert_config, n, layer=layer)
    pooled = PackingGather(name="Packing-Gather")(x, cls)  # [N, D]
    pooled = layer("Classifier-Dropout")(layer("NSP-Dense")(pooled))
    logits = layer("Classifier-Dense")(pooled)  # [N, labels]
    packed = PackedClassifier(inputs=[cls, token_ids, segment_ids, positions, example_ids], outputs=logits,
                              name=f"{model.name}_packed")
    # The same variables in the same order: an optimizer built by one serves
    # the other (model.keras stores the optimizer's slots by position).
    if [id(v) for v in packed.trainable_variables] != [id(v) for v in model.trainable_variables]:
        raise ConfigError(f"{model.name}: the packed view orders the variables differently")
    packed.input_limits = model.input_limits  # what the shared layers accept
    return packed
