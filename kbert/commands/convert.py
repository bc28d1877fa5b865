"""`kbert convert SRC DST`: any checkpoint kbert reads -> Google's original format.

The heads built are `loading.default_heads`'s choice, the same as `kbert names`':
MLM + NSP when the source has both, else its classifier (sequence, token or span:
a Hugging Face config's `architectures` says which), else its pooler.
"""


from kbert.commands.flags import add_flag


def add_arguments(parser):
    parser.add_argument("source", help="preset, original checkpoint, or HF directory")
    parser.add_argument("target", help="directory to write (must not exist unless --overwrite)")
    add_flag(parser, "--config", help="bert_config.json, when not beside the source")
    add_flag(parser, "--vocab", help="vocab.txt, when not beside the source")
    add_flag(parser, "--overwrite", action=bool, help="replace an existing target")


def run(args):
    from kbert.weights import loading
    from kbert.weights.export import export_checkpoint

    heads = loading.default_heads(loading.open_checkpoint(args.source, args.config))
    model = loading.load_checkpoint(args.source, config=args.config, **heads)
    print(model.load_report)
    written = export_checkpoint(
        model, args.target, vocab_file=args.vocab, overwrite=args.overwrite
    )
    print(f"wrote {len(written)} variables to {args.target} (original format)")
