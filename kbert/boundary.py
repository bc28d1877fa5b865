"""The input boundary of kbert's models.

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
from kbert.errors import DataError
from kbert.packing import PACKED_INPUTS


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


class CheckedBatches(keras.utils.PyDataset):
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


class InputBoundary:
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
            return CheckedBatches(x, self._check_batch), True
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
