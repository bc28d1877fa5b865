"""`kbert export --model RUN --output DIR --format tf_saved_model|onnx`: a run for serving."""

from kbert.commands.flags import add_flag


def add_arguments(parser):
    from kbert.serving import FORMATS

    add_flag(parser, "--model", required=True, help="a complete run directory (teacher or student)")
    add_flag(parser, "--output", required=True, help="the artifact's directory")
    add_flag(parser, "--format", required=True, choices=FORMATS,
             help="tf_saved_model (KERAS_BACKEND tensorflow or jax) or onnx (tensorflow or jax)")
    add_flag(parser, "--overwrite", action=bool, help="replace an existing OUTPUT")


def run(args):
    from kbert.serving import export_run

    manifest = export_run(args.model, args.output, args.format, overwrite=args.overwrite)
    print(f"exported {args.model} as {manifest['format']} to {args.output}/{manifest['artifact']} "
          f"({manifest['exported_by']}); logits within {manifest['max_abs_difference']:.2g} of Keras; "
          f"vocab.txt and serving.json beside it")
