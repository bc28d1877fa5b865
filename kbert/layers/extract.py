"""`Extract`: one position of the sequence (the `[CLS]` token for the pooler)."""

import keras


@keras.saving.register_keras_serializable(package="kbert")
class Extract(keras.layers.Layer):
    """The vector at one position of each sequence.

    `BertModel` takes the `[CLS]` vector (position 0) with it and feeds it
    to the pooler (`NSP-Dense`).  The output is one vector per example, so
    the sequence's padding mask stops here.

    Call arguments:
        inputs: a sequence `[B, T, H]`.

    Returns `[B, H]`.

    Args:
        index: the position to take, counted from 0 (negative counts from
            the end). Defaults to 0, the `[CLS]` token.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import Extract

    hidden = np.arange(2 * 5 * 8, dtype="float32").reshape(2, 5, 8)  # [B, T, H]
    first = Extract()(hidden)  # [B, H], position 0
    last = Extract(index=-1)(hidden)  # [B, H], position T - 1
    ```
    """

    def __init__(self, index=0, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, inputs):
        # [B, T, D] -> [B, D]
        return inputs[:, self.index]

    def compute_mask(self, inputs, mask=None):
        return None  # one position: the sequence's padding mask ends here

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(index=self.index)
        return config
