"""`to_keras_hub`: a kbert `BertModel` as keras-hub's BERT, same weights.

keras-hub reads its own presets but not Google's original checkpoints (nor
kbert's fine-tuned runs); kbert reads both.  So:

    model = kbert.load_checkpoint("uncased_L-12_H-768_A-12/", num_labels=2)
    classifier = kbert.to_keras_hub(model)    # keras_hub.models.BertTextClassifier
    classifier.fit(...); classifier.save_to_preset("my_bert")

A model with a classifier head becomes a `BertTextClassifier` (dropout 0.1
on the pooled output, then the same `logits` layer, no preprocessor: it
takes keras-hub's `{"token_ids", "segment_ids", "padding_mask"}`); any
other model becomes a `BertBackbone`.  The weights are copied through
`kbert.weights.name_map.KERAS_HUB`.  keras-hub's BERT computes gelu's tanh
approximation, as Google's BERT does; a model with the exact form (the
`minilm-l6` preset, from Hugging Face) is refused rather than converted
into one that answers differently, and so is a sequence model whose output
is not the last encoder's alone (`output_layer_num` other than 1, as
keras-bert's): keras-hub's backbone has one `sequence_output`, the last
encoder's.  Needs `pip install 'kbert[hub]'`.
"""

import logging

import numpy as np

from kbert.errors import ConfigError
from kbert.model import encoder_indices
from kbert.weights import name_map

logger = logging.getLogger(__name__)


def _reshape(value, transform, heads):
    if transform == name_map.SPLIT_HEADS:  # [D, D] -> [D, N, D/N]; [D] -> [N, D/N]
        return value.reshape(value.shape[:-1] + (heads, value.shape[-1] // heads))
    if transform == name_map.MERGED_HEADS:  # [D, D] -> [N, D/N, D]
        return value.reshape((heads, value.shape[0] // heads, value.shape[1]))
    return value


def to_keras_hub(model):
    """keras-hub's `BertTextClassifier` (a model with `num_labels`) or
    `BertBackbone` (any other), carrying `model`'s weights.

    Raises:
        ConfigError: keras-hub is not installed, the model is not a kbert
            `BertModel`, its activation is not keras-hub's, it has a task
            embedding or a token or span head, or its sequence output is not the last encoder's
            alone (`output_layer_num`).
    """
    try:
        import keras_hub
    except ImportError:
        raise ConfigError("to_keras_hub needs keras-hub: pip install 'kbert[hub]'") from None
    config = getattr(model, "bert_config", None)
    if config is None:
        raise ConfigError(f"to_keras_hub takes a kbert BertModel, not {type(model).__name__}")
    if config.activation != "gelu":
        raise ConfigError(
            f"keras-hub's BertBackbone computes gelu's tanh approximation; this model's hidden_act is "
            f"{config.hidden_act!r} ({config.activation}), so keras-hub's outputs would differ from kbert's")
    if getattr(model, "task_num", None) is not None:
        raise ConfigError("keras-hub's BERT has no task embedding (the model was built with task_num)")
    if getattr(model, "head", "sequence") != "sequence":
        raise ConfigError(f"keras-hub has no BERT model with a {model.head} head (the model was built with "
                          f"head={model.head!r}); convert the same weights without it")
    depth = config.num_hidden_layers
    chosen = encoder_indices(model.output_layer_num, depth)
    # Only a sequence model outputs the chosen encoders (a classifier and the
    # pre-training heads read the last one): converted, its sequence_output
    # would silently be the last encoder's, narrower or another layer's.
    if model.num_labels is None and not model.training_heads and chosen != [depth - 1]:
        raise ConfigError(
            f"keras-hub's BertBackbone has one sequence_output, the last encoder's ({config.hidden_size} wide); this "
            f"model outputs encoders {[i + 1 for i in chosen]} of {depth} (output_layer_num="
            f"{model.output_layer_num!r}, {len(chosen) * config.hidden_size} wide). Convert the same weights built "
            "with output_layer_num=1 (the default)")
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size, dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings, num_segments=config.type_vocab_size,
    )
    target = backbone
    if model.num_labels is not None:
        target = keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=model.num_labels,
                                                     preprocessor=None, dropout=0.1)
    ours = {v.path: v for v in model.weights}
    theirs = {v.path: v for v in target.weights}
    missing = []
    for row in name_map.expand(name_map.KERAS_HUB, config.num_hidden_layers):
        if row.name not in theirs:
            continue  # the classifier's rows, for a backbone
        if row.slot not in ours:
            missing.append(row.slot)
            continue
        value = _reshape(np.asarray(ours[row.slot].numpy()), row.transform, config.num_attention_heads)
        if tuple(value.shape) != tuple(theirs[row.name].shape):
            raise ConfigError(f"{row.slot} {list(value.shape)} does not fit keras-hub's {row.name} "
                              f"{list(theirs[row.name].shape)}")
        theirs[row.name].assign(value)
    if missing:
        # A sequence model without the pooler: keras-hub's pooled output is then untrained.
        logger.warning("the model has no %s; keras-hub's %s keep their initial values",
                       ", ".join(missing), "pooled_dense weights")
    return target
