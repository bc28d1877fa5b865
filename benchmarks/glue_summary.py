"""Collect every GLUE result file into one table: benchmarks/results/glue-search.md.

    python benchmarks/glue_summary.py

Reads the files `glue_results.sh` writes (results/glue-*.md: kbert) and the
files `hf_glue_baseline.py` writes (results/hf-glue-*.md: the peer), so the
learning-rate / epoch / seed search is reported whole, losing runs included.
"""

import glob
import os
import re
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
METRICS = ("accuracy", "f1", "mcc")
TITLE = re.compile(r"^# (?P<who>GLUE|HF transformers baseline, GLUE) (?P<task>[\w-]+): MiniLM-L6(?: teacher)?, "
                   r"(?P<epochs>\d+) epoch\(s\), lr (?P<lr>[\d.e-]+)(?P<rest>.*)$")


def read(path):
    text = open(path, encoding="utf-8").read()
    match = TITLE.match(text.splitlines()[0])
    if match is None:
        raise SystemExit(f"{path}: first line is not a GLUE result title")
    rest = match["rest"]
    seed = re.search(r"seed (\d+)", rest)
    # Runs made when length-sorted batches were the default carry "-bucketed"
    # in their file name; "-packed" runs are random batches, packed (runs
    # from before packing, random or not so named, were unpacked).
    name = os.path.basename(path)
    batching = ("length-sorted" if "-bucketed" in name else "random, packed" if "-packed" in name
                else "random")
    wall = re.search(r"(?:Wall time|Training): (\d+) s", text)
    values = dict(re.findall(r"^eval_(\w+) = ([\d.eE-]+)$", text, re.M))
    return {
        "peer": "HF transformers" if match["who"] != "GLUE" else "kbert",
        "task": match["task"],
        "epochs": int(match["epochs"]),
        "lr": float(match["lr"]),
        "seed": int(seed[1]) if seed else 42,
        "batching": batching,
        "seconds": int(wall[1]) if wall else None,
        "file": os.path.basename(path),
        **{name: float(values[name]) for name in METRICS if name in values},
    }


def table(rows):
    lines = ["| task | who | epochs | lr | seed | batches | accuracy | F1 | MCC | seconds | file |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["task"], r["peer"] != "kbert", r["batching"], r["epochs"], r["lr"], r["seed"])):
        cells = [f"{r[m]:.4f}" if m in r else "" for m in METRICS]
        lines.append(f"| {r['task']} | {r['peer']} | {r['epochs']} | {r['lr']:g} | {r['seed']} | {r['batching']} | "
                     f"{' | '.join(cells)} | {r['seconds'] or ''} | [{r['file']}]({r['file']}) |")
    return "\n".join(lines)


def main():
    paths = sorted(glob.glob(os.path.join(RESULTS, "glue-*-*.md")) + glob.glob(os.path.join(RESULTS, "hf-glue-*.md")))
    rows = [read(p) for p in paths if not p.endswith("glue-search.md")]
    text = (
        "# GLUE search: every MiniLM-L6 fine-tuning run, kbert and the HF transformers peer\n\n"
        "Made by `python benchmarks/glue_summary.py` from the files beside it (each holds its\n"
        "command, wall time and machine). Dev set; batch 32, length 128, AdamW with 10% warmup\n"
        "and linear decay. `seconds`: wall time of the kbert command (fine-tuning and dev\n"
        "evaluation) or the peer's training time.\n\n" + table(rows) + "\n"
    )
    from kbert.atomic import write_text_atomic

    write_text_atomic(os.path.join(RESULTS, "glue-search.md"), text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
