"""`kbert run --task SST-2 [--full]`: the whole pipeline (what `make demo` runs)."""

from kbert.commands.flags import add_flag, add_option, options_from_args
from kbert.options import PAIRS
from kbert.pipeline import PipelineOptions
from kbert.registry import STUDENTS


def add_arguments(parser):
    add_option(parser, PipelineOptions, "task", help="SST-2 (default), CoLA, MRPC or another classification task")
    add_flag(parser, "--output", help="run directory (default: runs/demo, or runs/full-TASK with --full)")
    add_option(parser, PipelineOptions, "checkpoint", help="teacher: preset, original or HF checkpoint")
    add_option(parser, PipelineOptions, "full",
               help="all training data and the checkpoint's full recipe instead of the demo's subset")
    add_flag(parser, "--data-dir", help="GLUE data (default: $GLUE_DIR)")
    add_option(parser, PipelineOptions, "augment", help="augmented copies per training sentence")
    add_option(parser, PipelineOptions, "neighbours", metavar="K",
               help="with --augment, also replace words by one of their K nearest neighbours")
    add_option(parser, PipelineOptions, "p_neighbour", help="the chance that a word is so replaced")
    add_option(parser, PipelineOptions, "unlabeled", type=str, nargs="+", metavar="FILE",
               help="your own text for the teacher to label, one input a line (kbert materials --unlabeled)")
    # --student: one student, as kbert distill spells it.
    add_option(parser, PipelineOptions, "students", aliases=("--student",), type=_names,
               metavar="NAME[:KEY=VALUE...],...",
               help=f"the students, distilled from one set of materials: any of {', '.join(STUDENTS)}, each "
                    "with options of its own, e.g. bilstm,transformer:layers=4 (default: bilstm,transformer)")
    add_option(parser, PipelineOptions, "pairs", choices=PAIRS,
               help="the BiLSTM's reading of sentence pairs: one sequence (default) or each sentence alone")
    add_option(parser, PipelineOptions, "embedding", choices=("teacher", "static"),
               help="the small students' starting vectors: the teacher's Embedding-Token rows, or static vectors")
    add_option(parser, PipelineOptions, "seed")


def _names(text):
    return tuple(name.strip() for name in text.split(",") if name.strip())


def run(args):
    import os

    from kbert.pipeline import run_pipeline

    output = args.output or ("runs/demo" if not args.full else f"runs/full-{args.task.lower()}")
    run_pipeline(options_from_args(PipelineOptions, args), output, data_dir=args.data_dir)
    print(open(os.path.join(output, "report.md"), encoding="utf-8").read())
