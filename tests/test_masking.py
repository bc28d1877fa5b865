"""Keras masks: padding is masked from `Input-Token` to the
encoder output, so a mask-aware layer stacked on kbert ignores it, as on
keras-bert.  A padded and an unpadded copy of the same sentences must give
the same answer, and masked average pooling must equal the mean over the
real positions of the sequence output, computed here."""

import keras
import numpy as np
import pytest

from kbert import load_checkpoint

IDS = np.array([[2, 5, 7, 9, 3, 0, 0, 0], [2, 6, 3, 0, 0, 0, 0, 0]], np.int32)
LENGTHS = (IDS != 0).sum(axis=1)


@pytest.fixture(scope="module")
def bert(fixture_checkpoint):
    return load_checkpoint(fixture_checkpoint, output_layer_num=2)


@pytest.mark.parametrize("stacked", [
    lambda: keras.layers.GlobalAveragePooling1D(),
    lambda: keras.layers.LSTM(3),
    lambda: keras.layers.Bidirectional(keras.layers.GRU(3)),
], ids=["GlobalAveragePooling1D", "LSTM", "Bidirectional-GRU"])
def test_stacked_layers_ignore_padding(bert, stacked):
    keras.utils.set_random_seed(0)
    model = keras.Model(bert.inputs, stacked()(bert.outputs[0]))
    for row, length in zip(IDS, LENGTHS):
        padded = keras.ops.convert_to_numpy(model([row[None], 0 * row[None]]))
        alone = keras.ops.convert_to_numpy(model([row[None, :length], 0 * row[None, :length]]))
        np.testing.assert_allclose(padded, alone, atol=1e-6)


def test_masked_pooling_is_the_mean_over_real_tokens(bert):
    pooled = keras.ops.convert_to_numpy(
        keras.Model(bert.inputs, keras.layers.GlobalAveragePooling1D()(bert.outputs[0]))([IDS, 0 * IDS]))
    sequence = keras.ops.convert_to_numpy(bert([IDS, 0 * IDS]))
    expected = np.stack([sequence[i, :n].mean(axis=0) for i, n in enumerate(LENGTHS)])
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    assert pooled.shape == (2, 2 * bert.bert_config.hidden_size)  # output_layer_num=2: both encoders, masked


def test_heads_end_the_mask(fixture_checkpoint):
    """The pooled [CLS] and the classifier's logits carry no sequence mask
    (a compiled loss must weigh whole examples)."""
    classifier = load_checkpoint(fixture_checkpoint, num_labels=2)
    out = classifier.outputs[0]
    assert getattr(out, "_keras_mask", None) is None
