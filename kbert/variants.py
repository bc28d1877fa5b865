"""Speed variants of a built Keras model: XLA compilation and int8 weights.

One place for what the benchmarks time and `kbert materials --int8` runs:

    default  the model as it is
    xla      TensorFlow's `jit_compile=True` for predict, evaluate and fit.
             Only the TensorFlow backend has the switch: JAX compiles every
             step with XLA already, and PyTorch's compiler is not XLA.
    int8     `model.quantize("int8")`: Keras' int8 kernels (per-channel
             weights, activations quantized on the fly) for every layer that
             has them; the others, kbert's `Embedding-Token` among them, stay
             float.

Both change speed, not the weights' meaning; whether accuracy holds is for
the caller to check (`benchmarks/teacher_variants.py`).
"""

import logging
import warnings

import keras

from kbert.errors import ConfigError

logger = logging.getLogger(__name__)

VARIANTS = ("default", "xla", "int8")


def apply_variant(model, variant):
    """Turn the built Keras `model` into `variant` (one of `VARIANTS`), in place.

    Raises:
        ConfigError: an unknown variant, "xla" on a backend other than
            TensorFlow, or a model whose layers Keras will not compile.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}: choose from {', '.join(VARIANTS)}")
    if variant == "xla":
        backend = keras.backend.backend()
        if backend != "tensorflow":
            raise ConfigError(
                f"variant 'xla' is TensorFlow's jit_compile; Keras runs on {backend} here "
                "(JAX always compiles with XLA, PyTorch has no XLA switch)"
            )
        model.jit_compile = True
        # Keras falls back to eager with a warning when a layer cannot be
        # compiled; a model labelled xla must not silently run without it.
        if not model.jit_compile:
            raise ConfigError(f"Keras will not XLA-compile model {model.name!r}: a layer does not support it")
        # A predict function traced before the switch would keep running;
        # quantize() drops the cached functions for the same reason.
        model.train_function = model.test_function = model.predict_function = None
    elif variant == "int8":
        # Keras warns once per layer without int8 kernels, which is expected
        # here (embeddings, LayerNorm): kept at debug level, not shown.
        with warnings.catch_warnings(record=True) as skipped:
            warnings.simplefilter("always")
            model.quantize("int8")
        for warning in skipped:
            logger.debug("int8: %s", warning.message)
