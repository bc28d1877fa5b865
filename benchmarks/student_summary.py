"""A markdown table of student runs (`kbert distill` run directories).

One row per run: its recipe (student, embedding start, transfer set,
epochs), the epoch kept and the score that picked it (the held-out train
rows, or dev for runs with --holdout 0), then dev accuracy and agreement
with the teacher, scored once for the kept epoch, and the training time.

    python benchmarks/student_summary.py runs/distill17/* > table.md
"""

import json
import os
import sys


def row(run_dir):
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
        run = json.load(f)
    if run.get("kind") != "student" or run.get("status") != "complete":
        return None
    options, results = run["options"], run["results"]
    kept = next(h for h in results["history"] if h["epoch"] == results["best_epoch"])
    picked = results.get("selected_on", "dev")
    metric = results.get("selection_metric", "accuracy")
    # CoLA's students are picked and reported by MCC as well.
    other = f" (MCC {results['dev_mcc']:.4f})" if "dev_mcc" in results else ""
    seconds = sum(h.get("seconds", 0.0) for h in results["history"])
    splits = "+".join(options["train_splits"])
    return (f"| {os.path.basename(os.path.normpath(run_dir))} | {options.get('student', 'cnn')} "
            f"| {options.get('embedding', 'teacher')} | {splits} | {results['epochs']} "
            f"| {results['best_epoch']} ({picked} {metric} {kept.get(f'{picked}_{metric}') or 0:.4f}) "
            f"| **{results['dev_accuracy']:.4f}**{other} | {results['dev_agreement']:.4f} | {seconds:.0f} |")


def main(argv):
    lines = ["| run | student | start | transfer set | epochs | kept epoch (picked on) | dev accuracy "
             "| dev agreement with teacher | training s |", "|---|---|---|---|---:|---|---:|---:|---:|"]
    lines += [r for r in (row(d) for d in argv if os.path.isfile(os.path.join(d, "run.json"))) if r]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
