"""Inputs of any size (`kbert.predict.predict_files`, `kbert predict --input
... --output DIR`): the shards hold what one `Classifier.predict` call over
all inputs gives, a run killed between shards or inside one resumes with
nothing lost and nothing partial, and the output directory is kbert's own."""

import json
import os
import re

import numpy as np
import pytest
from test_predict import make_run

from kbert import load_classifier
from kbert.cli import main as cli
from kbert.errors import ConfigError, DataError
from kbert.options import PredictOptions
from kbert.predict import Classifier, predict_files


class Killed(BaseException):
    """What a kill does to the call: it ends, wherever it was (not an Exception)."""


WORDS = "a fine moving film dull plot goes nowhere sadly the cast is great boring".split()


def sentences(n, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 14))) for _ in range(n)]


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "sst2", "SST-2", 2, ("0", "1"))


def write_inputs(directory):
    """Two text files and a JSON lines file, 7 + 3 + 4 inputs: (paths, texts)."""
    first, second, third = sentences(7, 0), sentences(3, 1), sentences(4, 2)
    (directory / "a.txt").write_text("\n".join(first) + "\n")
    (directory / "b.txt").write_bytes("\r\n".join(second).encode())  # CRLF, no final newline
    (directory / "c.jsonl").write_text("".join(json.dumps({"text": t, "id": k}) + "\n" for k, t in enumerate(third)))
    return [str(directory / "a.txt"), str(directory / "b.txt"), str(directory / "c.jsonl")], first + second + third


@pytest.fixture
def inputs(tmp_path):
    return write_inputs(tmp_path)


def read_shards(output):
    manifest = json.loads((output / "manifest.json").read_text())
    rows = []
    for shard in manifest["shards"]:
        rows += [json.loads(line) for line in (output / shard["file"]).read_text().splitlines()]
    return manifest, rows


def test_shards_hold_what_one_call_gives(sst2_run, inputs, tmp_path):
    paths, texts = inputs
    output = tmp_path / "out"
    manifest = predict_files(sst2_run, paths, output, PredictOptions(shard_rows=3, batch_size=2), verbose=False)
    expected = [p.to_json() for p in load_classifier(sst2_run).predict(texts)]
    _, rows = read_shards(output)
    assert [row["text"] for row in rows] == texts
    assert [row["label"] for row in rows] == [row["label"] for row in expected]
    np.testing.assert_allclose([row["logits"] for row in rows], [row["logits"] for row in expected], atol=1e-6)
    # Shards never span files: 7 -> 3+3+1, 3 -> 3, 4 -> 3+1; lines from 1 in each file.
    assert [(os.path.basename(s["input"]), s["first"], s["last"], s["rows"]) for s in manifest["shards"]] == [
        ("a.txt", 1, 3, 3), ("a.txt", 4, 6, 3), ("a.txt", 7, 7, 1), ("b.txt", 1, 3, 3),
        ("c.jsonl", 1, 3, 3), ("c.jsonl", 4, 4, 1)]
    assert manifest["status"] == "complete" and manifest["rows"] == 14 and manifest["resumed_rows"] == 0
    assert manifest["rows_per_second"] > 0
    assert sorted(os.listdir(output)) == sorted(["manifest.json"] + [f"part-{k:05d}.{e}" for k in range(6)
                                                                     for e in ("json", "jsonl")])


@pytest.mark.single_backend  # the shards' files and their bookkeeping: the same on every backend
def test_a_killed_run_resumes_with_no_shard_lost_or_partial(sst2_run, inputs, tmp_path, monkeypatch):
    paths, texts = inputs
    options = PredictOptions(shard_rows=3)
    whole = tmp_path / "whole"
    predict_files(sst2_run, paths, whole, options, verbose=False)

    calls, killed = [], []
    real = Classifier.predict

    def dies_on_the_fourth(self, shard, **kwargs):
        calls.append(list(shard))
        if len(calls) == 4 and not killed:
            killed.append(True)
            raise Killed  # in the middle of a shard
        return real(self, shard, **kwargs)

    monkeypatch.setattr(Classifier, "predict", dies_on_the_fourth)
    output = tmp_path / "out"
    with pytest.raises(Killed):
        predict_files(sst2_run, paths, output, options, verbose=False)
    # Three shards whole, with their records; nothing of the fourth.
    assert sorted(n for n in os.listdir(output) if n.startswith("part-")) == [
        f"part-{k:05d}.{e}" for k in range(3) for e in ("json", "jsonl")]
    assert json.loads((output / "manifest.json").read_text())["status"] == "running"

    calls.clear()
    manifest = predict_files(sst2_run, paths, output, options, verbose=False)
    assert calls == [texts[7:10], texts[10:13], texts[13:]]  # only the shards not written
    assert manifest["resumed_rows"] == 7
    for name in os.listdir(whole):
        if name.endswith(".jsonl"):
            assert (output / name).read_bytes() == (whole / name).read_bytes(), name

    # Killed between a shard's predictions and its record: the shard is redone.
    (output / "part-00004.json").unlink()
    calls.clear()
    predict_files(sst2_run, paths, output, options, verbose=False)
    assert calls == [texts[10:13]]
    # An edited input redoes its own shards only; other settings redo all.
    lines = (tmp_path / "a.txt").read_text().splitlines()
    lines[4] = "a great cast"
    (tmp_path / "a.txt").write_text("\n".join(lines) + "\n")
    calls.clear()
    predict_files(sst2_run, paths, output, options, verbose=False)
    _, rows = read_shards(output)
    assert calls == [lines[3:6]] and rows[4]["text"] == "a great cast"
    calls.clear()
    predict_files(sst2_run, paths, output, PredictOptions(shard_rows=3, packing=False), verbose=False)
    assert len(calls) == 6


@pytest.mark.single_backend  # the shards' files and their bookkeeping: the same on every backend
def test_the_output_directory_is_kbert_predicts_own(sst2_run, inputs, tmp_path):
    paths, _ = inputs
    output = tmp_path / "out"
    predict_files(sst2_run, paths, output, PredictOptions(shard_rows=3), verbose=False)
    # A shorter input and another format: the earlier shards' files go, once the new ones are written.
    pq = pytest.importorskip("pyarrow.parquet")
    manifest = predict_files(sst2_run, paths[:1], output, PredictOptions(shard_rows=3, format="parquet"),
                             verbose=False)
    assert sorted(os.listdir(output)) == sorted(["manifest.json"] + [f"part-{k:05d}.{e}" for k in range(3)
                                                                     for e in ("json", "parquet")])
    table = pq.read_table(output / "part-00001.parquet").to_pydict()
    single = load_classifier(sst2_run).predict(table["text"])
    np.testing.assert_allclose(table["logits"], [p.logits for p in single], atol=1e-6)
    np.testing.assert_allclose(table["p_1"], [p.probabilities["1"] for p in single], atol=1e-6)
    assert table["label"] == [p.label for p in single] and manifest["rows"] == 7

    # A killed writer's temporary (a pid no process has) is kbert's, removed at the end.
    temporary = output / ".part-00002.parquet.999999999.abcd_123.parquet"
    temporary.write_bytes(b"torn")
    predict_files(sst2_run, paths[:1], output, PredictOptions(shard_rows=3, format="parquet"), verbose=False)
    assert not temporary.exists()

    (output / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds notes.txt, which kbert predict did not write"):
        predict_files(sst2_run, paths, output, verbose=False)
    assert (output / "notes.txt").read_text() == "mine"
    # Names alone do not make a directory kbert's: its manifest must.
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text('{"format": "another tool"}')
    (other / "part-00000.parquet").write_text("theirs")
    with pytest.raises(ConfigError, match=r"not empty and not written by kbert predict"):
        predict_files(sst2_run, paths, other, verbose=False)
    assert (other / "part-00000.parquet").read_text() == "theirs"
    with pytest.raises(ConfigError, match="lies inside the input"):
        predict_files(sst2_run, paths, sst2_run / "predictions", verbose=False)
    with pytest.raises(ConfigError, match="is the input"):
        predict_files(sst2_run, [str(output / "notes.txt")], output / "notes.txt", verbose=False)
    bad = tmp_path / "bad.txt"
    bad.write_text("fine\n\nalso fine\n")
    with pytest.raises(DataError, match=rf"^{bad}:2: blank line$"):  # found before any shard is written
        predict_files(sst2_run, [str(bad)], tmp_path / "new", verbose=False)
    assert not (tmp_path / "new").exists()


@pytest.mark.single_backend  # the shards' files and their bookkeeping: the same on every backend
def test_a_file_given_twice_is_read_twice(sst2_run, inputs, tmp_path):
    paths, texts = inputs
    manifest = predict_files(sst2_run, [paths[1], paths[1]], tmp_path / "out", PredictOptions(shard_rows=2),
                             verbose=False)
    _, rows = read_shards(tmp_path / "out")
    assert [row["text"] for row in rows] == texts[7:10] * 2 and len(manifest["shards"]) == 4


def test_pairs_from_json_lines_to_tsv_shards(tmp_path):
    run = make_run(tmp_path / "mrpc", "MRPC", 2, ("0", "1"))
    firsts, seconds = sentences(5, 3), sentences(5, 4)
    firsts[1] = "a fine\nmoving film"  # a line break inside a text: still one row
    seconds[2] = "dull\r\nplot"
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"text_a": a, "text_b": b}) + "\n" for a, b in zip(firsts, seconds)))
    with pytest.raises(ConfigError, match="windows' splits single texts"):  # before anything is written
        predict_files(run, [str(path)], tmp_path / "out", PredictOptions(long_inputs="windows"), verbose=False)
    assert not (tmp_path / "out").exists()
    predict_files(run, [str(path)], tmp_path / "out", PredictOptions(shard_rows=2, format="tsv"), verbose=False)
    expected = load_classifier(run).predict(list(zip(firsts, seconds)))
    rows = []
    for k in range(3):
        header, *body = (tmp_path / "out" / f"part-{k:05d}.tsv").read_text().splitlines()
        assert header == "text_a\ttext_b\tlabel\tp_0\tp_1"
        rows += [line.split("\t") for line in body]
    one_line = lambda text: re.sub(r"[\t\r\n]", " ", text)  # noqa: E731
    assert [r[:2] for r in rows] == [[one_line(a), one_line(b)] for a, b in zip(firsts, seconds)]
    assert [r[2] for r in rows] == [p.label for p in expected]
    np.testing.assert_allclose([float(r[4]) for r in rows], [p.probabilities["1"] for p in expected], atol=1e-5)


@pytest.mark.single_backend  # the shards' files and their bookkeeping: the same on every backend
def test_cli_writes_shards_and_refuses_mixed_inputs(sst2_run, inputs, tmp_path, capsys):
    paths, texts = inputs
    output = tmp_path / "cli"
    assert cli(["predict", "--model", str(sst2_run), "--input", str(tmp_path / "*.txt"), paths[2],
                "--output", str(output), "--shard-rows", "4"]) == 0
    err = capsys.readouterr().err
    assert f"kbert predict: 14 inputs in 4 shard(s) in {output} (0 already written)" in err
    _, rows = read_shards(output)
    assert [row["text"] for row in rows] == texts
    for argv, message in [
        (["--input", paths[0]], "--input writes its predictions to --output DIR"),
        (["--input", paths[0], "--output", str(output), "fine"], "give --input, or TEXT arguments or --file"),
        (["--output", str(output), "fine"], "--output comes with --input"),
        (["--format", "parquet", "fine"], "--format parquet writes shards"),
        (["--input", str(tmp_path / "none*.txt"), "--output", str(output)], "no file matches"),
    ]:
        assert cli(["predict", "--model", str(sst2_run), *argv]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.single_backend  # the shards' files and their bookkeeping: the same on every backend
def test_ray_options_without_ray(sst2_run, inputs, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r'pip install "kbert\[ray\]"'):
        predict_files(sst2_run, inputs[0], tmp_path / "out", PredictOptions(engine="ray"), verbose=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="--ray-address and --workers come with --engine ray"):
        PredictOptions(workers=2)
