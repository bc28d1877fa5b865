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
    ("distill", "distill", "distill teaching materials into the CNN student"),
    ("predict", "predict", "classify raw text with a fine-tuned teacher or a distilled student"),
    ("export", "export", "export a teacher or student for serving (TF SavedModel or ONNX)"),
    ("run", "run", "the whole pipeline: fine-tune, evaluate, materials, distill, time, report"),
)


def build_parser():
    parser = argparse.ArgumentParser(prog="kbert", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        command = importlib.import_module(f"kbert.commands.{module}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    from kbert.errors import KbertError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args) or 0
    except KbertError as e:
        print(f"kbert {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
