"""A shared check for every kbert layer and model (keras-hub's test anatomy):
config round trip, `.keras` save/reload with equal outputs, output shapes on
symbolic and eager calls, and one `fit` step that changes the weights."""

import os
import tempfile

import keras
import numpy as np


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def run_layer_test(layer_cls, init_kwargs, inputs, expected_output_shape, call_kwargs=None):
    """`inputs`: a NumPy array or a list of them (multi-input layers).

    `expected_output_shape`: a shape tuple, or a list of them.
    """
    call_kwargs = call_kwargs or {}
    layer = layer_cls(**init_kwargs)

    # Config round trip: get_config holds exactly what __init__ needs.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config

    # Symbolic call.
    multi = isinstance(inputs, list)
    symbolic = [keras.Input(shape=a.shape[1:], batch_size=a.shape[0], dtype=str(a.dtype)) for a in _as_list(inputs)]
    sym_in = symbolic if multi else symbolic[0]
    sym_out = layer(sym_in, **call_kwargs)
    expected = expected_output_shape if isinstance(expected_output_shape, list) else [expected_output_shape]
    assert [tuple(o.shape) for o in _as_list(sym_out)] == [tuple(s) for s in expected]

    # Eager call.
    eager_out = layer(inputs if multi else inputs, **call_kwargs)
    assert [tuple(keras.ops.shape(o)) for o in _as_list(eager_out)] == [tuple(s) for s in expected]

    # .keras round trip inside a model.
    model = keras.Model(sym_in, sym_out)
    reference = [keras.ops.convert_to_numpy(o) for o in _as_list(model(inputs))]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    again = [keras.ops.convert_to_numpy(o) for o in _as_list(reloaded(inputs))]
    for a, b in zip(reference, again):
        np.testing.assert_allclose(a, b, atol=1e-6)

    # One fit step on the first float output moves the trainable weights.
    float_outputs = [o for o in _as_list(sym_out) if "float" in str(o.dtype)]
    if layer.trainable_weights and float_outputs:
        head = keras.Model(sym_in, float_outputs[0])
        head.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        before = [w.numpy().copy() for w in layer.trainable_weights]
        target = np.ones(head.output.shape, dtype="float32")
        head.fit(inputs, target, batch_size=target.shape[0], epochs=1, verbose=0)
        after = [w.numpy() for w in layer.trainable_weights]
        assert any(not np.allclose(a, b) for a, b in zip(before, after)), "fit changed no weight"
    return layer
