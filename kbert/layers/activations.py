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
    return keras.activations.gelu(x, approximate=False)


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
