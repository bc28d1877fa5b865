"""`kbert run --task SST-2 [--full]`: the whole pipeline (what `make demo` runs)."""


def add_arguments(parser):
    parser.add_argument("--task", default="SST-2", help="SST-2 (default), CoLA or MRPC")
    parser.add_argument("--output", help="run directory (default: runs/demo, or runs/full-TASK with --full)")
    parser.add_argument("--checkpoint", default="minilm-l6", help="teacher: preset, original or HF checkpoint")
    parser.add_argument("--full", action="store_true", help="the full recipes instead of the demo's subset")
    parser.add_argument("--data-dir", help="GLUE data (default: $GLUE_DIR)")
    parser.add_argument("--augment", type=int, default=0, help="augmented copies per training sentence")
    parser.add_argument("--seed", type=int, default=42)


def run(args):
    import os

    from kbert.pipeline import run_pipeline

    output = args.output or ("runs/demo" if not args.full else f"runs/full-{args.task.lower()}")
    run_pipeline(args.task, output, checkpoint=args.checkpoint, full=args.full,
                          data_dir=args.data_dir, seed=args.seed, augment=args.augment)
    print(open(os.path.join(output, "report.md"), encoding="utf-8").read())
