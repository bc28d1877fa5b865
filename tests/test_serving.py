"""`kbert export`: each artifact run in its own runtime, loaded
here with tf.saved_model / onnxruntime directly, against the Keras model on
real SST-2 dev sentences, padded to max_seq_len and unpadded."""

import json
import os

import keras
import numpy as np
import pytest
from test_predict import VOCAB, make_run

from kbert import runs
from kbert.cli import main as cli
from kbert.config import BertConfig
from kbert.errors import ConfigError, DataError
from kbert.glue import get_processor
from kbert.model import BertModel
from kbert.serving import EXPORTED_BY
from kbert.tokenization import Tokenizer

import needs

BACKEND = keras.backend.backend()


def sentences(glue_dir, n=24):
    return [e.text_a for e in get_processor("SST-2").dev_examples(str(glue_dir))[:n]]


def run_in_runtime(directory, arrays):
    """The artifact's logits, run by its own runtime (not through kbert)."""
    manifest = json.load(open(os.path.join(directory, "serving.json")))
    path = os.path.join(directory, manifest["artifact"])
    if manifest["format"] == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        tensors = [tf.constant(a) for a in arrays]
        out = loaded.serve(tensors if len(tensors) > 1 else tensors[0])
        return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else np.asarray(out)
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays)})
    return out if len(out) > 1 else out[0]


def check_artifact(run_dir, out, texts, pairs=False):
    manifest = json.load(open(out / "serving.json"))
    record = runs.read_run(run_dir)
    assert manifest["labels"] == list(record.labels or ()) and manifest["max_seq_len"] == record.max_seq_len
    assert manifest["cased"] == record.cased and manifest["kind"] == record.kind
    tokenizer = Tokenizer.from_vocab_file(out / "vocab.txt", cased=manifest["cased"])  # what a server reads
    firsts, seconds = (texts[::2], texts[1::2]) if pairs else (texts, None)
    encoded = tokenizer.encode_batch(firsts, seconds, max_len=manifest["max_seq_len"])
    model = keras.saving.load_model(run_dir / runs.MODEL_FILES[record.kind])
    arrays = [encoded.token_ids, encoded.segment_ids][: len(model.inputs)]
    assert [i["name"] for i in manifest["inputs"]] == [t.name for t in model.inputs]
    batches = [arrays]
    if manifest["inputs"][0]["shape"][1] is None:  # any length: unpadded rows too
        width = int(encoded.lengths.min())
        short = encoded.lengths == width
        batches.append([a[short, :width] for a in arrays])
    for batch in batches:
        expected = model(batch if len(batch) > 1 else batch[0])
        got = run_in_runtime(out, batch)
        if isinstance(expected, (list, tuple)):  # a span head: start and end logits
            assert len(got) == len(expected) == 2
            for g, e in zip(got, expected):
                np.testing.assert_allclose(g, keras.ops.convert_to_numpy(e), atol=1e-5)
        else:
            np.testing.assert_allclose(got, keras.ops.convert_to_numpy(expected), atol=1e-5)


@pytest.mark.parametrize("format", ["tf_saved_model", "onnx"])
def test_artifacts_agree_with_keras_in_their_runtime(format, glue_dir, tmp_path, capsys):
    if BACKEND not in EXPORTED_BY[format]:
        run = make_run(tmp_path / "t", "SST-2", 2, ("0", "1"))
        assert cli(["export", "--model", str(run), "--output", str(tmp_path / "x"), "--format", format]) == 2
        assert f"{format}: Keras exports it with KERAS_BACKEND=" in capsys.readouterr().err
        return
    needs.module("onnxruntime")
    texts = sentences(glue_dir)
    teacher = make_run(tmp_path / "mrpc", "MRPC", 2, ("0", "1"), max_seq_len=16)
    assert cli(["export", "--model", str(teacher), "--output", str(tmp_path / "teacher"), "--format", format]) == 0
    check_artifact(teacher, tmp_path / "teacher", texts, pairs=True)
    student = make_run(tmp_path / "student", "SST-2", 2, ("0", "1"), student=True, max_seq_len=16)
    assert cli(["export", "--model", str(student), "--output", str(tmp_path / "student-out"),
                "--format", format]) == 0
    check_artifact(student, tmp_path / "student-out", texts)
    # An existing artifact stays unless asked.
    assert cli(["export", "--model", str(student), "--output", str(tmp_path / "student-out"),
                "--format", format]) == 2
    # The BiLSTM student reading a pair's sentences apart (its loop, the split at [SEP]);
    # ONNX only, the format whose JAX exporter needed the layers changed (suite time).
    if format != "onnx":
        return
    siamese = make_run(tmp_path / "siamese", "MRPC", 2, ("0", "1"), max_seq_len=16,
                       student={"student": "bilstm", "units": 3, "separator_id": VOCAB.index("[SEP]")})
    assert cli(["export", "--model", str(siamese), "--output", str(tmp_path / "siamese-out"),
                "--format", format]) == 0
    check_artifact(siamese, tmp_path / "siamese-out", texts, pairs=True)


def test_token_and_span_heads_export_and_agree_in_their_runtime(glue_dir, tmp_path):
    # One format a backend (suite time): ONNX from JAX, a SavedModel from TensorFlow.
    format = {"jax": "onnx", "tensorflow": "tf_saved_model"}.get(BACKEND)
    if format is None:
        pytest.skip(f"{BACKEND} exports nothing (the refusal is tested above)")
    needs.module("onnxruntime")
    texts = sentences(glue_dir, 8)
    tagger = make_run(tmp_path / "ner", "conll", 3, ("O", "B-PER", "I-PER"), max_seq_len=16, head="token")
    assert cli(["export", "--model", str(tagger), "--output", str(tmp_path / "ner-out"), "--format", format]) == 0
    check_artifact(tagger, tmp_path / "ner-out", texts)
    assert json.load(open(tmp_path / "ner-out" / "serving.json"))["output"].startswith("logits [batch, length")
    reader = make_run(tmp_path / "qa", "squad", 2, None, max_seq_len=16, head="span", results={"squad_version": 1})
    assert cli(["export", "--model", str(reader), "--output", str(tmp_path / "qa-out"), "--format", format]) == 0
    check_artifact(reader, tmp_path / "qa-out", texts, pairs=True)


def test_an_artifact_that_disagrees_is_never_written(tmp_path, monkeypatch):
    from kbert import serving

    if BACKEND not in EXPORTED_BY["tf_saved_model"]:
        pytest.skip(f"{BACKEND} exports no tf_saved_model")
    run = make_run(tmp_path / "sst2", "SST-2", 2, ("0", "1"))
    real = serving.run_artifact
    monkeypatch.setattr(serving, "run_artifact", lambda d, arrays: real(d, arrays) + 1e-3)
    with pytest.raises(DataError, match="differ from the Keras model's"):
        serving.export_run(run, tmp_path / "out", "tf_saved_model")
    assert not os.path.exists(tmp_path / "out") and os.listdir(tmp_path) == ["sst2"]
    with pytest.raises(ConfigError, match="--format"):
        serving.export_run(run, tmp_path / "out", "torchscript")


# ---------------------------------------------------------------- destinations

needs_export = pytest.mark.skipif(BACKEND not in EXPORTED_BY["onnx"], reason=f"{BACKEND} exports nothing")


def tree(path):
    """{relative path: bytes} of every file under `path`: what a refusal must leave alone."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            out[os.path.relpath(full, path)] = open(full, "rb").read()
    return out


@needs_export
@pytest.mark.parametrize("where", ["run", "parent", "inside", "symlink to run", "symlink to parent"])
def test_export_never_writes_over_or_into_its_own_run(tmp_path, capsys, where):
    (tmp_path / "runs").mkdir()
    run = make_run(tmp_path / "runs" / "sst2", "SST-2", 2, ("0", "1"))
    before = tree(tmp_path)
    output = {"run": run, "parent": run.parent, "inside": run / "serve"}.get(where)
    if output is None:
        output = tmp_path / "link"
        os.symlink(run if where == "symlink to run" else run.parent, output)
        before = tree(tmp_path)
    code = cli(["export", "--model", str(run), "--output", str(output), "--format", "onnx", "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "--output" in err and err.count("\n") == 1, err
    assert tree(tmp_path) == before  # the run whole, nothing added beside or inside it
    runs.load_model(run, verify=False)


@needs_export
@pytest.mark.only_backend("jax")  # the destination's files; each backend's export is tested above
def test_export_replaces_only_an_earlier_export(tmp_path, capsys):
    run = make_run(tmp_path / "sst2", "SST-2", 2, ("0", "1"))
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "notes.txt").write_text("mine too")
    before = tree(tmp_path)
    for target in ("afile", "adir"):
        assert cli(["export", "--model", str(run), "--output", str(tmp_path / target), "--format", "onnx",
                    "--overwrite"]) == 2
        assert "not a directory kbert wrote" in capsys.readouterr().err
    # The audit's stray: an overwrite of a file once left .afile.old behind.
    assert tree(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["adir", "afile", "sst2"]
    serve = tmp_path / "serve"
    for _ in range(2):  # an earlier export is replaced, with nothing left beside it
        assert cli(["export", "--model", str(run), "--output", str(serve), "--format", "onnx", "--overwrite"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["adir", "afile", "serve", "sst2"]
    assert json.load(open(serve / "serving.json"))["format"] == "onnx"


@needs_export
@pytest.mark.parametrize("output", ["/sys/kernel/kbert-export", "/proc/kbert-export", "FILE/child"])
def test_an_unwritable_destination_is_one_clear_error(tmp_path, capsys, output):
    run = make_run(tmp_path / "sst2", "SST-2", 2, ("0", "1"))
    (tmp_path / "FILE").write_text("a file, not a directory")
    output = output.replace("FILE", str(tmp_path / "FILE"))
    assert cli(["export", "--model", str(run), "--output", output, "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "cannot write there" in err and err.count("\n") == 1, err


def test_an_artifact_its_runtime_cannot_run_is_refused(tmp_path):
    """JAX 0.10 writes erf (the exact gelu of Hugging Face's checkpoints,
    MiniLM's among them) as StableHLO that TensorFlow 2.21 cannot read: the
    export must say so, not raise TensorFlow's InvalidArgumentError.  On
    TensorFlow the same run exports, and agrees with Keras."""
    from kbert import serving

    if BACKEND not in EXPORTED_BY["tf_saved_model"]:
        pytest.skip(f"{BACKEND} exports no tf_saved_model")
    directory = tmp_path / "gelu"
    directory.mkdir()
    keras.utils.set_random_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32, gelu_approximate=False)
    runs.save_model(directory, BertModel(config, num_labels=2), "teacher")
    runs.write_vocab(directory, VOCAB)
    runs.write_run(directory, runs.RunRecord(kind="teacher", status="complete", options={}, task="SST-2",
                                             labels=("0", "1"), num_labels=2, max_seq_len=12))
    try:
        manifest = serving.export_run(directory, tmp_path / "out", "tf_saved_model")
    except DataError as e:
        assert BACKEND == "jax" and "StableHLO" in str(e) and "KERAS_BACKEND=tensorflow" in str(e), e
        assert sorted(os.listdir(tmp_path)) == ["gelu"]
    else:
        assert manifest["max_abs_difference"] <= serving.TOLERANCE


@pytest.mark.parametrize("change", [{"artifact": "../outside/model.onnx"}, {"format": "pickle"}, {"format": None},
                                    {"artifact": "model.onnx"}, "no manifest", "no artifact"])
def test_run_artifact_reads_only_what_export_wrote(tmp_path, change):
    from kbert.serving import MANIFEST, run_artifact

    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "model.onnx").write_bytes(b"not read")
    served = tmp_path / "served"
    (served / "saved_model").mkdir(parents=True)
    manifest = {"format": "tf_saved_model", "artifact": "saved_model"}
    if change == "no artifact":
        os.rmdir(served / "saved_model")
    elif isinstance(change, dict):
        manifest.update(change)
    if change != "no manifest":
        (served / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="serving.json|no such|artifact"):
        run_artifact(served, [np.zeros((1, 4), np.int32)])
