"""keras-bert's public API on kbert: a keras-bert program runs after one changed import.

    import kbert.keras_bert as keras_bert     # was: import keras_bert
    paths = keras_bert.get_checkpoint_paths("uncased_L-12_H-768_A-12")
    model = keras_bert.load_trained_model_from_checkpoint(paths.config, paths.checkpoint)
    tokenizer = keras_bert.Tokenizer(keras_bert.load_vocabulary(paths.vocab))
    vectors = keras_bert.extract_embeddings(model, texts, vocabs=tokenizer.token_dict,
                                            poolings=[keras_bert.POOL_NSP, keras_bert.POOL_MAX])

Names, signatures and meanings are keras-bert 0.89's; the model is a kbert
`BertModel` with the same layer names, on any Keras 3 backend.  Where kbert
is stricter or follows Google's code, it says so below; the differences:

* Loading is kbert's: every weight the model has comes from the checkpoint
  (keras-bert leaves the heads of a `training=True` model built by
  `build_model_from_config` unloaded if `load_model_weights_from_checkpoint`
  is told `training=False`; kbert loads what the model has), and bad input
  raises `kbert.KbertError`s naming the argument (`ConfigError` is also a
  `ValueError`, like keras-bert's unknown-pooling error).
* `Tokenizer` is kbert's with keras-bert's rule for unknown pieces (see
  `Tokenizer` below).  It lower-cases a word before stripping accents, as
  Google's code does (keras-bert strips first; they differ on a handful of
  characters such as "İ"), and needs `token_cls`, `token_sep` and
  `token_unk` in the vocabulary.
* `load_vocabulary` gives each token its line number; keras-bert numbers
  tokens by insertion, so ids differ after a duplicated line.
* `AdamWarmup` decays only the weights whose path holds one of
  `weight_decay_pattern`'s strings, as keras-bert documents (its TF 2
  optimizer decays every weight whatever the pattern); with the default
  None both decay all.
* `get_model` builds Google's architecture from keras-bert's sizes: two
  segment types and no dropout on attention probabilities, as keras-bert;
  `feed_forward_activation` must be a `hidden_act` name ("gelu" is the
  tanh form, as keras-bert's), not a function.
* `gen_batch_inputs` follows keras-bert's recipe and draws from NumPy's
  global random state, as keras-bert does, but not in the same order: a
  seed gives a batch of the same kind, not the same batch.
* `use_task_embed=True` adds keras-bert's `Input-Task` and `Embedding-Task`
  (`kbert.layers.TaskEmbedding`, as keras-bert's with `mask_zero=False`);
  the input is int32 where keras-bert's is float.
"""

import collections
import collections.abc
import logging
import os
import sys

import keras
import numpy as np

from kbert import tokenization
from kbert.atomic import read_json
from kbert.checks import is_int, is_number
from kbert.config import BertConfig
from kbert.errors import ConfigError, DataError
from kbert.layers import TaskEmbedding
from kbert.model import BertModel
from kbert.tokenization import TOKEN_CLS, TOKEN_MASK, TOKEN_SEP, TOKEN_UNK, load_vocab
from kbert.weights.loading import assign_weights, open_checkpoint

logger = logging.getLogger(__name__)

__all__ = [
    "AdamWarmup",
    "POOL_AVE",
    "POOL_MAX",
    "POOL_NSP",
    "TOKEN_CLS",
    "TOKEN_MASK",
    "TOKEN_PAD",
    "TOKEN_SEP",
    "TOKEN_UNK",
    "TaskEmbedding",
    "Tokenizer",
    "build_model_from_config",
    "calc_train_steps",
    "compile_model",
    "extract_embeddings",
    "extract_embeddings_generator",
    "gen_batch_inputs",
    "get_base_dict",
    "get_checkpoint_paths",
    "get_custom_objects",
    "get_model",
    "load_model_weights_from_checkpoint",
    "load_trained_model_from_checkpoint",
    "load_vocabulary",
]

# keras-bert's padding token is the empty string (kbert's own vocabularies,
# Google's, spell it "[PAD]"); it only matters in `get_base_dict`.
TOKEN_PAD = ""

POOL_NSP = "POOL_NSP"
POOL_MAX = "POOL_MAX"
POOL_AVE = "POOL_AVE"
_POOLINGS = (POOL_NSP, POOL_MAX, POOL_AVE)

# gen_batch_inputs' longest row: far past any BERT's positions, short of
# arrays that could not be allocated.
MAX_BATCH_SEQ_LEN = 1 << 20

CheckpointPaths = collections.namedtuple("CheckpointPaths", ["config", "checkpoint", "vocab"])


def _check_path(name, value):
    """Refuse a path argument that is not one (os.path would raise a TypeError).

    Raises:
        ConfigError: naming the argument.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{name} must be a path (a str or os.PathLike), got {type(value).__name__} {value!r:.60}")


def get_checkpoint_paths(model_path):
    """The `(config, checkpoint, vocab)` paths of a Google checkpoint directory.

    Raises:
        ConfigError: `model_path` is not a path.
    """
    _check_path("model_path", model_path)
    return CheckpointPaths(
        os.path.join(model_path, "bert_config.json"),
        os.path.join(model_path, "bert_model.ckpt"),
        os.path.join(model_path, "vocab.txt"),
    )


def load_vocabulary(vocab_path):
    """`vocab.txt` as a {token: id} dict, ids being line numbers (see `kbert.tokenization.load_vocab`).

    Raises:
        ConfigError: `vocab_path` is not a path.
        DataError: the file is missing, unreadable or not a vocabulary.
    """
    _check_path("vocab_path", vocab_path)
    return dict(load_vocab(vocab_path))


def get_base_dict():
    """The five special tokens with keras-bert's ids, to grow a vocabulary from."""
    return {TOKEN_PAD: 0, TOKEN_UNK: 1, TOKEN_CLS: 2, TOKEN_SEP: 3, TOKEN_MASK: 4}


def get_custom_objects():
    """Every Keras object kbert registers, by class name, for
    `keras.saving.load_model(path, custom_objects=get_custom_objects())`.
    (Importing kbert registers them anyway; keras-bert needed this.)"""
    prefix = "kbert>"
    return {
        name[len(prefix) :]: obj
        for name, obj in keras.saving.get_custom_objects().items()
        if name.startswith(prefix)
    }


def _is_count(value, low):
    """An int (Python's or NumPy's, not a bool) of at least `low`."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= low


def calc_train_steps(num_example, batch_size, epochs, warmup_proportion=0.1):
    """`(total, warmup)` optimizer steps: batches per epoch (the last one
    partial) times `epochs`, and `warmup_proportion` of those, rounded down.

    Raises:
        ConfigError: naming the argument that is not a count (`batch_size`
            positive, the others at least 0) or, for `warmup_proportion`, a
            number in [0, 1].
    """
    for name, value, low in (("num_example", num_example, 0), ("batch_size", batch_size, 1), ("epochs", epochs, 0)):
        if not _is_count(value, low):
            raise ConfigError(f"{name} must be an integer of at least {low}, got {value!r}")
    if not is_number(warmup_proportion) or not 0 <= warmup_proportion <= 1:
        raise ConfigError(f"warmup_proportion must be a number in [0, 1], got {warmup_proportion!r}")
    batches = -(-int(num_example) // int(batch_size))
    total = batches * epochs
    return total, int(total * warmup_proportion)


@keras.saving.register_keras_serializable(package="kbert")
class AdamWarmup(keras.optimizers.Optimizer):
    """keras-bert's Adam with a warmup, its arguments and its update, on any backend.

    At step t (from 1) the rate is `learning_rate * t / warmup_steps` while
    t <= warmup_steps, then falls linearly to `min_lr` at `decay_steps`
    and stays there.  The update is Adam's with the bias corrections folded
    into the rate, and `weight_decay * weight` added to the Adam direction
    (so scaled by the same rate) for the weights `weight_decay_pattern`
    selects (substrings of the weight's path; None: all).  `amsgrad` as in
    Keras' Adam; `lr` is accepted for `learning_rate`.

    Raises:
        ConfigError: naming the argument: a step count, rate or decay that
            is not a non-negative number, a beta outside [0, 1), an epsilon
            not positive, a pattern that is not a list of strings, an
            `amsgrad` not a bool, or a keyword Keras' optimizer refuses.
    """

    def __init__(
        self,
        decay_steps,
        warmup_steps,
        min_lr=0.0,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        weight_decay=0.0,
        weight_decay_pattern=None,
        amsgrad=False,
        name="AdamWarmup",
        **kwargs,
    ):
        learning_rate = kwargs.pop("lr", learning_rate)
        if not callable(learning_rate):  # else a schedule, as Keras takes
            if not is_number(learning_rate) or learning_rate < 0:
                raise ConfigError(f"learning_rate must be a non-negative number, got {learning_rate!r}")
            learning_rate = float(learning_rate)  # Keras refuses an int
        for field, value in (("decay_steps", decay_steps), ("warmup_steps", warmup_steps), ("min_lr", min_lr),
                             ("weight_decay", weight_decay)):
            if not is_number(value) or value < 0:
                raise ConfigError(f"{field} must be a non-negative number, got {value!r}")
        for field, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            # A beta of 1 makes the bias correction divide by zero.
            if not is_number(value) or not 0 <= value < 1:
                raise ConfigError(f"{field} must be a number in [0, 1), got {value!r}")
        if epsilon is not None and (not is_number(epsilon) or epsilon <= 0):
            raise ConfigError(f"epsilon must be a positive number (or None), got {epsilon!r}")
        patterns = weight_decay_pattern
        if patterns is not None and not (
                isinstance(patterns, (list, tuple)) and all(isinstance(p, str) for p in patterns)):
            raise ConfigError(f"weight_decay_pattern must be a list of strings (or None), got {weight_decay_pattern!r}")
        if not isinstance(amsgrad, (bool, np.bool_)):
            raise ConfigError(f"amsgrad must be True or False, got {amsgrad!r}")
        # Keras' own weight_decay (left None) is decoupled from the Adam step;
        # keras-bert's is part of it, so it is kept apart.
        try:
            super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        except ValueError as e:  # Keras' checks of its own keywords (an unknown one, clipnorm, ...)
            raise ConfigError(f"AdamWarmup: {e}") from None
        self.decay_steps = decay_steps
        self.warmup_steps = warmup_steps
        # Floats (keras-bert keeps them in float variables): a Python int past
        # int64, which is_number admits, would not convert to a tensor.
        self.min_lr = float(min_lr)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = 1e-7 if epsilon is None else float(epsilon)  # keras-bert: None means Keras' epsilon
        self.adam_weight_decay = float(weight_decay)
        self.weight_decay_pattern = None if weight_decay_pattern is None else list(weight_decay_pattern)
        self.amsgrad = bool(amsgrad)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = [self.add_variable_from_reference(v, "m") for v in variables]
        self._velocities = [self.add_variable_from_reference(v, "v") for v in variables]
        if self.amsgrad:
            self._velocity_hats = [self.add_variable_from_reference(v, "vhat") for v in variables]
        # Decided here, on the Keras variables: update_step may be handed the
        # backend's own variable, which has no Keras path (TensorFlow).
        patterns = self.weight_decay_pattern
        self._decayed = [
            bool(self.adam_weight_decay) and (patterns is None or any(p in v.path for p in patterns))
            for v in variables
        ]

    def update_step(self, gradient, variable, learning_rate):
        ops = keras.ops
        dtype = variable.dtype
        rate = ops.cast(learning_rate, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        min_lr = ops.cast(self.min_lr, dtype)
        warming = rate * step / max(float(self.warmup_steps), 1.0)
        decaying = min_lr + (rate - min_lr) * (
            1.0 - ops.minimum(step, float(self.decay_steps)) / max(float(self.decay_steps), 1.0)
        )
        rate = ops.where(step <= float(self.warmup_steps), warming, decaying)
        rate = rate * ops.sqrt(1.0 - ops.power(self.beta_2, step)) / (1.0 - ops.power(self.beta_1, step))

        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        # keras.ops throughout: on TensorFlow an embedding's gradient comes as
        # IndexedSlices, which they add densely (keras-bert, too, decays the
        # moments of the rows a batch did not touch).
        self.assign(m, ops.add(ops.multiply(m, self.beta_1), ops.multiply(gradient, 1.0 - self.beta_1)))
        self.assign(v, ops.add(ops.multiply(v, self.beta_2), ops.multiply(ops.square(gradient), 1.0 - self.beta_2)))
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        direction = m / (ops.sqrt(v) + self.epsilon)
        if self._decayed[index]:
            direction = direction + self.adam_weight_decay * variable
        self.assign_sub(variable, rate * direction)

    def get_config(self):
        names = ("decay_steps", "warmup_steps", "min_lr", "beta_1", "beta_2", "epsilon", "weight_decay_pattern",
                 "amsgrad")
        return dict(super().get_config(), weight_decay=self.adam_weight_decay,
                    **{name: getattr(self, name) for name in names})


def gen_batch_inputs(
    sentence_pairs,
    token_dict,
    token_list,
    seq_len=512,
    mask_rate=0.15,
    mask_mask_rate=0.8,
    mask_random_rate=0.1,
    swap_sentence_rate=0.5,
    force_mask=True,
):
    """A random pre-training batch from pairs of token lists, as keras-bert.

    Each pair becomes `[CLS] first [SEP] second [SEP]`, cut or padded to
    `seq_len`, with segment 0 up to the first `[SEP]` and 1 after it
    (padding included, as keras-bert).  With probability
    `swap_sentence_rate` a row joins a shuffle of second sentences; the NSP
    label is 1 where its second sentence came from another row.  Each
    ordinary token is chosen for MLM with probability `mask_rate`; a chosen
    token becomes `[MASK]` with probability `mask_mask_rate`, a random
    ordinary token of `token_list` with `mask_random_rate`, else stays.
    `force_mask` chooses position 1 in a row where nothing was chosen.

    Returns `([token_ids, segment_ids, masked], [mlm_targets, nsp_labels])`,
    the inputs [batch, seq_len] and the targets [batch, seq_len, 1] and
    [batch, 1] that a `training=True` model and `compile_model` take.

    Raises:
        DataError: a pair that is not two lists of token strings, named.
        ConfigError: naming the argument: `token_dict` without `[UNK]` or
            `[MASK]` ids, `token_list` not token strings of `token_dict` (or
            none ordinary while random replacement may draw one), `seq_len`
            outside 2..MAX_BATCH_SEQ_LEN, or a rate not a number in [0, 1].
    """
    _check_batch_inputs(sentence_pairs, token_dict, token_list, seq_len,
                        dict(mask_rate=mask_rate, mask_mask_rate=mask_mask_rate, mask_random_rate=mask_random_rate,
                             swap_sentence_rate=swap_sentence_rate))
    special = set(get_base_dict())
    unknown = token_dict[TOKEN_UNK]
    ordinary = [t for t in token_list if t not in special]
    size = len(sentence_pairs)
    seconds = list(range(size))
    swapping = [i for i in range(size) if np.random.random() < swap_sentence_rate]
    for i, j in zip(swapping, np.random.permutation(swapping)):
        seconds[i] = int(j)
    nsp = np.array([float(seconds[i] != i) for i in range(size)])[:, None]  # [batch, 1], also for no pairs

    tokens = np.zeros((size, seq_len), "int64")
    segments = np.zeros((size, seq_len), "int64")
    masked = np.zeros((size, seq_len), "int64")
    targets = np.zeros((size, seq_len), "int64")
    for row, (first, _) in enumerate(sentence_pairs):
        words = [TOKEN_CLS, *first, TOKEN_SEP, *sentence_pairs[seconds[row]][1], TOKEN_SEP][:seq_len]
        words += [TOKEN_PAD] * (seq_len - len(words))
        segments[row, len(first) + 2 :] = 1
        for position, word in enumerate(words):
            targets[row, position] = tokens[row, position] = token_dict.get(word, unknown)
            if word in special or np.random.random() >= mask_rate:
                continue
            masked[row, position] = 1
            draw = np.random.random()
            if draw < mask_mask_rate:
                tokens[row, position] = token_dict[TOKEN_MASK]
            elif draw < mask_mask_rate + mask_random_rate:
                tokens[row, position] = token_dict[ordinary[np.random.randint(len(ordinary))]]
        if force_mask and not masked[row].any():
            masked[row, 1] = 1
    return [tokens, segments, masked], [targets[..., None], nsp]


def _check_batch_inputs(sentence_pairs, token_dict, token_list, seq_len, rates):
    """`gen_batch_inputs`' Raises:, checked before any draw."""
    if isinstance(sentence_pairs, (str, bytes)) or not isinstance(sentence_pairs, collections.abc.Sequence):
        raise DataError(f"sentence_pairs must be a list of (first, second) token lists, "
                        f"got {type(sentence_pairs).__name__}")
    for index, pair in enumerate(sentence_pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
                isinstance(side, (list, tuple)) and all(isinstance(t, str) for t in side) for side in pair)):
            raise DataError(f"sentence_pairs[{index}]: expected two lists of token strings, got {pair!r:.60}")
    if not isinstance(token_dict, collections.abc.Mapping):
        raise ConfigError(f"token_dict must be a {{token: id}} dict, got {type(token_dict).__name__}")
    for token in (TOKEN_UNK, TOKEN_MASK):
        if not _is_count(token_dict.get(token), 0):
            raise ConfigError(f"token_dict must give {token!r} an id, got {token_dict.get(token)!r:.60}")
    if isinstance(token_list, (str, bytes)) or not isinstance(token_list, collections.abc.Iterable):
        raise ConfigError(f"token_list must be a list of tokens, got {type(token_list).__name__}")
    special = set(get_base_dict())
    ordinary = 0
    for token in token_list:
        if not isinstance(token, str) or not _is_count(token_dict.get(token), 0):
            raise ConfigError(f"token_list: {token!r:.60} is not a token of token_dict")
        ordinary += token not in special
    if not _is_count(seq_len, 2) or seq_len > MAX_BATCH_SEQ_LEN:
        # At least [CLS] and the position force_mask chooses; at most what
        # the arrays (and any BERT's position table) can hold.
        raise ConfigError(f"seq_len must be an integer in 2..{MAX_BATCH_SEQ_LEN}, got {seq_len!r}")
    for name, rate in rates.items():
        if not is_number(rate) or not 0 <= rate <= 1:
            raise ConfigError(f"{name} must be a number in [0, 1], got {rate!r}")
    if not ordinary and rates["mask_rate"] and rates["mask_random_rate"]:
        raise ConfigError("token_list holds no ordinary token for mask_random_rate to draw")


# -- models ------------------------------------------------------------------


def _model_options(config, output_layer_num, seq_len, kwargs):
    """keras-bert's `get_model` keywords as a kbert config and `BertModel` options."""
    options = {}
    dropout_rate = kwargs.pop("dropout_rate", None)
    if dropout_rate is not None:
        # keras-bert applies one rate after the embeddings, the attention and
        # the feed-forward blocks: the original's hidden_dropout_prob.
        config = BertConfig.from_dict({**config.to_dict(), "hidden_dropout_prob": dropout_rate}, "dropout_rate")
    if kwargs.pop("attention_activation", None) is not None:
        raise ConfigError("attention_activation: kbert's attention is linear, as in BERT; only None is supported")
    task_num = kwargs.pop("task_num", 10)  # keras-bert's default; only read with use_task_embed
    if kwargs.pop("use_task_embed", False):
        options["task_num"] = task_num
    for name in ("num_labels", "with_pooler"):  # kbert's own options pass through
        if name in kwargs:
            options[name] = kwargs.pop(name)
    if kwargs:
        raise ConfigError(f"unknown keyword argument(s): {', '.join(sorted(kwargs))}")
    # keras-bert takes at most every encoder, and at most every position,
    # rather than refusing more; BertModel checks the rest.
    if is_int(output_layer_num):
        output_layer_num = min(output_layer_num, config.num_hidden_layers)
    if is_int(seq_len):
        seq_len = min(seq_len, config.max_position_embeddings)
    return config, dict(options, output_layer_num=output_layer_num, seq_len=seq_len)


def get_model(
    token_num,
    pos_num=512,
    seq_len=512,
    embed_dim=768,
    transformer_num=12,
    head_num=12,
    feed_forward_dim=3072,
    dropout_rate=0.1,
    attention_activation=None,
    feed_forward_activation="gelu",
    training=True,
    trainable=None,
    output_layer_num=1,
    use_task_embed=False,
    task_num=10,
):
    """A `BertModel` with fresh weights from keras-bert's sizes.

    With `training` (the default here) the model with `Input-Masked` and
    the MLM and NSP heads; otherwise `(inputs, output)`, the tensors to
    build on, as keras-bert returns them.  `use_task_embed` adds
    `Input-Task` (one id in 0..task_num-1 per example) after
    `Input-Segment`, and `Embedding-Task`.
    """
    if not isinstance(feed_forward_activation, str):
        raise ConfigError(
            f"feed_forward_activation must be a hidden_act name such as 'gelu', got {feed_forward_activation!r}"
        )
    config = BertConfig.from_dict(
        {
            "vocab_size": token_num,
            "max_position_embeddings": pos_num,
            "hidden_size": embed_dim,
            "num_hidden_layers": transformer_num,
            "num_attention_heads": head_num,
            "intermediate_size": feed_forward_dim,
            "hidden_act": feed_forward_activation,
            "type_vocab_size": 2,
            "attention_probs_dropout_prob": 0.0,
        },
        "get_model",
    )
    extra = {"dropout_rate": dropout_rate, "attention_activation": attention_activation,
             "use_task_embed": use_task_embed, "task_num": task_num}
    config, options = _model_options(config, output_layer_num, seq_len, extra)
    model = BertModel(config, training=training, trainable=trainable, **options)
    if training:
        return model
    return model.inputs, model.outputs[0]


def compile_model(model, weight_decay=0.01, decay_steps=100000, warmup_steps=10000, learning_rate=1e-4):
    """Compile for pre-training as keras-bert: `AdamWarmup` (weight decay on
    embeddings and kernels) and sparse categorical cross-entropy."""
    model.compile(
        optimizer=AdamWarmup(
            decay_steps=decay_steps,
            warmup_steps=warmup_steps,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            weight_decay_pattern=["embeddings", "kernel"],
        ),
        loss=keras.losses.sparse_categorical_crossentropy,
    )


def build_model_from_config(
    config_file, training=False, trainable=None, output_layer_num=1, seq_len=int(1e9), **kwargs
):
    """A `BertModel` with fresh weights, and the config read from `config_file`.

    `training` adds `Input-Masked` and the MLM and NSP heads; `trainable`
    (default: `training`) is a bool or layer-name prefixes;
    `output_layer_num` concatenates the last m encoders (m capped at their
    number) or those listed by index (negative from the end); `seq_len`,
    capped at `max_position_embeddings`, fixes the input length (None: any).
    keras-bert's `dropout_rate` sets `hidden_dropout_prob`; `num_labels` and
    `with_pooler` are passed to `BertModel`.

    Returns `(model, config)`, config being the JSON dict with
    `max_position_embeddings` set to the input length, as keras-bert does
    (the model keeps every position row; only the input length is fixed).

    Raises:
        ConfigError: `config_file` is not a path, or is missing or not a
            BERT config; an option out of type or range, named.
    """
    _check_path("config_file", config_file)
    values = read_json(config_file, error=ConfigError, what="config")
    config, options = _model_options(BertConfig.from_dict(values, os.fspath(config_file)),
                                     output_layer_num, seq_len, dict(kwargs))
    model = BertModel(config, training=training, trainable=trainable, **options)
    if options["seq_len"] is not None:
        values["max_position_embeddings"] = options["seq_len"]
    return model, values


def load_model_weights_from_checkpoint(model, config, checkpoint_file, training=False):
    """Assign every weight of `model` (a `BertModel`) from `checkpoint_file`.

    `config` and `training` are keras-bert's arguments, accepted for its
    signature: the model knows its own config and heads, and all of them
    are loaded (strictly: a weight the checkpoint lacks is an error).
    Sets `model.load_report` and `model.vocab_file` as `kbert.load_checkpoint`.
    """
    if not isinstance(model, BertModel):
        raise ConfigError(f"model: expected a kbert BertModel, got {type(model).__name__}")
    checkpoint = open_checkpoint(checkpoint_file, config=model.bert_config)
    model.load_report = assign_weights(model, checkpoint)
    model.vocab_file = checkpoint.vocab_file


def load_trained_model_from_checkpoint(
    config_file, checkpoint_file, training=False, trainable=None, output_layer_num=1, seq_len=int(1e9), **kwargs
):
    """`build_model_from_config` then `load_model_weights_from_checkpoint`: the model."""
    model, config = build_model_from_config(
        config_file,
        training=training,
        trainable=trainable,
        output_layer_num=output_layer_num,
        seq_len=seq_len,
        **kwargs,
    )
    load_model_weights_from_checkpoint(model, config, checkpoint_file, training=training)
    return model


# -- tokenizer ---------------------------------------------------------------


class Tokenizer(tokenization.Tokenizer):
    """kbert's `Tokenizer` with keras-bert's constructor and unknown-piece rule.

    Positional arguments in keras-bert's order.  A word WordPiece cannot cut
    completely keeps its known pieces, and each character no vocabulary
    entry starts with becomes a piece of its own with the `[UNK]` id
    (`tokenize` shows the character itself); kbert's own `Tokenizer`, like
    Google's, makes the whole word one `[UNK]`.  Words have no length limit,
    as in keras-bert.  `_tokenize`, `rematch` and `decode` are keras-bert's.

    Raises:
        ConfigError: naming the argument: `token_dict` is not a {token: id}
            mapping, a special token is not a string in it, `pad_index` is
            not an id (an int of at least 0), or `cased` not a bool.
    """

    def __init__(
        self, token_dict, token_cls=TOKEN_CLS, token_sep=TOKEN_SEP, token_unk=TOKEN_UNK, pad_index=0, cased=False
    ):
        # keras-bert indexes a dict; anything else would fail deep inside
        # dict() or a lookup with a TypeError or ValueError.
        if not isinstance(token_dict, collections.abc.Mapping):
            raise ConfigError(f"token_dict must be a {{token: id}} dict (see load_vocabulary), "
                              f"got {type(token_dict).__name__}")
        for name, token in (("token_cls", token_cls), ("token_sep", token_sep), ("token_unk", token_unk)):
            if not isinstance(token, str):
                raise ConfigError(f"{name} must be a token (a string), got {token!r}")
        if not _is_count(pad_index, 0):
            raise ConfigError(f"pad_index must be a token id (an integer of at least 0), got {pad_index!r}")
        super().__init__(
            token_dict,
            cased,
            token_cls=token_cls,
            token_sep=token_sep,
            token_unk=token_unk,
            pad_index=pad_index,
            max_input_chars_per_word=sys.maxsize,
            unknown="piece",
        )


# -- embeddings --------------------------------------------------------------


def _pool(sequence, mask, pooling):
    """keras-bert's poolings over [batch, length, hidden], padding (id 0)
    masked out; `_check_poolable` has refused rows with nothing left."""
    if pooling == POOL_NSP:
        return sequence[:, 0]
    weights = mask[:, :, None].astype(sequence.dtype)
    if pooling == POOL_MAX:
        return np.where(weights > 0, sequence, -np.inf).max(axis=1)
    return (sequence * weights).sum(axis=1) / weights.sum(axis=1)  # POOL_AVE


def _check_poolable(tokens, text_index, poolings):
    """Refuse a row whose every id is 0 when POOL_MAX or POOL_AVE must pool it.

    The model reads id 0 as padding (keras-bert's mask, and kbert's
    attention mask), so such a row has no position to pool: keras-bert
    answers NaN (POOL_AVE) and -1e6 (POOL_MAX).  It happens only when the
    vocabulary gives [CLS], [SEP] and each of the text's pieces id 0.
    `text_index[row]` is the row's text's index in `texts`.

    Raises:
        DataError: naming the text by its index in `texts`.
    """
    masked_only = [p for p in poolings if p != POOL_NSP]
    empty = np.flatnonzero(~(tokens != 0).any(axis=1))
    if masked_only and empty.size:
        raise DataError(
            f"texts[{text_index[empty[0]]}]: every id of its encoding is 0, the id the model masks as padding "
            f"(vocabs gives [CLS] and [SEP] id 0, as every piece of the text), "
            f"so {' and '.join(masked_only)} have no position to pool")


def _combine_windows(pooled, owner, count, poolings, width):
    """Per text, its windows' pooled vectors combined: the mean for
    POOL_NSP and POOL_AVE, the max for POOL_MAX."""
    out = []
    for index in range(count):
        rows = pooled[owner == index]
        parts = [rows[:, k * width:(k + 1) * width] for k in range(len(poolings))]
        out.append(np.concatenate([p.max(axis=0) if pooling == POOL_MAX else p.mean(axis=0)
                                   for p, pooling in zip(parts, poolings)]))
    return out


def _checked_text(text, index):
    """`text` as the tokenizer's arguments: (text,) or (first, second).

    Raises:
        DataError: naming `texts[index]` when it is neither a string nor a
            pair of strings (keras-bert fails there with a TypeError or
            an IndexError, or drops a third string).
    """
    if isinstance(text, str):
        return (text,)
    if isinstance(text, (list, tuple)) and len(text) == 2 and all(isinstance(t, str) for t in text):
        return tuple(text)
    raise DataError(f"texts[{index}]: expected a string or a (first, second) pair of strings, "
                    f"got {type(text).__name__} {text!r:.60}")


def _checked_options(model, texts, poolings, batch_size, long_inputs, stride):
    """The poolings as a list (or None); every option checked.

    Raises:
        ConfigError: naming the option that is out of type or range, or
            a model that does not take keras-bert's two inputs.
        DataError: `texts` is a single string or not iterable.
    """
    if len(model.inputs) != 2:
        raise ConfigError(
            f"model takes {len(model.inputs)} inputs ({', '.join(t.name for t in model.inputs)}); embeddings "
            "come from token and segment ids alone: build it with training=False and without use_task_embed")
    if isinstance(texts, (str, bytes)) or not isinstance(texts, collections.abc.Iterable):
        raise DataError(f"texts must be a list of texts (strings or pairs of strings), got {type(texts).__name__}")
    if not is_int(batch_size, low=1):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(poolings, str):
        poolings = [poolings]
    if poolings is not None and not isinstance(poolings, (list, tuple)):
        raise ConfigError(f"poolings must be a pooling or a list of them, got {poolings!r}")
    for pooling in poolings or ():
        if not isinstance(pooling, str) or pooling not in _POOLINGS:
            raise ConfigError(f"poolings: unknown pooling {pooling!r}; use POOL_NSP, POOL_MAX or POOL_AVE")
    if not isinstance(long_inputs, str) or long_inputs not in ("truncate", "windows"):
        raise ConfigError(f"long_inputs must be 'truncate' or 'windows', got {long_inputs!r}")
    if long_inputs == "windows" and not poolings:
        raise ConfigError("long_inputs='windows' needs poolings: overlapping windows make no single token sequence")
    if stride is not None:
        # encode_windows would read a stride of 0 (or False) as its default.
        if not _is_count(stride, 1):
            raise ConfigError(f"stride must be a positive integer (word pieces), got {stride!r}")
        if long_inputs != "windows":
            raise ConfigError(f"stride {stride} is only read with long_inputs='windows', not {long_inputs!r}")
    if long_inputs == "windows" and model.inputs[0].shape[1] is None and not hasattr(model, "bert_config"):
        raise ConfigError("long_inputs='windows' needs the model's input length: a kbert BertModel, or a model "
                          "built with a fixed seq_len")
    return None if poolings is None else list(poolings)


def extract_embeddings_generator(
    model, texts, poolings=None, vocabs=None, cased=False, batch_size=4, cut_embed=True, output_layer_num=1,
    *, long_inputs="truncate", stride=None,
):
    """The embedding of each text, one at a time.

    `model` is a checkpoint directory (loaded with `output_layer_num`, its
    `vocab.txt` used) or a built model without MLM/NSP heads (then `vocabs`,
    the {token: id} dict, is needed).  A text is a string or a pair of
    strings.  Without `poolings` each embedding is [length, hidden],
    cut after the last non-padding token when `cut_embed`; with a pooling
    (`POOL_NSP`, `POOL_MAX`, `POOL_AVE`) or a list of them, the pooled
    vectors concatenated in that order.  `POOL_MAX` and `POOL_AVE` pool the
    positions whose id is not 0, as keras-bert's mask does; a text whose
    every id is 0 (a vocabulary giving [CLS] and [SEP] id 0) is refused
    rather than pooled into NaN.

    kbert's addition (keyword-only): `long_inputs="windows"` reads a
    single text longer than the model's input whole, as overlapping
    windows (`Tokenizer.encode_windows`, `stride` pieces apart, a positive
    int), and combines each window's pooled vector: the mean for
    `POOL_NSP` (the windows' [CLS] vectors) and `POOL_AVE`, the max for
    `POOL_MAX`.  It needs `poolings`.  The default, "truncate", is
    keras-bert's.

    Raises:
        ConfigError: an argument out of type or range, named (see
            `_checked_options`, `Tokenizer`, `load_trained_model_from_checkpoint`).
        DataError: a text that is neither a string nor a pair of strings,
            or that has nothing to pool (see above), named by its index.
    """
    if isinstance(model, (str, os.PathLike)):
        paths = get_checkpoint_paths(model)
        model = load_trained_model_from_checkpoint(paths.config, paths.checkpoint, output_layer_num=output_layer_num)
        vocabs = load_vocabulary(paths.vocab)
    elif not isinstance(model, keras.Model):
        raise ConfigError(f"model must be a checkpoint directory or a built Keras model, got {type(model).__name__}")
    elif vocabs is None:
        raise ConfigError("vocabs: a {token: id} dict is needed when model is a built model")
    poolings = _checked_options(model, texts, poolings, batch_size, long_inputs, stride)
    seq_len = model.inputs[0].shape[1]
    tokenizer = Tokenizer(vocabs, cased=cased)
    if long_inputs == "windows":
        yield from _windowed_embeddings(model, texts, tokenizer, poolings, batch_size, stride)
        return

    cut = []

    def batches():
        batch = []
        for index, text in enumerate(texts):
            tokens, segments, removed = tokenizer.encode(*_checked_text(text, index), max_len=seq_len,
                                                         return_truncated=True)
            cut.append(removed > 0)
            batch.append((tokens, segments))
            if len(batch) == batch_size:
                yield index + 1 - len(batch), batch
                batch = []
        if batch:
            yield len(cut) - len(batch), batch

    for first, batch in batches():
        width = max(len(tokens) for tokens, _ in batch)  # == seq_len when it is fixed
        tokens = np.zeros((len(batch), width), "int32")
        segments = np.zeros((len(batch), width), "int32")
        for i, (t, s) in enumerate(batch):
            tokens[i, : len(t)], segments[i, : len(s)] = t, s
        if poolings:
            _check_poolable(tokens, np.arange(first, first + len(batch)), poolings)
        sequence = model.predict([tokens, segments], verbose=0)
        if isinstance(sequence, (list, tuple)):  # a model with the pooler: [sequence, pooled]
            sequence = sequence[0]
        sequence = np.asarray(sequence)
        mask = tokens != 0  # keras-bert masks id 0, whatever pad_index is
        if poolings:
            yield from np.concatenate([_pool(sequence, mask, p) for p in poolings], axis=-1)
            continue
        for row, embedding in zip(mask, sequence):
            if cut_embed:
                embedding = embedding[: int(np.flatnonzero(row)[-1]) + 1 if row.any() else 0]
            yield embedding
    if any(cut):
        logger.warning("%d of %d texts were longer than the model's %d positions and truncated "
                       "(long_inputs='windows' reads them whole)", sum(cut), len(cut), seq_len)


def _windowed_embeddings(model, texts, tokenizer, poolings, batch_size, stride):
    """`extract_embeddings_generator`'s windows: `batch_size` texts at a time."""
    seq_len = model.inputs[0].shape[1]
    max_len = seq_len or model.bert_config.max_position_embeddings
    texts = list(texts)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        for i, text in enumerate(chunk):
            if len(_checked_text(text, start + i)) != 1:
                raise ConfigError(f"texts[{start + i}]: long_inputs='windows' reads single texts, not pairs")
        windows = tokenizer.encode_windows(chunk, max_len, stride)
        tokens, segments = windows.token_ids, windows.segment_ids
        if seq_len is not None:  # a fixed input length: pad every window to it
            tokens, segments = (np.pad(a, [(0, 0), (0, seq_len - a.shape[1])]) for a in (tokens, segments))
        _check_poolable(tokens, start + windows.owner, poolings)
        sequence = model.predict([tokens, segments], verbose=0, batch_size=batch_size)
        if isinstance(sequence, (list, tuple)):
            sequence = sequence[0]
        sequence = np.asarray(sequence)
        pooled = np.concatenate([_pool(sequence, tokens != 0, p) for p in poolings], axis=-1)
        yield from _combine_windows(pooled, windows.owner, len(chunk), poolings, sequence.shape[-1])


def extract_embeddings(
    model, texts, poolings=None, vocabs=None, cased=False, batch_size=4, cut_embed=True, output_layer_num=1,
    *, long_inputs="truncate", stride=None,
):
    """`extract_embeddings_generator` as a list (its Raises: apply)."""
    return list(
        extract_embeddings_generator(model, texts, poolings, vocabs, cased, batch_size, cut_embed, output_layer_num,
                                     long_inputs=long_inputs, stride=stride)
    )
