"""`kbert download-glue`: fetch GLUE tasks into DATA_DIR/TASK/{train,dev,test}.tsv."""

import os

from kbert.commands.flags import add_flag
from kbert.errors import DataError
from kbert.glue import GLUE_DIR_ENV, download_glue
from kbert.glue.download import DOWNLOADABLE_TASKS


def add_arguments(parser):
    add_flag(parser, "--tasks", default=",".join(DOWNLOADABLE_TASKS),
             help=f"comma-separated task names (default: {','.join(DOWNLOADABLE_TASKS)})")
    add_flag(parser, "--data-dir", help=f"where the tasks go (default: ${GLUE_DIR_ENV})")
    add_flag(parser, "--base-url",
             help="fetch every file from BASE_URL/<file name> instead of GLUE's hosts (a mirror)")


def run(args):
    data_dir = args.data_dir or os.environ.get(GLUE_DIR_ENV)
    if not data_dir:
        raise DataError(f"say where the data goes: --data-dir DIR or set {GLUE_DIR_ENV}")
    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    if not tasks:
        raise DataError("--tasks names no task")
    for task, outcome in download_glue(tasks, data_dir, base_url=args.base_url).items():
        where = os.path.join(data_dir, task)
        print(f"{task}: {'already present in' if outcome == 'present' else 'downloaded to'} {where}")
