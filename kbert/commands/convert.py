"""`kbert convert SRC DST`: any checkpoint kbert reads -> Google's original format.

Every head the source holds (pooler, MLM + NSP, classifier) is carried over.
"""


def add_arguments(parser):
    parser.add_argument("source", help="preset, original checkpoint, or HF directory")
    parser.add_argument("target", help="directory to write (must not exist unless --overwrite)")
    parser.add_argument("--config", help="bert_config.json, when not beside the source")
    parser.add_argument("--vocab", help="vocab.txt, when not beside the source")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing target")


def run(args):
    from kbert.weights.export import export_checkpoint
    from kbert.weights.loading import checkpoint_heads, load_checkpoint, open_checkpoint

    heads = checkpoint_heads(open_checkpoint(args.source, args.config))
    model = load_checkpoint(
        args.source,
        config=args.config,
        training=heads["training"],
        num_labels=None if heads["training"] else heads["num_labels"],
        with_pooler=heads["pooler"] and not heads["training"] and not heads["num_labels"],
    )
    print(model.load_report)
    written = export_checkpoint(
        model, args.target, vocab_file=args.vocab, overwrite=args.overwrite
    )
    print(f"wrote {len(written)} variables to {args.target} (original format)")
