"""`kbert predict --input ... --output DIR` on a large file: peak memory,
rows/s, what the shards cost beyond the model calls, and a re-run's cost.

The corpus is SST-2's training sentences, cycled to `--lines` lines (one
input a line).  The command runs as a subprocess under `/usr/bin/time`,
which reports its peak resident memory; its manifest gives the rows/s of
the whole call and each shard's rows/s inside the model calls, so that the
difference is what reading, checking, hashing and writing cost.  A second
call over the finished directory measures a resumed call's fixed cost
(both passes over the input, every shard's output hash checked).

    python benchmarks/predict_corpus.py --model runs/full-sst-2/student \\
        --json benchmarks/results/predict-corpus.json --markdown benchmarks/results/predict-corpus.md
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

REPO = pathlib.Path(__file__).resolve().parents[1]
KBERT = str(pathlib.Path(sys.executable).with_name("kbert"))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a run directory")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--data-dir", default=os.environ.get("GLUE_DIR", str(REPO.parent / "shared/glue_data")))
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--note", default="", help="a line for the results (e.g. that the machine was busy)")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    return parser.parse_args(argv)


def write_corpus(path, data_dir, lines):
    with open(os.path.join(data_dir, "SST-2", "train.tsv"), encoding="utf-8") as f:
        sentences = [line.split("\t")[0] for line in f.read().splitlines()[1:]]
    with open(path, "w", encoding="utf-8") as f:
        for k in range(lines):
            f.write(sentences[k % len(sentences)] + "\n")
    return len(sentences)


def timed_predict(args, corpus, output):
    """(peak RSS in MB, wall seconds) of one `kbert predict` call."""
    env = {**os.environ, "KERAS_BACKEND": args.backend}
    command = ["/usr/bin/time", "-f", "%M %e", KBERT, "predict", "--model", args.model, "--input", corpus,
               "--output", output, "--shard-rows", str(args.shard_rows)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"kbert predict failed:\n{done.stderr[-3000:]}")
    rss_kb, wall = done.stderr.strip().splitlines()[-1].split()
    return int(rss_kb) / 1024, float(wall)


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        corpus, output = os.path.join(work, "corpus.txt"), os.path.join(work, "predictions")
        distinct = write_corpus(corpus, args.data_dir, args.lines)
        rss, wall = timed_predict(args, corpus, output)
        manifest = json.load(open(os.path.join(output, "manifest.json")))
        rerun_rss, rerun_wall = timed_predict(args, corpus, output)
        size = os.path.getsize(corpus)
    shards = manifest["shards"]
    model_seconds = sum(s["seconds"] for s in shards)
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "note": args.note, "backend": args.backend, "model": args.model, "lines": args.lines,
        "distinct_sentences": distinct, "corpus_bytes": size, "shard_rows": args.shard_rows, "shards": len(shards),
        "peak_rss_mb": round(rss), "wall_seconds": wall, "rows_per_second": manifest["rows_per_second"],
        "model_rows_per_second": round(manifest["rows"] / model_seconds, 1),
        "outside_model_seconds": round(manifest["seconds"] - model_seconds, 1),
        "start_and_check_seconds": round(wall - manifest["seconds"], 1),
        "rerun_peak_rss_mb": round(rerun_rss), "rerun_wall_seconds": rerun_wall,
    }
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    if args.markdown:
        pathlib.Path(args.markdown).write_text(
            "# `kbert predict --input` over a large file\n\n"
            f"Date: {out['date']}. Machine: {out['machine']}. {args.note}\n\n"
            f"Model: `{args.model}`, backend {args.backend}. Input: {args.lines:,} lines "
            f"({size / 1e6:.0f} MB; SST-2's {distinct:,} training sentences cycled), shards of "
            f"{args.shard_rows:,} rows ({len(shards)} shards).\n\n"
            "| measure | value |\n|---|---|\n"
            f"| peak resident memory of the call | {out['peak_rss_mb']:,} MB |\n"
            f"| wall time of the call (process start to exit) | {wall:.0f} s |\n"
            f"| rows/s of the call (manifest) | {out['rows_per_second']:,} |\n"
            f"| rows/s inside the model calls (shards' records) | {out['model_rows_per_second']:,} |\n"
            f"| seconds outside the model calls (reading, checking, hashing, writing) | "
            f"{out['outside_model_seconds']} |\n"
            f"| seconds before the first shard (start-up, loading, the checking pass) | "
            f"{out['start_and_check_seconds']} |\n"
            f"| a re-run over the finished directory: wall time, peak memory | {rerun_wall:.0f} s, "
            f"{out['rerun_peak_rss_mb']:,} MB |\n\n"
            "```sh\npython benchmarks/predict_corpus.py --model " + args.model
            + " --json benchmarks/results/predict-corpus.json --markdown benchmarks/results/predict-corpus.md\n```\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
