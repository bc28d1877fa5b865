"""The shared checks for every kbert layer and model, in the anatomy of
keras-hub's `TestCase.run_layer_test` / `run_model_test`:

- config: `get_config()` holds exactly the constructor's arguments (every
  named parameter, with the value given or its default, and nothing else
  besides what the Keras base class adds), it is JSON, and
  `from_config(get_config())` gives an equal config;
- shapes: on a symbolic call (`keras.Input`), from `compute_output_shape`,
  and on an eager call;
- `.keras`: save and reload give the same class, config and outputs;
- training: one `fit` step runs, gives a finite loss, moves every trainable
  weight and leaves every non-trainable one where it was.

Inputs are NumPy arrays: one array, a list of them (passed as one list, as
multi-input layers take them) or a dict (passed as keyword arguments, e.g.
`{"inputs": x, "attention_mask": m}`).  The first array gives the batch
size; an input whose first dimension differs (the tied `[V, D]` matrix
`MLM-Sim` reads) is not batched: symbolic calls get it with its own fixed
first dimension and the `fit` step holds it constant.

The fit step uses Adam, which moves every weight with a non-zero gradient by
about its learning rate, against random targets (`_targets`).
"""

import inspect
import json
import os
import tempfile

import keras
import numpy as np


def as_list(x):
    """One output or a list of outputs -> a list."""
    return list(x) if isinstance(x, (list, tuple)) else [x]


# ---------------------------------------------------------------- input structures


def _items(inputs):
    """[(key, array)]: key is None for one array, an index for a list, a name for a dict."""
    if isinstance(inputs, dict):
        return list(inputs.items())
    if isinstance(inputs, (list, tuple)):
        return list(enumerate(inputs))
    return [(None, inputs)]


def _rebuild(like, values):
    """The structure of `like` with `values[key]` in place of each array."""
    if isinstance(like, dict):
        return {k: values[k] for k in like}
    if isinstance(like, (list, tuple)):
        return [values[i] for i in range(len(like))]
    return values[None]


def _call(layer, inputs):
    return layer(**inputs) if isinstance(inputs, dict) else layer(inputs)


def _symbolic(inputs, open_batch=False):
    """keras.Input in the structure of `inputs`, with their shapes and dtypes;
    `open_batch` leaves the batch dimension of the batched inputs open."""
    batch = _items(inputs)[0][1].shape[0]

    def make(key, a):
        fixed = None if open_batch and a.shape[0] == batch else a.shape[0]
        name = key if isinstance(key, str) else None  # dict inputs are matched by name
        return keras.Input(shape=a.shape[1:], batch_size=fixed, dtype=str(a.dtype), name=name)

    return _rebuild(inputs, {k: make(k, a) for k, a in _items(inputs)})


def _shape_list(shapes):
    """A shape or a list of shapes -> a list of tuples."""
    if isinstance(shapes, list) and all(isinstance(s, (list, tuple)) for s in shapes):
        return [tuple(s) for s in shapes]
    return [tuple(shapes)]


def _shapes_of(outputs):
    return [tuple(int(d) if d is not None else None for d in keras.ops.shape(o)) for o in as_list(outputs)]


def _numpy(outputs):
    return [keras.ops.convert_to_numpy(o) for o in as_list(outputs)]


def _values(variables):
    # Through .value: NumPy's array protocol on a JAX-backed variable warns.
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


def _assert_same_outputs(expected, got, what):
    assert len(expected) == len(got), what
    for i, (a, b) in enumerate(zip(expected, got)):
        np.testing.assert_allclose(a, b, atol=1e-6, err_msg=f"{what}: output {i}")


# ---------------------------------------------------------------- the checks


def _json(value):
    return json.loads(json.dumps(value))


def _named_parameters(init):
    """{name: inspect.Parameter} of an __init__, without self, *args and **kwargs."""
    return {
        name: p
        for name, p in inspect.signature(init).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def check_config(instance, init_kwargs, base_keys):
    """get_config() is the constructor's arguments, exactly, and round-trips.

    `base_keys`: the keys the base class may add (the arguments its
    `__init__` takes through `**kwargs`: name, trainable, dtype, ...)."""
    cls = type(instance)
    config = instance.get_config()
    assert _json(config) == config, f"{cls.__name__}.get_config() is not plain JSON: {config}"
    owner = next(klass for klass in cls.__mro__ if "__init__" in vars(klass))
    params = {} if owner.__module__.split(".")[0] == "keras" else _named_parameters(cls.__init__)
    assert "name" in config and set(params) <= set(config) <= set(params) | set(base_keys), (
        f"{cls.__name__}.get_config() keys {sorted(config)} are not the constructor's "
        f"{sorted(params)} plus its name and at most the base class's {sorted(base_keys)}"
    )
    for name, p in params.items():
        given = init_kwargs[name] if name in init_kwargs else p.default
        assert config[name] == _json(given), f"{cls.__name__}.get_config()[{name!r}]: {config[name]!r} != {given!r}"
    for name in set(init_kwargs) - set(params):  # base-class arguments: name, trainable, ...
        assert config[name] == _json(init_kwargs[name]), f"{cls.__name__}.get_config()[{name!r}]"
    assert cls.from_config(config).get_config() == config
    return config


def _check_shapes(outputs, expected, what):
    got = _shapes_of(outputs)
    assert got == expected, f"{what} shapes {got} != expected {expected}"


def _targets(shape):
    """Regression targets for the fit step: random, not constant.  (mse
    against zeros on a LayerNorm output has no gradient below it: with
    gamma 1 and beta 0, |LayerNorm(x)|^2 is the same for every x.)"""
    return np.random.default_rng(0).standard_normal(shape).astype("float32")


def _check_fit(fit_model, x, y, loss, watched, what, unmoved=()):
    """One fit step: finite loss, every trainable weight moves (but those whose
    path ends with one of `unmoved`), the non-trainable ones stay."""
    trainable, frozen = watched.trainable_weights, watched.non_trainable_weights
    assert trainable, f"{what}: no trainable weight for the fit step to move"
    before, before_frozen = _values(trainable), _values(frozen)
    fit_model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    batch = len(next(iter(x.values())) if isinstance(x, dict) else as_list(x)[0])
    history = fit_model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0]), f"{what}: fit loss {history.history['loss']}"
    for v, a, b in zip(trainable, before, _values(trainable)):
        if not v.path.endswith(tuple(unmoved)):
            assert not np.allclose(a, b), f"{what}: fit did not move trainable weight {v.path}"
    for v, a, b in zip(frozen, before_frozen, _values(frozen)):
        np.testing.assert_array_equal(a, b, err_msg=f"{what}: fit moved non-trainable weight {v.path}")


class _FitProbe(keras.Model):
    """Trains one layer: the batched inputs come in by name (the keys of
    `_items`, as strings), the unbatched ones are held constant, and the
    output at `index` is the one the loss sees."""

    def __init__(self, layer, like, constants, index):
        super().__init__(name=f"fit_probe_{layer.name}")
        self.layer = layer
        self._like, self._constants, self._index = like, constants, index

    def call(self, x):
        values = dict(self._constants)
        values.update({key: x[str(key)] for key, _ in _items(self._like) if key not in self._constants})
        return as_list(_call(self.layer, _rebuild(self._like, values)))[self._index]


MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def _check_mixed_precision(layer_cls, init_kwargs, inputs, name):
    """Under a mixed policy the layer and every sublayer keep float32
    variables (integer ones, such as a lookup table, stay integers) and
    compute in the low precision: each float output comes
    out in it (a sublayer left on the global float32 policy would not)."""
    for policy in MIXED_POLICIES:
        layer = layer_cls(**init_kwargs, dtype=policy)
        outputs = as_list(_call(layer, inputs))
        low = keras.DTypePolicy(policy).compute_dtype
        assert layer.dtype_policy.name == policy, f"{name}: policy {layer.dtype_policy.name}"
        for variable in layer.weights:
            dtype = keras.backend.standardize_dtype(variable.dtype)
            assert dtype == "float32" or "int" in dtype, f"{name} under {policy}: {variable.path} is {dtype}"
        for sublayer in layer._flatten_layers(include_self=False):  # Keras 3's own walk over sublayers
            assert sublayer.dtype_policy.name == policy, f"{name} under {policy}: {sublayer.name} computes " \
                f"under {sublayer.dtype_policy.name}"
        dtypes = [keras.backend.standardize_dtype(o.dtype) for o in outputs]
        for dtype in dtypes:
            assert "float" not in dtype or dtype == low, f"{name} under {policy} outputs {dtype}, not {low}"


def _check_mixed_model(cls, init_kwargs, inputs, name):
    """A model built with `dtype=` a mixed policy: every layer on it,
    float32 variables, outputs in the low precision; the global policy
    untouched afterwards."""
    for policy in MIXED_POLICIES:
        model = cls(**init_kwargs, dtype=policy)
        assert keras.config.dtype_policy().name == "float32", f"{name} left the global policy changed"
        assert model.get_config()["dtype"] == policy
        low = keras.DTypePolicy(policy).compute_dtype
        for layer in model.layers:
            if not isinstance(layer, keras.layers.InputLayer):
                assert layer.dtype_policy.name == policy, f"{name}: {layer.name} computes under {layer.dtype_policy.name}"
        for variable in model.weights:
            dtype = keras.backend.standardize_dtype(variable.dtype)
            assert dtype == "float32" or "int" in dtype, f"{name} under {policy}: {variable.path} is {dtype}"
        for output in as_list(_call(model, inputs)):
            dtype = keras.backend.standardize_dtype(output.dtype)
            assert "float" not in dtype or dtype == low, f"{name} under {policy} outputs {dtype}, not {low}"


def run_layer_test(layer_cls, init_kwargs, inputs, expected_output_shape, *, unmoved=()):
    """Every generic check on `layer_cls(**init_kwargs)`; returns a layer built
    by an eager call on `inputs` and untouched by training, for the caller's
    numeric checks.

    `expected_output_shape`: a shape tuple, or a list of them (multi-output).
    `unmoved`: path suffixes of trainable weights whose gradient is zero by
    construction, which the fit step may leave where they are (attention's
    key bias: the softmax over keys ignores a constant added per query).
    """
    expected = _shape_list(expected_output_shape)
    name = layer_cls.__name__
    batch = _items(inputs)[0][1].shape[0]
    layer = layer_cls(**init_kwargs)
    check_config(layer, init_kwargs, _named_parameters(keras.layers.Layer.__init__))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is layer_cls and restored.get_config() == layer.get_config()

    # Symbolic call, and the shapes the layer declares.
    sym_in = _symbolic(inputs)
    sym_out = _call(layer, sym_in)
    _check_shapes(sym_out, expected, f"{name} symbolic")
    if type(layer).compute_output_shape is not keras.layers.Layer.compute_output_shape:
        if isinstance(inputs, dict):
            declared = layer.compute_output_shape(**{f"{k}_shape": a.shape for k, a in inputs.items()})
        else:
            declared = layer.compute_output_shape(_rebuild(inputs, {k: a.shape for k, a in _items(inputs)}))
        assert _shape_list(declared) == expected, f"{name}.compute_output_shape: {declared} != {expected}"

    # Eager call, on a fresh layer built from concrete shapes.
    fresh = layer_cls(**init_kwargs)
    _check_shapes(_call(fresh, inputs), expected, f"{name} eager")

    # .keras round trip inside a model.
    model = keras.Model(sym_in, sym_out)
    reference = _numpy(model(inputs))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    again = reloaded.get_layer(layer.name)
    assert type(again) is layer_cls and again.get_config() == layer.get_config()
    _assert_same_outputs(reference, _numpy(reloaded(inputs)), f"{name} reloaded from .keras")

    _check_mixed_precision(layer_cls, init_kwargs, inputs, name)

    # One fit step on the first batched float output.
    float_outputs = [
        i for i, o in enumerate(as_list(sym_out)) if "float" in str(o.dtype) and o.shape[0] == batch
    ]
    if layer.trainable_weights:
        assert float_outputs, f"{name} has trainable weights but no batched float output to train"
        index = float_outputs[0]
        constants = {k: a for k, a in _items(inputs) if a.shape[0] != batch}
        x = {str(k): a for k, a in _items(inputs) if k not in constants}
        y = _targets(expected[index])
        probe = _FitProbe(layer, inputs, constants, index)
        _check_fit(probe, x, y, "mse", layer, name, unmoved)
    return fresh


def run_model_test(cls, init_kwargs, inputs, expected_output_shape, *, fit_overrides=None, loss="mse",
                   targets=None, unmoved=()):
    """Every generic check on `cls(**init_kwargs)` (a kbert model whose
    `get_config()` is its constructor's arguments plus `name`); returns it.

    `fit_overrides`: constructor arguments changed for a second instance that
    takes the fit step (BertModel freezes its weights unless asked).
    `loss`, `targets`: for the fit step; by default mse against `_targets`.
    `unmoved`: as for `run_layer_test`.
    """
    expected = _shape_list(expected_output_shape)
    name = cls.__name__
    model = cls(**init_kwargs)
    config = check_config(model, init_kwargs, {"name"})

    # Symbolic: the model's own outputs (batch open), a call on keras.Input
    # with the batch fixed and open, and compute_output_shape.
    assert len(model.outputs) == len(expected), f"{name} has {len(model.outputs)} outputs"
    for declared, shape in zip([tuple(o.shape) for o in model.outputs], expected):
        assert declared[0] is None and len(declared) == len(shape), f"{name} outputs {declared} vs {shape}"
        assert all(d is None or d == s for d, s in zip(declared[1:], shape[1:])), f"{name} outputs {declared}"
    _check_shapes(model(_symbolic(inputs)), expected, f"{name} symbolic")
    open_batch = [(None,) + s[1:] for s in expected]
    _check_shapes(model(_symbolic(inputs, open_batch=True)), open_batch, f"{name} symbolic (batch open)")
    shapes = _rebuild(inputs, {k: a.shape for k, a in _items(inputs)})
    assert _shape_list(model.compute_output_shape(shapes)) == expected, f"{name}.compute_output_shape"

    # Eager.
    outputs = _call(model, inputs)
    _check_shapes(outputs, expected, f"{name} eager")

    # .keras round trip.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    assert type(reloaded) is cls and reloaded.get_config() == config
    _assert_same_outputs(_numpy(outputs), _numpy(_call(reloaded, inputs)), f"{name} reloaded from .keras")

    _check_mixed_model(cls, init_kwargs, inputs, name)

    # One fit step.
    fit_model = cls(**{**init_kwargs, **fit_overrides}) if fit_overrides else model
    if targets is None:
        targets = [_targets(s) for s in expected]
        targets = targets if len(targets) > 1 else targets[0]
    losses = [loss] * len(expected) if len(expected) > 1 else loss
    x = dict(inputs) if isinstance(inputs, dict) else inputs
    _check_fit(fit_model, x, targets, losses, fit_model, name, unmoved)
    return model
