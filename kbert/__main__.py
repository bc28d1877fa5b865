"""`python -m kbert`: the `kbert` command."""

from kbert.cli import console

console()
