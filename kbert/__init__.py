"""kbert: BERT as named Keras 3 layers on TensorFlow, JAX and PyTorch.

    from kbert import load_checkpoint
    model = load_checkpoint("uncased_L-12_H-768_A-12/")     # Google's original
    model = load_checkpoint("minilm-l6", num_labels=2)      # a preset (HF safetensors)

keras-bert programs run on kbert after one changed import:
`import kbert.keras_bert as keras_bert` (see `kbert.keras_bert`).

Importing kbert registers its Keras layers, models and schedules, so
`keras.saving.load_model` reads kbert's `.keras` files after `import kbert`.
"""

__version__ = "0.1.0"

from kbert import layers, optimization  # noqa: F401  (registers Keras objects)
from kbert.config import BertConfig
from kbert.errors import CheckpointError, ConfigError, DataError, KbertError
from kbert.hub import to_keras_hub
from kbert.model import BertModel, attention_probabilities, packed_classifier
from kbert.packing import PackedBatches
from kbert.predict import Classifier, Prediction, load_classifier
from kbert.presets import PRESETS
from kbert.student import BiLSTMStudent, StudentModel, build_student
from kbert.tokenization import Tokenizer
from kbert.weights.export import export_checkpoint
from kbert.weights.loading import (
    CheckpointWarning,
    LoadReport,
    checkpoint_mapping,
    load_checkpoint,
    load_trained_model_from_checkpoint,
)

__all__ = [
    "BertConfig",
    "BertModel",
    "BiLSTMStudent",
    "CheckpointError",
    "CheckpointWarning",
    "Classifier",
    "ConfigError",
    "DataError",
    "KbertError",
    "LoadReport",
    "PRESETS",
    "PackedBatches",
    "Prediction",
    "StudentModel",
    "Tokenizer",
    "attention_probabilities",
    "build_student",
    "checkpoint_mapping",
    "export_checkpoint",
    "load_checkpoint",
    "load_classifier",
    "load_trained_model_from_checkpoint",
    "packed_classifier",
    "to_keras_hub",
]
