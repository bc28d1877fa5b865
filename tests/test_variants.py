"""kbert.variants: a built model made into its default, xla or int8 variant, in place."""

import keras
import numpy as np
import pytest

from kbert.config import BertConfig
from kbert.errors import ConfigError
from kbert.model import BertModel
from kbert.variants import apply_variant

V, T = 50, 10
BACKEND = keras.backend.backend()


def make_model(seed=0):
    """A tiny classifier; the same seed gives the same weights."""
    keras.utils.set_random_seed(seed)
    config = BertConfig(vocab_size=V, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    return BertModel(config, num_labels=2)


def make_inputs(rng, n=8):
    """Right-padded token ids of lengths 2..T, one segment."""
    ids = np.zeros((n, T), np.int32)
    for i, length in enumerate(rng.integers(2, T + 1, n)):
        ids[i, :length] = rng.integers(1, V, length)
    return [ids, np.zeros_like(ids)]


def logits(model, inputs):
    return np.asarray(model.predict_on_batch(inputs))


def test_default_leaves_the_model_unchanged(rng):
    model, inputs = make_model(), make_inputs(rng)
    before = [(v.path, np.array(v.numpy())) for v in model.weights]
    y = logits(model, inputs)
    apply_variant(model, "default")
    after = [(v.path, v.numpy()) for v in model.weights]
    assert [path for path, _ in after] == [path for path, _ in before]
    for (_, old), (_, new) in zip(before, after):
        assert new.dtype == old.dtype
        np.testing.assert_array_equal(new, old)
    np.testing.assert_array_equal(logits(model, inputs), y)


def test_int8_logits_are_close_to_the_float_model(rng):
    inputs = make_inputs(rng, n=32)
    y_float = logits(make_model(), inputs)
    quantized = make_model()
    apply_variant(quantized, "int8")
    assert any("int8" in str(v.dtype) for v in quantized.weights), "no int8 weight: not quantized"
    y_int8 = logits(quantized, inputs)
    assert not np.array_equal(y_int8, y_float)
    # Per-channel int8 weights: logits within a few percent of their spread.
    np.testing.assert_allclose(y_int8, y_float, atol=0.05 * np.abs(y_float).max() + 1e-3)


def test_xla_is_tensorflows_jit_compile_only(rng):
    model, inputs = make_model(), make_inputs(rng)
    y = logits(model, inputs)  # traced before the switch: the variant must still take effect
    if BACKEND != "tensorflow":
        with pytest.raises(ConfigError, match="TensorFlow's jit_compile"):
            apply_variant(model, "xla")
        return
    apply_variant(model, "xla")
    assert model.jit_compile is True and model.predict_function is None
    np.testing.assert_allclose(logits(model, inputs), y, rtol=1e-4, atol=1e-5)


def test_an_unknown_variant_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown variant 'fp8': choose from default, xla, int8"):
        apply_variant(make_model(), "fp8")
