"""Activations by their `bert_config.json` names, registered for serialization.

"gelu" is the tanh approximation because Google's modeling.py uses it and
the original checkpoints were trained with it; Hugging Face's "gelu" is the
exact erf form, which kbert calls "gelu_exact".
"""

import keras


@keras.saving.register_keras_serializable(package="kbert")
def gelu_tanh(x):
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="kbert")
def gelu_exact(x):
    # The erf form, as Hugging Face's; written out because TensorFlow's own
    # exact gelu uses erfc, which ONNX lacks (tf2onnx writes an invalid graph).
    return 0.5 * x * (1.0 + keras.ops.erf(x * 0.7071067811865476))


ACTIVATIONS = {
    "gelu": gelu_tanh,
    "gelu_exact": gelu_exact,
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
    "linear": keras.activations.linear,
}


def get(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]
