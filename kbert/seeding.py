"""Training randomness that a resumed run replays exactly.

A resumed run is a new process: the global RNGs and each dropout layer's
seed state are not where the uninterrupted run had them (a saved model does
not keep the global ones, and on PyTorch Keras' dropout draws from torch's
global generator).  Reseeding both from (seed, index) at the start of every
epoch (or every saved chunk of steps) makes that stretch of training the
same whether or not the run stopped before it.
"""

import keras
import numpy as np


def reseed(model, seed, index):
    """Reset the global RNGs and every layer's dropout seed from (seed, index)."""
    rng = np.random.default_rng([seed, index])
    keras.utils.set_random_seed(int(rng.integers(2**31 - 1)))
    # Every SeedGenerator's state, nested ones too (the attention layer's
    # dropout), in the model's variable order.
    for variable in model.non_trainable_variables:
        if variable.path.endswith("seed_generator_state"):
            variable.assign(np.array([rng.integers(2**31 - 1), 0], dtype=variable.dtype))


class EpochSeed(keras.callbacks.Callback):
    """`reseed` at the start of each epoch of `fit`."""

    def __init__(self, seed):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        reseed(self.model, self.seed, epoch)
