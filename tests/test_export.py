"""Export back to the original format: readable by TensorFlow under the
original names, bit-exact on reload, atomic."""

import os
import shutil

import numpy as np
import pytest

from kbert import CheckpointError, export_checkpoint, load_checkpoint
from kbert.cli import main as cli

from original_checkpoint import TINY_CONFIG, random_bert_weights, read_checkpoint, write_checkpoint

CONFIG = TINY_CONFIG


@pytest.mark.parametrize("heads, options", [
    (("pretraining",), dict(training=True)),
    (("pooler",), dict(num_labels=3)),
    (("pooler",), dict(with_pooler=True)),
])
def test_round_trip_is_bit_exact(tmp_path, rng, heads, options):
    weights = random_bert_weights(CONFIG, rng, heads=heads, num_labels=options.get("num_labels"))
    write_checkpoint(tmp_path / "src", CONFIG, weights)
    model = load_checkpoint(tmp_path / "src", **options)
    export_checkpoint(model, tmp_path / "dst")
    written = read_checkpoint(tmp_path / "dst")
    assert set(written) == set(weights)  # original names, no optimizer state
    for name, value in weights.items():
        np.testing.assert_array_equal(written[name], value, err_msg=name)
    assert (tmp_path / "dst" / "vocab.txt").read_text() == (tmp_path / "src" / "vocab.txt").read_text()
    again = load_checkpoint(tmp_path / "dst", **options)
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_shared_fixture_round_trip(fixture_checkpoint, tmp_path):
    model = load_checkpoint(fixture_checkpoint, training=True)
    export_checkpoint(model, tmp_path / "out")
    original = read_checkpoint(fixture_checkpoint)
    for name, value in read_checkpoint(tmp_path / "out").items():
        np.testing.assert_array_equal(value, original[name], err_msg=name)


def test_interrupted_export_leaves_nothing(fixture_checkpoint, tmp_path, monkeypatch):
    from kbert.weights import export

    model = load_checkpoint(fixture_checkpoint)

    def crash(prefix, tensors):
        open(prefix + ".index", "wb").write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "write_original_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        export_checkpoint(model, tmp_path / "target")
    assert os.listdir(tmp_path) == []


def test_existing_target_needs_overwrite(fixture_checkpoint, tmp_path):
    model = load_checkpoint(fixture_checkpoint)
    export_checkpoint(model, tmp_path / "t")
    with pytest.raises(CheckpointError, match="already exists"):
        export_checkpoint(model, tmp_path / "t")
    export_checkpoint(model, tmp_path / "t", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["t"]


def test_convert_command(fixture_checkpoint, tmp_path, capsys):
    assert cli(["convert", str(fixture_checkpoint), str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "cls/predictions/output_bias -> MLM-Sim/bias [15]" in out
    assert "wrote 46 variables" in out
    assert cli(["names", str(tmp_path / "c")]) == 0
    assert "bert/pooler/dense/kernel -> NSP-Dense/kernel [4, 4]" in capsys.readouterr().out
    assert cli(["names", str(tmp_path / "missing")]) == 2
    assert "no checkpoint found" in capsys.readouterr().err


def _two_models(tmp_path, rng):
    """Two different checkpoints' models and a target exported from the first."""
    models = []
    for name in ("a", "b"):
        write_checkpoint(tmp_path / name, CONFIG, random_bert_weights(CONFIG, rng))
        models.append(load_checkpoint(tmp_path / name))
    export_checkpoint(models[0], tmp_path / "target")
    return models, read_checkpoint(tmp_path / "target")


def test_overwrite_survives_a_failing_second_rename(tmp_path, rng, monkeypatch):
    import kbert.weights.export as export

    (_, b), before = _two_models(tmp_path, rng)
    real_rename, calls = os.rename, []

    def second_fails(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the new checkpoint onto the target
            raise OSError("injected: disk full")
        real_rename(src, dst)

    monkeypatch.setattr(export.os, "rename", second_fails)
    with pytest.raises(CheckpointError, match="target: cannot write there: injected"):
        export_checkpoint(b, tmp_path / "target", overwrite=True)
    monkeypatch.undo()
    after = read_checkpoint(tmp_path / "target")  # the old checkpoint is whole, under its own name
    assert set(after) == set(before) and all(np.array_equal(after[k], before[k]) for k in before)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".target")) == []


def test_an_export_killed_between_its_renames_is_recovered(tmp_path, rng):
    (_, b), before = _two_models(tmp_path, rng)
    # What a kill -9 between the two renames leaves: the old checkpoint
    # aside, no target, and the new one's temporary directory of a dead pid.
    os.rename(tmp_path / "target", tmp_path / ".target.old")
    (tmp_path / ".target.999999999.abc").mkdir()
    with pytest.raises(CheckpointError, match="already exists"):
        export_checkpoint(b, tmp_path / "target")  # the old one is back, so this refuses
    after = read_checkpoint(tmp_path / "target")
    assert all(np.array_equal(after[k], before[k]) for k in before)
    assert not (tmp_path / ".target.old").exists() and not (tmp_path / ".target.999999999.abc").exists()
    export_checkpoint(b, tmp_path / "target", overwrite=True)
    assert not any(np.array_equal(read_checkpoint(tmp_path / "target")[k], before[k]) for k in before
                   if "embeddings" in k)


def test_convert_never_replaces_or_writes_into_its_source(fixture_checkpoint, tmp_path, capsys):
    """`kbert convert SRC SRC --overwrite` would have removed the source
    checkpoint: a target that is, contains or lies inside what the model was
    read from is refused, and a user's directory is never replaced."""
    source = tmp_path / "src"
    shutil.copytree(fixture_checkpoint, source)
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    for target, message in ((source, "contains the input"), (tmp_path, "contains the input"),
                            (source / "out", "lies inside the input"), (tmp_path / "mine", "not a directory kbert wrote")):
        assert cli(["convert", str(source), str(target), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
