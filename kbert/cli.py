"""`kbert <command>`: thin command-line wrappers over the library.

Each subcommand lives in `kbert/commands/<name>.py` with two functions,
`add_arguments(parser)` and `run(args)`; the library does the work and
the command prints.  Errors of the kbert family end the program with their
message and exit status 2, not a traceback.
"""

import argparse
import importlib
import logging
import os
import sys
import warnings

# (command name, module in kbert.commands, one-line help)
COMMANDS = (
    ("names", "names", "print the original name -> Keras variable mapping of a checkpoint"),
    ("convert", "convert", "convert a checkpoint (HF or original) to the original format"),
    ("tokenize", "tokenize", "tokenize text as the original FullTokenizer does"),
    ("download-glue", "download_glue", "download GLUE tasks into DATA_DIR/TASK/{train,dev,test}.tsv"),
    ("records-to-text", "records_to_text", "print a feature-cache .tf_record as text"),
    ("pretrain", "pretrain", "continue pre-training (masked LM + next sentence) on plain text"),
    ("finetune", "finetune", "fine-tune a classifier on a GLUE task (the teacher)"),
    ("evaluate", "evaluate", "evaluate a fine-tuned run or a student on dev or a labeled TSV"),
    ("materials", "materials", "run a fine-tuned teacher over a task and store its teaching materials"),
    ("distill", "distill", "distill teaching materials into a student (CNN, BiLSTM or transformer)"),
    ("predict", "predict", "classify raw text with a fine-tuned teacher or a distilled student"),
    ("export", "export", "export a teacher or student for serving (TF SavedModel or ONNX)"),
    ("run", "run", "the whole pipeline: fine-tune, evaluate, materials, distill, time, report"),
)


def build_parser(argv=None):
    """The parser; only the command named in `argv` (if any) imports its
    module and adds its flags, so `kbert --help` loads nothing heavy."""
    names = {name for name, _, _ in COMMANDS}
    chosen = next((a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="kbert", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log at INFO level, and show the backend libraries' own start-up logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen and chosen in names:
            command = importlib.import_module(f"kbert.commands.{module}")
            command.add_arguments(p)
            p.set_defaults(run=command.run)
    return parser


def _hide_native_stderr():
    """Send file descriptor 2 to /dev/null and keep Python's `sys.stderr`
    (kbert's messages, progress bars, tracebacks) on the real one.

    TensorFlow 2.21 and XLA log from C++ through absl straight to fd 2
    ("oneDNN custom operations are on", "Could not find cuda drivers"),
    and ignore TF_CPP_MIN_LOG_LEVEL, so only the descriptor can hide them.
    """
    sys.stderr.flush()
    real = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")


def main(argv=None, *, quiet=False):
    """Run one command; returns the exit status.  `quiet` (the console
    script's choice) hides the backend libraries' own log lines unless -v."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    from kbert.errors import KbertError

    args = build_parser(argv).parse_args(argv)
    if quiet and not args.verbose:
        _hide_native_stderr()
        for name in ("absl", "tensorflow", "jax", "h5py", "ray"):  # their Python-side start-up warnings
            logging.getLogger(name).setLevel(logging.ERROR)
        # The libraries' own Python warnings (Keras on input structures,
        # tf2onnx's FutureWarnings); kbert's, such as CheckpointWarning, stay.
        warnings.filterwarnings("ignore", module=r"(?!kbert)")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args) or 0
    except KbertError as e:
        print(f"kbert {args.command}: error: {e}", file=sys.stderr)
        return 2


def console():
    """The `kbert` console script."""
    sys.exit(main(quiet=True))


if __name__ == "__main__":
    console()
