"""kbert against an independent NumPy float64 forward pass (tests/reference.py),
on checkpoints written in the original format by the tests themselves and on
the shared fixture written by Google's pretraining code."""

import keras
import numpy as np
import pytest

from kbert import BertModel, load_checkpoint

import reference
from original_checkpoint import random_bert_weights, read_checkpoint, write_checkpoint
from test_case import as_list, run_model_test

CONFIGS = {
    "odd": dict(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                intermediate_size=37, max_position_embeddings=24, type_vocab_size=2),
    "one-head": dict(vocab_size=30, hidden_size=12, num_hidden_layers=2, num_attention_heads=1,
                     intermediate_size=20, max_position_embeddings=16, type_vocab_size=3),
}
for c in CONFIGS.values():
    c.update(hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
             initializer_range=0.02)


def batch(config, rng, length=10):
    """A padded batch with single sentences and pairs (segment 1)."""
    v = config["vocab_size"]
    tokens = rng.integers(5, v, size=(4, length)).astype("int32")
    segments = np.zeros_like(tokens)
    tokens[:, 0] = 2
    tokens[1, 6:] = 0  # padding
    tokens[2, 3:] = 0  # short
    segments[3, 5:] = 1  # a pair
    segments[0, 4:] = config["type_vocab_size"] - 1
    segments[tokens == 0] = 0
    return tokens, segments


def outputs_of(model, names, inputs):
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    return dict(zip(names, (keras.ops.convert_to_numpy(o) for o in as_list(probe(inputs)))))


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def pretraining_checkpoint(request, tmp_path_factory):
    config = CONFIGS[request.param]
    rng = np.random.default_rng(7)
    weights = random_bert_weights(config, rng, heads=("pretraining",))
    directory = write_checkpoint(tmp_path_factory.mktemp(request.param), config, weights)
    return directory, config, weights


def test_every_named_layer_matches_numpy(pretraining_checkpoint, rng):
    directory, config, weights = pretraining_checkpoint
    model = load_checkpoint(directory, training=True)
    tokens, segments = batch(config, rng)
    masked = (tokens > 0).astype("int32")
    expected = reference.forward(weights, config, tokens, segments)
    names = ["Embedding-Norm", "MLM-Sim", "NSP"] + [
        f"Encoder-{n}-{part}-Norm"
        for n in range(1, config["num_hidden_layers"] + 1)
        for part in ("MultiHeadSelfAttention", "FeedForward")
    ]
    got = outputs_of(model, names, [tokens, segments, masked])
    for name in names:
        np.testing.assert_allclose(got[name], expected[name], atol=2e-5, rtol=1e-4, err_msg=name)
    assert model.load_report.unexpected == ()
    assert len(model.load_report.unused_expected) == 2 * len(weights) + 1  # Adam slots + global_step


def test_sequence_output_any_length(pretraining_checkpoint, rng):
    directory, config, weights = pretraining_checkpoint
    model = load_checkpoint(directory)
    assert [i.name for i in model.inputs] == ["Input-Token", "Input-Segment"]
    for length in (3, config["max_position_embeddings"]):
        tokens, segments = batch(config, rng, length)
        out = keras.ops.convert_to_numpy(model([tokens, segments]))
        expected = reference.forward(weights, config, tokens, segments)["sequence"]
        np.testing.assert_allclose(out, expected, atol=2e-5, rtol=1e-4)


def test_fixed_seq_len_and_output_layer_num(pretraining_checkpoint, rng):
    directory, config, weights = pretraining_checkpoint
    model = load_checkpoint(directory, seq_len=8, output_layer_num=2)
    assert model.inputs[0].shape == (None, 8)
    tokens, segments = batch(config, rng, 8)
    ref = reference.forward(weights, config, tokens, segments)
    last = config["num_hidden_layers"]
    expected = np.concatenate(
        [ref[f"Encoder-{last - 1}-FeedForward-Norm"], ref[f"Encoder-{last}-FeedForward-Norm"]], -1
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model([tokens, segments])), expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("scope", ["", "loss/", "bert/loss/"])
def test_fine_tuned_classifier_logits(tmp_path, rng, scope):
    config = CONFIGS["odd"]
    weights = random_bert_weights(config, rng, num_labels=3)
    head = {scope + k: weights.pop(k) for k in ("output_weights", "output_bias")}
    write_checkpoint(tmp_path, config, weights, extra=head)
    model = load_checkpoint(tmp_path, num_labels=3)
    assert model.load_report.initialized == ()
    tokens, segments = batch(config, rng)
    weights.update({k[len(scope):]: v for k, v in head.items()})
    expected = reference.forward(weights, config, tokens, segments)["logits"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model([tokens, segments])), expected, atol=2e-5, rtol=1e-4)


def test_classifier_initialised_like_run_classifier(tmp_path, rng):
    config = CONFIGS["odd"]
    write_checkpoint(tmp_path, config, random_bert_weights(config, rng))
    model = load_checkpoint(tmp_path, num_labels=2)
    assert model.load_report.initialized == ("Classifier-Dense/kernel", "Classifier-Dense/bias")
    kernel = model.get_layer("Classifier-Dense").kernel.numpy()
    assert np.all(np.abs(kernel) <= 2 * 0.02 + 1e-7)  # truncated normal, stddev 0.02
    assert 0.005 < kernel.std() < 0.03
    np.testing.assert_array_equal(model.get_layer("Classifier-Dense").bias.numpy(), 0)


def test_shared_fixture_against_numpy(fixture_checkpoint):
    """The checkpoint written by Google's run_pretraining.py itself."""
    import json

    config = json.loads((fixture_checkpoint / "bert_config.json").read_text())
    weights = {k: v for k, v in read_checkpoint(fixture_checkpoint).items()
               if "adam" not in k and k != "global_step"}
    model = load_checkpoint(fixture_checkpoint, training=True)
    tokens = np.array([[2, 5, 6, 7, 8, 3, 9, 10, 3, 0, 0], [2, 11, 12, 13, 14, 3, 0, 0, 0, 0, 0]], "int32")
    segments = np.array([[0] * 6 + [1] * 3 + [0, 0], [0] * 11], "int32")
    expected = reference.forward(weights, config, tokens, segments)
    got = outputs_of(model, ["Embedding-Norm", "Encoder-2-FeedForward-Norm", "MLM-Sim", "NSP"],
                     [tokens, segments, tokens * 0])
    for name, value in got.items():
        np.testing.assert_allclose(value, expected[name], atol=1e-5, err_msg=name)


def test_dropout_only_when_training(fixture_checkpoint):
    model = load_checkpoint(fixture_checkpoint)
    tokens = np.array([[2, 5, 6, 3]], "int32")
    a = keras.ops.convert_to_numpy(model([tokens, tokens * 0], training=False))
    b = keras.ops.convert_to_numpy(model([tokens, tokens * 0], training=False))
    c = keras.ops.convert_to_numpy(model([tokens, tokens * 0], training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_trainable_prefixes(fixture_checkpoint):
    model = load_checkpoint(fixture_checkpoint, training=True, trainable=["Encoder-2", "MLM"])
    trainable = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert trainable == {
        "Encoder-2-MultiHeadSelfAttention", "Encoder-2-MultiHeadSelfAttention-Norm",
        "Encoder-2-FeedForward", "Encoder-2-FeedForward-Norm", "MLM-Dense", "MLM-Norm", "MLM-Sim",
    }
    assert not load_checkpoint(fixture_checkpoint).trainable_weights  # keras-bert: trainable=training
    classifier = load_checkpoint(fixture_checkpoint, num_labels=2)  # a head exists to be trained
    assert len(classifier.trainable_weights) == len(classifier.weights)


@pytest.mark.parametrize("options, shapes", [
    (dict(), (4, 8, 12)),
    (dict(training=True), [(4, 8, 30), (4, 2)]),
    (dict(num_labels=3), (4, 3)),
    (dict(with_pooler=True), [(4, 8, 12), (4, 12)]),
    (dict(seq_len=8, output_layer_num=2), (4, 8, 24)),
], ids=["sequence", "training", "classifier", "pooler", "two-layers"])
def test_model_harness(options, shapes):
    """The shared model check: config, shapes, .keras reload, one fit step."""
    config = dict(CONFIGS["one-head"])
    tokens, segments = batch(config, np.random.default_rng(0), 8)
    inputs = [tokens, segments] + ([tokens * 0 + 1] if options.get("training") else [])
    # Without heads BertModel is frozen (keras-bert's default): fit a trainable twin.
    run_model_test(BertModel, {"bert_config": config, **options}, inputs, shapes,
                   fit_overrides={"trainable": True}, unmoved=["key/bias"])
