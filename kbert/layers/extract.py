"""`Extract`: one position of the sequence (the `[CLS]` token for the pooler)."""

import keras


@keras.saving.register_keras_serializable(package="kbert")
class Extract(keras.layers.Layer):
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
