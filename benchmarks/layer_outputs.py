"""The teacher's layer outputs for the hidden-state loss: computed in each
training step, or computed once and stored (float16) beside the materials.

`kbert distill --hidden-weight W` runs the frozen teacher in every step
(`kbert.views.layerwise_trainer`).  The other way writes the teacher's
hidden states once, for the layers the loss matches
(`kbert.distillation.layer_pairs`), and feeds them to each step from disk.
This script measures both on the same materials, the same student (cut
from the teacher, `kbert.student.cut_teacher`), the same batches
(`kbert.batching.BucketedBatches`, batch 50, the same seed) and the same
loss (`LayerwiseDistillation` on the stored logits' loss):

    store     the teacher pass that writes the hidden states (each row's
              real tokens only, float16, [tokens, layers, H] in one file,
              rows one after the other): seconds and bytes on disk
    epoch     seconds of one training epoch, each way
    accuracy  after that epoch, each way: agreement with the teacher on
              held-out training rows (5%, left out of training and of the
              store) and dev accuracy

Shape legend: B = batch, T = tokens, K = matched layers, H = hidden size.

    python benchmarks/layer_outputs.py --materials runs/full-sst-2/materials \\
        --work /tmp/layer-outputs --json benchmarks/results/layer-outputs-sst-2.json

Run it alone on the machine: it times epochs.
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

REPO = str(pathlib.Path(__file__).resolve().parents[1])
WAYS = ("stored", "step")
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--materials", required=True, help="materials made by a teacher run kbert can load")
    parser.add_argument("--work", required=True, help="a new directory for the stored hidden states")
    parser.add_argument("--layers", type=int, default=3, help="the student's encoder layers (default 3)")
    parser.add_argument("--hidden-weight", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rows", type=int, default=None, help="train on the first N kept rows only (a quick check)")
    parser.add_argument("--ways", default="stored,step", help="comma-separated: stored, step")
    parser.add_argument("--json")
    return parser.parse_args(argv)


def store_hidden(teacher, teacher_layer_names, x, segment, lengths, path, batch_size=128):
    """Write the teacher's outputs at `teacher_layer_names` for each row's
    real tokens, float16, [sum(lengths), K, H], rows in order; return the
    rows' offsets into it [N + 1]."""
    import keras

    from kbert.batching import bucket_width

    probe = keras.Model(teacher.inputs[:2], [teacher.get_layer(n).output for n in teacher_layer_names])
    hidden = teacher.bert_config.hidden_size
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    store = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16,
                                      shape=(int(offsets[-1]), len(teacher_layer_names), hidden))
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = bucket_width(int(lengths[rows].max()), x.shape[1])
        outputs = probe.predict_on_batch([x[rows, :width], segment[rows, :width]])
        outputs = np.stack([keras.ops.convert_to_numpy(o) for o in outputs], axis=2)  # [B, T, K, H]
        for i, row in enumerate(rows):
            store[offsets[row]:offsets[row + 1]] = outputs[i, :lengths[row]]
    store.flush()
    del store
    return offsets


def stored_batches(batches, store, offsets, layers):
    """`batches` (a `BucketedBatches`) with each batch's stored teacher
    outputs as K more inputs [B, T, H], zeros at padding."""
    import keras

    class StoredBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rows = batches.batch_rows()  # the epoch's batches' row indices, as batches[i] reads them

        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            (ids, segments), y = batches[index]
            rows = self.rows[index]
            taught = np.zeros((len(rows), ids.shape[1], layers, store.shape[-1]), np.float16)  # [B, T, K, H]
            for i, row in enumerate(rows):
                n = min(offsets[row + 1] - offsets[row], ids.shape[1])
                taught[i, :n] = store[offsets[row]:offsets[row] + n]
            return (ids, segments, *(taught[:, :, k] for k in range(layers))), y

        def on_epoch_end(self):
            batches.on_epoch_end()
            self.rows = batches.batch_rows()

    return StoredBatches()


def stored_trainer(student, pairs, hidden_weight):
    """The student's logits from its ids, segments and the teacher's stored
    outputs, with the hidden-state loss between them and the student's."""
    import keras

    from kbert.layers import LayerwiseDistillation
    from kbert.views import layer_output_name

    taught = [keras.Input((None, student.bert_config.hidden_size), dtype="float16", name=f"teacher_{t}")
              for _, t in pairs]
    hidden = [student.get_layer(layer_output_name(s)).output for s, _ in pairs]  # K x [B, T, H]
    logits = LayerwiseDistillation(hidden_weight, hidden_layers=len(pairs), name="Layerwise-Distillation")(
        [student.output, student.get_layer("Padding-Mask").output, *hidden, *taught])
    return keras.Model([*student.inputs[:2], *taught], logits, name="stored_trainer")


def run(args):
    import keras

    from kbert import runs
    from kbert.batching import BucketedBatches
    from kbert.distillation import StoredLogitsLoss, layer_pairs, pack_targets, teacher_agreement
    from kbert.inference import predict_bucketed
    from kbert.materials import load_materials
    from kbert.registry import STUDENTS
    from kbert.seeding import EpochSeed
    from kbert.student import cut_teacher
    from kbert.views import layer_output_name, layerwise_trainer

    os.makedirs(args.work, exist_ok=False)
    materials = load_materials(args.materials)
    teacher, _ = runs.load_model(materials.manifest["teacher"]["id"])
    train, dev = materials.splits["train"], materials.splits["dev"]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(train.length))
    held = order[: len(order) // 20]
    kept = np.sort(order[len(order) // 20:])[: args.rows]
    x, segment, lengths = train.x[kept], train.segment[kept], train.length[kept].astype(np.int64)
    targets = pack_targets(train.label[kept], train.y[kept])
    pairs = layer_pairs(args.layers, teacher.bert_config.num_hidden_layers)
    names = [layer_output_name(t) for _, t in pairs]
    out = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
                                                         f"{os.cpu_count()} cores",
           "backend": keras.backend.backend(), "materials": args.materials,
           "train rows": int(len(kept)), "held-out rows": int(len(held)), "pairs": pairs,
           "batch size": args.batch_size, "epochs": args.epochs, "seed": args.seed,
           "hidden weight": args.hidden_weight, "ways": {}}
    ways = args.ways.split(",")
    if not ways or set(ways) - set(WAYS):
        raise SystemExit(f"--ways: a comma-separated subset of {', '.join(WAYS)}, got {args.ways!r}")
    if "stored" in ways:
        path = os.path.join(args.work, "hidden.npy")
        started = time.perf_counter()
        offsets = store_hidden(teacher, names, x, segment, lengths, path)
        out["store"] = {"seconds": round(time.perf_counter() - started, 1), "bytes": os.path.getsize(path),
                        "tokens": int(offsets[-1]), "layers": names}
        print("store", out["store"], flush=True)
        store = np.load(path, mmap_mode="r")
    for way in ways:
        keras.utils.set_random_seed(args.seed)
        student = cut_teacher(teacher, layers=args.layers)
        batches = BucketedBatches((x, segment), targets, lengths, batch_size=args.batch_size, seed=args.seed)
        if way == "stored":
            model, data = stored_trainer(student, pairs, args.hidden_weight), stored_batches(
                batches, store, offsets, len(pairs))
        else:
            model = layerwise_trainer(student, teacher, pairs, hidden_weight=args.hidden_weight)
            data = batches
        model.compile(optimizer=keras.optimizers.Adam(STUDENTS["transformer"].learning_rate),
                      loss=StoredLogitsLoss(0.0, "mse", 1.0),
                      metrics=[keras.metrics.MeanMetricWrapper(teacher_agreement, name="teacher_agreement")])
        started = time.perf_counter()
        history = model.fit(data, epochs=args.epochs, callbacks=[EpochSeed(args.seed)], verbose=2, shuffle=False)
        seconds = time.perf_counter() - started
        held_logits = predict_bucketed(student, [train.x[held], train.segment[held]], train.length[held])
        dev_logits = predict_bucketed(student, [dev.x, dev.segment], dev.length)
        agreement = float(np.mean(held_logits.argmax(-1) == train.y[held].argmax(-1)))
        out["ways"][way] = {
            "seconds": round(seconds, 1), "training loss by epoch": [round(v, 4) for v in history.history["loss"]],
            "items per second": round(len(kept) * args.epochs / seconds, 1),
            "held-out agreement": round(agreement, 4),
            "held-out standard error": round(float(np.sqrt(agreement * (1 - agreement) / len(held))), 4),
            "dev accuracy": round(float(np.mean(dev_logits.argmax(-1) == dev.label)), 4),
            "dev agreement": round(float(np.mean(dev_logits.argmax(-1) == dev.y.argmax(-1))), 4)}
        print(way, out["ways"][way], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


def main(argv=None):
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
