"""Experiment: start the student from static vectors taken from the teacher's
contextual layers instead of its `Embedding-Token` matrix.

    KERAS_BACKEND=jax python benchmarks/contextual_embedding.py \\
        --teacher runs/full-sst-2/teacher --materials runs/full-sst-2/materials \\
        --output runs/contextual-materials --layers 1,2
    KERAS_BACKEND=jax kbert distill --materials runs/contextual-materials --output runs/contextual-student --epochs 4

Each vocabulary row becomes the mean hidden state (averaged over `--layers`'
`Encoder-n-FeedForward-Norm` outputs) of that token over its occurrences in
the materials' train split; a token never seen there gets its state alone
between [CLS] and [SEP].  The vectors are centred and rescaled to the original
rows' mean norm, and written into a copy of the materials with a new
`shared.npz` hash.  The result (distill-sst-2.md): about one point over the
`Embedding-Token` start, not enough to make it a kbert option.
"""

import argparse
import os
import shutil

import numpy as np

from kbert.commands.flags import add_flag


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="fine-tuned run directory (model.keras)")
    parser.add_argument("--materials", required=True, help="materials written by `kbert materials`")
    add_flag(parser, "--output", required=True, help="where the copy with new embedding rows goes")
    parser.add_argument("--layers", default="1,2", help="encoder layers to average, 1-based")
    args = parser.parse_args(argv)

    import keras

    from kbert import runs
    from kbert.atomic import atomic_output, file_sha256, read_json, write_json
    from kbert.errors import DataError

    teacher, _ = runs.load_model(args.teacher)
    layers = [int(n) for n in args.layers.split(",")]
    probe = keras.Model(teacher.inputs[:2], [teacher.get_layer(f"Encoder-{n}-FeedForward-Norm").output
                                             for n in layers])

    def hidden(ids):
        outputs = probe.predict_on_batch([ids, np.zeros_like(ids)])
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return np.mean([np.asarray(o) for o in outputs], axis=0)  # [B, T, H]

    shared = dict(np.load(os.path.join(args.materials, "shared.npz")))
    original = shared["embedding"]
    rows = original.shape[0]
    cls_id, sep_id = (int(np.flatnonzero(shared["vocab"] == t)[0]) for t in ("[CLS]", "[SEP]"))
    alone = np.stack([np.full(rows, cls_id), np.arange(rows), np.full(rows, sep_id)], 1).astype("int32")
    vectors = np.concatenate([hidden(alone[i:i + 1024])[:, 1] for i in range(0, rows, 1024)])

    train = np.load(os.path.join(args.materials, "train.npz"))
    x, lengths = train["x"], train["length"]
    sums, counts = np.zeros(vectors.shape, np.float64), np.zeros(rows)
    order = np.argsort(lengths)
    for start in range(0, len(x), 256):
        batch = order[start:start + 256]
        ids = x[batch, :int(lengths[batch].max())]
        real = ids > 0
        np.add.at(sums, ids[real], hidden(ids)[real])
        np.add.at(counts, ids[real], 1)
    seen = counts > 0
    vectors[seen] = sums[seen] / counts[seen, None]
    vectors -= vectors.mean(axis=0)
    vectors *= np.linalg.norm(original, axis=1).mean() / np.linalg.norm(vectors, axis=1).mean()

    shutil.copytree(args.materials, args.output)
    shared["embedding"] = vectors.astype(np.float32)
    shared_path = os.path.join(args.output, "shared.npz")
    with atomic_output(shared_path, suffix=".npz") as tmp:
        np.savez(tmp, **shared)
    manifest_path = os.path.join(args.output, "manifest.json")
    manifest = read_json(manifest_path, error=DataError, what="manifest")
    manifest["shared"]["sha256"] = file_sha256(shared_path)
    write_json(manifest_path, manifest)
    print(f"{int(seen.sum())} of {rows} rows from train occurrences; materials in {args.output}")


if __name__ == "__main__":
    main()
