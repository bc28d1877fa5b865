"""kbert: BERT as named Keras 3 layers on TensorFlow, JAX and PyTorch."""

__version__ = "0.1.0"

from kbert.config import BertConfig
from kbert.errors import CheckpointError, ConfigError, DataError, KbertError
from kbert.model import BertModel

__all__ = [
    "BertConfig",
    "BertModel",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "KbertError",
]
