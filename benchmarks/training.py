"""Fine-tuning speed: training examples/second of kbert (packed, random,
length-sorted) against Hugging Face transformers and keras-hub, in one run.

Every implementation trains the MiniLM-L6 size (6 layers, hidden 384, 12
heads; kbert and transformers from the `minilm-l6` preset's weights,
keras-hub's `BertTextClassifier` on the same config with fresh weights,
since its BERT cannot take MiniLM's exact gelu: speed does not depend on
the values) with the fine-tuning recipe (AdamW, lr 5e-5 with warmup and
decay, gradient clipping at 1.0, batch 32, max length 128) on the same
real batches: `--steps` random batches of the task's training set, drawn
once by `--seed`, tokenized by kbert with MiniLM's vocabulary.

    kbert packed     `kbert.packing.PackedBatches`: each batch laid end to
                     end in rows of `--pack-len` slots (`kbert finetune`'s
                     default)
    kbert random     each batch trimmed to its longest row, rounded up to a
                     multiple of 8 (`kbert finetune --no-packing`)
    kbert bucketed   batches sorted by length within windows of 50 batches
                     (`--length-bucketing --no-packing`; a different set of
                     batches, so not the same statistics: speed only)
    transformers     `BertForSequenceClassification`, PyTorch, the loop of
                     benchmarks/hf_glue_baseline.py, `tokenizer.pad` to the
                     batch's longest row (what `DataCollatorWithPadding` does)
    keras-hub        `BertTextClassifier`, the same trimmed batches as kbert
                     random, `fit`

Timing: each implementation runs its batches twice in the same order.  The
first pass includes compilation (JAX and TensorFlow's XLA compile once per
distinct input shape; "shapes" counts them); the second is steady state and
gives examples_per_second.  compile_seconds is the first pass's time minus
the second's.  Each (implementation, backend) runs in its own subprocess,
one after another: never beside another job.

    python benchmarks/training.py --quick --json benchmarks/results/training-quick.json \\
        --markdown benchmarks/results/training-quick.md
    python benchmarks/training.py --json benchmarks/results/training.json \\
        --markdown benchmarks/results/training.md

`--quick` (under 10 minutes on 2 cores): jax only, SST-2 and MRPC, 16 steps.
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

IMPLS = ("kbert", "transformers", "keras-hub")
BACKENDS = ("jax", "tensorflow", "torch")
TASKS = ("SST-2", "MRPC")
KBERT_MODES = ("packed", "random", "bucketed")
MODEL = "minilm-l6"
LEARNING_RATE = 5e-5
RECORD_KEYS = ("impl", "backend", "model", "task", "mode", "batch", "examples_per_second")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="jax only, SST-2 and MRPC, 16 steps")
    parser.add_argument("--json", help="write the records here")
    parser.add_argument("--markdown", help="write the report here")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--backends", default=None, help="default: jax,tensorflow,torch (--quick: jax)")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--modes", default=None, help="kbert modes (default: packed,random,bucketed; "
                                                      "--quick: packed,random)")
    parser.add_argument("--steps", type=int, default=None, help="batches per pass (default 40; --quick 16)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--pack-len", type=int, default=None,
                        help="slots per packed row (default: kbert's, the longest example rounded up to 8)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", default=None, help="GLUE data (default: $GLUE_DIR)")
    parser.add_argument("--cache-dir", default="runs/features", help="kbert's feature cache")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.backends = args.backends or ("jax" if args.quick else ",".join(BACKENDS))
    args.modes = args.modes or ("packed,random" if args.quick else ",".join(KBERT_MODES))
    args.steps = args.steps or (16 if args.quick else 40)
    return args


# ---------------------------------------------------------------------------
# The batches: drawn once in the parent, read by every worker
# ---------------------------------------------------------------------------


def draw_rows(args, task, workdir):
    """The task's features for `steps * batch_size` random training rows, in
    an .npz the workers read."""
    from kbert import presets
    from kbert.batching import bucket_width
    from kbert.finetuning import encode_split
    from kbert.glue import get_processor, resolve_data_dir
    from kbert.tokenization import Tokenizer

    processor = get_processor(task)
    vocab = os.path.join(presets.preset_path(MODEL), "vocab.txt")
    tokenizer = Tokenizer.from_vocab_file(vocab, cased=False)
    features = encode_split(processor, "train", resolve_data_dir(args.data_dir), tokenizer, args.max_seq_len,
                            args.cache_dir, vocab, False)
    n = args.steps * args.batch_size
    rows = np.random.default_rng(args.seed).permutation(len(features.lengths))[:n]
    path = os.path.join(workdir, f"{task}.npz")
    # kbert finetune packs into rows as long as the whole set's longest example.
    pack_len = args.pack_len or bucket_width(features.lengths.max(), args.max_seq_len)
    np.savez(path, input_ids=features.input_ids[rows], segment_ids=features.segment_ids[rows],
             lengths=features.lengths[rows], labels=features.labels[rows], num_labels=processor.num_labels,
             pack_len=pack_len)
    return path


# ---------------------------------------------------------------------------
# Workers: one (implementation, backend) per process
# ---------------------------------------------------------------------------


class PassTimer:
    """Keras callback: the seconds of each epoch (one pass over the batches)."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self.started)

        return _Timer()


def repeating(batches):
    """`batches` (a kbert batch sequence) that replays its first epoch."""
    batches.on_epoch_end = lambda: None
    return batches


def shapes_of(batches):
    """Distinct input shapes among `batches`: what XLA compiles for."""
    def shape(x):
        return tuple(np.shape(a) for a in (x.values() if isinstance(x, dict) else x))

    return len({shape(batches[i][0]) for i in range(len(batches))})


def kbert_worker(spec, data):
    import keras

    from kbert.batching import BUCKET_WINDOW, BucketedBatches
    from kbert.packing import PackedBatches
    from kbert.views import packed_classifier
    from kbert.weights.loading import load_checkpoint

    records = []
    for mode in spec["modes"]:
        model = load_checkpoint(MODEL, num_labels=int(data["num_labels"]), trainable=True)
        inputs = (data["input_ids"], data["segment_ids"])
        common = dict(batch_size=spec["batch_size"], seed=spec["seed"], fill=True)
        if mode == "packed":
            batches = PackedBatches(inputs, data["labels"], data["lengths"], pack_len=int(data["pack_len"]),
                                    **common)
            trained = packed_classifier(model)
            slots, tokens = batches.slot_counts()
        else:
            window = BUCKET_WINDOW if mode == "bucketed" else 1
            batches = BucketedBatches(inputs, data["labels"], data["lengths"], window=window, **common)
            trained = model
            slots = sum(b[0][0].shape[0] * b[0][0].shape[1] for b in (batches[i] for i in range(len(batches))))
            tokens = int(data["lengths"].sum())
        out = fit_twice(spec, trained, repeating(batches), mode, slots / tokens)
        out.update(shapes=shapes_of(batches), pack_len=batches.pack_len if mode == "packed" else None)
        records.append(out)
        del model, trained
        keras.backend.clear_session()
    return records


def fit_twice(spec, model, batches, mode, slots_per_token, fit=None):
    """Two passes of `fit` over `batches`; the record.  `fit`: the unbound
    fit to call (keras-hub's own turns every input into tf.data first)."""
    import keras

    from kbert.optimization import create_optimizer, train_jit_compile

    model.compile(optimizer=create_optimizer(LEARNING_RATE, 10 * len(batches)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=["accuracy"], jit_compile=train_jit_compile())
    timer = PassTimer()
    (fit or type(model).fit)(model, batches, epochs=2, shuffle=False, verbose=0, callbacks=[timer])
    return record(spec, mode, timer.seconds, len(batches), slots_per_token=slots_per_token)


def keras_hub_worker(spec, data):
    import keras
    import keras_hub

    from kbert.batching import BucketedBatches

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384, intermediate_dim=1536,
        max_sequence_length=512, num_segments=2)
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=int(data["num_labels"]), preprocessor=None)

    class HubBatches(BucketedBatches):
        def __getitem__(self, index):
            (token, segment), y, w = super().__getitem__(index)
            return {"token_ids": token, "segment_ids": segment, "padding_mask": token != 0}, y, w

    batches = HubBatches((data["input_ids"], data["segment_ids"]), data["labels"], data["lengths"],
                         batch_size=spec["batch_size"], seed=spec["seed"], fill=True, window=1)
    # keras.Model's fit: the batches are model inputs already (no preprocessor).
    out = fit_twice(spec, model, repeating(batches), "random", None, fit=keras.Model.fit)
    out["shapes"] = shapes_of(batches)
    return [out]


def transformers_worker(spec, data):
    import torch
    import transformers

    from benchmarks.hf_glue_baseline import adamw
    from kbert import presets
    from kbert.batching import BucketedBatches

    path = presets.preset_path(MODEL)
    tokenizer = transformers.BertTokenizerFast.from_pretrained(path)
    model = transformers.BertForSequenceClassification.from_pretrained(path, num_labels=int(data["num_labels"]))
    optimizer = adamw(model, LEARNING_RATE)  # benchmarks/hf_glue_baseline.py's
    # The same batches (rows) as kbert's random mode, padded by the peer.
    order = BucketedBatches((data["input_ids"], data["segment_ids"]), data["labels"], data["lengths"],
                            batch_size=spec["batch_size"], seed=spec["seed"], fill=True, window=1)
    batches = order.batch_rows()
    steps = len(batches)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, steps, 10 * steps)
    ids, segments, lengths = data["input_ids"], data["segment_ids"], data["lengths"]
    labels = torch.tensor(data["labels"], dtype=torch.long)
    model.train()
    seconds, slots = [], 0
    for _ in range(2):
        started = time.perf_counter()
        slots = 0
        for rows in batches:
            features = [{"input_ids": ids[i, :lengths[i]].tolist(), "token_type_ids": segments[i, :lengths[i]].tolist()}
                        for i in rows]
            batch = tokenizer.pad(features, return_tensors="pt")
            slots += batch["input_ids"].numel()
            loss = model(**batch, labels=labels[rows]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        seconds.append(time.perf_counter() - started)
    tokens = int(sum(lengths[rows].sum() for rows in batches))
    return [record(spec, "random", seconds, steps, shapes=0, slots_per_token=slots / tokens)]


def record(spec, mode, seconds, steps, **extra):
    examples = steps * spec["batch_size"]
    out = {"impl": spec["impl"], "backend": spec["backend"], "model": MODEL, "task": spec["task"], "mode": mode,
           "batch": spec["batch_size"], "examples_per_second": examples / seconds[1],
           "compile_seconds": max(seconds[0] - seconds[1], 0.0), "steps": steps,
           "first_pass_seconds": seconds[0], "steady_pass_seconds": seconds[1]}
    out.update(extra)
    return out


WORKERS = {"kbert": kbert_worker, "transformers": transformers_worker, "keras-hub": keras_hub_worker}


def worker_main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    with np.load(spec["data"]) as npz:
        data = {k: npz[k] for k in npz.files}
    records = WORKERS[spec["impl"]](spec, data)
    with open(spec["out"], "w") as f:
        json.dump(records, f)
    return 0


# ---------------------------------------------------------------------------
# The parent
# ---------------------------------------------------------------------------


def run_worker(spec, workdir):
    spec_path = os.path.join(workdir, f"{spec['impl']}-{spec['backend']}-{spec['task']}.json")
    spec["out"] = spec_path + ".out"
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ, KERAS_BACKEND=spec["backend"], TF_CPP_MIN_LOG_LEVEL="2")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, "--worker", spec_path], env=env,
                            capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        print(f"  {spec['impl']}[{spec['backend']}] {spec['task']} failed:\n    " + "\n    ".join(tail))
        return [{"impl": spec["impl"], "backend": spec["backend"], "model": MODEL, "task": spec["task"],
                 "mode": None, "batch": spec["batch_size"], "examples_per_second": None,
                 "skipped": " | ".join(tail)[-300:]}]
    with open(spec["out"]) as f:
        records = json.load(f)
    for r in records:
        r["worker_wall_seconds"] = wall
        print(f"  {r['impl']}[{r['backend']}] {r['task']} {r['mode']}: {r['examples_per_second']:.1f} ex/s "
              f"(compile {r['compile_seconds']:.1f} s, {r['shapes']} shapes, "
              f"{r['slots_per_token'] or float('nan'):.2f} slots/token)", flush=True)
    return records


def plan(args):
    impls = args.impls.split(",")
    for task in args.tasks.split(","):
        for impl in impls:
            backends = ("torch",) if impl == "transformers" else args.backends.split(",")
            for backend in backends:
                yield impl, backend, task


def report(records, args, command, wall):
    lines = [f"# Fine-tuning speed: MiniLM-L6, batch {args.batch_size}, {args.steps} steps per pass", "",
             f"Command: `{command}`", "",
             f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}; run alone (nothing else timed or running); "
             f"wall {wall:.0f} s.", "",
             "| task | impl | backend | mode | examples/s | x HF | x kbert random | compile s | shapes "
             "| slots/token |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for task in args.tasks.split(","):
        rows = [r for r in records if r["task"] == task and r.get("examples_per_second")]
        hf = next((r["examples_per_second"] for r in rows if r["impl"] == "transformers"), None)
        for r in rows:
            base = next((q["examples_per_second"] for q in rows
                         if q["impl"] == "kbert" and q["backend"] == r["backend"] and q["mode"] == "random"), None)
            ratio = lambda b: f"{r['examples_per_second'] / b:.2f}" if b else ""  # noqa: E731
            spt = f"{r['slots_per_token']:.2f}" if r.get("slots_per_token") else ""
            lines.append(f"| {task} | {r['impl']} | {r['backend']} | {r['mode']} | {r['examples_per_second']:.1f} "
                         f"| {ratio(hf)} | {ratio(base) if r['impl'] == 'kbert' else ''} "
                         f"| {r['compile_seconds']:.1f} | {r['shapes']} | {spt} |")
    skipped = [r for r in records if r.get("skipped")]
    for r in skipped:
        lines.append(f"\nSkipped {r['impl']}[{r['backend']}] {r['task']}: {r['skipped']}")
    return "\n".join(lines) + "\n"


def publish(text, records, args):
    """Print the report and write it (--markdown) and the records (--json)."""
    from kbert.atomic import write_text_atomic

    print(text)
    if args.json:
        write_text_atomic(args.json, json.dumps(records, indent=1) + "\n")
    if args.markdown:
        write_text_atomic(args.markdown, text)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker)

    command = " ".join(["python", "benchmarks/training.py", *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    records = []
    with tempfile.TemporaryDirectory() as workdir:
        data = {task: draw_rows(args, task, workdir) for task in args.tasks.split(",")}
        for impl, backend, task in plan(args):
            print(f"{impl}[{backend}] {task} ...", flush=True)
            spec = {"impl": impl, "backend": backend, "task": task, "data": data[task], "modes": args.modes.split(","),
                    "batch_size": args.batch_size, "seed": args.seed}
            records.extend(run_worker(spec, workdir))
    publish(report(records, args, command, time.perf_counter() - started), records, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
