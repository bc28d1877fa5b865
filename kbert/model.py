"""`BertModel`: BERT as keras-bert's named layers, as one serializable Keras model.

The graph and its layer names follow keras-bert, so that code written
against `model.get_layer("Encoder-3-FeedForward-Norm")` keeps working:

    Input-Token, Input-Segment [, Input-Masked]
    Embedding-Token, Embedding-Segment, Embedding-Token-Segment,
    Embedding-Position, Embedding-Dropout, Embedding-Norm, Padding-Mask
    Encoder-{n}-MultiHeadSelfAttention[-Dropout|-Add|-Norm]   n = 1..L
    Encoder-{n}-FeedForward[-Dropout|-Add|-Norm]
    [Encoder-Output]                    (output_layer_num > 1)
    MLM-Dense, MLM-Norm, MLM-Sim, MLM   (training=True)
    Extract, NSP-Dense, NSP             (training=True)
    Extract, NSP-Dense, Classifier-Dropout, Classifier-Dense  (num_labels=k)
    Extract, NSP-Dense                  (with_pooler=True)

It is a functional model whose `get_config()` returns exactly its
constructor's arguments (the `bert_config.json` fields among them), so a
`.keras` file reloads on any backend.
"""

import keras

from kbert.config import BertConfig
from kbert.errors import ConfigError
from kbert.layers import activations
from kbert.layers import (
    EmbeddingSimilarity,
    Extract,
    FeedForward,
    MaskedOutput,
    MultiHeadSelfAttention,
    PaddingMask,
    PositionEmbedding,
    TokenEmbedding,
)

LAYER_NORM_EPSILON = 1e-12  # modeling.py's layer_norm uses 1e-12


def _initializer(config):
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def _norm(name):
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


def _encoder(x, mask, config, n):
    """One transformer block, post-LayerNorm as in the original."""
    prefix = f"Encoder-{n}-MultiHeadSelfAttention"
    attention = MultiHeadSelfAttention(
        num_attention_heads=config.num_attention_heads,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        initializer_range=config.initializer_range,
        name=prefix,
    )(x, attention_mask=mask)
    attention = keras.layers.Dropout(config.hidden_dropout_prob, name=f"{prefix}-Dropout")(attention)
    x = keras.layers.Add(name=f"{prefix}-Add")([x, attention])
    x = _norm(f"{prefix}-Norm")(x)

    prefix = f"Encoder-{n}-FeedForward"
    ffn = FeedForward(
        intermediate_size=config.intermediate_size,
        activation=config.activation,
        initializer_range=config.initializer_range,
        name=prefix,
    )(x)
    ffn = keras.layers.Dropout(config.hidden_dropout_prob, name=f"{prefix}-Dropout")(ffn)
    x = keras.layers.Add(name=f"{prefix}-Add")([x, ffn])
    return _norm(f"{prefix}-Norm")(x)


def _apply_trainable(model, trainable):
    """keras-bert's `trainable`: a bool, or name prefixes of trainable layers."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(trainable, bool):
            layer.trainable = trainable
        else:
            layer.trainable = any(layer.name.startswith(p) for p in trainable)


@keras.saving.register_keras_serializable(package="kbert")
class BertModel(keras.Model):
    """BERT with keras-bert's layer names.

    Args:
        bert_config: the `bert_config.json` fields (a dict or `BertConfig`).
        training: add `Input-Masked` and the `MLM` and `NSP` heads.
        trainable: bool, or a list of layer-name prefixes (keras-bert's
            meaning); None means `training` (keras-bert's default), or True
            when a classifier head is asked for, since it exists to be trained.
        seq_len: fix the input length (None accepts any length up to
            `max_position_embeddings`).
        output_layer_num: concatenate the outputs of the last m encoders.
        num_labels: add a classifier on the pooled output with k logits.
        with_pooler: also output the pooled `[CLS]` vector (`NSP-Dense`,
            the original's `bert/pooler`), as `[sequence, pooled]`.
    """

    def __init__(
        self,
        bert_config,
        training=False,
        trainable=None,
        seq_len=None,
        output_layer_num=1,
        num_labels=None,
        with_pooler=False,
        **kwargs,
    ):
        config = bert_config if isinstance(bert_config, BertConfig) else BertConfig.from_dict(bert_config)
        if seq_len is not None and not 1 <= seq_len <= config.max_position_embeddings:
            raise ConfigError(
                f"seq_len {seq_len} is outside 1..max_position_embeddings "
                f"({config.max_position_embeddings})"
            )
        if not 1 <= output_layer_num <= config.num_hidden_layers:
            raise ConfigError(
                f"output_layer_num {output_layer_num} is outside 1..num_hidden_layers "
                f"({config.num_hidden_layers})"
            )
        if num_labels is not None and (training or num_labels < 1):
            raise ConfigError(
                "num_labels needs a positive count and training=False "
                f"(got num_labels={num_labels}, training={training})"
            )

        token_ids = keras.Input(shape=(seq_len,), dtype="int32", name="Input-Token")
        segment_ids = keras.Input(shape=(seq_len,), dtype="int32", name="Input-Segment")
        inputs = [token_ids, segment_ids]

        embedded, matrix = TokenEmbedding(
            config.vocab_size,
            config.hidden_size,
            initializer_range=config.initializer_range,
            name="Embedding-Token",
        )(token_ids)
        segment = keras.layers.Embedding(
            config.type_vocab_size,
            config.hidden_size,
            embeddings_initializer=_initializer(config),
            name="Embedding-Segment",
        )(segment_ids)
        x = keras.layers.Add(name="Embedding-Token-Segment")([embedded, segment])
        x = PositionEmbedding(
            config.max_position_embeddings,
            initializer_range=config.initializer_range,
            name="Embedding-Position",
        )(x)
        x = keras.layers.Dropout(config.hidden_dropout_prob, name="Embedding-Dropout")(x)
        x = _norm("Embedding-Norm")(x)
        mask = PaddingMask(name="Padding-Mask")(token_ids)

        layer_outputs = []
        for n in range(1, config.num_hidden_layers + 1):
            x = _encoder(x, mask, config, n)
            layer_outputs.append(x)

        if training:
            masked = keras.Input(shape=(seq_len,), dtype="int32", name="Input-Masked")
            inputs.append(masked)
            mlm = keras.layers.Dense(
                config.hidden_size,
                activation=activations.get(config.activation),
                kernel_initializer=_initializer(config),
                name="MLM-Dense",
            )(x)
            mlm = _norm("MLM-Norm")(mlm)
            mlm = EmbeddingSimilarity(name="MLM-Sim")([mlm, matrix])
            mlm = MaskedOutput(name="MLM")([mlm, masked])
            pooled = self._pooler(x, config)
            nsp = keras.layers.Dense(
                2, activation="softmax", kernel_initializer=_initializer(config), name="NSP"
            )(pooled)
            outputs = [mlm, nsp]
        elif num_labels is not None:
            pooled = self._pooler(x, config)
            # run_classifier.py: dropout 0.1 on the pooled output, then
            # output_weights (truncated normal 0.02) and output_bias (zeros).
            pooled = keras.layers.Dropout(0.1, name="Classifier-Dropout")(pooled)
            outputs = keras.layers.Dense(
                num_labels,
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="Classifier-Dense",
            )(pooled)
        else:
            if output_layer_num > 1:
                x = keras.layers.Concatenate(name="Encoder-Output")(layer_outputs[-output_layer_num:])
            outputs = [x, self._pooler(layer_outputs[-1], config)] if with_pooler else x

        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.bert_config = config
        self.training_heads = training
        self.seq_len = seq_len
        self.output_layer_num = output_layer_num
        self.num_labels = num_labels
        self.with_pooler = with_pooler
        self.trainable_spec = trainable
        if trainable is None:
            trainable = training or num_labels is not None
        _apply_trainable(self, trainable)

    @staticmethod
    def _pooler(x, config):
        first = Extract(0, name="Extract")(x)
        return keras.layers.Dense(
            config.hidden_size,
            activation="tanh",
            kernel_initializer=_initializer(config),
            name="NSP-Dense",
        )(first)

    def get_config(self):
        return {
            "name": self.name,
            "bert_config": self.bert_config.to_dict(),
            "training": self.training_heads,
            "trainable": self.trainable_spec,
            "seq_len": self.seq_len,
            "output_layer_num": self.output_layer_num,
            "num_labels": self.num_labels,
            "with_pooler": self.with_pooler,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
