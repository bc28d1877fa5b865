"""kbert's training losses, registered for `keras.saving.load_model`.

Shapes: B batch, T tokens, K classes.
"""

import keras


@keras.saving.register_keras_serializable(package="kbert")
class TokenCrossentropy(keras.losses.Loss):
    """Cross-entropy of a token classifier's logits ([B, T, K]) against tag
    ids ([B, T]), averaged over the labelled positions of the batch: a
    position labelled `IGNORED` (-1: padding, special tokens, a word's
    later pieces) adds nothing, as BERT's authors trained CoNLL-2003 and as
    transformers' `BertForTokenClassification` does (`ignore_index`).

    Each position's share is divided by the batch's labelled count inside
    the loss, which Keras then sums: a padding mask or a sample weight on
    top multiplies shares, never renormalises them.
    """

    def __init__(self, name="token_crossentropy", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum", **kwargs)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, "int32")
        labelled = keras.ops.cast(keras.ops.greater_equal(y_true, 0), y_pred.dtype)  # [B, T]
        losses = keras.ops.sparse_categorical_crossentropy(keras.ops.maximum(y_true, 0), y_pred, from_logits=True)
        return losses * labelled / keras.ops.maximum(keras.ops.sum(labelled), 1.0)
