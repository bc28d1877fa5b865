"""Run keras-bert (the original named-layer implementation, tf.keras) on a
checkpoint and save the outputs of its named layers.

Run in a subprocess: keras-bert needs `TF_KERAS=1 TF_USE_LEGACY_KERAS=1`
before TensorFlow is imported, which cannot share a process with Keras 3.

    python keras_bert_reference.py CONFIG CHECKPOINT INPUTS.npz OUT.npz NAME [NAME ...]
"""

import os
import sys

os.environ["TF_KERAS"] = "1"
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main(config, checkpoint, inputs_path, out_path, *names):
    from keras_bert import load_trained_model_from_checkpoint
    from tensorflow import keras

    data = np.load(inputs_path)
    tokens, segments, masked = data["tokens"], data["segments"], data["masked"]
    model = load_trained_model_from_checkpoint(
        config, checkpoint, training=True, trainable=False, seq_len=tokens.shape[1]
    )
    outputs = []
    for name in names:
        out = model.get_layer(name).output
        outputs.append(out[0] if isinstance(out, list) else out)
    probe = keras.Model(model.inputs, outputs)
    values = probe.predict([tokens, segments, masked], verbose=0)
    values = values if isinstance(values, list) else [values]
    np.savez(out_path, **dict(zip(names, values)))


if __name__ == "__main__":
    main(*sys.argv[1:])
