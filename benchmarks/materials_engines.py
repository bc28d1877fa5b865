"""`kbert materials` per engine (`--engine local`, `--engine ray`): wall
time, the teacher pass's rows/s, the driver's peak memory, a re-run's
cost, and whether the engines' logits agree.

Each engine runs the command as a subprocess under `/usr/bin/time`, which
reports its peak resident memory (for Ray, the driver's; the actors are
other processes); each split's record in the manifest gives its rows/s.
A second call over the finished directory measures what a re-run costs.

    python benchmarks/materials_engines.py --model runs/full-sst-2/teacher --splits train --engines local,ray \\
        --json benchmarks/results/materials-engines.json --markdown benchmarks/results/materials-engines.md
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

KBERT = str(pathlib.Path(sys.executable).with_name("kbert"))
REPO = pathlib.Path(__file__).resolve().parents[1]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a fine-tuned teacher run")
    parser.add_argument("--splits", default="train")
    parser.add_argument("--augment", type=int, default=0)
    parser.add_argument("--engines", default="local,ray", help="comma-separated: local, ray")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors (default 2)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", default=os.environ.get("GLUE_DIR", str(REPO.parent / "shared/glue_data")))
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--note", default="", help="a line for the results (e.g. that the machine was busy)")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    return parser.parse_args(argv)


def timed_materials(args, engine, output):
    """(peak RSS in MB, wall seconds) of one `kbert materials` call."""
    command = ["/usr/bin/time", "-f", "%M %e", KBERT, "materials", "--model", args.model, "--splits", args.splits,
               "--augment", str(args.augment), "--batch-size", str(args.batch_size), "--data-dir", args.data_dir,
               "--output", output, "--engine", engine] + (["--workers", str(args.workers)] if engine == "ray" else [])
    done = subprocess.run(command, env={**os.environ, "KERAS_BACKEND": args.backend}, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"kbert materials --engine {engine} failed:\n{done.stderr[-3000:]}")
    rss_kb, wall = done.stderr.strip().splitlines()[-1].split()
    return int(rss_kb) / 1024, float(wall)


def main(argv=None):
    args = parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    results, logits = {}, {}
    with tempfile.TemporaryDirectory() as work:
        for engine in engines:
            output = os.path.join(work, engine)
            rss, wall = timed_materials(args, engine, output)
            manifest = json.load(open(os.path.join(output, "manifest.json")))
            _, rerun_wall = timed_materials(args, engine, output)
            splits = manifest["splits"]
            rows = sum(entry["count"] for entry in splits.values())
            seconds = sum(entry["seconds"] for entry in splits.values())
            results[engine] = {"peak_rss_mb": round(rss), "wall_seconds": wall, "rows": rows,
                               "pass_seconds": round(seconds, 1), "rows_per_second": round(rows / seconds, 1),
                               "rerun_wall_seconds": rerun_wall,
                               "splits": {name: {k: entry.get(k) for k in ("count", "seconds", "items_per_second")}
                                          for name, entry in splits.items()}}
            logits[engine] = {}
            for name, entry in splits.items():
                with np.load(os.path.join(output, entry["file"])) as archive:
                    logits[engine][name] = archive["y"]
    agreement = {}
    for engine in engines[1:]:
        first, other = logits[engines[0]], logits[engine]
        agreement[engine] = {
            "rows": int(sum(len(y) for y in other.values())),
            "labels_equal": all(np.array_equal(first[n].argmax(-1), other[n].argmax(-1)) for n in first),
            "max_abs_logit_difference": float(max(np.abs(first[n] - other[n]).max() for n in first))}
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
           f"{os.cpu_count()} cores", "note": args.note, "backend": args.backend, "model": args.model,
           "splits": args.splits, "augment": args.augment, "batch_size": args.batch_size, "workers": args.workers,
           "engines": results, "agreement": agreement}
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    if args.markdown:
        pathlib.Path(args.markdown).write_text(markdown(out, engines, argv or sys.argv[1:]))
    print(json.dumps(out, indent=2))


def markdown(out, engines, argv):
    rows = out["engines"][engines[0]]["rows"]
    lines = [f"# `kbert materials` per engine over {rows:,} rows", "",
             f"Date: {out['date']}. Machine: {out['machine']}. {out['note']}", "",
             f"Teacher: `{out['model']}`, backend {out['backend']}, batch {out['batch_size']}; splits "
             f"{out['splits']}" + (f", {out['augment']} augmented copies a sentence" if out["augment"] else "")
             + (f". Ray: {out['workers']} actors on a local Ray instance." if "ray" in engines else "."), "",
             "| measure | " + " | ".join(engines) + " |", "|---|" + "---|" * len(engines)]
    table = [("wall time of the call (process start to exit)", lambda r: f"{r['wall_seconds']:.0f} s"),
             ("the teacher pass: seconds (manifest)", lambda r: f"{r['pass_seconds']} s"),
             ("the teacher pass: rows/s", lambda r: f"{r['rows_per_second']:,}"),
             ("peak resident memory of the call (Ray: the driver)", lambda r: f"{r['peak_rss_mb']:,} MB"),
             ("a re-run over the finished directory: wall time", lambda r: f"{r['rerun_wall_seconds']:.0f} s")]
    for label, cell in table:
        lines.append(f"| {label} | " + " | ".join(cell(out["engines"][e]) for e in engines) + " |")
    for engine, agreement in out["agreement"].items():
        lines += ["", f"{engine} against {engines[0]}: {agreement['rows']:,} rows, labels "
                  f"{'all equal' if agreement['labels_equal'] else 'NOT all equal'}, largest logit difference "
                  f"{agreement['max_abs_logit_difference']:.2g}."]
    lines += ["", "```sh", "python benchmarks/materials_engines.py " + shlex.join(argv), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
