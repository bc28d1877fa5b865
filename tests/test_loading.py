"""Strict loading: every failure is a kbert error naming the file, the variable
and both shapes; leftovers are classified in the load report."""

import json
import os

import numpy as np
import pytest

import kbert
import kbert.keras_bert
from kbert import (
    CheckpointError,
    CheckpointWarning,
    ConfigError,
    KbertError,
    checkpoint_mapping,
    load_checkpoint,
)

from original_checkpoint import TINY_CONFIG, random_bert_weights, write_checkpoint

CONFIG = TINY_CONFIG


@pytest.fixture
def weights(rng):
    return random_bert_weights(CONFIG, rng, heads=("pretraining",))


def test_fixture_layer_names(fixture_checkpoint):
    model = load_checkpoint(str(fixture_checkpoint), training=True)
    names = [layer.name for layer in model.layers]
    for expected in ["Input-Token", "Input-Segment", "Input-Masked", "Embedding-Token", "Embedding-Segment",
                     "Embedding-Position", "Embedding-Norm", "Encoder-1-MultiHeadSelfAttention",
                     "Encoder-1-MultiHeadSelfAttention-Norm", "Encoder-1-FeedForward",
                     "Encoder-1-FeedForward-Norm", "Encoder-2-FeedForward-Norm", "MLM-Dense", "MLM-Norm",
                     "MLM-Sim", "MLM", "NSP-Dense", "NSP"]:
        assert expected in names
    assert "Encoder-3-FeedForward" not in names
    report = model.load_report
    assert len(report.assigned) == 46 and report.unexpected == () and "global_step" in report.unused_expected


def test_prefix_with_explicit_config(fixture_checkpoint, tmp_path):
    prefix = str(fixture_checkpoint / "bert_model.ckpt")
    model = load_checkpoint(prefix, config=str(fixture_checkpoint / "bert_config.json"))
    assert model.output.shape == (None, None, 4)
    # kbert's one keras-bert loader is kbert.keras_bert's, with keras-bert's semantics.
    assert kbert.load_trained_model_from_checkpoint is kbert.keras_bert.load_trained_model_from_checkpoint
    alias = kbert.load_trained_model_from_checkpoint(str(fixture_checkpoint / "bert_config.json"), prefix)
    assert alias.inputs[0].shape == (None, 16)  # keras-bert fixes seq_len to max positions


def test_missing_variable_names_file_and_variable(tmp_path, weights):
    del weights["bert/encoder/layer_1/output/dense/kernel"]
    write_checkpoint(tmp_path, CONFIG, weights)
    with pytest.raises(CheckpointError, match=r"bert_model\.ckpt.*'bert/encoder/layer_1/output/dense/kernel'.*"
                       r"Encoder-2-FeedForward/output/kernel.*\[12, 8\]"):
        load_checkpoint(tmp_path)


def test_shape_disagreeing_with_config(tmp_path, weights):
    write_checkpoint(tmp_path, CONFIG, weights)
    (tmp_path / "bert_config.json").write_text(json.dumps({**CONFIG, "intermediate_size": 13}))
    with pytest.raises(CheckpointError, match=r"'bert/encoder/layer_0/intermediate/dense/kernel' has shape "
                       r"\[8, 12\] but Encoder-1-FeedForward/intermediate/kernel needs \[8, 13\]"):
        load_checkpoint(tmp_path)


def test_unexpected_variables_warn_and_are_reported(tmp_path, weights):
    extra = {"bert/encoder/layer_9/mystery": np.zeros(3, np.float32)}
    write_checkpoint(tmp_path, CONFIG, weights, extra=extra)
    with pytest.warns(CheckpointWarning, match="layer_9/mystery"):
        model = load_checkpoint(tmp_path)
    assert model.load_report.unexpected == ("bert/encoder/layer_9/mystery",)
    assert "cls/predictions/output_bias" in model.load_report.unused_heads
    assert "UNEXPECTED" in str(model.load_report)


def test_num_labels_disagreeing_with_checkpoint(tmp_path, rng):
    write_checkpoint(tmp_path, CONFIG, random_bert_weights(CONFIG, rng, num_labels=2))
    with pytest.raises(CheckpointError, match="num_labels=3 but the checkpoint's classifier has 2"):
        load_checkpoint(tmp_path, num_labels=3)


def test_classifier_under_two_scopes_is_ambiguous(tmp_path, rng):
    w = random_bert_weights(CONFIG, rng, num_labels=2)
    extra = {"loss/output_weights": w["output_weights"], "loss/output_bias": w["output_bias"]}
    write_checkpoint(tmp_path, CONFIG, w, extra=extra)
    with pytest.raises(CheckpointError, match="several scopes"):
        load_checkpoint(tmp_path, num_labels=2)


@pytest.mark.parametrize("damage", ["no_index", "no_data", "corrupt_data", "corrupt_index"])
def test_missing_or_corrupt_files(tmp_path, weights, damage):
    write_checkpoint(tmp_path, CONFIG, weights, adam=False)
    index, data = tmp_path / "bert_model.ckpt.index", tmp_path / "bert_model.ckpt.data-00000-of-00001"
    if damage == "no_index":
        index.unlink()
    elif damage == "no_data":
        data.unlink()
    elif damage == "corrupt_data":
        data.write_bytes(data.read_bytes()[:100])
    else:
        index.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="bert_model.ckpt"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("text, message", [
    ("{not json", "unreadable config"),
    ('{"hidden_size": 8}', "missing field"),
    (json.dumps({**CONFIG, "hidden_size": 9}), "not a multiple"),
    (json.dumps({**CONFIG, "hidden_act": "swish"}), "hidden_act"),
])
def test_bad_config(tmp_path, weights, text, message):
    write_checkpoint(tmp_path, CONFIG, weights)
    (tmp_path / "bert_config.json").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_checkpoint(tmp_path)
    assert "bert_config.json" in str(info.value)


def test_missing_config_and_directory(tmp_path, weights):
    write_checkpoint(tmp_path, CONFIG, weights)
    os.remove(tmp_path / "bert_config.json")
    with pytest.raises(KbertError, match="bert_config.json"):
        load_checkpoint(tmp_path / "bert_model.ckpt")
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        load_checkpoint(tmp_path / "nowhere")


def test_seq_len_above_max_positions(fixture_checkpoint):
    with pytest.raises(ConfigError, match="seq_len 17 is outside 1..max_position_embeddings \\(16\\)"):
        load_checkpoint(fixture_checkpoint, seq_len=17)


def test_pytorch_bin_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**CONFIG, "model_type": "bert"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(tmp_path)


def test_mapping_is_printable(fixture_checkpoint):
    report = checkpoint_mapping(fixture_checkpoint)
    lines = str(report).splitlines()
    assert "  cls/seq_relationship/output_weights -> NSP/kernel [4, 2]  (transpose)" in lines
    assert "  bert/encoder/layer_0/attention/self/query/kernel -> Encoder-1-MultiHeadSelfAttention/query/kernel [4, 4]" in lines


def test_checkpoint_read_once_per_tensor(fixture_checkpoint, monkeypatch):
    from kbert.weights import readers

    reads = []
    original = readers.OriginalCheckpoint.read
    monkeypatch.setattr(readers.OriginalCheckpoint, "read", lambda self, n: reads.append(n) or original(self, n))
    load_checkpoint(fixture_checkpoint, training=True)
    assert len(reads) == len(set(reads)) == 46


@pytest.mark.parametrize("policy, atol", [("mixed_bfloat16", 3e-2), ("mixed_float16", 5e-3), ("bfloat16", 3e-2)])
def test_a_checkpoint_loads_under_a_dtype_policy(fixture_checkpoint, policy, atol):
    import keras

    reference = load_checkpoint(fixture_checkpoint)
    model = load_checkpoint(fixture_checkpoint, dtype=policy)
    policy = keras.DTypePolicy(policy)
    assert {keras.backend.standardize_dtype(v.dtype) for v in model.weights} == {policy.variable_dtype}
    assert all(layer.dtype_policy.name == policy.name for layer in model.layers
               if not isinstance(layer, keras.layers.InputLayer))
    ids = np.array([[2, 5, 6, 7, 8, 3, 0, 0], [2, 9, 3, 0, 0, 0, 0, 0]])
    x = [ids, np.zeros_like(ids)]
    low = model.predict(x, verbose=0)
    assert keras.backend.standardize_dtype(low.dtype) == policy.compute_dtype
    # The same weights (rounded to the variable dtype), computed in the low precision.
    np.testing.assert_allclose(low.astype(np.float32), reference.predict(x, verbose=0), atol=atol, rtol=0)
    for ours, theirs in zip(model.weights, reference.weights, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ours).astype(np.float32),
                                   keras.ops.convert_to_numpy(theirs), rtol=1e-2, atol=1e-6)
