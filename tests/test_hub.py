"""`kbert.to_keras_hub`: keras-hub's BERT carrying kbert's
weights gives the same outputs, within 1e-5, on every backend."""

import keras
import numpy as np
import pytest

import kbert
from kbert.config import BertConfig
from kbert.errors import ConfigError
from kbert.model import BertModel

import needs

keras_hub = needs.module("keras_hub")

CONFIG = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=24, max_position_embeddings=20, hidden_act="gelu")


def inputs(rng):
    ids = rng.integers(5, 40, size=(3, 12)).astype("int32")
    ids[1, 7:] = 0  # padded
    segments = np.zeros_like(ids)
    segments[2, 6:] = 1
    return ids, segments


def randomized(model, rng):
    """Every weight drawn afresh (initial LayerNorm/bias values would hide a swapped slot)."""
    for v in model.weights:
        v.assign(rng.normal(size=v.shape).astype("float32") * 0.3 + (1.0 if v.path.endswith("gamma") else 0.0))
    return model


def test_classifier_and_backbone_match(rng):
    ids, segments = inputs(rng)
    hub_inputs = {"token_ids": ids, "segment_ids": segments, "padding_mask": (ids != 0).astype("int32")}

    classifier = randomized(BertModel(CONFIG, num_labels=3), rng)
    converted = kbert.to_keras_hub(classifier)
    assert isinstance(converted, keras_hub.models.BertTextClassifier)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(converted(hub_inputs)),
                               keras.ops.convert_to_numpy(classifier([ids, segments])), atol=1e-5)

    sequence = randomized(BertModel(CONFIG, with_pooler=True), rng)
    backbone = kbert.to_keras_hub(sequence)
    assert isinstance(backbone, keras_hub.models.BertBackbone)
    out = backbone(hub_inputs)
    ours, pooled = (keras.ops.convert_to_numpy(t) for t in sequence([ids, segments]))
    real = ids != 0  # keras-hub and kbert differ only where a padded query attends
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["sequence_output"])[real], ours[real], atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["pooled_output"]), pooled, atol=1e-5)


def test_what_keras_hub_cannot_hold_is_refused():
    with pytest.raises(ConfigError, match="tanh approximation"):
        kbert.to_keras_hub(BertModel(BertConfig(**dict(CONFIG.to_dict(), gelu_approximate=False))))
    with pytest.raises(ConfigError, match="task embedding"):
        kbert.to_keras_hub(BertModel(CONFIG, task_num=2))
    with pytest.raises(ConfigError, match="BertModel"):
        kbert.to_keras_hub(keras.Sequential([keras.layers.Dense(2)]))


def test_a_model_of_several_encoder_outputs_is_refused(rng):
    """Defect 9: an output_layer_num=2 model became a backbone whose
    sequence_output was the last encoder's alone, half as wide, with no
    word.  A sequence model must output the last encoder alone; a
    classifier reads the pooled last encoder whatever output_layer_num says."""
    for layers in (2, [-1, -2], [-2], [0]):
        with pytest.raises(ConfigError, match=r"one sequence_output.*output_layer_num=.*output_layer_num=1"):
            kbert.to_keras_hub(BertModel(CONFIG, output_layer_num=layers))
    ids, segments = inputs(rng)
    hub_inputs = {"token_ids": ids, "segment_ids": segments, "padding_mask": (ids != 0).astype("int32")}
    last = randomized(BertModel(CONFIG, output_layer_num=[-1]), rng)
    out = keras.ops.convert_to_numpy(kbert.to_keras_hub(last)(hub_inputs)["sequence_output"])
    real = ids != 0
    np.testing.assert_allclose(out[real], keras.ops.convert_to_numpy(last([ids, segments]))[real], atol=1e-5)
    classifier = randomized(BertModel(CONFIG, num_labels=2, output_layer_num=2), rng)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kbert.to_keras_hub(classifier)(hub_inputs)),
                               keras.ops.convert_to_numpy(classifier([ids, segments])), atol=1e-5)
