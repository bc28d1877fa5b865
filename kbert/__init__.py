"""kbert: BERT as named Keras 3 layers on TensorFlow, JAX and PyTorch.

    from kbert import load_checkpoint
    model = load_checkpoint("uncased_L-12_H-768_A-12/")     # Google's original
    model = load_checkpoint("minilm-l6", num_labels=2)      # a preset (HF safetensors)

keras-bert programs run on kbert after one changed import:
`import kbert.keras_bert as keras_bert` (see `kbert.keras_bert`).

Importing kbert registers its Keras layers, models and schedules, so
`keras.saving.load_model` reads kbert's `.keras` files after `import kbert`.
The one exception is the `kbert` command, which parses its arguments before
it loads Keras, so that `kbert --help` answers at once; its commands import
what they run.  The public names below are resolved on first use.
"""

import importlib
import importlib.util
import os
import sys

__version__ = "0.1.0"

# Public name -> the module that defines it.
_PUBLIC = {
    "BertConfig": "kbert.config",
    "BertModel": "kbert.model",
    "BiLSTMStudent": "kbert.student",
    "BucketedBatches": "kbert.batching",
    "CNNStudent": "kbert.student",
    "CheckpointError": "kbert.errors",
    "CheckpointWarning": "kbert.weights.loading",
    "Classifier": "kbert.predict",
    "ConfigError": "kbert.errors",
    "DataError": "kbert.errors",
    "DistillOptions": "kbert.options",
    "FinetuneOptions": "kbert.options",
    "KbertError": "kbert.errors",
    "LoadReport": "kbert.weights.loading",
    "MaterialsOptions": "kbert.options",
    "PRESETS": "kbert.presets",
    "PackedBatches": "kbert.packing",
    "PipelineOptions": "kbert.pipeline",
    "Prediction": "kbert.predict",
    "PredictOptions": "kbert.options",
    "PretrainOptions": "kbert.options",
    "StudentModel": "kbert.student",  # CNNStudent's old name, kept for old programs; not in __all__
    "Tokenizer": "kbert.tokenization",
    "attention_probabilities": "kbert.views",
    "build_student": "kbert.student",
    "checkpoint_mapping": "kbert.weights.loading",
    "cut_teacher": "kbert.student",
    "distill": "kbert.distillation",
    "evaluate": "kbert.evaluation",
    "export_checkpoint": "kbert.weights.export",
    "export_run": "kbert.serving",
    "finetune": "kbert.finetuning",
    "load_checkpoint": "kbert.weights.loading",
    "load_classifier": "kbert.predict",
    "load_trained_model_from_checkpoint": "kbert.keras_bert",  # keras-bert's semantics; strict: load_checkpoint
    "materials_from_run": "kbert.materials",
    "packed_classifier": "kbert.views",
    "predict_bucketed": "kbert.inference",
    "predict_files": "kbert.predict",
    "pretrain": "kbert.pretraining",
    "run_artifact": "kbert.serving",
    "run_pipeline": "kbert.pipeline",
    "to_keras_hub": "kbert.hub",
}


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
    elif importlib.util.find_spec(f"kbert.{name}") is not None:  # a submodule, as `import kbert.x` gives it
        value = importlib.import_module(f"kbert.{name}")
    else:
        raise AttributeError(f"module 'kbert' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))


def _started_as_the_command():
    """True inside the `kbert` console script."""
    path = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    return os.path.basename(path) == "kbert"


if not _started_as_the_command():
    from kbert.saving import register_all  # noqa: E402

    register_all()

__all__ = [
    "BertConfig",
    "BertModel",
    "BiLSTMStudent",
    "BucketedBatches",
    "CNNStudent",
    "CheckpointError",
    "CheckpointWarning",
    "Classifier",
    "ConfigError",
    "DataError",
    "DistillOptions",
    "FinetuneOptions",
    "KbertError",
    "LoadReport",
    "MaterialsOptions",
    "PRESETS",
    "PackedBatches",
    "PipelineOptions",
    "Prediction",
    "PredictOptions",
    "PretrainOptions",
    "Tokenizer",
    "attention_probabilities",
    "build_student",
    "checkpoint_mapping",
    "cut_teacher",
    "distill",
    "evaluate",
    "export_checkpoint",
    "export_run",
    "finetune",
    "load_checkpoint",
    "load_classifier",
    "load_trained_model_from_checkpoint",
    "materials_from_run",
    "packed_classifier",
    "predict_bucketed",
    "predict_files",
    "pretrain",
    "run_artifact",
    "run_pipeline",
    "to_keras_hub",
]
