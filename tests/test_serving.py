"""`kbert export` (issue 15): each artifact run in its own runtime, loaded
here with tf.saved_model / onnxruntime directly, against the Keras model on
real SST-2 dev sentences, padded to max_seq_len and unpadded."""

import json
import os

import keras
import numpy as np
import pytest

from kbert import runs
from kbert.cli import main as cli
from kbert.errors import ConfigError, DataError
from kbert.glue import get_processor
from kbert.serving import EXPORTED_BY
from kbert.tokenization import Tokenizer
from test_predict import VOCAB, make_run

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
        return np.asarray(loaded.serve(tensors if len(tensors) > 1 else tensors[0]))
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays)})[0]


def check_artifact(run_dir, out, texts, pairs=False):
    manifest = json.load(open(out / "serving.json"))
    record = runs.read_run(run_dir)
    assert manifest["labels"] == list(record.labels) and manifest["max_seq_len"] == record.max_seq_len
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
        expected = keras.ops.convert_to_numpy(model(batch if len(batch) > 1 else batch[0]))
        np.testing.assert_allclose(run_in_runtime(out, batch), expected, atol=1e-5)


@pytest.mark.parametrize("format", ["tf_saved_model", "onnx"])
def test_artifacts_agree_with_keras_in_their_runtime(format, glue_dir, tmp_path, capsys):
    if BACKEND not in EXPORTED_BY[format]:
        run = make_run(tmp_path / "t", "SST-2", 2, ("0", "1"))
        assert cli(["export", "--model", str(run), "--output", str(tmp_path / "x"), "--format", format]) == 2
        assert f"{format}: Keras exports it with KERAS_BACKEND=" in capsys.readouterr().err
        return
    pytest.importorskip("onnxruntime")
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
