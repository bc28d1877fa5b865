"""A Keras callback that shows training progress in items (examples) per second."""

import time

import keras


class ItemsProgress(keras.callbacks.Callback):
    """tqdm bar per epoch counting examples (so its rate is items/s), with
    the running loss; records each epoch's examples/second in `rates`."""

    def __init__(self, batch_size, steps, desc="train"):
        super().__init__()
        self.batch_size, self.steps, self.desc = batch_size, steps, desc
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=self.steps * self.batch_size,
            desc=f"{self.desc} epoch {epoch + 1}",
            unit="ex",
            dynamic_ncols=True,
        )
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._bar.update(self.batch_size)
        if logs and "loss" in logs and batch % 10 == 0:
            self._bar.set_postfix(loss=f"{float(logs['loss']):.4f}")

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.rates.append(self.steps * self.batch_size / max(seconds, 1e-9))
        if logs:
            self._bar.set_postfix({k: f"{float(v):.4f}" for k, v in logs.items()})
        self._bar.close()
