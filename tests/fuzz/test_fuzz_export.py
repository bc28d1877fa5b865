"""Fuzz: `kbert export` destinations and the packed view's inputs.

Every export destination is either written (an artifact that passed its
check) or refused with a `KbertError`, and in both cases every input file,
and everything the user had beside it, is byte for byte as it was.  Every
packed input is either read (finite logits, finite weights after a training
step) or refused with a `KbertError`, the weights untouched.
"""

import os

import keras
import numpy as np
import pytest
from mutate import ODD_VALUES, all_finite, verdict
from test_predict import make_run
from test_serving import tree

BACKEND = keras.backend.backend()
pytestmark = [pytest.mark.slow]


def destinations(tmp_path, run):
    """(description, path) of hostile and ordinary export destinations."""
    (tmp_path / "afile").write_text("user's file")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "keep.txt").write_text("user's directory")
    os.symlink(tmp_path / "loop-b", tmp_path / "loop-a")
    os.symlink(tmp_path / "loop-a", tmp_path / "loop-b")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    os.symlink(run, tmp_path / "to-run")
    os.symlink(tmp_path / "adir", tmp_path / "to-adir")
    return [
        ("the run", run), ("the run's parent", run.parent), ("inside the run", run / "serve"),
        ("the run, spelled with ..", run / ".." / run.name), ("a link to the run", tmp_path / "to-run"),
        ("an existing file", tmp_path / "afile"), ("beneath a file", tmp_path / "afile" / "x"),
        ("a user's directory", tmp_path / "adir"), ("a link to a user's directory", tmp_path / "to-adir"),
        ("a symlink loop", tmp_path / "loop-a"), ("beneath a symlink loop", tmp_path / "loop-a" / "x"),
        ("a dangling link", tmp_path / "dangling"), ("/proc", "/proc/kbert-export"),
        ("/sys", "/sys/kernel/kbert-export"), ("an empty name", ""), ("a fresh directory", tmp_path / "fresh"),
    ]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="export destinations are fuzzed once, on tensorflow")
def test_export_destinations(tmp_path):
    from kbert.serving import export_run

    run = make_run(tmp_path / "sst2", "SST-2", 2, ("0", "1"))
    outcomes = {}
    for what, output in destinations(tmp_path, run):
        before = {p: tree(p) if os.path.isdir(p) else None for p in (run, tmp_path / "adir")}
        outcome, _ = verdict(lambda: export_run(run, output, "onnx", overwrite=True), seconds=60)
        outcomes[what] = outcome
        assert {p: tree(p) if os.path.isdir(p) else None for p in before} == before, f"{what}: an input changed"
        assert (tmp_path / "afile").read_text() == "user's file", what
    # Only the fresh directory is written; nothing beside it is left behind.
    assert [w for w, o in outcomes.items() if o == "ok"] == ["a fresh directory"], outcomes
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")], os.listdir(tmp_path)


@pytest.mark.single_backend
def test_packed_inputs():
    from kbert.model import BertModel
    from kbert.packing import pack
    from kbert.views import packed_classifier

    rng = np.random.default_rng(24)
    config = dict(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                  max_position_embeddings=24)
    model = BertModel(config, num_labels=2)
    view = packed_classifier(model)
    view.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    lengths = rng.integers(1, 9, 5)
    ids = np.zeros((5, 8), np.int32)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(1, 30, n)
    clean = list(pack((ids, (ids > 0).astype(np.int32)), lengths, 16))
    targets = np.array([0, 1, 0, 1, 1])
    outcomes = []
    for case in range(60):
        x = [a.copy() for a in clean]
        k = int(rng.integers(0, 5))
        kind = ["value", "value", "odd", "shape", "dtype", "drop"][case % 6]
        if kind == "value":
            x[k].flat[int(rng.integers(0, x[k].size))] = int(rng.choice([-1, 2, 24, 30, 79, 2**31 - 1]))
        elif kind == "odd":
            x[k] = ODD_VALUES[int(rng.integers(0, len(ODD_VALUES)))]
        elif kind == "shape":
            x[k] = x[k][..., : max(1, x[k].shape[-1] - 3)] if x[k].ndim > 1 else x[k][None]
        elif kind == "dtype":
            x[k] = x[k].astype(np.float32) + (0.5 if rng.random() < 0.5 else np.nan)
        else:
            x = x[:-1]
        before = [keras.ops.convert_to_numpy(v).copy() for v in model.weights]
        outcome, logits = verdict(lambda: keras.ops.convert_to_numpy(view.predict_on_batch(x)))
        if outcome == "ok":
            assert all_finite([logits]), f"case {case} ({kind} of input {k}): NaN logits"
            outcome, _ = verdict(lambda: view.train_on_batch(x, targets[: len(logits)]))
            assert all_finite([keras.ops.convert_to_numpy(v) for v in model.weights]), f"case {case}: NaN weights"
        else:
            after = [keras.ops.convert_to_numpy(v) for v in model.weights]
            assert all(np.array_equal(a, b) for a, b in zip(before, after)), f"case {case}: refused, weights changed"
        outcomes.append(outcome)
    assert outcomes.count("refused") >= 30, outcomes
