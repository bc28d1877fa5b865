"""Teacher passes: packed against length-sorted inference, in one run.

`kbert materials`, `kbert predict` and `kbert evaluate` run a `BertModel`
classifier over whole splits through `kbert.inference.predict_bucketed`.
It reads the rows packed by default (`kbert.inference.predict_packed`: rows
of the longest example rounded up to 8, best-fit decreasing, every call the
same shape); `packing=False` gives the length-sorted batches it used before
(each trimmed to its longest row rounded up to 8, so several shapes).  This
script times both on real GLUE splits, tokenized with MiniLM's vocabulary,
for the `minilm-l6` preset with a 2-label head (speed does not depend on
the head's values), on each backend:

    first_pass_seconds   the first pass over the split: compilation (JAX and
                         TensorFlow compile per distinct shape) and one pass
    items_per_second     the best of --repeats passes after it (steady state)
    shapes               distinct input shapes in a pass
    slots_per_token      token slots computed per real token

and checks that the two modes' logits agree (max_abs_diff).  "default"
marks the mode kbert picks (`kbert.inference.PACKING_PAYS`): packed is timed
here whether or not kbert would pick it.  Each backend
runs in its own subprocess, one after another: never beside another job.

    python benchmarks/teacher_passes.py --json benchmarks/results/teacher-passes.json \\
        --markdown benchmarks/results/teacher-passes.md
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = str(pathlib.Path(__file__).resolve().parents[1])
if REPO not in sys.path:
    sys.path.insert(0, REPO)

BACKENDS = ("jax", "tensorflow", "torch")
# (task, split, rows: None = all, else a seeded random sample)
SPLITS = (("SST-2", "dev", None), ("SST-2", "train", 4096), ("MRPC", "dev", None), ("MRPC", "train", 1024))
MODES = ("packed", "sorted")
MODEL = "minilm-l6"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the records here")
    parser.add_argument("--markdown", help="write the report here")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--batch-size", type=int, default=64, help="as kbert materials and evaluate (default 64)")
    parser.add_argument("--repeats", type=int, default=2, help="steady passes; the best counts (default 2)")
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0, help="draws the training samples")
    parser.add_argument("--data-dir", default=None, help="GLUE data (default: $GLUE_DIR)")
    parser.add_argument("--cache-dir", default="runs/features", help="kbert's feature cache")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def encode(args, workdir):
    """One .npz per split: token ids, segment ids, lengths."""
    from kbert import presets
    from kbert.finetuning import encode_split
    from kbert.glue import get_processor, resolve_data_dir
    from kbert.tokenization import Tokenizer

    vocab = os.path.join(presets.preset_path(MODEL), "vocab.txt")
    tokenizer = Tokenizer.from_vocab_file(vocab, cased=False)
    paths = {}
    for task, split, rows in SPLITS:
        features = encode_split(get_processor(task), split, resolve_data_dir(args.data_dir), tokenizer,
                                args.max_seq_len, args.cache_dir, vocab, False)
        chosen = np.arange(len(features.lengths))
        if rows is not None:
            chosen = np.sort(np.random.default_rng(args.seed).permutation(len(chosen))[:rows])
        paths[f"{task} {split}"] = path = os.path.join(workdir, f"{task}-{split}.npz")
        np.savez(path, token_ids=features.input_ids[chosen], segment_ids=features.segment_ids[chosen],
                 lengths=features.lengths[chosen])
    return paths


def work(lengths, batch_size, mode, width):
    """(distinct shapes, token slots) of one pass."""
    from kbert.batching import length_buckets
    from kbert.packing import packed_plan

    if mode == "sorted":
        batches = list(length_buckets(lengths, batch_size, width))
        return len({(len(rows), w) for rows, w in batches}), sum(len(rows) * w for rows, w in batches)
    pack_len, calls = packed_plan(lengths, width, batch_size)
    return 1, len(calls) * len(calls[0]) * pack_len


def worker_main(spec_path):
    import keras

    from kbert.inference import inference_plan, predict_bucketed, predict_packed
    from kbert.packing import packed_plan
    from kbert.weights.loading import load_checkpoint

    with open(spec_path) as f:
        spec = json.load(f)
    keras.utils.set_random_seed(0)
    model = load_checkpoint(MODEL, num_labels=2)
    records = []
    for name, path in spec["data"].items():
        with np.load(path) as npz:
            arrays, lengths = [npz["token_ids"], npz["segment_ids"]], npz["lengths"]
        outputs = {}
        for mode in MODES:
            if mode == "packed":  # packed whether or not kbert's default would pack
                plan = packed_plan(lengths, arrays[0].shape[1], spec["batch_size"])[1]
                run = lambda: predict_packed(model, arrays, lengths, plan)  # noqa: E731
            else:
                run = lambda: predict_bucketed(model, arrays, lengths, batch_size=spec["batch_size"],  # noqa: E731
                                               packing=False)
            started = time.perf_counter()
            outputs[mode] = run()
            first = time.perf_counter() - started
            best = float("inf")
            for _ in range(spec["repeats"]):
                started = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - started)
            shapes, slots = work(lengths, spec["batch_size"], mode, arrays[0].shape[1])
            default = "packed" if inference_plan(model, arrays, lengths, spec["batch_size"]) else "sorted"
            records.append({"backend": keras.backend.backend(), "model": MODEL, "split": name, "mode": mode,
                            "default": mode == default,
                            "batch": spec["batch_size"], "sentences": len(lengths),
                            "items_per_second": len(lengths) / best, "first_pass_seconds": first,
                            "shapes": shapes, "slots_per_token": slots / int(lengths.sum())})
            print(f"  {records[-1]['backend']} {name} {mode}: {records[-1]['items_per_second']:.1f} items/s, "
                  f"first pass {first:.1f} s", flush=True)
        diff = float(np.abs(outputs["packed"] - outputs["sorted"]).max())
        for r in records[-len(MODES):]:
            r["max_abs_diff"] = diff
    with open(spec["out"], "w") as f:
        json.dump(records, f)
    return 0


def run_worker(backend, args, data, workdir):
    spec_path = os.path.join(workdir, f"{backend}.json")
    spec = {"data": data, "batch_size": args.batch_size, "repeats": args.repeats, "out": spec_path + ".out"}
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, __file__, "--worker", spec_path], env=env, text=True,
                            stdout=None, stderr=subprocess.PIPE)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-5:]
        print(f"  {backend} failed:\n    " + "\n    ".join(tail))
        return [{"backend": backend, "model": MODEL, "skipped": " | ".join(tail)[-300:]}]
    with open(spec["out"]) as f:
        return json.load(f)


def report(records, args, command, wall):
    lines = [f"# Teacher passes: packed against length-sorted inference, MiniLM-L6, batch {args.batch_size}", "",
             f"Command: `{command}`", "",
             f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}; run alone (nothing else timed or running); "
             f"wall {wall:.0f} s.", "",
             "| split | backend | mode | kbert's default | sentences | items/s | packed / sorted | first pass s "
             "| shapes | slots/token | max abs diff |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    done = [r for r in records if not r.get("skipped")]
    for r in done:
        sorted_rate = next(q["items_per_second"] for q in done
                           if q["split"] == r["split"] and q["backend"] == r["backend"] and q["mode"] == "sorted")
        ratio = f"{r['items_per_second'] / sorted_rate:.2f}" if r["mode"] == "packed" else ""
        lines.append(f"| {r['split']} | {r['backend']} | {r['mode']} | {'yes' if r['default'] else ''} "
                     f"| {r['sentences']} | "
                     f"{r['items_per_second']:.1f} | {ratio} | {r['first_pass_seconds']:.1f} | {r['shapes']} | "
                     f"{r['slots_per_token']:.2f} | {r['max_abs_diff']:.1e} |")
    for r in records:
        if r.get("skipped"):
            lines.append(f"\nSkipped {r['backend']}: {r['skipped']}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    from benchmarks.training import publish

    command = " ".join(["python", "benchmarks/teacher_passes.py", *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    records = []
    with tempfile.TemporaryDirectory() as workdir:
        data = encode(args, workdir)
        for backend in args.backends.split(","):
            print(f"{backend} ...", flush=True)
            records.extend(run_worker(backend, args, data, workdir))
    publish(report(records, args, command, time.perf_counter() - started), records, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
