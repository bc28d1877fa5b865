"""`kbert distill --materials DIR --output DIR [--student cnn|bilstm|transformer]`: train a student on teaching materials."""

from kbert.commands.flags import add_flag, add_option, field_default, options_from_args
from kbert.options import (
    EMBEDDING_ROWS,
    EMBEDDINGS,
    HOLDOUT_DRAWS,
    LAYER_MAPS,
    LOSSES,
    NARROW_STARTS,
    PAIRS,
    POOLINGS,
    SELECTIONS,
    VARIANTS,
    DistillOptions,
)
from kbert.registry import STUDENTS

AUGMENTED, UNLABELED = "augmented", "unlabeled"


def add_arguments(parser):
    add_flag(parser, "--materials", required=True, help="directory written by `kbert materials`")
    add_flag(parser, "--output", required=True, help="the student's run directory")
    add_option(parser, DistillOptions, "epochs")
    add_option(parser, DistillOptions, "batch_size")
    add_option(parser, DistillOptions, "learning_rate", type=float,
               help="Adam's step size (default: the student's own, 1e-3; the transformer's 5e-5)")
    add_option(parser, DistillOptions, "alpha",
               help="weight of the gold-label cross-entropy; 0 (default): the teacher's logits only")
    add_option(parser, DistillOptions, "loss", choices=LOSSES,
               help="mse: between logits (Tang et al.); kl: between temperature-softened outputs")
    add_option(parser, DistillOptions, "temperature", help="for --loss kl")
    add_option(parser, DistillOptions, "student", choices=tuple(STUDENTS),
               help="cnn: Kim's CNN (default); bilstm: Tang et al.'s BiLSTM; transformer: a smaller BERT cut "
                    "from the teacher's own layers")
    add_option(parser, DistillOptions, "units", help="the BiLSTM's state width per direction")
    add_option(parser, DistillOptions, "pooling", choices=POOLINGS,
               help="the BiLSTM's sentence vector: its last states (Tang et al.) or the max over its outputs")
    add_option(parser, DistillOptions, "pairs", choices=PAIRS,
               help="how the BiLSTM reads a sentence pair: as one sequence (joint, default), or each sentence "
                    "alone, matched as [a, b, a*b, |a-b|] (siamese, Tang et al.)")
    add_option(parser, DistillOptions, "layers", type=int,
               help="the transformer's encoder layers (default: half the teacher's)")
    add_option(parser, DistillOptions, "hidden", type=int, help="the transformer's hidden size (default: the teacher's)")
    add_option(parser, DistillOptions, "heads", type=int, help="the transformer's attention heads (default: the teacher's)")
    add_option(parser, DistillOptions, "intermediate", type=int,
               help="the transformer's feed-forward width (default: the teacher's)")
    add_option(parser, DistillOptions, "layer_map", choices=LAYER_MAPS,
               help="which teacher layers the transformer starts from: the bottom ones (default), or spread "
                    "evenly, ending with the last")
    add_option(parser, DistillOptions, "narrow_start", choices=NARROW_STARTS,
               help="how a transformer narrower than the teacher starts: the teacher's layers projected (default) "
                    "or random")
    add_option(parser, DistillOptions, "hidden_weight",
               help="the transformer's hidden-state loss (TinyBERT): MSE to the matched teacher layers' outputs, "
                    "the teacher run in each step (default 0: off)")
    add_option(parser, DistillOptions, "attention_weight",
               help="the transformer's attention loss: KL from the matched teacher layers' attention "
                    "distributions (default 0: off)")
    add_option(parser, DistillOptions, "variant", choices=VARIANTS, help="Kim's embedding variants")
    add_option(parser, DistillOptions, "embedding", choices=EMBEDDINGS,
               help="starting vectors: the teacher's Embedding-Token rows (default), or the materials' static "
                    "vectors (kbert materials --static-embedding), PCA'd and frequency-weighted (Model2Vec)")
    add_option(parser, DistillOptions, "pooled_weight",
               help="weight of a loss matching the teacher's pooled [CLS] vectors (kbert materials --pooled) "
                    "through a learned projection of the student's sentence vector (default 0: off)")
    add_option(parser, DistillOptions, "embedding_dim", type=int,
               help="project the teacher's word vectors to this width (default: keep them)")
    add_option(parser, DistillOptions, "embedding_rows", choices=EMBEDDING_ROWS,
               help="which embedding rows of the CNN or BiLSTM train: those the training rows read (seen, "
                    "default; a resumed run keeps its own) or all; the same student either way, seen is faster")
    add_flag(parser, "--augmented", action=bool,
             default=AUGMENTED in field_default(DistillOptions, "train_splits"),
             help="train on the augmented split too, when the materials have one")
    add_flag(parser, "--unlabeled", action=bool,
             default=UNLABELED in field_default(DistillOptions, "train_splits"),
             help="train on the unlabeled shards too (kbert materials --unlabeled), when the materials have them")
    add_option(parser, DistillOptions, "holdout", type=float,
               help="share of the train rows held out (with their augmented copies) to pick the best epoch; "
                    "dev is then scored once (default 0.05; a resumed run keeps its own; 0: pick it on dev)")
    add_option(parser, DistillOptions, "holdout_draw", choices=HOLDOUT_DRAWS,
               help="held-out rows whose lengths follow dev's, never its labels (default: length), or any rows "
                    "(random); a resumed run keeps its own")
    add_option(parser, DistillOptions, "selection", choices=SELECTIONS,
               help="the holdout score that picks the epoch, the latest within one standard error of the best: "
                    "agreement with the teacher (default), gold labels, or KL from the teacher's softmax; "
                    "a resumed run keeps its own")
    add_option(parser, DistillOptions, "seed")
    add_option(parser, DistillOptions, "length_bucketing",
               help="length-sorted batches (default), or random ones (each still trimmed to its longest row)")
    add_flag(parser, "--resume", action=bool, help="continue the run checkpointed in --output")


def run(args):
    from kbert.distillation import distill

    left_out = {AUGMENTED: not args.augmented, UNLABELED: not args.unlabeled}
    splits = tuple(s for s in field_default(DistillOptions, "train_splits") if not left_out.get(s))
    record = distill(args.materials, args.output, options_from_args(DistillOptions, args, train_splits=splits),
                     resume=args.resume)
    results = record.results
    metric = results.get("selection_metric", "accuracy")
    scores = ", ".join(f"dev {name} {results['dev_' + name]:.4f}" for name in dict.fromkeys(("accuracy", metric))
                       if results.get("dev_" + name) is not None) or "dev accuracy n/a"
    # Runs before --selection picked on the gold metric.
    signal = {"gold": metric, "kl": "KL from the teacher"}.get(results.get("selection", "gold"), "agreement")
    print(
        f"best epoch {results['best_epoch']} of {results['epochs']} (picked on {results['selected_on']} {signal}): "
        f"{scores}, agreement with the teacher "
        f"{results['dev_agreement']:.4f}\nstudent: {args.output}"
    )
