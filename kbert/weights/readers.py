"""Checkpoint readers: the original TensorFlow format and HF safetensors.

Both expose the same small interface used by the loader:
    `path`       what was opened (for error messages)
    `format`     "original" or "huggingface" (selects the name map)
    `shapes`     {name: shape} of every tensor, read from the index alone
    `read(name)` one tensor as a NumPy array
A reader never unpickles: a PyTorch `.bin` file is refused.
"""

import os

import numpy as np

from kbert.atomic import read_json
from kbert.errors import CheckpointError
from kbert.weights import name_map


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
        except Exception as e:
            raise CheckpointError(f"{self.path}: cannot open checkpoint: {_first_line(e)}") from None
        self.shapes = {name: tuple(shape) for name, shape in shapes.items()}

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
            weight_map = read_json(index, error=CheckpointError, what="shard index").get("weight_map")
            if not isinstance(weight_map, dict):
                raise CheckpointError(f"{index}: shard index has no 'weight_map' object")
            files = {os.path.join(self.path, v) for v in weight_map.values()}
        else:
            raise CheckpointError(f"{self.path}: no model.safetensors")
        self._handles, self._file_of, self.shapes = {}, {}, {}
        for file in sorted(files):
            try:
                handle = safe_open(file, framework="np")
                keys = list(handle.keys())
                shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in keys}
            except Exception as e:  # safetensors raises its own SafetensorError
                raise CheckpointError(f"{file}: cannot open safetensors file: {e}") from None
            self._handles[file] = handle
            for key, shape in shapes.items():
                name = name_map.normalize_hf_name(key)
                if name in self._file_of:
                    raise CheckpointError(f"{file}: tensor {key!r} appears twice")
                self._file_of[name] = (file, key)
                self.shapes[name] = shape

    def names(self):
        return self.shapes.keys()

    def read(self, name):
        file, key = self._file_of[name]
        try:
            return np.asarray(self._handles[file].get_tensor(key))
        except Exception as e:
            raise CheckpointError(f"{file}: cannot read tensor {key!r}: {e}") from None


def _first_line(error):
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
