"""Domain-adaptive pre-training, measured: does more masked-LM training of the
`minilm-l6` preset on SST-2's own training sentences (labels unused) help a
classifier fine-tuned afterwards?

    python benchmarks/domain_adaptive.py --seeds 1 2 --pretrain-steps 600

1. The corpus: every sentence of SST-2's train.tsv (never dev or test), one
   document each (SST-2 is a bag of phrases with no document order, so no
   sentence has a true next one: next-sentence prediction only ever sees
   random pairs, and the masked LM is what adapts).
2. `kbert pretrain` continues the preset on it (its MLM and NSP heads start
   fresh; the MLM output is tied to Embedding-Token).
3. For each seed, `kbert finetune` with the same recipe from the preset and
   from the adapted checkpoint, and SST-2 dev accuracy of each.  The recipe
   is `kbert run`'s demo recipe (8,000 training sentences drawn by the seed,
   one epoch, max length 64, learning rate 5e-5, the preset's SST-2 value),
   so both arms see the same sentences in the same order.

Nothing here is tuned on dev: the pre-training settings are fixed in
advance (create_pretraining_data.py's masking, kbert's defaults otherwise)
and dev is read once per fine-tuned model.  Writes
benchmarks/results/domain-adaptive-sst2.md with the commands and the machine.
Not part of CI: about an hour on 2 cores.
"""

import argparse
import json
import os
import platform
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--pretrain-learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-train-examples", type=int, default=8000)
    parser.add_argument("--max-seq-len", type=int, default=64)
    parser.add_argument("--work-dir", default="runs/domain-adaptive")
    parser.add_argument("--data-dir", default=None, help="GLUE data (default: $GLUE_DIR)")
    parser.add_argument("--results", default=os.path.join(os.path.dirname(__file__), "results",
                                                          "domain-adaptive-sst2.md"))
    return parser.parse_args(argv)


def write_corpus(path, data_dir):
    """SST-2's training sentences, a blank line after each (one document each)."""
    from kbert.atomic import write_text_atomic
    from kbert.glue import get_processor, resolve_data_dir

    examples = get_processor("SST-2").train_examples(resolve_data_dir(data_dir))
    write_text_atomic(path, "".join(f"{e.text_a.strip()}\n\n" for e in examples))
    return len(examples)


def main(argv=None):
    args = parse_args(argv)
    import keras

    from kbert.evaluation import evaluate
    from kbert.finetuning import FinetuneOptions, finetune
    from kbert.pretraining import PretrainOptions, pretrain

    os.makedirs(args.work_dir, exist_ok=True)
    corpus = os.path.join(args.work_dir, "sst2-train.txt")
    sentences = write_corpus(corpus, args.data_dir)
    adapted_dir = os.path.join(args.work_dir, "pretrain")
    options = PretrainOptions(corpus=(corpus,), checkpoint="minilm-l6", max_seq_len=args.max_seq_len,
                              num_train_steps=args.pretrain_steps, learning_rate=args.pretrain_learning_rate)
    started = time.perf_counter()
    record = pretrain(options, adapted_dir, resume=True)
    pretrain_seconds = time.perf_counter() - started
    rows = []
    for seed in args.seeds:
        for arm, checkpoint in (("preset", "minilm-l6"), ("adapted", adapted_dir)):
            out = os.path.join(args.work_dir, f"finetune-{arm}-s{seed}")
            ft = FinetuneOptions(task="SST-2", checkpoint=checkpoint, max_train_examples=args.max_train_examples,
                                 epochs=1, max_seq_len=args.max_seq_len, learning_rate=5e-5, seed=seed)
            finetune(ft, out, data_dir=args.data_dir, resume=True)
            result = evaluate(out, data_dir=args.data_dir, verbose=False)
            rows.append({"seed": seed, "arm": arm, "accuracy": result["metrics"]["eval_accuracy"]})
            print(json.dumps(rows[-1]), flush=True)
    write_report(args, record, sentences, pretrain_seconds, rows, keras.backend.backend())


def write_report(args, record, sentences, pretrain_seconds, rows, backend):
    import numpy as np

    from kbert.atomic import write_text_atomic

    by_arm = {arm: [r["accuracy"] for r in rows if r["arm"] == arm] for arm in ("preset", "adapted")}
    history = record.results["history"]
    lines = [
        "# Domain-adaptive pre-training on SST-2 (MiniLM-L6)",
        "",
        f"Command: `KERAS_BACKEND={backend} python {' '.join(['benchmarks/domain_adaptive.py'] + sys.argv[1:])}`",
        f"(machine: {platform.machine()}, {os.cpu_count()} cores; accuracy does not depend on other jobs, "
        "the pre-training time does).",
        "",
        f"Pre-training: `kbert pretrain --checkpoint minilm-l6 --corpus sst2-train.txt --max-seq-len "
        f"{args.max_seq_len} --num-train-steps {args.pretrain_steps} --learning-rate {args.pretrain_learning_rate}` "
        f"on SST-2's {sentences:,} training sentences ({record.results['instances']:,} instances, batch 32, "
        f"{args.pretrain_steps * 32 / record.results['instances']:.2f} passes): {pretrain_seconds:.0f} s, "
        f"{record.results['sequences_per_second']:.1f} sequences/s.",
        f"Masked-LM loss {history[0]['mlm_loss']:.3f} (mean of the first {history[0]['step']} steps) -> "
        f"{history[-1]['mlm_loss']:.3f} (the last {history[-1]['step'] - (history[-2]['step'] if len(history) > 1 else 0)}).",
        "",
        f"Fine-tuning, both arms: `kbert finetune --task SST-2 --max-train-examples {args.max_train_examples} "
        f"--epochs 1 --max-seq-len {args.max_seq_len} --learning-rate 5e-5 --seed S` from `minilm-l6` (preset) or "
        "from the pre-training run (adapted).",
        "",
        "| seed | preset dev accuracy | adapted dev accuracy | difference |",
        "|---|---|---|---|",
    ]
    for seed in args.seeds:
        a = next(r["accuracy"] for r in rows if r["seed"] == seed and r["arm"] == "preset")
        b = next(r["accuracy"] for r in rows if r["seed"] == seed and r["arm"] == "adapted")
        lines.append(f"| {seed} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    mean = {arm: float(np.mean(v)) for arm, v in by_arm.items()}
    lines.append(f"| mean | {mean['preset']:.4f} | {mean['adapted']:.4f} | {mean['adapted'] - mean['preset']:+.4f} |")
    lines.append("")
    write_text_atomic(args.results, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
