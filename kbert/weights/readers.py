"""Checkpoint readers: the original TensorFlow format and HF safetensors.

Both expose the same small interface used by the loader:
    `path`       what was opened (for error messages)
    `format`     "original" or "huggingface" (selects the name map)
    `shapes`     {name: shape} of every tensor, read from the index alone
    `dtypes`     {name: dtype name} ("float32", "bfloat16", "int64", "string", ...),
                 also from the index
    `read(name)` one tensor as a NumPy array
A reader never unpickles: a PyTorch `.bin` file is refused.

Weights are floats: the loader accepts `FLOAT_DTYPES` (casting them to the
model's float32) and refuses every other dtype by name, before reading.
"""

import os

import numpy as np

from kbert.atomic import read_json
from kbert.errors import CheckpointError
from kbert.weights import name_map

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")

# safetensors' dtype codes, spelled as NumPy (and TensorFlow) name them.
_SAFETENSORS_DTYPES = {
    "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64",
    "I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64",
    "U8": "uint8", "U16": "uint16", "U32": "uint32", "U64": "uint64",
    "BOOL": "bool", "C64": "complex64", "C128": "complex128",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}  # fmt: skip


class OriginalCheckpoint:
    """A TF checkpoint (`PREFIX.index` + `PREFIX.data-*`) as Google's code writes it."""

    format = "original"
    table = name_map.ORIGINAL

    def __init__(self, prefix):
        self.path = os.fspath(prefix)
        index = self.path + ".index"
        if not os.path.isfile(index):
            raise CheckpointError(f"{index}: checkpoint index not found")
        import tensorflow as tf

        # TF's C++ reader surfaces damage as OpError, ValueError, IndexError
        # or RuntimeError depending on where it trips: all become one error
        # naming the checkpoint (and never a silent skip).
        try:
            self._reader = tf.train.load_checkpoint(self.path)
            shapes = self._reader.get_variable_to_shape_map()
            dtypes = self._reader.get_variable_to_dtype_map()
        except Exception as e:
            raise CheckpointError(f"{self.path}: cannot open checkpoint: {_first_line(e)}") from None
        self.shapes = {name: tuple(shape) for name, shape in shapes.items()}
        self.dtypes = {name: dtype.name for name, dtype in dtypes.items()}

    def names(self):
        return self.shapes.keys()

    def read(self, name):
        try:
            return np.asarray(self._reader.get_tensor(name))
        except Exception as e:
            raise CheckpointError(
                f"{self.path}: cannot read variable {name!r}: {_first_line(e)}"
            ) from None


class SafetensorsCheckpoint:
    """`model.safetensors` (or a sharded `model.safetensors.index.json`)."""

    format = "huggingface"
    table = name_map.HUGGING_FACE

    def __init__(self, directory):
        from safetensors import safe_open

        self.path = os.fspath(directory)
        single = os.path.join(self.path, "model.safetensors")
        index = single + ".index.json"
        if os.path.isfile(single):
            files = {single}
        elif os.path.isfile(index):
            weight_map = _weight_map(index)
            files = {os.path.join(self.path, v) for v in weight_map.values()}
        else:
            raise CheckpointError(f"{self.path}: no model.safetensors")
        self._handles, self._file_of, self.shapes, self.dtypes = {}, {}, {}, {}
        keys_of = {}
        for file in sorted(files):
            try:
                handle = safe_open(file, framework="np")
                keys = list(handle.keys())
                slices = {k: handle.get_slice(k) for k in keys}
                shapes = {k: tuple(s.get_shape()) for k, s in slices.items()}
                dtypes = {k: s.get_dtype() for k, s in slices.items()}
            except Exception as e:  # safetensors raises its own SafetensorError
                raise CheckpointError(f"{file}: cannot open safetensors file: {e}") from None
            self._handles[file] = handle
            keys_of[file] = set(keys)
            for key, shape in shapes.items():
                name = name_map.normalize_hf_name(key)
                if name in self._file_of:
                    raise CheckpointError(f"{file}: tensor {key!r} appears twice")
                self._file_of[name] = (file, key)
                self.shapes[name] = shape
                self.dtypes[name] = _SAFETENSORS_DTYPES.get(dtypes[key], str(dtypes[key]).lower())
        if not os.path.isfile(single):
            for key, shard in weight_map.items():
                if key not in keys_of[os.path.join(self.path, shard)]:
                    raise CheckpointError(f"{index}: {key!r} is mapped to {shard}, which does not hold it")

    def names(self):
        return self.shapes.keys()

    def read(self, name):
        file, key = self._file_of[name]
        try:
            return np.asarray(self._handles[file].get_tensor(key))
        except Exception as e:
            raise CheckpointError(f"{file}: cannot read tensor {key!r}: {e}") from None


def _weight_map(index):
    """The {tensor name: shard file} of a sharded checkpoint's index, every
    entry checked: names and files are strings, files sit in the directory."""
    weight_map = read_json(index, error=CheckpointError, what="shard index").get("weight_map")
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index}: shard index has no 'weight_map' object")
    for key, shard in weight_map.items():
        if not isinstance(shard, str) or not shard or os.path.basename(shard) != shard or shard in (".", ".."):
            raise CheckpointError(
                f"{index}: weight_map maps {key!r} to {shard!r}; a shard is the name of a "
                "file in the checkpoint's directory"
            )
    return weight_map


def _first_line(error):
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
