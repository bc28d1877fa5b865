"""`Student-Pair-Match`: the two sentences' vectors of a pair as one feature vector.

Shape legend: B = batch, D = a sentence vector's width.

Takes side a's and side b's vectors ([B, D] each) and returns [B, 4D] =
[a, b, a * b, |a - b|]: Tang et al. (2019)'s matching features for
sentence pairs (from InferSent, Conneau et al. 2017).  The product and the
absolute difference say how the two sides agree, which a layer reading
[a, b] alone would have to learn.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kbert")
class StudentPairMatch(keras.layers.Layer):
    """Matching features of a sentence pair's two vectors.

    `Student-Pair-Match` of `BiLSTMStudent` when it reads sentence pairs:
    from side a's and side b's vectors it makes `[a, b, a * b, |a - b|]`
    (Tang et al. 2019, after InferSent), so the layers above see directly
    where the two sentences agree.

    Call arguments:
        inputs: `[a, b]`, each `[B, D]`.

    Returns `[B, 4 * D]`.

    Args:
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Example:

    ```python
    import numpy as np
    from kbert.layers import StudentPairMatch

    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 8)).astype("float32")  # [B, D]
    b = rng.normal(size=(2, 8)).astype("float32")  # [B, D]
    features = StudentPairMatch()([a, b])  # [B, 4 * D]
    ```
    """

    def call(self, inputs):
        a, b = inputs
        return ops.concatenate([a, b, a * b, ops.abs(a - b)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 4 * input_shape[0][-1])
