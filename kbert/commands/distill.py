"""`kbert distill --materials DIR --out DIR`: train the CNN student on teaching materials."""

from kbert.distill import LOSSES, DistillConfig
from kbert.layers.student_embedding import VARIANTS

_DEFAULTS = DistillConfig()


def add_arguments(parser):
    parser.add_argument("--materials", required=True, help="directory written by `kbert materials`")
    parser.add_argument("--out", required=True, help="directory for student.keras, config.json, history.json")
    parser.add_argument("--epochs", type=int, default=_DEFAULTS.epochs)
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size)
    parser.add_argument("--learning-rate", type=float, default=_DEFAULTS.learning_rate, help="Adam's step size")
    parser.add_argument("--alpha", type=float, default=_DEFAULTS.alpha,
                        help="weight of the gold-label cross-entropy; 0 (default): the teacher's logits only")
    parser.add_argument("--loss", choices=LOSSES, default=_DEFAULTS.loss,
                        help="mse: between logits (Tang et al.); kl: between temperature-softened outputs")
    parser.add_argument("--temperature", type=float, default=_DEFAULTS.temperature, help="for --loss kl")
    parser.add_argument("--variant", choices=VARIANTS, default=_DEFAULTS.variant, help="Kim's embedding variants")
    parser.add_argument("--embedding-dim", type=int, default=None,
                        help="project the teacher's word vectors to this width (default: keep them)")
    parser.add_argument("--no-augmented", action="store_true", help="train on the train split only")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    parser.add_argument("--no-length-bucketing", dest="length_bucketing", action="store_false",
                        help="random batches (each still trimmed to its longest row) instead of length-sorted ones")
    parser.add_argument("--resume", action="store_true", help="continue the run checkpointed in --out")


def run(args):
    from kbert.distill import distill

    config = DistillConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        alpha=args.alpha,
        loss=args.loss,
        temperature=args.temperature,
        variant=args.variant,
        embedding_dim=args.embedding_dim,
        seed=args.seed,
        train_splits=("train",) if args.no_augmented else _DEFAULTS.train_splits,
        length_bucketing=args.length_bucketing,
    )
    summary = distill(args.materials, args.out, config, resume=args.resume)
    accuracy = summary["dev_accuracy"]
    print(
        f"best epoch {summary['best_epoch']} of {summary['epochs']}: dev accuracy "
        f"{'n/a' if accuracy is None else f'{accuracy:.4f}'}, agreement with the teacher "
        f"{summary['dev_agreement']:.4f}\nstudent: {summary['path']}"
    )
