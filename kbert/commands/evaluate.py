"""`kbert evaluate --model RUN_DIR [--task SST-2] [--file LABELED_TSV]`."""


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="a fine-tuned run or a student directory")
    parser.add_argument("--task", help="defaults to the run's task")
    parser.add_argument("--file", help="any labeled TSV in the task's dev format")
    parser.add_argument("--data-dir", help="GLUE data (default: $GLUE_DIR)")
    parser.add_argument("--batch-size", type=int, default=64)


def run(args):
    from kbert.evaluation import evaluate

    result = evaluate(args.model, args.task, file=args.file, data_dir=args.data_dir, batch_size=args.batch_size)
    print(result["report"], end="")
    print(f"({result['examples']} examples, {result['truncated']} truncated, "
          f"{result['items_per_second']:.0f} ex/s; written to {result['path']})")
