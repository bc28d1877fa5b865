"""kbert against keras-bert itself, built from the same checkpoints.

keras-bert runs on tf-keras in a subprocess (it cannot share a process with
Keras 3).  Every same-named layer must agree within 1e-5.  keras-bert's
LayerNormalization uses epsilon 1e-14 where the original (and kbert) use
1e-12: with the unit-scale activations of these checkpoints the difference
is ~1e-12 relative, far inside 1e-5, so the tolerance stays 1e-5.
"""

import os

import keras
import numpy as np

from kbert import load_checkpoint

import needs
from original_checkpoint import random_bert_weights, write_checkpoint
from reference_cache import run_reference
from test_case import as_list

needs.module("keras_bert")
needs.module("tf_keras")


def run_keras_bert(directory, prefix, tokens, segments, masked, names, tmp_path):
    inputs = tmp_path / "inputs.npz"
    out = tmp_path / "keras_bert.npz"
    np.savez(inputs, tokens=tokens, segments=segments, masked=masked)
    run_reference([os.path.join(directory, "bert_config.json"), prefix, inputs, out, *names],
                  inputs=[directory, inputs], words=[os.path.basename(prefix), *names],
                  out_dir=tmp_path, outputs=[out.name])
    return dict(np.load(out))


def layer_names(num_layers):
    return ["Embedding-Norm", "MLM-Sim", "NSP"] + [
        f"Encoder-{n}-{part}-Norm"
        for n in range(1, num_layers + 1)
        for part in ("MultiHeadSelfAttention", "FeedForward")
    ]


def compare(directory, tokens, segments, masked, num_layers, tmp_path):
    names = layer_names(num_layers)
    prefix = os.path.join(directory, "bert_model.ckpt")
    theirs = run_keras_bert(str(directory), prefix, tokens, segments, masked, names, tmp_path)
    model = load_checkpoint(directory, training=True, seq_len=tokens.shape[1])
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    ours = dict(zip(names, (keras.ops.convert_to_numpy(o) for o in as_list(probe([tokens, segments, masked])))))
    for name in names:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-5, rtol=0, err_msg=name)


def test_shared_fixture_matches_keras_bert(fixture_checkpoint, tmp_path):
    tokens = np.array([[2, 5, 6, 7, 8, 3, 9, 10, 3, 0, 0, 0], [2, 11, 12, 13, 14, 3, 0, 0, 0, 0, 0, 0]], "int32")
    segments = np.array([[0] * 6 + [1] * 3 + [0] * 3, [0] * 12], "int32")
    masked = (tokens > 4).astype("int32")
    compare(fixture_checkpoint, tokens, segments, masked, 2, tmp_path)


def test_odd_sizes_match_keras_bert(tmp_path):
    config = dict(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=24, type_vocab_size=2,
                  hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                  initializer_range=0.02)
    rng = np.random.default_rng(3)
    directory = write_checkpoint(tmp_path / "ckpt", config, random_bert_weights(config, rng, heads=("pretraining",)))
    tokens = rng.integers(5, 99, size=(3, 16)).astype("int32")
    tokens[1, 9:] = 0
    segments = np.zeros_like(tokens)
    segments[2, 7:] = 1
    masked = (rng.random(tokens.shape) < 0.3).astype("int32")
    compare(directory, tokens, segments, masked, 3, tmp_path)
