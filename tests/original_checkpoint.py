"""Write checkpoints in Google's original format, independently of kbert.

Variables are created with `tf.compat.v1.get_variable` under the original
names and saved with a `tf.compat.v1.train.Saver`, the way Google's
`run_pretraining.py` and `run_classifier.py` save them; Adam slots and
`global_step` are added like `optimization.py` creates them.
"""

import json
import os

import numpy as np

# A small config with every field set, shared by the loading, export and
# reliability tests: odd enough (2 heads of 4) to catch transposes.
TINY_CONFIG = dict(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=12, max_position_embeddings=16, type_vocab_size=2,
                   hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                   initializer_range=0.02)


def random_bert_weights(config, rng, *, heads=("pooler",), num_labels=None, scale=0.2):
    """`{original name: float32 array}` for a config (dict of bert_config fields)."""
    h, i, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    w = {}

    def put(name, *shape):
        w[name] = (rng.standard_normal(shape) * scale).astype(np.float32)

    put("bert/embeddings/word_embeddings", v, h)
    put("bert/embeddings/token_type_embeddings", config["type_vocab_size"], h)
    put("bert/embeddings/position_embeddings", config["max_position_embeddings"], h)
    for layer in range(config["num_hidden_layers"]):
        p = f"bert/encoder/layer_{layer}"
        for part in ("query", "key", "value"):
            put(f"{p}/attention/self/{part}/kernel", h, h)
            put(f"{p}/attention/self/{part}/bias", h)
        put(f"{p}/attention/output/dense/kernel", h, h)
        put(f"{p}/attention/output/dense/bias", h)
        put(f"{p}/intermediate/dense/kernel", h, i)
        put(f"{p}/intermediate/dense/bias", i)
        put(f"{p}/output/dense/kernel", i, h)
        put(f"{p}/output/dense/bias", h)
        for norm in (f"{p}/attention/output/LayerNorm", f"{p}/output/LayerNorm"):
            w[f"{norm}/gamma"] = (1 + rng.standard_normal(h) * 0.1).astype(np.float32)
            put(f"{norm}/beta", h)
    w["bert/embeddings/LayerNorm/gamma"] = (1 + rng.standard_normal(h) * 0.1).astype(np.float32)
    put("bert/embeddings/LayerNorm/beta", h)
    if "pooler" in heads or "pretraining" in heads:
        put("bert/pooler/dense/kernel", h, h)
        put("bert/pooler/dense/bias", h)
    if "pretraining" in heads:
        put("cls/predictions/transform/dense/kernel", h, h)
        put("cls/predictions/transform/dense/bias", h)
        w["cls/predictions/transform/LayerNorm/gamma"] = (1 + rng.standard_normal(h) * 0.1).astype(
            np.float32
        )
        put("cls/predictions/transform/LayerNorm/beta", h)
        put("cls/predictions/output_bias", v)
        put("cls/seq_relationship/output_weights", 2, h)
        put("cls/seq_relationship/output_bias", 2)
    if num_labels:
        put("output_weights", num_labels, h)
        put("output_bias", num_labels)
    return w


def write_checkpoint(directory, config, weights, *, adam=True, global_step=7, extra=None, vocab=None):
    """Save `weights` (plus Adam slots, global_step, `extra`) as `bert_model.ckpt`."""
    import tensorflow as tf

    os.makedirs(directory, exist_ok=True)
    tensors = dict(weights)
    if adam:
        for name, value in weights.items():
            tensors[f"{name}/adam_m"] = np.zeros_like(value)
            tensors[f"{name}/adam_v"] = np.full_like(value, 1e-3)
    tensors.update(extra or {})
    with tf.Graph().as_default():
        variables = [
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
            for name, value in sorted(tensors.items())
        ]
        if global_step is not None:
            step = tf.compat.v1.train.get_or_create_global_step()
            variables.append(step)
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            if global_step is not None:
                session.run(step.assign(global_step))
            saver.save(session, os.path.join(directory, "bert_model.ckpt"), write_meta_graph=False)
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        json.dump(config, f)
    tokens = vocab or ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
        f"w{k}" for k in range(config["vocab_size"] - 5)
    ]
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(tokens) + "\n")
    return directory


def read_checkpoint(directory):
    """`{name: array}` of every variable, read with TensorFlow alone."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(directory, "bert_model.ckpt"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
