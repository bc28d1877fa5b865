"""Attention maps: `kbert.attention_probabilities(model, n)` reads
encoder n's softmax over keys, as keras-bert's attention-map demo does,
checked against the float64 NumPy forward pass of tests/reference.py."""

import json

import keras
import numpy as np
import pytest

from kbert import ConfigError, attention_probabilities, load_checkpoint

import reference
from original_checkpoint import read_checkpoint


def test_attention_probabilities_match_numpy(fixture_checkpoint):
    config = json.loads((fixture_checkpoint / "bert_config.json").read_text())
    ids = np.array([[2, 5, 7, 9, 3, 0], [2, 6, 3, 4, 8, 3]], np.int32)
    segments = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]], np.int32)
    expected = reference.forward(read_checkpoint(fixture_checkpoint), config, ids, segments)
    model = load_checkpoint(fixture_checkpoint)
    for n in range(1, config["num_hidden_layers"] + 1):
        maps = keras.ops.convert_to_numpy(attention_probabilities(model, n)([ids, segments]))
        assert maps.shape == (2, config["num_attention_heads"], 6, 6)
        np.testing.assert_allclose(maps, expected[f"Encoder-{n}-Attention-Probabilities"], atol=1e-5)
        np.testing.assert_allclose(maps.sum(axis=-1), 1.0, atol=1e-5)
    with pytest.raises(ConfigError, match="Encoder-9-MultiHeadSelfAttention"):
        attention_probabilities(model, 9)
