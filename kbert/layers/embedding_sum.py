"""`Embedding-Token-Segment`: the sum of the token and segment embeddings.

A Keras `Add` whose mask is the token embedding's padding mask.  Keras 3's
merge layers drop the mask as soon as one input has none (the segment
embedding has none: segment id 0 is real data), where tf.keras, and so
keras-bert, kept the masks that exist; this keeps them, so padding stays
masked from `Input-Token` to the encoder output.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class EmbeddingSum(keras.layers.Add):
    def compute_mask(self, inputs, mask=None):
        present = [m for m in (mask or []) if m is not None]
        if not present:
            return None
        out = present[0]
        for m in present[1:]:
            out = ops.logical_and(out, m)
        return out
