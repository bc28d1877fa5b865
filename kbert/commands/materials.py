"""`kbert materials --model RUN_DIR --task SST-2 --output DIR`: run a fine-tuned
teacher over a GLUE task and store what it says (see `kbert.materials`).

RUN_DIR is a fine-tuning run (`kbert finetune`, read through `kbert.runs`).
With `--augment N`, up to N augmented copies of each training sentence
(`kbert.augment`) become the "augmented" split, labelled by the teacher.
"""

from kbert.commands.flags import add_flag, add_option, field_default, options_from_args
from kbert.options import ENGINES, MaterialsOptions


def add_arguments(parser):
    add_flag(parser, "--model", required=True, action="append",
             help="fine-tuned run directory (`kbert finetune --output`); given again, a teacher ensemble whose "
                  "logits are averaged")
    add_flag(parser, "--output", required=True, help="materials directory (re-runs skip complete splits)")
    add_flag(parser, "--data-dir", help="GLUE data directory (default: $GLUE_DIR)")
    add_option(parser, MaterialsOptions, "task", type=str, help="GLUE task, e.g. SST-2 (default: the run's)")
    add_flag(parser, "--splits", default=",".join(field_default(MaterialsOptions, "splits")),
             help="comma-separated (default: %(default)s)")
    add_option(parser, MaterialsOptions, "max_seq_len", type=int, help="default: the run's")
    add_option(parser, MaterialsOptions, "augment", metavar="N",
               help="up to N augmented copies per training sentence, each one more teacher pass")
    add_option(parser, MaterialsOptions, "neighbours", metavar="K",
               help="with --augment, also replace words by one of their K nearest neighbours among the teacher's "
                    "whole-word tokens (TinyBERT: 15)")
    add_option(parser, MaterialsOptions, "p_neighbour", help="the chance that a word is so replaced")
    add_option(parser, MaterialsOptions, "seed", help="augmentation seed")
    add_option(parser, MaterialsOptions, "batch_size", help="teacher batch size")
    add_option(parser, MaterialsOptions, "int8",
               help="run the teacher int8-quantized (Keras' Model.quantize): faster on JAX, "
                    "same SST-2 dev accuracy in benchmarks/results/teacher-variants-jax.md")
    add_option(parser, MaterialsOptions, "long_inputs", choices=("truncate", "windows"),
               help="a sentence longer than max_seq_len: truncated (default), or read whole as overlapping "
                    "windows whose logits are averaged")
    add_option(parser, MaterialsOptions, "stride", type=int, help="word pieces between windows (default: half)")
    add_option(parser, MaterialsOptions, "static_embedding",
               help="also store Model2Vec-style static vectors (each vocabulary token through the teacher) as a "
                    "student embedding start: kbert distill --embedding static")
    add_option(parser, MaterialsOptions, "pooled",
               help="also store each row's pooled [CLS] vector (one more teacher pass) for kbert distill "
                    "--pooled-weight")
    add_option(parser, MaterialsOptions, "mlm", type=str, metavar="CHECKPOINT",
               help="with --augment, rewrite each masked word with a word this masked LM (a checkpoint with MLM "
                    "heads, e.g. a kbert pretrain run) predicts there, instead of leaving [MASK]")
    add_option(parser, MaterialsOptions, "mlm_top_k", metavar="K", help="sample among the K likeliest words")
    add_option(parser, MaterialsOptions, "mlm_temperature", help="divide the masked LM's logits by this first")
    add_option(parser, MaterialsOptions, "unlabeled", type=str, nargs="+", metavar="FILE",
               help="your own text, one input a line (a pair's sentences tab-separated), files or glob patterns: "
                    "labelled by the teacher in shards, lines already seen skipped; a re-run skips finished shards")
    add_option(parser, MaterialsOptions, "shard_rows", metavar="N",
               help="rows per unlabeled shard (default %(default)s)")
    add_option(parser, MaterialsOptions, "engine", choices=ENGINES,
               help="run the teachers here (local, the default) or on Ray Data actors (ray): the local engine's "
                    "logits, and either engine resumes the other's pass")
    add_option(parser, MaterialsOptions, "ray_address", type=str, metavar="ADDRESS",
               help="with --engine ray: the Ray cluster to join (default: a Ray instance on this machine)")
    add_option(parser, MaterialsOptions, "workers", type=int, metavar="N",
               help="with --engine ray: Ray actors, each with its own teachers (default: one per CPU)")
    add_option(parser, MaterialsOptions, "packing",
               help="read the teacher's rows packed where that computes under 0.9 of length-sorted batches' "
                    "token slots: the same logits (default: yes)")


def run(args):
    from kbert.materials import is_unlabeled_shard, materials_from_run

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    options = options_from_args(MaterialsOptions, args, splits=splits)
    manifest = materials_from_run(args.model, args.output, options, data_dir=args.data_dir)
    splits = manifest["splits"]
    shards = [entry for name, entry in splits.items() if is_unlabeled_shard(name)]
    for name, entry in splits.items():
        if is_unlabeled_shard(name):
            continue
        cut = entry.get("truncated")
        longer = "" if not cut else (f"; {cut} longer than max_seq_len, "
                                     f"{'read as windows' if entry.get('long_inputs') == 'windows' else 'truncated'}")
        resumed = f"; {entry['resumed_rows']} read from a killed pass's saved chunks" if entry.get("resumed_rows") else ""
        print(f"{name}: {entry['count']} rows, {entry.get('seconds')} s, {entry.get('items_per_second')} it/s"
              f"{longer}{resumed}")
        if "scores" in entry:
            ensemble, members = entry["scores"]["ensemble"], entry["scores"]["members"]
            print(f"{name}: the ensemble's " + ", ".join(
                f"{metric} {value:.4f} (teachers: {', '.join(f'{m[metric]:.4f}' for m in members)})"
                for metric, value in ensemble.items()))
    if "augmented" in splits and "train" in splits:
        extra = splits["augmented"]["count"] / max(splits["train"]["count"], 1)
        print(f"augmented: {splits['augmented']['count']} sentences, {extra:.2f} extra teacher passes over train")
    if shards:
        rows, seconds = sum(e["count"] for e in shards), sum(e.get("seconds") or 0.0 for e in shards)
        rate = f", {rows / seconds:.1f} it/s" if seconds else ""
        print(f"unlabeled: {rows} rows in {len(shards)} shards{rate}")
    print(f"materials: {args.output}")
