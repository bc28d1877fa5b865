"""`kbert materials --model RUN_DIR --task SST-2 --out DIR`: run a fine-tuned
teacher over a GLUE task and store what it says (see `kbert.materials`).

RUN_DIR is a fine-tuning run (`kbert finetune`): `model.keras` (a
`BertModel` with a classifier), `vocab.txt`, and `run.json` (read: the task,
and the options' max_seq_len and cased).
With `--augment N`, up to N augmented copies of each training sentence
(`kbert.augment`) become the "augmented" split, labelled by the teacher.
"""

SPLITS = ("train", "dev", "test")


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="fine-tuned run directory (model.keras, vocab.txt, run.json)")
    parser.add_argument("--task", help="GLUE task, e.g. SST-2 (default: the run's)")
    parser.add_argument("--out", required=True, help="materials directory (re-runs skip complete splits)")
    parser.add_argument("--data-dir", help="GLUE data directory (default: $GLUE_DIR)")
    parser.add_argument("--splits", default=",".join(SPLITS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--max-seq-len", type=int, help="default: the run's")
    parser.add_argument("--augment", type=int, default=0, metavar="N",
                        help="up to N augmented copies per training sentence, each one more teacher pass")
    parser.add_argument("--seed", type=int, default=0, help="augmentation seed")
    parser.add_argument("--batch-size", type=int, default=64, help="teacher batch size")
    parser.add_argument("--int8", action="store_true",
                        help="run the teacher int8-quantized (Keras' Model.quantize): faster on JAX, "
                             "same SST-2 dev accuracy in benchmarks/results/teacher-variants-jax.md")


def run(args):
    from kbert.materials import materials_from_run

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    manifest = materials_from_run(
        args.model, args.out, task=args.task, data_dir=args.data_dir, splits=splits,
        max_seq_len=args.max_seq_len, augment=args.augment, seed=args.seed, batch_size=args.batch_size,
        quantize="int8" if args.int8 else None,
    )
    splits = manifest["splits"]
    for name, entry in splits.items():
        print(f"{name}: {entry['count']} rows, {entry.get('seconds')} s, {entry.get('items_per_second')} it/s")
    if "augmented" in splits and "train" in splits:
        extra = splits["augmented"]["count"] / max(splits["train"]["count"], 1)
        print(f"augmented: {splits['augmented']['count']} sentences, {extra:.2f} extra teacher passes over train")
    print(f"materials: {args.out}")
