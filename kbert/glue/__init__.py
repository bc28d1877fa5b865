"""The GLUE data layer: task readers, downloader, feature cache, metrics.

No model code lives here.  Library functions take a `data_dir`; the
command line defaults it from the `GLUE_DIR` environment variable (see
`resolve_data_dir`).
"""

import os

from kbert.errors import DataError
from kbert.glue.download import DEFAULT_URLS, DownloadError, download_glue
from kbert.glue.features import (
    CachePaths,
    Conversion,
    FeatureCache,
    Features,
    convert_examples,
    iter_records,
    load_features,
    read_jsonl_file,
)
from kbert.glue.metrics import compute_metrics, eval_results, format_eval_results, write_eval_results
from kbert.glue.processors import (
    TASKS,
    InputExample,
    TaskProcessor,
    canonical_task_name,
    get_processor,
    split_texts,
)

GLUE_DIR_ENV = "GLUE_DIR"
# Where a checkout finds the data when neither --data-dir nor $GLUE_DIR is
# given: the shared folder beside the repository (relative to the current
# directory, as the Makefile and CI run from the repository root).
DEFAULT_GLUE_DIR = os.path.join("..", "shared", "glue_data")


def resolve_data_dir(data_dir=None) -> str:
    """`data_dir`, else $GLUE_DIR, else `../shared/glue_data` when it exists;
    a missing directory says how to get the data."""
    chosen = data_dir if data_dir else os.environ.get(GLUE_DIR_ENV)
    if not chosen and os.path.isdir(DEFAULT_GLUE_DIR):
        chosen = DEFAULT_GLUE_DIR
    if not chosen:
        raise DataError(
            f"no GLUE data directory: pass --data-dir or set {GLUE_DIR_ENV} "
            f"(the default, {DEFAULT_GLUE_DIR}, does not exist); "
            "download the data with `kbert download-glue --data-dir DIR`"
        )
    chosen = os.fspath(chosen)
    if not os.path.isdir(chosen):
        raise DataError(
            f"GLUE data directory {chosen} does not exist; "
            f"download the data with `kbert download-glue --data-dir {chosen}`"
        )
    return chosen


__all__ = [
    "CachePaths",
    "Conversion",
    "DEFAULT_URLS",
    "DownloadError",
    "FeatureCache",
    "Features",
    "GLUE_DIR_ENV",
    "InputExample",
    "TASKS",
    "TaskProcessor",
    "canonical_task_name",
    "compute_metrics",
    "convert_examples",
    "download_glue",
    "eval_results",
    "format_eval_results",
    "get_processor",
    "iter_records",
    "load_features",
    "read_jsonl_file",
    "resolve_data_dir",
    "split_texts",
    "write_eval_results",
]
