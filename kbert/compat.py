"""The Keras internals kbert relies on, in one place.

kbert supports the Keras versions its suite runs on (setup.cfg bounds
them); `tests/test_compat.py` checks that each name below still exists
with the meaning used here, and fails naming it when a Keras release
changes it.

- JAX trainer: `Model._jax_state` (the state of the steps run in the
  current fit/predict/evaluate loop, not yet written back),
  `Model._jax_state_synced` (whether it has been), `Model.jax_state_sync()`
  (writes it back);
- `Variable._value`: a variable's backing array, which the JAX trainer
  detaches during a loop.
"""

import contextlib

import keras

# The internal names, for the test that watches them.
JAX_TRAINER_ATTRIBUTES = ("_jax_state", "_jax_state_synced")
JAX_TRAINER_METHODS = ("jax_state_sync",)
VARIABLE_ATTRIBUTES = ("_value",)


@contextlib.contextmanager
def state_kept_on_error(model):
    """JAX's trainer detaches every variable's value while predict, evaluate
    or fit loops and reattaches them at the end; an exception in between (a
    batch refused while tracing, an interrupt) would leave them detached, and
    every later call would fail with "'NoneType' object is not callable".
    Reattach the values of the last finished step, or those from before."""
    if keras.backend.backend() != "jax":
        yield
        return
    if getattr(model, "_jax_state_synced", True):
        model._jax_state = None  # already in the variables; never replay it later
    variables = list(model.variables) + list(getattr(model, "metrics_variables", []))
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        variables += list(optimizer.variables)
    saved = [(v, getattr(v, "_value", None)) for v in variables]
    try:
        yield
    except BaseException:
        if getattr(model, "_jax_state", None) is not None:  # steps finished in this call
            with contextlib.suppress(Exception):
                model.jax_state_sync()
        model._jax_state, model._jax_state_synced = None, True
        for variable, value in saved:
            deleted = getattr(value, "is_deleted", lambda: False)
            if getattr(variable, "_value", True) is None and value is not None and not deleted():
                variable._value = value
        raise
