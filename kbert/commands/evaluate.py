"""`kbert evaluate --model RUN_DIR [--task SST-2] [--file LABELED_TSV]`."""


from kbert.commands.flags import add_flag


def add_arguments(parser):
    from kbert.evaluation import EVAL_BATCH_SIZE

    add_flag(parser, "--model", required=True, help="a fine-tuned run or a student directory")
    add_flag(parser, "--task", help="defaults to the run's task")
    add_flag(parser, "--file", help="any labeled TSV in the task's dev format; for a conll or squad run, a "
                                    "CoNLL-2003 or SQuAD file (default: the run's --dev)")
    add_flag(parser, "--data-dir", help="GLUE data (default: $GLUE_DIR)")
    add_flag(parser, "--batch-size", type=int, default=EVAL_BATCH_SIZE)
    add_flag(parser, "--packing", action=bool, default=True,
             help="read a BERT classifier's rows packed where that pays: the same logits (default: yes)")
    add_flag(parser, "--verify", action=bool,
             help="check the run's files against the sha256 hashes run.json records before loading")


def run(args):
    from kbert.evaluation import evaluate

    result = evaluate(args.model, args.task, file=args.file, data_dir=args.data_dir, batch_size=args.batch_size,
                      verify=args.verify, packing=args.packing)
    print(result["report"], end="")
    print(f"({result['examples']} examples, {result['truncated']} truncated, "
          f"{result['items_per_second']:.0f} ex/s; written to {result['path']})")
