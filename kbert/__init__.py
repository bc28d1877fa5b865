"""kbert: BERT as named Keras 3 layers on TensorFlow, JAX and PyTorch.

    from kbert import load_checkpoint
    model = load_checkpoint("uncased_L-12_H-768_A-12/")     # Google's original
    model = load_checkpoint("minilm-l6", num_labels=2)      # a preset (HF safetensors)

Names are imported on first use, so `import kbert.glue` or `kbert --help`
does not pay for Keras.
"""

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "BertConfig": "kbert.config",
    "BertModel": "kbert.model",
    "CheckpointError": "kbert.errors",
    "ConfigError": "kbert.errors",
    "DataError": "kbert.errors",
    "KbertError": "kbert.errors",
    "PRESETS": "kbert.presets",
    "Tokenizer": "kbert.tokenization",
    "export_checkpoint": "kbert.weights.export",
    "CheckpointWarning": "kbert.weights.loading",
    "LoadReport": "kbert.weights.loading",
    "checkpoint_mapping": "kbert.weights.loading",
    "load_checkpoint": "kbert.weights.loading",
    "load_trained_model_from_checkpoint": "kbert.weights.loading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kbert' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
