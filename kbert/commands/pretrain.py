"""`kbert pretrain --corpus TEXT --output runs/dapt`: continue pre-training on plain text."""

from kbert.commands.flags import add_flag, add_option, options_from_args
from kbert.options import PretrainOptions


def add_arguments(parser):
    add_option(parser, PretrainOptions, "corpus", required=True, nargs="+", type=str, metavar="FILE",
               help="text files: one sentence a line, a blank line between documents")
    add_option(parser, PretrainOptions, "checkpoint", help="preset, original checkpoint, HF directory or kbert run")
    add_flag(parser, "--output", required=True, help="run directory (the result: OUTPUT/checkpoint)")
    add_option(parser, PretrainOptions, "max_seq_len")
    add_option(parser, PretrainOptions, "max_predictions_per_seq")
    add_option(parser, PretrainOptions, "masked_lm_prob")
    add_option(parser, PretrainOptions, "short_seq_prob")
    add_option(parser, PretrainOptions, "dupe_factor", help="passes over the corpus, each with new masks")
    add_option(parser, PretrainOptions, "whole_word_mask", help="mask all pieces of a word together")
    add_option(parser, PretrainOptions, "cased", help="the checkpoint is cased")
    add_option(parser, PretrainOptions, "seed")
    add_option(parser, PretrainOptions, "batch_size")
    add_option(parser, PretrainOptions, "learning_rate")
    add_option(parser, PretrainOptions, "num_train_steps", type=int, help="default: one pass over the instances")
    add_option(parser, PretrainOptions, "warmup_proportion")
    add_option(parser, PretrainOptions, "weight_decay")
    add_option(parser, PretrainOptions, "save_every", help="steps between saves a killed run resumes from")
    add_flag(parser, "--resume", action=bool, help="continue an interrupted run")


def run(args):
    from kbert.pretraining import pretrain

    record = pretrain(options_from_args(PretrainOptions, args, corpus=tuple(args.corpus)), args.output,
                      resume=args.resume)
    results = record.results
    last = results["history"][-1] if results.get("history") else {}
    # A run completed before kbert counted its sequences trained batch_size a step.
    sequences = results.get("sequences", results["global_step"] * args.batch_size)
    print(f"pre-trained {results['global_step']} steps, {sequences} sequences "
          f"({sequences / results['instances']:.2f} passes over {results['instances']} instances), "
          f"{results['train_seconds']:.0f} s ({results['sequences_per_second']:.1f} sequences/s); "
          f"last losses: MLM {last.get('mlm_loss', float('nan')):.4f}, NSP {last.get('nsp_loss', float('nan')):.4f}")
    print(f"checkpoint: {args.output}/checkpoint")
