"""Where a small student's distillation step spends its time, per backend.

The BiLSTM and CNN students (`kbert.student`, the MiniLM teacher's 30,522 x
384 embedding, trainable as in `kbert distill`'s default "non-static"
variant) train with Adam on stored logits, batch 50 (`--batch-size`), on
batches of real SST-2 training sentences (tokenized with MiniLM's
vocabulary, length-sorted as `kbert distill` batches them, each trimmed to
its longest row).  Each batch is timed four ways (`--ways` picks some),
and a fifth figure derived:

    forward      `predict_on_batch`: the student alone
    step         `train_on_batch`: forward, backward, Adam on every weight
    step, embedding frozen
                 the same with `Student-Embedding` not trainable: no
                 gradient into the 30,522 x 384 table and no Adam update
                 of it or its two slots (35 M floats a step)
    embedding update
                 step minus step-with-the-embedding-frozen: what updating
                 the whole table costs, of which a batch uses a few hundred
                 rows
    step, training rows only
                 the same with only the rows SST-2's training sentences
                 read trainable (`build_student(trained_ids=...)`, what
                 `kbert distill` does by default, `--embedding-rows seen`):
                 the same Adam steps, exactly, on 11,572 rows instead of
                 30,522

Timing: the batches run twice; the first pass compiles (one shape per
distinct width), the second is timed.  Each backend runs in its own
subprocess, one after another: never beside another job.

    python benchmarks/student_steps.py --json benchmarks/results/student-steps.json \\
        --markdown benchmarks/results/student-steps.md
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
STUDENTS = ("bilstm", "cnn")
BATCH = 50
WAYS = ("forward", "step", "step, embedding frozen", "step, training rows only")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--students", default=",".join(STUDENTS))
    parser.add_argument("--batches", type=int, default=40, help="timed batches per way (default 40)")
    parser.add_argument("--batch-size", type=int, default=BATCH, help=f"sentences a batch (default {BATCH})")
    parser.add_argument("--ways", default=";".join(WAYS), help="the ways to time, separated by semicolons (default all)")
    parser.add_argument("--data-dir", default=None, help="GLUE data (default: $GLUE_DIR, else ../shared/glue_data)")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def batches(data_dir, count, batch):
    """(`count` length-sorted batches of SST-2 training sentences' token
    ids, the ids all of SST-2's training sentences read)."""
    from kbert import presets
    from kbert.glue import get_processor, resolve_data_dir
    from kbert.tokenization import Tokenizer

    tokenizer = Tokenizer.from_vocab_file(os.path.join(presets.preset_path("minilm-l6"), "vocab.txt"), cased=False)
    examples = get_processor("SST-2").train_examples(resolve_data_dir(data_dir))
    every = tokenizer.encode_batch([example.text_a for example in examples], max_len=128).token_ids
    rng = np.random.default_rng(0)
    chosen = [examples[i].text_a for i in rng.permutation(len(examples))[: count * batch]]
    encoded = tokenizer.encode_batch(chosen, max_len=128)
    order = np.argsort(encoded.lengths, kind="stable")
    rows = [order[k * batch:(k + 1) * batch] for k in range(count)]
    rng.shuffle(rows)
    return [encoded.token_ids[r][:, : int(encoded.lengths[r].max())] for r in rows], np.unique(every[every > 0])


def worker(spec):
    import keras

    from kbert.student import build_student

    data, seen = batches(spec["data_dir"], spec["batches"], spec["batch_size"])
    rng = np.random.default_rng(1)
    results = {}
    for name in spec["students"]:
        row = {"training rows": int(seen.size)}
        for way in spec["ways"]:
            keras.utils.set_random_seed(0)
            model = build_student(rng.normal(0, 0.05, (30522, 384)).astype("float32"), 2, student=name,
                                  trained_ids=seen if way == "step, training rows only" else None)
            if way == "step, embedding frozen":
                model.get_layer("Student-Embedding").trainable = False
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
            targets = [rng.normal(0, 1, (len(x), 2)).astype("float32") for x in data]

            def one(x, y):
                if way == "forward":
                    keras.ops.convert_to_numpy(model.predict_on_batch(x))
                else:
                    float(keras.ops.convert_to_numpy(model.train_on_batch(x, y)))

            for x, y in zip(data, targets):  # compiles each width once
                one(x, y)
            started = time.perf_counter()
            for x, y in zip(data, targets):
                one(x, y)
            row[way] = (time.perf_counter() - started) / len(data) * 1000.0
        if "step" in row and "step, embedding frozen" in row:
            row["embedding update"] = row["step"] - row["step, embedding frozen"]
        for way, rate in (("step", "rows per second"), ("step, training rows only", "rows per second, training rows only")):
            if way in row:
                row[rate] = spec["batch_size"] / (row[way] / 1000.0)
        results[name] = {k: round(v, 2) for k, v in row.items()}
    return results


def run(args):
    ways = args.ways.split(";")
    if set(ways) - set(WAYS):
        raise SystemExit(f"--ways: a semicolon-separated subset of {'; '.join(WAYS)}, got {args.ways!r}")
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
                                                         f"{os.cpu_count()} cores",
           "batch": args.batch_size, "batches": args.batches, "results": {}}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            spec_path = os.path.join(tmp, "spec.json")
            with open(spec_path, "w") as f:
                json.dump({"students": args.students.split(","), "batches": args.batches, "batch_size": args.batch_size,
                           "ways": ways,
                           "data_dir": args.data_dir, "out": os.path.join(tmp, "out.json")}, f)
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
            done = subprocess.run([sys.executable, __file__, "--worker", spec_path], env=env, capture_output=True,
                                  text=True)
            if done.returncode:
                out["results"][backend] = {"skipped": done.stderr.strip().splitlines()[-1:]}
                continue
            with open(os.path.join(tmp, "out.json")) as f:
                out["results"][backend] = json.load(f)
        print(backend, out["results"][backend], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if args.markdown:
        lines = ["# Where a student's distillation step spends its time\n",
                 f"Date: {out['date']}. Machine: {out['machine']}. Batch {args.batch_size}, {args.batches} SST-2 batches, "
                 "milliseconds a batch (second pass).\n",
                 "```sh\npython " + " ".join(["benchmarks/student_steps.py", *sys.argv[1:]]) + "\n```\n",
                 "| backend | student | forward | step | step, embedding frozen | embedding update | "
                 "step, training rows only | rows/s | rows/s, training rows only |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for backend, rows in out["results"].items():
            for name, row in rows.items():
                if name == "skipped":
                    lines.append(f"| {backend} | skipped: {row} | | | | | | | |")
                    continue
                cells = [row.get(k, "") for k in ("forward", "step", "step, embedding frozen", "embedding update",
                                                   "step, training rows only")]
                rates = [f"{row[k]:.0f}" if k in row else "" for k in ("rows per second",
                                                                      "rows per second, training rows only")]
                lines.append(f"| {backend} | {name} | " + " | ".join(str(c) for c in cells + rates) + " |")
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        with open(args.worker) as f:
            spec = json.load(f)
        with open(spec["out"], "w") as f:
            json.dump(worker(spec), f)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
