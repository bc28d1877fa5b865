"""`kbert finetune --task SST-2 --checkpoint minilm-l6 --output runs/sst2`, or
`kbert finetune --task conll|squad --train FILE [--dev FILE] --output DIR`."""

from kbert.commands.flags import add_flag, add_option, options_from_args
from kbert.options import HEAD_TASKS, FinetuneOptions


def add_arguments(parser):
    add_option(parser, FinetuneOptions, "task", required=True, type=str, help="CoLA, MRPC, SST-2, RTE, STS-B or WNLI (GLUE), conll (CoNLL-2003 "
                                                                   "tagging) or squad (SQuAD v1.1/v2.0 answers)")
    add_option(parser, FinetuneOptions, "checkpoint", help="preset, original checkpoint or HF directory")
    add_flag(parser, "--output", required=True, help="run directory")
    add_flag(parser, "--data-dir", help="GLUE data (default: $GLUE_DIR)")
    add_option(parser, FinetuneOptions, "train", metavar="FILE",
               help="--task conll or squad: the training file (CoNLL-2003 text, SQuAD JSON)")
    add_option(parser, FinetuneOptions, "dev", metavar="FILE",
               help="--task conll or squad: the file --eval (and kbert evaluate) scores")
    add_flag(parser, "--cache-dir", help="feature cache (default: OUTPUT/features)")
    add_option(parser, FinetuneOptions, "batch_size")
    add_option(parser, FinetuneOptions, "learning_rate", type=float,
               help="default: the checkpoint's recipe (a preset's searched value, else the original 2e-5)")
    add_option(parser, FinetuneOptions, "epochs", type=int, help="default: the checkpoint's recipe (original: 3)")
    add_option(parser, FinetuneOptions, "max_seq_len", type=int,
               help="word pieces a row holds (default: 128; squad 384, as run_squad.py)")
    add_option(parser, FinetuneOptions, "max_train_examples", type=int, help="the first N after a seeded shuffle")
    add_option(parser, FinetuneOptions, "seed")
    add_option(parser, FinetuneOptions, "warmup_proportion")
    add_option(parser, FinetuneOptions, "weight_decay")
    add_option(parser, FinetuneOptions, "cased", help="the checkpoint is cased")
    add_option(parser, FinetuneOptions, "length_bucketing",
               help="train on batches of similar length (about 2.5x less padding on SST-2, but lower "
                    "dev scores in benchmarks/results) instead of random ones (default: random)")
    add_option(parser, FinetuneOptions, "packing",
               help="lay each batch's examples end to end in rows, attention kept inside each example: "
                    "the same batches and results, ~2x faster (default: yes; --no-packing pads each batch "
                    "to its longest row)")
    add_flag(parser, "--resume", action=bool, help="continue an interrupted run")
    add_flag(parser, "--distribute", action=bool,
             help="data-parallel over local devices, and over the processes KERAS_DISTRIBUTION_* name (JAX)")
    add_flag(parser, "--eval", action=bool, default=True, help="evaluate on dev when done (default: yes)")


def run(args):
    from kbert.evaluation import evaluate
    from kbert.finetuning import finetune

    record = finetune(
        options_from_args(FinetuneOptions, args), args.output, data_dir=args.data_dir, cache_dir=args.cache_dir,
        resume=args.resume, distribute=args.distribute,
    )
    for name, source in record.defaults.items():
        print(f"{name} = {record.options[name]} ({source})")
    print(f"fine-tuned {record.task}: {record.results['train_examples']} examples, "
          f"global_step {record.global_step}, {record.results.get('train_seconds', 0):.0f} s")
    if args.eval and (record.task not in HEAD_TASKS or record.options.get("dev")):
        result = evaluate(args.output, data_dir=args.data_dir)
        print(result["report"], end="")
