"""Which held-out signal picks a student's epoch best.

For each materials directory (`kbert materials`), seed and holdout draw
("length": rows whose lengths follow dev's, "random"), a student is
distilled for `--epochs` epochs with `kbert.distillation.distill`.  Its history
records, each epoch, the holdout signals (`kbert.distillation.selection_signals`:
gold metric, agreement with the teacher, minus the KL from the teacher, each
with its standard error); a study-only callback scores dev each epoch too.
Dev never picks anything here: it is what the signals are judged against.

Reported per task and draw:
- the mean Spearman correlation, over runs, between each signal and dev's
  metric across epochs;
- the dev score of the epoch each rule keeps (the latest within one
  standard error of the signal's best, `kbert.distillation.keeps_epoch`), and of
  the best epoch in hindsight (the oracle), averaged over runs.

    python benchmarks/selection_study.py runs/demo-cola/materials runs/demo/materials \\
        --seeds 1,2 --epochs 6 --output runs/selection-study \\
        --json benchmarks/results/selection-study.json --markdown benchmarks/results/selection-study.md
"""

import argparse
import json
import os
import sys
import time

SIGNALS = ("gold", "agreement", "kl")


def _dev_callback(dev, task, scores):
    import keras

    from kbert.distillation import predict_logits, selection_signals

    class DevEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logits = predict_logits(self.model, dev.x, dev.length)[:, : dev.y.shape[1]]
            scores.append(selection_signals(logits, dev, task)["gold"][0])

    return DevEachEpoch()


def one_run(materials_dir, output, seed, draw, epochs):
    """{"task", "seed", "draw", "dev": [per epoch], "signals": {name: [[score, error] per epoch]}}."""
    from kbert.distillation import DistillOptions, distill
    from kbert.materials import load_materials

    materials = load_materials(materials_dir)
    task = materials.manifest["task"]
    dev_scores = []
    options = DistillOptions(seed=seed, epochs=epochs, holdout_draw=draw, selection="agreement")
    started = time.perf_counter()
    record = distill(materials_dir, output, options, verbose=0,
                     callbacks=[_dev_callback(materials.splits["dev"], task, dev_scores)])
    history = record.results["history"]
    if len(dev_scores) != len(history):  # resumed: the dev scores of the earlier epochs are not known
        raise SystemExit(f"{output}: remove it and run again (a resumed run has no dev score per epoch)")
    return {"task": task, "seed": seed, "draw": draw, "dev": dev_scores, "seconds": time.perf_counter() - started,
            "signals": {name: [epoch["signals"].get(name) for epoch in history] for name in SIGNALS}}


def kept_epoch(pairs):
    """The epoch (0-based) a signal keeps: the latest within one standard error of its best."""
    from kbert.distillation import keeps_epoch

    kept, top = None, None
    for epoch, (score, error) in enumerate(pairs):
        if keeps_epoch(score, error, top):
            kept = epoch
        top = score if top is None else max(top, score)
    return kept


def summarize(runs):
    from scipy.stats import spearmanr

    rows = []
    for task, draw in sorted({(r["task"], r["draw"]) for r in runs}):
        group = [r for r in runs if (r["task"], r["draw"]) == (task, draw)]
        row = {"task": task, "draw": draw, "runs": len(group),
               "oracle_dev": sum(max(r["dev"]) for r in group) / len(group),
               "last_epoch_dev": sum(r["dev"][-1] for r in group) / len(group)}
        for name in SIGNALS:
            usable = [r for r in group if all(p is not None for p in r["signals"][name])]
            if not usable:
                continue
            rhos = [spearmanr([p[0] for p in r["signals"][name]], r["dev"]).statistic for r in usable]
            rhos = [rho for rho in rhos if rho == rho]  # a constant series has none
            row[f"{name}_spearman"] = sum(rhos) / len(rhos) if rhos else None
            row[f"{name}_dev"] = sum(r["dev"][kept_epoch(r["signals"][name])] for r in usable) / len(usable)
        rows.append(row)
    return rows


def markdown(rows, runs, command):
    def fmt(v):
        return "-" if v is None else f"{v:.4f}"
    lines = ["# Selection study: which held-out signal picks the student's epoch", "",
             f"Command: `{command}`", f"Date: {time.strftime('%Y-%m-%d')}", "",
             "Dev metric: accuracy (CoLA: MCC). Spearman: between the signal and dev across one run's epochs, "
             "averaged over runs. Kept-epoch dev: the epoch each signal keeps (the latest within one standard "
             "error of its best), averaged over runs; oracle: the best dev epoch in hindsight.", "",
             "| task | holdout draw | runs | Spearman gold | Spearman agreement | Spearman -KL | dev kept by gold "
             "| dev kept by agreement | dev kept by -KL | dev of last epoch | oracle dev |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['draw']} | {r['runs']} | {fmt(r.get('gold_spearman'))} "
                     f"| {fmt(r.get('agreement_spearman'))} | {fmt(r.get('kl_spearman'))} "
                     f"| {fmt(r.get('gold_dev'))} | {fmt(r.get('agreement_dev'))} | {fmt(r.get('kl_dev'))} "
                     f"| {fmt(r['last_epoch_dev'])} | {fmt(r['oracle_dev'])} |")
    lines += ["", "Per run, dev by epoch:", ""]
    for r in runs:
        lines.append(f"- {r['task']} seed {r['seed']} {r['draw']}: "
                     + ", ".join(f"{v:.4f}" for v in r["dev"]) + f" ({r['seconds']:.0f} s)")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("materials", nargs="+", help="materials directories (kbert materials --output)")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--draws", default="length,random")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--output", default="runs/selection-study", help="the students' run directories")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    runs = []
    for materials_dir in args.materials:
        for seed in (int(s) for s in args.seeds.split(",")):
            for draw in args.draws.split(","):
                name = f"{os.path.basename(os.path.dirname(os.path.abspath(materials_dir)))}-s{seed}-{draw}"
                runs.append(one_run(materials_dir, os.path.join(args.output, name), seed, draw, args.epochs))
                print(json.dumps(runs[-1]), flush=True)
    rows = summarize(runs)
    command = "python benchmarks/selection_study.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"command": command, "rows": rows, "runs": runs}, f, indent=1)
    text = markdown(rows, runs, command)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
