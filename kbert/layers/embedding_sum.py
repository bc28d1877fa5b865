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
    """Element-wise sum of embeddings that keeps the masks some inputs have.

    `Embedding-Token-Segment` in `BertModel`: the token and segment
    embeddings added, as `keras.layers.Add` does.  Its output mask is the
    logical AND of the input masks that exist, ignoring inputs without one;
    Keras 3's `Add` would drop the mask entirely because the segment
    embedding has none.  So the padding mask of the token embedding reaches
    the encoders.

    Call arguments:
        inputs: a list of tensors of one shape, e.g. two `[B, T, H]`.

    Returns their sum, of the same shape.

    Args:
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import EmbeddingSum

    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(2, 5, 8)).astype("float32")  # [B, T, H]
    segments = rng.normal(size=(2, 5, 8)).astype("float32")  # [B, T, H]
    token_mask = np.array([[True, True, True, False, False], [True] * 5])  # [B, T], False = padding
    layer = EmbeddingSum()
    summed = layer([tokens, segments])  # [B, T, H]
    mask = layer.compute_mask([tokens, segments], [token_mask, None])  # [B, T], the token mask
    ```
    """

    def compute_mask(self, inputs, mask=None):
        present = [m for m in (mask or []) if m is not None]
        if not present:
            return None
        out = present[0]
        for m in present[1:]:
            out = ops.logical_and(out, m)
        return out
