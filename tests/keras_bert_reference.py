"""Run keras-bert (the original named-layer implementation, tf.keras) on a
checkpoint and save the outputs of its named layers.

Run in a subprocess: keras-bert needs `TF_KERAS=1 TF_USE_LEGACY_KERAS=1`
before TensorFlow is imported, which cannot share a process with Keras 3.

    python keras_bert_reference.py CONFIG CHECKPOINT INPUTS.npz OUT.npz NAME [NAME ...]

or, with `encoder` first, the encoder alone (`training=False`: no MLM or
NSP weights needed, inputs token and segment ids):

    python keras_bert_reference.py encoder CONFIG CHECKPOINT INPUTS.npz OUT.npz NAME [NAME ...]

or, for kbert.keras_bert (see `compat`):

    python keras_bert_reference.py compat SPEC.json OUT_DIR
"""

import json
import os
import sys

os.environ["TF_KERAS"] = "1"
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_bert_shared import adam_steps, character_tokenizer, tokenizer_outputs  # noqa: E402


def main(config, checkpoint, inputs_path, out_path, *names, training=True):
    from keras_bert import load_trained_model_from_checkpoint
    from tensorflow import keras

    data = np.load(inputs_path)
    tokens, segments = data["tokens"], data["segments"]
    model = load_trained_model_from_checkpoint(
        config, checkpoint, training=training, trainable=False, seq_len=tokens.shape[1]
    )
    outputs = []
    for name in names:
        out = model.get_layer(name).output
        outputs.append(out[0] if isinstance(out, list) else out)
    probe = keras.Model(model.inputs, outputs)
    inputs = [tokens, segments, data["masked"]] if training else [tokens, segments]
    values = probe.predict(inputs, verbose=0)
    values = values if isinstance(values, list) else [values]
    np.savez(out_path, **dict(zip(names, values)))


def compat(spec_path, out_dir):
    """keras-bert's own results for what `spec_path` (JSON) asks, written to
    `out_dir` as tokenizers.json and arrays.npz (see test_keras_bert_compat)."""
    import tensorflow.keras.optimizers as optimizers

    # keras-bert's AdamWarmup was written against TF 2's optimizer base class
    # (_set_hyper, slots), which tf-keras keeps as optimizers.legacy.
    optimizers.Optimizer = optimizers.legacy.Optimizer
    import keras_bert

    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    results = {}
    for name, vocab in spec["vocabs"].items():
        for cased in (False, True):
            tokenizer = keras_bert.Tokenizer(vocab, cased=cased)
            results[f"{name}/cased={cased}"] = tokenizer_outputs(
                tokenizer, spec["texts"], spec["pairs"], spec["max_len"]
            )
        subclass = character_tokenizer(keras_bert.Tokenizer)(vocab)
        results[f"{name}/subclass"] = tokenizer_outputs(subclass, spec["texts"], spec["pairs"], spec["max_len"])
    results["rematch"] = [
        keras_bert.Tokenizer.rematch(text, tokens, cased=cased) for text, tokens, cased in spec["rematch"]
    ]
    sizes = spec["get_model"]
    model = keras_bert.get_model(**sizes)
    results["get_model"] = {
        "params": {layer.name: layer.count_params() for layer in model.layers if layer.weights},
        "outputs": [list(o.shape) for o in model.outputs],
    }
    _, output = keras_bert.get_model(**sizes, training=False, output_layer_num=2)
    results["get_model"]["encoder_output"] = list(output.shape)
    model = keras_bert.get_model(**sizes, use_task_embed=True, task_num=spec["task"]["task_num"])
    results["get_model"]["task"] = {
        "params": {layer.name: layer.count_params() for layer in model.layers if layer.weights},
        "inputs": [t.name.split(":")[0] for t in model.inputs],
    }
    with open(os.path.join(out_dir, "tokenizers.json"), "w", encoding="utf-8") as f:
        json.dump(results, f)

    checkpoint = spec["checkpoint"]
    paths = keras_bert.get_checkpoint_paths(checkpoint)
    texts = [t if isinstance(t, str) else tuple(t) for t in spec["embedding_texts"]]
    arrays = {}
    for key, options in spec["extract"].items():
        for i, e in enumerate(keras_bert.extract_embeddings(checkpoint, texts, **options)):
            arrays[f"extract/{key}/{i}"] = e
    model = keras_bert.load_trained_model_from_checkpoint(
        paths.config, paths.checkpoint, seq_len=None
    )
    vocab = keras_bert.load_vocabulary(paths.vocab)
    built = keras_bert.extract_embeddings(model, texts, poolings=keras_bert.POOL_MAX, vocabs=vocab, batch_size=2)
    for i, e in enumerate(built):
        arrays[f"extract/built/{i}"] = e
    tokens, segments = np.array(spec["tokens"], "int32"), np.array(spec["segments"], "int32")
    for key, layers in spec["output_layers"].items():
        model = keras_bert.load_trained_model_from_checkpoint(
            paths.config, paths.checkpoint, output_layer_num=layers, seq_len=tokens.shape[1]
        )
        arrays[f"layers/{key}"] = model.predict([tokens, segments], verbose=0)
    task = spec["task"]
    model = keras_bert.load_trained_model_from_checkpoint(
        paths.config, paths.checkpoint, seq_len=tokens.shape[1], use_task_embed=True, task_num=task["task_num"]
    )
    model.get_layer("Embedding-Task").set_weights([np.array(task["embeddings"], "float32")])
    arrays["task"] = model.predict([tokens, segments, np.array(task["ids"], "float32")[:, None]], verbose=0)
    import tensorflow as tf

    optimizer = spec["optimizer"]
    for key, options in optimizer["cases"].items():
        arrays[f"optimizer/{key}"] = adam_steps(keras_bert.AdamWarmup(**options), optimizer,
                                                lambda value, name: tf.Variable(value, name=name), lambda v: v.numpy(),
                                                lambda array: tf.constant(array, tf.float32))
    np.savez(os.path.join(out_dir, "arrays.npz"), **arrays)


if __name__ == "__main__":
    if sys.argv[1] == "compat":
        compat(*sys.argv[2:])
    elif sys.argv[1] == "encoder":
        main(*sys.argv[2:], training=False)
    else:
        main(*sys.argv[1:])
