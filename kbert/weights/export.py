"""`export_checkpoint`: a `BertModel` back to Google's original format.

Writes `bert_config.json`, `bert_model.ckpt.{index,data-00000-of-00001}` and
`vocab.txt` under the original variable names, from the same name-map table
the loader reads, so load -> export -> load is bit-exact.  Everything is
written into a temporary directory beside the target and renamed into place:
an interrupted export never leaves a half checkpoint under the target name.
"""

import logging
import os
import shutil

import numpy as np

from kbert.atomic import atomic_directory
from kbert.errors import CheckpointError, ConfigError
from kbert.weights import name_map
from kbert.weights.loading import Assignment
from kbert.weights.writer import write_original_checkpoint

logger = logging.getLogger(__name__)


def export_tensors(model):
    """`{original name: array}` for every weight of `model`, and the assignments."""
    config = model.bert_config
    slots = {v.path: v for v in model.weights}
    tensors, written = {}, []
    for row in name_map.expand(name_map.ORIGINAL, config.num_hidden_layers):
        variable = slots.pop(row.slot, None)
        if variable is None:
            continue
        value = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable.value)
        name = name_map.CLASSIFIER_SCOPES[0] + row.name
        tensors[name] = name_map.invert_transform(value, row.transform).astype(np.float32)
        written.append(Assignment(name, row.slot, tuple(variable.shape), row.transform))
    if slots:
        raise CheckpointError(f"no name-map row for model variables: {', '.join(sorted(slots))}")
    return tensors, written


def export_checkpoint(model, directory, *, vocab_file=None, overwrite=False):
    """Write `model` as an original-format checkpoint directory.

    Args:
        model: a `BertModel` (as built by `load_checkpoint` or `BertModel`).
        directory: the checkpoint directory to create.
        vocab_file: the `vocab.txt` to copy; defaults to the one the model
            was loaded with.
        overwrite: replace an existing `directory`, if it is a checkpoint
            directory (it holds a `bert_config.json`); anything else is
            never removed.

    Returns the list of `Assignment`s written (original name <- Keras slot).

    Raises:
        CheckpointError: `directory` exists (without `overwrite`, or is no
            checkpoint directory), is, contains or lies inside the checkpoint
            or vocabulary the model was loaded from, or cannot be written.
        ConfigError: `model` is no kbert model, or has no vocabulary.
    """
    config = getattr(model, "bert_config", None)
    if config is None:
        raise ConfigError("export_checkpoint needs a kbert BertModel (no bert_config found)")
    vocab_file = vocab_file or getattr(model, "vocab_file", None)
    if vocab_file is None or not os.path.isfile(vocab_file):
        raise ConfigError(
            f"export_checkpoint needs the model's vocab.txt (got {vocab_file!r}); pass vocab_file="
        )
    tensors, written = export_tensors(model)
    # What the model was loaded from is never replaced, nor written into.
    source = getattr(getattr(model, "load_report", None), "path", None)
    if source is not None and not os.path.isdir(source):
        source = os.path.dirname(os.path.abspath(source))  # an original checkpoint's prefix: its directory
    with atomic_directory(directory, overwrite=overwrite, marker="bert_config.json",
                          inputs=[vocab_file, source], flag="checkpoint directory", error=CheckpointError) as tmp:
        write_original_checkpoint(os.path.join(tmp, "bert_model.ckpt"), tensors)
        with open(os.path.join(tmp, "bert_config.json"), "w", encoding="utf-8") as f:
            f.write(config.to_json_string())
        shutil.copyfile(vocab_file, os.path.join(tmp, "vocab.txt"))
    logger.info("exported %d variables to %s", len(written), directory)
    return written
