"""Accuracy and speed of a fine-tuned teacher's well-kept speed-ups.

`throughput.py` times the variants (XLA compilation on TensorFlow, Keras
int8 quantization) on random or pretrained weights, where accuracy means
nothing.  This script takes a *fine-tuned* run directory (`kbert finetune`)
and, on the current Keras backend, measures for each variant the task's dev
accuracy and the items/second of a length-bucketed pass over the dev set
(batch 32, the way `kbert materials` runs the teacher), so a variant is
kept only if it holds accuracy.

    KERAS_BACKEND=jax python benchmarks/teacher_variants.py runs/full-sst-2/teacher \
        --variants default,int8 --markdown benchmarks/results/teacher-variants-jax.md

Timing: one warm-up pass (compilation excluded), then the best of
`--repeats` passes.
"""

import argparse
import os
import platform
import shlex
import sys
import time

import numpy as np

from kbert.commands.flags import add_flag
from kbert.errors import ConfigError
from kbert.variants import VARIANTS, apply_variant


def _load(run_dir, variant):
    from kbert import runs

    model, record = runs.load_model(run_dir)
    try:
        apply_variant(model, variant)
    except ConfigError as error:  # xla off TensorFlow: a usage error, as before
        raise SystemExit(str(error)) from None
    return model, record


def measure(run_dir, variant, data_dir, batch_size=32, repeats=2):
    """{'variant', 'accuracy', 'items_per_second', ...} for one variant."""
    from kbert import runs
    from kbert.evaluation import encode_examples
    from kbert.glue import get_processor
    from kbert.inference import time_bucketed

    model, record = _load(run_dir, variant)
    processor = get_processor(record.task)
    examples = processor.dev_examples(data_dir)
    encoded = encode_examples(runs.load_tokenizer(run_dir, record), examples, record.max_seq_len)
    arrays = [encoded.token_ids, encoded.segment_ids][: len(model.inputs)]
    labels = np.array([processor.label_id(e.label) for e in examples])

    logits, seconds = time_bucketed(model, arrays, encoded.lengths, batch_size=batch_size, repeats=repeats)
    return {
        "variant": variant,
        "task": processor.name,
        "split": "dev",
        "items": len(examples),
        "accuracy": float((logits.argmax(-1) == labels).mean()),
        "items_per_second": len(examples) / seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a fine-tuned teacher run directory")
    parser.add_argument("--variants", default="default,int8", help=f"comma-separated, of {', '.join(VARIANTS)}")
    add_flag(parser, "--data-dir", help="GLUE data (default: $GLUE_DIR)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="write the records here")
    parser.add_argument("--markdown", help="write a report (command, machine, table) here")
    args = parser.parse_args(argv)

    import keras

    from kbert.atomic import write_json, write_text_atomic
    from kbert.glue import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    backend = keras.backend.backend()
    records = [dict(measure(args.run_dir, v, data_dir, args.batch_size, args.repeats), backend=backend)
               for v in variants]
    base = next((r for r in records if r["variant"] == "default"), None)
    lines = ["| backend | variant | dev accuracy | delta (points) | items/s | speed-up |", "|---|---|---|---|---|---|"]
    for r in records:
        delta = f"{100 * (r['accuracy'] - base['accuracy']):+.2f}" if base else "-"
        speed = f"{r['items_per_second'] / base['items_per_second']:.2f}x" if base else "-"
        lines.append(f"| {backend} | {r['variant']} | {r['accuracy']:.4f} | {delta} | "
                     f"{r['items_per_second']:.1f} | {speed} |")
    table = "\n".join(lines)
    print(table)
    if args.json:
        write_json(args.json, records)
    if args.markdown:
        command = " ".join(shlex.quote(a) for a in [f"KERAS_BACKEND={backend}", "python", *sys.argv])
        report = [
            f"# Teacher variants: {args.run_dir} ({records[0]['task']} dev, batch {args.batch_size}, bucketed)",
            "",
            f"- command: `{command}`",
            f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            f"- machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
            f"- keras {keras.__version__}",
            "",
            table,
            "",
        ]
        write_text_atomic(args.markdown, "\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
