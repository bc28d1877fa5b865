"""Every kbert layer through the shared layer check (`run_layer_test`; the
student's three are in test_student.py), plus each layer's numbers against a
NumPy computation written here."""

import keras
import numpy as np
import pytest

from kbert import layers

import reference
from test_case import run_layer_test

B, T, D, V = 2, 5, 8, 11


@pytest.fixture
def ids():
    return np.array([[2, 5, 6, 3, 0], [2, 7, 8, 9, 3]], dtype="int32")


@pytest.fixture
def hidden(rng):
    return rng.standard_normal((B, T, D)).astype("float32")


def test_token_embedding(ids):
    layer = run_layer_test(
        layers.TokenEmbedding, {"vocab_size": V, "hidden_size": D}, ids, [(B, T, D), (V, D)]
    )
    embedded, matrix = layer(ids)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(embedded), layer.embeddings.numpy()[ids])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(matrix), layer.embeddings.numpy())


def test_position_embedding(hidden):
    layer = run_layer_test(layers.PositionEmbedding, {"max_position_embeddings": 16}, hidden, (B, T, D))
    out = keras.ops.convert_to_numpy(layer(hidden))
    np.testing.assert_allclose(out, hidden + layer.embeddings.numpy()[:T][None], atol=1e-6)


def test_position_embedding_with_positions(hidden):
    # Packed rows: positions restart per example.
    positions = np.array([[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]], "int32")
    layer = run_layer_test(layers.PositionEmbedding, {"max_position_embeddings": 16},
                           {"inputs": hidden, "positions": positions}, (B, T, D))
    out = keras.ops.convert_to_numpy(layer(hidden, positions=positions))
    np.testing.assert_allclose(out, hidden + layer.embeddings.numpy()[positions], atol=1e-6)


def test_packing_mask():
    examples = np.array([[1, 1, 2, 2, 0], [1, 2, 2, 2, 3]], "int32")
    layer = run_layer_test(layers.PackingMask, {}, examples, (B, T, T))
    expected = (examples[:, :, None] == examples[:, None, :]) & (examples[:, None, :] != 0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(examples)), expected)
    assert not expected[0, 4].any() and expected[0, 0].tolist() == [True, True, False, False, False]


def test_packing_gather(hidden):
    cls = np.array([0, 3, 5, 7], "int32")  # flat indices row * T + offset
    layer = run_layer_test(layers.PackingGather, {}, {"inputs": hidden, "cls": cls}, (4, D))
    out = keras.ops.convert_to_numpy(layer(hidden, cls))
    np.testing.assert_array_equal(out, hidden.reshape(B * T, D)[cls])


def test_position_embedding_rejects_long_input():
    from kbert.errors import KbertError

    layer = layers.PositionEmbedding(4)
    with pytest.raises(KbertError, match="exceeds max_position_embeddings 4"):
        layer(np.zeros((1, 5, 2), "float32"))


def test_padding_mask(ids):
    layer = run_layer_test(layers.PaddingMask, {}, ids, (B, T))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(ids)), ids != 0)


def test_embedding_sum_keeps_the_token_mask(hidden):
    layer = run_layer_test(layers.EmbeddingSum, {}, [hidden, hidden], (B, T, D))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer([hidden, hidden])), 2 * hidden)
    padding = np.arange(T)[None].repeat(B, 0) < np.array([[3], [5]])
    # Keras 3's Add would drop the mask because the segment side has none.
    got = layer.compute_mask([hidden, hidden], [keras.ops.convert_to_tensor(padding), None])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), padding)
    assert layer.compute_mask([hidden, hidden], [None, None]) is None


def test_extract(hidden):
    layer = run_layer_test(layers.Extract, {"index": 0}, hidden, (B, D))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(hidden)), hidden[:, 0])


def test_span_split(rng):
    logits = rng.normal(size=(B, T, 2)).astype("float32")
    layer = run_layer_test(layers.SpanSplit, {}, logits, [(B, T), (B, T)])
    start, end = (keras.ops.convert_to_numpy(t) for t in layer(logits))
    np.testing.assert_array_equal(start, logits[..., 0])
    np.testing.assert_array_equal(end, logits[..., 1])
    padding = keras.ops.convert_to_tensor(np.arange(T)[None].repeat(B, 0) < np.array([[3], [5]]))
    assert layer.compute_mask(logits, padding) == [None, None]  # a span loss is per example, over positions


@pytest.mark.parametrize("activation", ["gelu", "gelu_exact", "relu"])
def test_feed_forward(hidden, activation):
    layer = run_layer_test(layers.FeedForward, {"intermediate_size": 13, "activation": activation}, hidden, (B, T, D))
    w = {v.path.split("/", 1)[1]: v.numpy().astype("float64") for v in layer.weights}
    inner = hidden @ w["intermediate/kernel"] + w["intermediate/bias"]
    if activation == "relu":
        inner = np.maximum(inner, 0)
    else:
        inner = reference.gelu(inner, approximate=activation == "gelu")
    expected = inner @ w["output/kernel"] + w["output/bias"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(hidden)), expected, atol=1e-5)


def test_multi_head_self_attention(hidden, ids):
    mask = ids != 0
    layer = run_layer_test(
        layers.MultiHeadSelfAttention,
        {"num_attention_heads": 2},
        {"inputs": hidden, "attention_mask": mask},
        (B, T, D),
        unmoved=["key/bias"],
    )
    w = {v.path.split("/", 1)[1]: v.numpy().astype("float64") for v in layer.weights}

    def split(x):  # [B, T, D] -> [B, N, T, H]
        return x.reshape(B, T, 2, D // 2).transpose(0, 2, 1, 3)

    q, k, v = (split(hidden @ w[f"{p}/kernel"] + w[f"{p}/bias"]) for p in ("query", "key", "value"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D // 2) + (1.0 - mask[:, None, None, :]) * -10000.0
    context = (reference.softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
    expected = context @ w["output/kernel"] + w["output/bias"]
    out = keras.ops.convert_to_numpy(layer(hidden, attention_mask=mask))
    np.testing.assert_allclose(out, expected, atol=1e-5)

    # A per-query mask [B, F, T] (packed rows): block-diagonal by example.
    examples = np.array([[1, 1, 2, 2, 0], [1, 1, 1, 2, 2]])
    block = (examples[:, :, None] == examples[:, None, :]) & (examples[:, None, :] != 0)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D // 2) + (1.0 - block[:, None]) * -10000.0
    context = (reference.softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
    expected = context @ w["output/kernel"] + w["output/bias"]
    out = keras.ops.convert_to_numpy(layer(hidden, attention_mask=block))
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_embedding_similarity(hidden, rng):
    matrix = rng.standard_normal((V, D)).astype("float32")
    # The matrix has no batch dimension: the harness holds it constant in `fit`.
    layer = run_layer_test(layers.EmbeddingSimilarity, {}, [hidden, matrix], (B, T, V))
    out = keras.ops.convert_to_numpy(layer([hidden, matrix]))
    expected = reference.softmax(hidden.astype("float64") @ matrix.T + layer.bias.numpy())
    np.testing.assert_allclose(out, expected, atol=1e-6)
    logits = keras.ops.convert_to_numpy(layer([hidden, matrix], logits=True))
    np.testing.assert_allclose(logits, hidden @ matrix.T + layer.bias.numpy(), atol=1e-5)


@pytest.mark.parametrize("mask_zero", [False, True])
def test_task_embedding(hidden, mask_zero):
    tasks = np.array([[2], [0]], "int32")
    layer = run_layer_test(layers.TaskEmbedding, {"input_dim": 3, "output_dim": D, "mask_zero": mask_zero},
                           [hidden, tasks], (B, T, D))
    table = layer.embeddings.numpy()
    rows = table[tasks[:, 0]][:, None] * (tasks != 0)[:, :, None] if mask_zero else table[tasks[:, 0]][:, None]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([hidden, tasks])), hidden + rows, atol=1e-6)
    padding = keras.ops.convert_to_tensor(np.arange(T)[None].repeat(B, 0) < 3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask([hidden, tasks], [padding, None])),
                                  keras.ops.convert_to_numpy(padding))


def test_masked_output(hidden, ids):
    layer = run_layer_test(layers.MaskedOutput, {}, [hidden, ids], (B, T, D))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer([hidden, ids])), hidden)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask([hidden, ids])), ids != 0)
