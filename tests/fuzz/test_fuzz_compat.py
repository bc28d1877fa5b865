"""Fuzz: kbert.keras_bert's public functions with odd arguments.

Each argument of each function, in turn, takes every value of
`mutate.ODD_VALUES` (None, bools, zero, negatives, huge and tiny numbers,
NaN, strings, lists, dicts) with the others left valid.  Every outcome must
be a result that works (checked per function below) or a `KbertError`:
never a TypeError, an IndexError, a ZeroDivisionError or NaN.

One value is left out for the sizes of a model (`get_model`'s token_num,
pos_num, embed_dim, transformer_num, head_num, feed_forward_dim): 2**63.
`kbert.config.BertConfig` sets no upper bound, so a 2**63 layer count
builds layers for ever and a 2**63 width fails inside the backend; that
check belongs to BertConfig, not to this module.
"""

import math

import numpy as np
import pytest
from mutate import ODD_VALUES, all_finite, verdict

pytestmark = [pytest.mark.single_backend, pytest.mark.slow]

SIZES = dict(token_num=20, pos_num=16, seq_len=8, embed_dim=8, transformer_num=1, head_num=2, feed_forward_dim=16)
UNBOUNDED_SIZES = {"token_num", "pos_num", "embed_dim", "transformer_num", "head_num", "feed_forward_dim"}
PAIRS = [(["all", "work"], ["no", "play"]), (["jack"], ["a", "dull", "boy"])]
TEXTS = ["all work and no play", ("makes jack", "a dull boy"), "boy"]


def odd_calls(base, skip=()):
    """(description, keyword arguments): each of `base`'s arguments set, in
    turn, to each odd value."""
    for name in base:
        for value in ODD_VALUES:
            if name in skip and value == 2**63:
                continue
            yield f"{name}={value!r:.30}", dict(base, **{name: value})


def check_all(function, base, accept, skip=()):
    """Every odd call: refused, or a result `accept` (an assertion) takes."""
    refused = 0
    for what, kwargs in odd_calls(base, skip):
        outcome, result = verdict(lambda: function(**kwargs))
        if outcome == "refused":
            refused += 1
            assert str(result), what  # a message, naming what was wrong
        else:
            accept(result, kwargs, what)
    assert refused, "no odd value was refused: the arguments went unchecked"


@pytest.fixture(scope="module")
def checkpoint(fixture_checkpoint):
    import kbert.keras_bert as keras_bert

    paths = keras_bert.get_checkpoint_paths(str(fixture_checkpoint))
    return paths, keras_bert.load_vocabulary(paths.vocab)


def test_paths_vocabulary_and_train_steps(checkpoint):
    import kbert.keras_bert as keras_bert

    paths, vocab = checkpoint

    def paths_ok(result, kwargs, what):
        assert all(isinstance(p, str) for p in result), what

    check_all(keras_bert.get_checkpoint_paths, {"model_path": "model"}, paths_ok)
    check_all(keras_bert.load_vocabulary, {"vocab_path": paths.vocab},
              lambda result, kwargs, what: pytest.fail(f"{what}: read a vocabulary from a non-path"))

    def steps_ok(result, kwargs, what):
        total = math.ceil(kwargs["num_example"] / kwargs["batch_size"]) * kwargs["epochs"]
        assert result == (total, math.floor(total * kwargs["warmup_proportion"])), what

    check_all(keras_bert.calc_train_steps, dict(num_example=100, batch_size=8, epochs=2, warmup_proportion=0.1),
              steps_ok)


def test_tokenizer(checkpoint):
    import kbert.keras_bert as keras_bert

    _, vocab = checkpoint
    reference = keras_bert.Tokenizer(vocab).encode("all work", "no play", max_len=8)

    def tokenizer_ok(tokenizer, kwargs, what):
        ids, segments = tokenizer.encode("all work", "no play", max_len=8)
        assert len(ids) == len(segments) == 8 and all(isinstance(i, int) for i in ids), what
        if kwargs["token_dict"] is vocab and kwargs["pad_index"] == 0:
            assert (ids, segments) == reference, what  # only `cased` moved: the same ids

    check_all(keras_bert.Tokenizer, dict(token_dict=vocab, token_cls="[CLS]", token_sep="[SEP]", token_unk="[UNK]",
                                         pad_index=0, cased=False), tokenizer_ok)


def test_gen_batch_inputs(checkpoint):
    import kbert.keras_bert as keras_bert

    _, vocab = checkpoint

    def batch_ok(result, kwargs, what):
        (tokens, segments, masked), (targets, nsp) = result
        n, length = len(kwargs["sentence_pairs"]), kwargs["seq_len"]
        assert tokens.shape == segments.shape == masked.shape == (n, length), what
        assert targets.shape == (n, length, 1) and nsp.shape == (n, 1), what
        assert tokens.min(initial=0) >= 0 and tokens.max(initial=0) < len(vocab), what

    np.random.seed(0)
    check_all(keras_bert.gen_batch_inputs, dict(
        sentence_pairs=PAIRS, token_dict=vocab, token_list=list(vocab), seq_len=8, mask_rate=0.15,
        mask_mask_rate=0.8, mask_random_rate=0.1, swap_sentence_rate=0.5, force_mask=True), batch_ok)


def test_adam_warmup_steps_stay_finite():
    import keras

    import kbert.keras_bert as keras_bert

    def optimizer_ok(adam, kwargs, what):
        weight = keras.Variable(np.ones((2, 2), "float32"), name="kernel")
        for _ in range(3):
            adam.apply_gradients([(np.full((2, 2), 0.5, "float32"), weight)])
        # A rate or decay of 1e30 is a number, and overflows float32 as asked.
        if all(kwargs[name] <= 1 for name in ("learning_rate", "min_lr", "weight_decay")):
            assert all_finite([keras.ops.convert_to_numpy(weight)]), what

    check_all(keras_bert.AdamWarmup, dict(
        decay_steps=10, warmup_steps=2, min_lr=0.0, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
        weight_decay=0.0, weight_decay_pattern=None, amsgrad=False), optimizer_ok)


def test_models(checkpoint):
    import keras

    import kbert.keras_bert as keras_bert

    paths, _ = checkpoint

    def model_ok(result, kwargs, what):
        model = result[0] if isinstance(result, tuple) else result
        if isinstance(model, list):  # get_model(training=False): (inputs, output)
            return
        assert isinstance(model, keras.Model), what

    check_all(keras_bert.get_model, dict(
        SIZES, dropout_rate=0.1, attention_activation=None, feed_forward_activation="gelu", training=True,
        trainable=None, output_layer_num=1, use_task_embed=False, task_num=10), model_ok, skip=UNBOUNDED_SIZES)
    check_all(keras_bert.build_model_from_config, dict(
        config_file=paths.config, training=False, trainable=None, output_layer_num=1, seq_len=8), model_ok)
    check_all(keras_bert.load_trained_model_from_checkpoint, dict(
        config_file=paths.config, checkpoint_file=paths.checkpoint, training=False, trainable=None,
        output_layer_num=1, seq_len=8), model_ok)
    model = keras_bert.get_model(**SIZES)
    check_all(lambda **kwargs: keras_bert.compile_model(model, **kwargs),
              dict(weight_decay=0.01, decay_steps=100, warmup_steps=10, learning_rate=1e-4),
              lambda result, kwargs, what: None)


def test_extract_embeddings(checkpoint, fixture_checkpoint):
    import kbert.keras_bert as keras_bert

    paths, vocab = checkpoint
    model = keras_bert.load_trained_model_from_checkpoint(paths.config, paths.checkpoint, seq_len=None)

    def embeddings_ok(result, kwargs, what):
        texts = kwargs["texts"]
        assert len(result) == len(texts) and all_finite(result), what

    base = dict(model=model, texts=TEXTS, poolings=[keras_bert.POOL_AVE, keras_bert.POOL_MAX], vocabs=vocab,
                cased=False, batch_size=2, cut_embed=True, output_layer_num=1, long_inputs="truncate", stride=None)
    check_all(keras_bert.extract_embeddings, base, embeddings_ok)
    # Each odd value as one of the texts, with good texts around it.
    for value in ODD_VALUES:
        for texts in ([*TEXTS, value], [TEXTS[0], (TEXTS[2], value)]):
            outcome, result = verdict(lambda: keras_bert.extract_embeddings(
                model, texts, poolings=keras_bert.POOL_AVE, vocabs=vocab))
            if outcome == "ok":
                embeddings_ok(result, {"texts": texts}, repr(texts))
    # A checkpoint directory: the options it alone reads.
    for value in ODD_VALUES[:8]:
        outcome, result = verdict(lambda: keras_bert.extract_embeddings(
            str(fixture_checkpoint), TEXTS[:1], poolings=keras_bert.POOL_NSP, output_layer_num=value))
        if outcome == "ok":
            embeddings_ok(result, {"texts": TEXTS[:1]}, f"output_layer_num={value!r}")
