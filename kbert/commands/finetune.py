"""`kbert finetune --task SST-2 --checkpoint minilm-l6 --output runs/sst2`."""

import argparse


def add_arguments(parser):
    from kbert.finetune import FinetuneOptions

    d = FinetuneOptions(task="")
    parser.add_argument("--task", required=True, help="CoLA, MRPC, SST-2, RTE, STS-B or WNLI")
    parser.add_argument("--checkpoint", default=d.checkpoint, help="preset, original checkpoint or HF directory")
    parser.add_argument("--output", required=True, help="run directory")
    parser.add_argument("--data-dir", help="GLUE data (default: $GLUE_DIR)")
    parser.add_argument("--cache-dir", help="feature cache (default: OUTPUT/features)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--learning-rate", type=float, default=d.learning_rate)
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--max-seq-len", type=int, default=d.max_seq_len)
    parser.add_argument("--max-train-examples", type=int, help="the first N after a seeded shuffle")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--cased", action="store_true", help="the checkpoint is cased")
    parser.add_argument("--length-bucketing", action=argparse.BooleanOptionalAction, default=d.length_bucketing,
                        help="train on batches of similar length (about 2.5x less padding on SST-2, but lower "
                             "dev scores in benchmarks/results) instead of random ones (default: random)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument("--distribute", action="store_true", help="data-parallel over local devices (JAX)")
    parser.add_argument("--no-eval", action="store_true", help="skip the dev evaluation")


def run(args):
    from kbert.evaluation import evaluate
    from kbert.finetune import FinetuneOptions, finetune

    options = FinetuneOptions(
        task=args.task,
        checkpoint=args.checkpoint,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        max_seq_len=args.max_seq_len,
        max_train_examples=args.max_train_examples,
        seed=args.seed,
        cased=args.cased,
        length_bucketing=args.length_bucketing,
    )
    record = finetune(
        options, args.output, data_dir=args.data_dir, cache_dir=args.cache_dir,
        resume=args.resume, distribute=args.distribute,
    )
    print(f"fine-tuned {record['task']}: {record['train_examples']} examples, "
          f"global_step {record['global_step']}, {record.get('train_seconds', 0):.0f} s")
    if not args.no_eval:
        result = evaluate(args.output, data_dir=args.data_dir)
        print(result["report"], end="")
