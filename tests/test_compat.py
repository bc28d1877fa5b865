"""The Keras internals that `kbert.compat` relies on still exist and mean
what it assumes; a Keras release that changes them fails here, by name."""

import keras
import numpy as np
import pytest

from kbert import compat

BACKEND = keras.backend.backend()


def _fitted_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
    return model


def test_variables_keep_their_value_in_the_attribute_compat_reads():
    model = _fitted_model()
    for variable in model.variables:
        for name in compat.VARIABLE_ATTRIBUTES:
            assert hasattr(variable, name), f"keras {keras.__version__}: Variable.{name} is gone (kbert.compat)"
        value = keras.ops.convert_to_numpy(variable._value)
        np.testing.assert_array_equal(value, keras.ops.convert_to_numpy(variable))


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX trainer's state is JAX's")
def test_the_jax_trainer_state_compat_reads():
    model = _fitted_model()
    for name in compat.JAX_TRAINER_ATTRIBUTES:
        assert name in vars(model), f"keras {keras.__version__}: the JAX trainer no longer sets Model.{name}"
    for name in compat.JAX_TRAINER_METHODS:
        assert callable(getattr(model, name, None)), f"keras {keras.__version__}: Model.{name}() is gone"
    # After a finished loop the state is written back into the variables.
    assert model._jax_state_synced is True


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX trainer detaches values; the others do not")
def test_state_kept_on_error_reattaches_what_an_interrupted_loop_detached():
    model = _fitted_model()
    before = [keras.ops.convert_to_numpy(v) for v in model.variables]

    class Stop(Exception):
        pass

    class StopAfterOneBatch(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            raise Stop()

    with pytest.raises(Stop):
        with compat.state_kept_on_error(model):
            model.predict(np.ones((64, 3), np.float32), batch_size=8, verbose=0, callbacks=[StopAfterOneBatch()])
    # The model still runs, with the same weights.
    after = [keras.ops.convert_to_numpy(v) for v in model.variables]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.predict(np.ones((2, 3), np.float32), verbose=0).shape == (2, 2)
