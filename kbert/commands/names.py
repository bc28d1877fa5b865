"""`kbert names CHECKPOINT`: the original name -> Keras variable mapping."""


def add_arguments(parser):
    parser.add_argument("checkpoint", help="preset, checkpoint directory or prefix")
    parser.add_argument("--config", help="bert_config.json, when not beside the checkpoint")


def run(args):
    from kbert.weights.loading import checkpoint_mapping

    print(checkpoint_mapping(args.checkpoint, config=args.config))
