"""`BertModel`: BERT as keras-bert's named layers, as one serializable Keras model.

The graph and its layer names follow keras-bert, so that code written
against `model.get_layer("Encoder-3-FeedForward-Norm")` keeps working:

    Input-Token, Input-Segment [, Input-Task] [, Input-Masked]
    Embedding-Token, Embedding-Segment, Embedding-Token-Segment,
    Embedding-Position, [Embedding-Task,] Embedding-Dropout, Embedding-Norm,
    Padding-Mask
    Encoder-{n}-MultiHeadSelfAttention[-Dropout|-Add|-Norm]   n = 1..L
    Encoder-{n}-FeedForward[-Dropout|-Add|-Norm]
    [Encoder-Output]                    (output_layer_num > 1)
    MLM-Dense, MLM-Norm, MLM-Sim, MLM   (training=True)
    Extract, NSP-Dense, NSP             (training=True)
    Extract, NSP-Dense, Classifier-Dropout, Classifier-Dense  (num_labels=k)
    Token-Classifier-Dropout, Token-Classifier-Dense  (head="token", num_labels=k)
    Span-Dense, Span-Split              (head="span")
    Extract, NSP-Dense                  (with_pooler=True)

It is a functional model whose `get_config()` returns exactly its
constructor's arguments (the `bert_config.json` fields among them), so a
`.keras` file reloads on any backend.

Its inputs are checked on the host where they enter (`kbert.boundary`).
The graphs derived from it (packed, attention, pre-training, distillation)
are in `kbert.views`.
"""

import contextlib

import keras
import numpy as np

from kbert.boundary import InputBoundary, InputLimits
from kbert.config import LAYER_NORM_EPSILON, BertConfig
from kbert.errors import ConfigError
from kbert.layers import (
    EmbeddingSimilarity,
    EmbeddingSum,
    Extract,
    FeedForward,
    MaskedOutput,
    MultiHeadSelfAttention,
    PaddingMask,
    PositionEmbedding,
    SpanSplit,
    TaskEmbedding,
    TokenEmbedding,
    activations,
)

# What a classifier reads: the pooled [CLS] vector ("sequence", one row of
# logits an input), every position of the last encoder ("token", a row a
# position), or every position for the start and end of an answer ("span").
HEADS = ("sequence", "token", "span")


def _initializer(config):
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


@contextlib.contextmanager
def policy_scope(dtype):
    """Build layers under Keras dtype policy `dtype` (a name such as
    "mixed_bfloat16", or a `keras.DTypePolicy`; None: the global one).

    Every layer made inside takes it as its own policy, so a whole model
    computes in the policy's precision with its variables in the variable
    dtype; the global policy is restored afterwards.
    """
    if dtype is None:
        yield
        return
    before = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(dtype)
    except ValueError as e:
        raise ConfigError(f"dtype: {e}") from None
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def policy_name(dtype):
    """A policy argument as get_config stores it: None or its name."""
    return None if dtype is None else keras.DTypePolicy(dtype).name if isinstance(dtype, str) else dtype.name


def norm(name):
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


def encoder_block(x, mask, config, n, layer=None):
    """One transformer block, post-LayerNorm as in the original.  `layer`
    (name -> an existing layer) reuses a model's blocks on other inputs
    (`packed_classifier`); by default the layers are made here."""

    def get(name, make):
        return layer(name) if layer is not None else make(name)

    prefix = f"Encoder-{n}-MultiHeadSelfAttention"
    attention = get(prefix, lambda name: MultiHeadSelfAttention(
        num_attention_heads=config.num_attention_heads,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        initializer_range=config.initializer_range,
        name=name,
    ))(x, attention_mask=mask)
    dropout = lambda name: keras.layers.Dropout(config.hidden_dropout_prob, name=name)  # noqa: E731
    attention = get(f"{prefix}-Dropout", dropout)(attention)
    x = get(f"{prefix}-Add", lambda name: keras.layers.Add(name=name))([x, attention])
    x = get(f"{prefix}-Norm", norm)(x)

    prefix = f"Encoder-{n}-FeedForward"
    ffn = get(prefix, lambda name: FeedForward(
        intermediate_size=config.intermediate_size,
        activation=config.activation,
        initializer_range=config.initializer_range,
        name=name,
    ))(x)
    ffn = get(f"{prefix}-Dropout", dropout)(ffn)
    x = get(f"{prefix}-Add", lambda name: keras.layers.Add(name=name))([x, ffn])
    return get(f"{prefix}-Norm", norm)(x)


def _apply_trainable(model, trainable):
    """keras-bert's `trainable`: a bool, or name prefixes of trainable layers."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(trainable, bool):
            layer.trainable = trainable
        else:
            layer.trainable = any(layer.name.startswith(p) for p in trainable)


def encoder_indices(output_layer_num, depth):
    """The 0-based encoders whose outputs `output_layer_num` concatenates, in
    order: the last m for an int m; for keras-bert's list of indices
    (negative from the end), the reverse of the listed order, as there."""
    if not isinstance(output_layer_num, list):
        if isinstance(output_layer_num, bool) or not isinstance(output_layer_num, (int, np.integer)):
            raise ConfigError(
                f"output_layer_num must be an integer or a list of encoder indices, got {output_layer_num!r}"
            )
        if not 1 <= output_layer_num <= depth:
            raise ConfigError(f"output_layer_num {output_layer_num} is outside 1..num_hidden_layers ({depth})")
        return list(range(depth - output_layer_num, depth))
    if not output_layer_num:
        raise ConfigError("output_layer_num must not be an empty list")
    for index in output_layer_num:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -depth <= index < depth:
            raise ConfigError(
                f"output_layer_num: {index!r} is not an encoder index in "
                f"{-depth}..{depth - 1} (num_hidden_layers {depth})"
            )
    return [int(index) % depth for index in reversed(output_layer_num)]


@keras.saving.register_keras_serializable(package="kbert")
class BertModel(InputBoundary, keras.Model):
    """BERT with keras-bert's layer names.

    A functional Keras model built from a `bert_config.json`: the
    embeddings, `num_hidden_layers` encoder blocks, and the heads asked
    for, each layer named as in keras-bert (see the module docstring).  Its
    inputs are the token ids `[B, T]` (0: padding) and the segment ids
    `[B, T]`, then the task ids `[B, 1]` with `task_num` and the masked
    positions `[B, T]` with `training=True`.  It outputs the last encoder's
    sequence `[B, T, H]` (or the concatenated sequences of several, with
    `output_layer_num`); with `with_pooler=True` also the pooled `[CLS]`
    vector `[B, H]`; with `num_labels` only the classifier's logits
    `[B, num_labels]`; with `training=True` the masked-LM probabilities
    `[B, T, V]` and the next-sentence probabilities `[B, 2]`.  Weights
    start from their initializers; `kbert.load_checkpoint` builds one with
    a checkpoint's weights.

    Args:
        bert_config: the `bert_config.json` fields (a dict or `BertConfig`).
        training: add `Input-Masked` and the `MLM` and `NSP` heads.
            Defaults to False.
        trainable: bool, or a list of layer-name prefixes (keras-bert's
            meaning); None means `training` (keras-bert's default), or True
            when a classifier head is asked for, since it exists to be trained.
            Defaults to None.
        seq_len: fix the input length T (None accepts any length up to
            `max_position_embeddings`). Defaults to None.
        output_layer_num: concatenate the outputs of the last m encoders;
            or a list of encoder indices (0-based, negative counting from
            the end), concatenated in reverse order, as keras-bert does.
            Defaults to 1, the last encoder's output alone.
        num_labels: add a classifier on the pooled output with k logits,
            `[B, k]`, as the model's only output (needs `training=False`).
            With `head="token"`, on every position instead: `[B, T, k]`.
            Defaults to None, no classifier.
        with_pooler: also output the pooled `[CLS]` vector (`NSP-Dense`,
            the original's `bert/pooler`), as `[sequence, pooled]`.
            Defaults to False.
        task_num: add keras-bert's task embedding (`use_task_embed`): an
            `Input-Task` of one id in 0..task_num-1 per example, whose
            `Embedding-Task` row is added to every position. Defaults to
            None, no task input.
        dtype: a Keras dtype policy for every layer (None: the global
            one), e.g. "mixed_bfloat16": computed in bfloat16, variables
            in float32 (`policy_scope`). Defaults to None.
        head: what the classifier reads (`HEADS`): "sequence" (the
            pooled `[CLS]` vector, with `num_labels`), "token" (every
            position of the last encoder, `Token-Classifier-Dense`, with
            `num_labels`: NER) or "span" (every position, `Span-Dense` of
            width 2 split by `Span-Split` into start and end logits `[B,
            T]` each: extractive question answering). Defaults to
            "sequence".
        **kwargs: arguments of `keras.Model`, such as `name`.

    Example:

    ```python
    import numpy as np
    from kbert import BertModel

    config = {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 16, "max_position_embeddings": 16}
    model = BertModel(config, with_pooler=True)
    token_ids = np.array([[2, 7, 8, 3, 0, 0], [2, 9, 3, 10, 11, 3]], dtype="int32")  # [B, T], 0 = padding
    segment_ids = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype="int32")  # [B, T]
    sequence, pooled = model([token_ids, segment_ids])  # [B, T, H], [B, H]
    layer = model.get_layer("Encoder-2-FeedForward-Norm")  # keras-bert's names
    ```
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
        task_num=None,
        dtype=None,
        head="sequence",
        **kwargs,
    ):
        with policy_scope(dtype):
            self._build(bert_config, training, trainable, seq_len, output_layer_num, num_labels, with_pooler,
                        task_num, dtype, head, **kwargs)

    def _build(self, bert_config, training, trainable, seq_len, output_layer_num, num_labels, with_pooler,
               task_num, dtype, head, **kwargs):
        config = bert_config if isinstance(bert_config, BertConfig) else BertConfig.from_dict(bert_config)
        if isinstance(output_layer_num, tuple):
            output_layer_num = list(output_layer_num)  # as get_config's JSON gives it back
        chosen = encoder_indices(output_layer_num, config.num_hidden_layers)
        for name, value in (("seq_len", seq_len), ("num_labels", num_labels), ("task_num", task_num)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        for name, value in (("training", training), ("with_pooler", with_pooler)):
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {value!r}")
        if not (
            trainable is None
            or isinstance(trainable, (bool, np.bool_))
            or isinstance(trainable, (list, tuple)) and all(isinstance(p, str) for p in trainable)
        ):
            raise ConfigError(f"trainable must be a bool or a list of layer-name prefixes, got {trainable!r}")
        if seq_len is not None and not 1 <= seq_len <= config.max_position_embeddings:
            raise ConfigError(
                f"seq_len {seq_len} is outside 1..max_position_embeddings "
                f"({config.max_position_embeddings})"
            )
        if task_num is not None and task_num < 1:
            raise ConfigError(f"task_num must be at least 1, got {task_num}")
        if num_labels is not None and (training or num_labels < 1):
            raise ConfigError(
                "num_labels needs a positive count and training=False "
                f"(got num_labels={num_labels}, training={training})"
            )
        if head not in HEADS:
            raise ConfigError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        if head == "token" and num_labels is None:
            raise ConfigError("head='token' needs num_labels (the tags a position can take)")
        if head != "sequence" and (with_pooler or output_layer_num != 1):
            raise ConfigError(f"head={head!r} reads the last encoder alone: no with_pooler, output_layer_num 1 "
                              f"(got with_pooler={with_pooler}, output_layer_num={output_layer_num!r})")
        if head == "span" and (num_labels is not None or training):
            raise ConfigError("head='span' gives start and end logits: no num_labels, and training=False "
                              f"(got num_labels={num_labels}, training={training})")

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
        x = EmbeddingSum(name="Embedding-Token-Segment")([embedded, segment])
        x = PositionEmbedding(
            config.max_position_embeddings,
            initializer_range=config.initializer_range,
            name="Embedding-Position",
        )(x)
        if task_num is not None:
            # keras-bert: a float [B, 1] input, cast to int32 by the layer.
            task_ids = keras.Input(shape=(1,), dtype="int32", name="Input-Task")
            inputs.append(task_ids)
            x = TaskEmbedding(task_num, config.hidden_size, name="Embedding-Task")([x, task_ids])
        x = keras.layers.Dropout(config.hidden_dropout_prob, name="Embedding-Dropout")(x)
        x = norm("Embedding-Norm")(x)
        mask = PaddingMask(name="Padding-Mask")(token_ids)

        layer_outputs = []
        for n in range(1, config.num_hidden_layers + 1):
            x = encoder_block(x, mask, config, n)
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
            mlm = norm("MLM-Norm")(mlm)
            mlm = EmbeddingSimilarity(name="MLM-Sim")([mlm, matrix])
            mlm = MaskedOutput(name="MLM")([mlm, masked])
            pooled = self._pooler(x, config)
            nsp = keras.layers.Dense(
                2, activation="softmax", kernel_initializer=_initializer(config), name="NSP"
            )(pooled)
            outputs = [mlm, nsp]
        elif head == "token":
            # On every position of the last encoder, as BertForTokenClassification.
            x = keras.layers.Dropout(config.hidden_dropout_prob, name="Token-Classifier-Dropout")(x)
            outputs = keras.layers.Dense(
                num_labels,
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="Token-Classifier-Dense",
            )(x)
        elif head == "span":
            # run_squad.py: cls/squad/output_weights [2, H] on every position,
            # unstacked into the start and end logits.
            x = keras.layers.Dense(
                2, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02), name="Span-Dense"
            )(x)
            outputs = SpanSplit(name="Span-Split")(x)
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
            if len(chosen) > 1:
                x = keras.layers.Concatenate(name="Encoder-Output")([layer_outputs[i] for i in chosen])
            else:
                x = layer_outputs[chosen[0]]
            outputs = [x, self._pooler(layer_outputs[-1], config)] if with_pooler else x

        super().__init__(inputs=inputs, outputs=outputs, **({"dtype": dtype} if dtype is not None else {}), **kwargs)
        self.dtype_spec = policy_name(dtype)
        self.bert_config = config
        self.training_heads = training
        self.seq_len = seq_len
        self.output_layer_num = output_layer_num
        self.num_labels = num_labels
        self.with_pooler = with_pooler
        self.task_num = task_num
        self.head = head
        self.trainable_spec = trainable
        if trainable is None:
            trainable = training or num_labels is not None or head == "span"
        _apply_trainable(self, trainable)
        self.input_limits = InputLimits(config, seq_len, [i.name for i in inputs], task_num)

    # -- the input boundary (`kbert.boundary.InputBoundary`) ------------

    def _check(self, x):
        return self.input_limits.check(x)

    def _check_batch(self, batch):
        return self.input_limits.check_batch(batch)

    def _checked_whole(self, x):
        if getattr(x, "batch_layout", None) != "padded":  # not a batch object (or packed: refused by Keras' shapes)
            return None
        rows = x.unpacked_rows()
        self.input_limits.check(rows if len(rows) > 1 else rows[0])
        return True

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
            "task_num": self.task_num,
            "dtype": self.dtype_spec,
            "head": self.head,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
