"""`kbert predict --input ... --output DIR` on a large file, per engine:
peak memory, rows/s, what the shards cost beyond the model calls, a
re-run's cost, and whether the engines' outputs agree.

The input is one of:

    --lines N           SST-2's training sentences, cycled to N lines
    --augment N         SST-2's training sentences and up to N copies of
                        each by Tang et al.'s rules (`kbert.augment`, seed
                        0), as `kbert materials --augment N` makes them: a
                        teacher pass over a transfer set

Each engine (`--engines local,ray`) runs the command as a subprocess under
`/usr/bin/time`, which reports its peak resident memory (for Ray, the
driver's; the workers are other processes); the manifest gives the call's
rows/s and each shard's rows/s inside the model calls, so the difference is
what reading, checking, hashing, writing and (for Ray) scheduling cost.  A
second call over the finished directory measures a resumed call's fixed
cost.  The engines' outputs are compared row for row.

    python benchmarks/predict_corpus.py --model runs/full-sst-2/student --lines 1000000 \\
        --json benchmarks/results/predict-corpus.json --markdown benchmarks/results/predict-corpus.md
    python benchmarks/predict_corpus.py --model runs/full-sst-2/teacher --augment 4 --engines local,ray \\
        --json benchmarks/results/predict-engines.json --markdown benchmarks/results/predict-engines.md
"""

import argparse
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
KBERT = str(pathlib.Path(sys.executable).with_name("kbert"))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a run directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--lines", type=int, help="SST-2's training sentences cycled to this many lines")
    source.add_argument("--augment", type=int, help="SST-2's training sentences and up to this many copies of each")
    parser.add_argument("--engines", default="local", help="comma-separated: local, ray")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors (default 2)")
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data-dir", default=os.environ.get("GLUE_DIR", str(REPO.parent / "shared/glue_data")))
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--note", default="", help="a line for the results (e.g. that the machine was busy)")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    return parser.parse_args(argv)


def write_corpus(path, args):
    """(what the input is, in words); writes it to `path`, one sentence a line."""
    with open(os.path.join(args.data_dir, "SST-2", "train.tsv"), encoding="utf-8") as f:
        train = [line.split("\t")[0] for line in f.read().splitlines()[1:]]
    if args.augment:
        from kbert.augment import augment

        copies = [sentence for _, sentence in augment(train, args.augment, 0)]
        sentences = train + copies
        what = f"SST-2's {len(train):,} training sentences and {len(copies):,} Tang et al. copies ({args.augment} draws each)"
    else:
        sentences = [train[k % len(train)] for k in range(args.lines)]
        what = f"SST-2's {len(train):,} training sentences cycled"
    with open(path, "w", encoding="utf-8") as f:
        for sentence in sentences:
            f.write(" ".join(sentence.split()) + "\n")  # one line each, whatever spacing it held
    return len(sentences), what


def timed_predict(args, engine, corpus, output):
    """(peak RSS in MB, wall seconds) of one `kbert predict` call."""
    env = {**os.environ, "KERAS_BACKEND": args.backend}
    command = ["/usr/bin/time", "-f", "%M %e", KBERT, "predict", "--model", args.model, "--input", corpus,
               "--output", output, "--shard-rows", str(args.shard_rows), "--batch-size", str(args.batch_size),
               "--engine", engine] + (["--workers", str(args.workers)] if engine == "ray" else [])
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"kbert predict --engine {engine} failed:\n{done.stderr[-3000:]}")
    rss_kb, wall = done.stderr.strip().splitlines()[-1].split()
    return int(rss_kb) / 1024, float(wall)


def read_logits(output):
    manifest = json.load(open(os.path.join(output, "manifest.json")))
    labels, logits = [], []
    for shard in manifest["shards"]:
        with open(os.path.join(output, shard["file"]), encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                labels.append(row["label"])
                logits.append(row["logits"])
    return labels, np.array(logits)


def main(argv=None):
    args = parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    results, outputs = {}, {}
    with tempfile.TemporaryDirectory() as work:
        corpus = os.path.join(work, "corpus.txt")
        rows, what = write_corpus(corpus, args)
        for engine in engines:
            output = outputs[engine] = os.path.join(work, engine)
            rss, wall = timed_predict(args, engine, corpus, output)
            manifest = json.load(open(os.path.join(output, "manifest.json")))
            rerun_rss, rerun_wall = timed_predict(args, engine, corpus, output)
            shards = manifest["shards"]
            model_seconds = sum(s["seconds"] for s in shards)
            results[engine] = {
                "peak_rss_mb": round(rss), "wall_seconds": wall, "rows_per_second": manifest["rows_per_second"],
                "model_rows_per_second": round(manifest["rows"] / model_seconds, 1),
                "shard_seconds": round(manifest["seconds"], 1), "model_seconds": round(model_seconds, 1),
                "start_and_check_seconds": round(wall - manifest["seconds"], 1),
                "rerun_peak_rss_mb": round(rerun_rss), "rerun_wall_seconds": rerun_wall, "shards": len(shards),
            }
        agreement = {}
        if len(engines) > 1:
            labels0, logits0 = read_logits(outputs[engines[0]])
            for engine in engines[1:]:
                labels, logits = read_logits(outputs[engine])
                agreement[engine] = {"rows": len(labels), "labels_equal": labels == labels0,
                                     "max_abs_logit_difference": float(np.abs(logits - logits0).max())}
        size = os.path.getsize(corpus)
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
           f"{os.cpu_count()} cores", "note": args.note, "backend": args.backend, "model": args.model,
           "input": what, "rows": rows, "input_bytes": size, "shard_rows": args.shard_rows,
           "batch_size": args.batch_size, "workers": args.workers, "engines": results, "agreement": agreement}
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    if args.markdown:
        pathlib.Path(args.markdown).write_text(markdown(out, args, engines, argv or sys.argv[1:]))
    print(json.dumps(out, indent=2))


def overhead(out, engine):
    """Seconds a shard costs beyond its model calls: the time the engine's
    models were held (the call's shard time, times the actors for Ray)
    less their time in model calls, over the shards."""
    result = out["engines"][engine]
    models = out["workers"] if engine == "ray" else 1
    return (result["shard_seconds"] * models - result["model_seconds"]) / result["shards"]


def markdown(out, args, engines, argv):
    lines = [f"# `kbert predict --input` over {out['rows']:,} rows",
             "", f"Date: {out['date']}. Machine: {out['machine']}. {out['note']}", "",
             f"Model: `{out['model']}`, backend {out['backend']}, batch {out['batch_size']}. Input: {out['rows']:,} "
             f"lines ({out['input_bytes'] / 1e6:.0f} MB; {out['input']}), shards of {out['shard_rows']:,} rows."
             + (f" Ray: {out['workers']} actors on a local Ray instance." if "ray" in engines else ""), "",
             "| measure | " + " | ".join(engines) + " |", "|---|" + "---|" * len(engines)]
    rows = [("peak resident memory of the call (Ray: the driver)", "peak_rss_mb", "{:,} MB"),
            ("wall time of the call (process start to exit)", "wall_seconds", "{:.0f} s"),
            ("rows/s of the call's shards (manifest)", "rows_per_second", "{:,}"),
            ("rows/s of one model inside its calls (Ray: of each actor, running side by side)",
             "model_rows_per_second", "{:,}"),
            ("seconds answering the shards / of them in model calls (Ray: summed over the actors)", None, None),
            ("per shard, seconds outside the model calls (Ray: actors' time beside the model, start-up and the "
             "idle tail included)", "overhead", None),
            ("seconds before the first shard (start-up, loading, the checking pass)", "start_and_check_seconds",
             "{} s"),
            ("a re-run over the finished directory: wall time", "rerun_wall_seconds", "{:.0f} s")]
    for label, key, form in rows:
        if key == "overhead":
            cells = [f"{overhead(out, e):.2f} s" for e in engines]
        elif key is None:
            cells = [f"{out['engines'][e]['shard_seconds']} s / {out['engines'][e]['model_seconds']} s"
                     for e in engines]
        else:
            cells = [form.format(out["engines"][e][key]) for e in engines]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for engine, agreement in out["agreement"].items():
        lines += ["", f"{engine} against {engines[0]}: {agreement['rows']:,} rows, labels "
                  f"{'all equal' if agreement['labels_equal'] else 'NOT all equal'}, largest logit difference "
                  f"{agreement['max_abs_logit_difference']:.2g}."]
    lines += ["", "```sh", "python benchmarks/predict_corpus.py " + shlex.join(argv), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
