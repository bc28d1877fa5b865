"""kbert.keras_bert against keras-bert itself: same names, same results.

keras-bert runs once in a subprocess (tests/reference_cache.py; tf-keras cannot share a
process with Keras 3; see keras_bert_reference.compat) and writes its
tokenizer outputs, spans, embeddings and model outputs; every test here
compares kbert's with those.  Embeddings agree within 1e-5 (keras-bert's
LayerNormalization epsilon is 1e-14, kbert's 1e-12, see test_keras_bert).
"""

import json
import os

import keras
import numpy as np
import pytest

import kbert
import kbert.keras_bert as keras_bert
from kbert import tokenization
from kbert.errors import ConfigError
from kbert.model import BertModel

import needs
from keras_bert_shared import adam_steps, character_tokenizer, tokenizer_outputs
from reference_cache import run_reference

needs.module("keras_bert")
needs.module("tf_keras")


EXTRA_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused1]", "all", "work", "and", "no", "play",
    "##s", "##ing", "hello", "world", "caf", "##e", "cafe", ",", ".", "!", "'", "你", "好", "世", "界", "jack",
]
TEXTS = [
    "all work and no play", "allx work", "Héllo, wörld!", "HELLO World", "你好钢世界", "Café playing plays",
    "  spaces\tand\nnewlines  ", "", "hello\u200bworld", "naïve jack's", "workallx",
]
PAIRS = [["all work", "no play"], ["hello world", "你好"], ["all work and no play makes jack a dull boy", "all work"]]
MAX_LEN = 8
EMBEDDING_TEXTS = ["all work and no play", "makes jack a dull boy", ["all work", "and no play"], "allx jack boy", "no"]
EXTRACT = {
    "pooled": {"poolings": [keras_bert.POOL_NSP, keras_bert.POOL_MAX, keras_bert.POOL_AVE]},
    "ave": {"poolings": keras_bert.POOL_AVE},
    "sequence": {},
    "uncut": {"cut_embed": False},
    "layers": {"output_layer_num": [-1, -2]},
    "capped": {"output_layer_num": 5, "poolings": keras_bert.POOL_NSP},
}
OUTPUT_LAYERS = {"last_two": [-1, -2], "first_last": [0, -1], "single": [-2], "capped": 7}
TOKENS = [[2, 5, 6, 7, 8, 3, 9, 10, 3, 0, 0, 0], [2, 11, 12, 13, 14, 3, 0, 0, 0, 0, 0, 0]]
SEGMENTS = [[0] * 6 + [1] * 3 + [0] * 3, [0] * 12]
_GRADIENTS = np.random.default_rng(0)
OPTIMIZER = {
    "kernel": [[0.5, -1.0], [2.0, 0.1]], "bias": [0.3, -0.2],
    "kernel_grads": _GRADIENTS.normal(size=(8, 2, 2)).tolist(), "bias_grads": _GRADIENTS.normal(size=(8, 2)).tolist(),
    "cases": {
        "decay": dict(decay_steps=6, warmup_steps=2, min_lr=1e-3, learning_rate=0.1, weight_decay=0.01),
        "amsgrad": dict(decay_steps=5, warmup_steps=0, learning_rate=0.05, amsgrad=True, epsilon=1e-6),
        "lr": dict(decay_steps=10, warmup_steps=3, lr=0.02, beta_1=0.8, beta_2=0.99),
    },
}
TASK = {"task_num": 3, "ids": [2, 0], "embeddings": np.random.default_rng(1).normal(size=(3, 4)).round(3).tolist()}
SIZES = dict(token_num=len(EXTRA_VOCAB), pos_num=16, seq_len=8, embed_dim=8, transformer_num=2, head_num=2, feed_forward_dim=16)
REMATCH = [
    ["All rights reserved.", ["all", "rights", "re", "##ser", "##ved", "."], False],
    ["All rights reserved.", ["[UNK]", "rights", "[UNK]", "##ser", "[UNK]", "[UNK]"], False],
    ["All rights reserved.", ["[UNK]", "righs", "[UNK]", "ser", "[UNK]", "[UNK]"], False],
    ["All rights reserved.", ["all rights", "reserved", "."], True],
    ["#hash tag ##", ["#", "hash", "tag", "##"], False],
    ["嘛呢，吃了吗？", ["[UNK]", "呢", "，", "[UNK]", "了", "吗", "？"], False],
    ["  吃了吗？    ", ["吃", "了", "吗", "？"], False],
    ["Héllo, Wörld!", ["hello", ",", "world", "!"], False],
    ["Héllo, Wörld!", ["Héllo", ",", "W", "##ö", "##rld", "!"], True],
    ["", [], False],
]


def vocabs(fixture_checkpoint):
    return {
        "fixture": keras_bert.load_vocabulary(os.path.join(fixture_checkpoint, "vocab.txt")),
        "extra": {token: i for i, token in enumerate(EXTRA_VOCAB)},
    }


def rematch_cases(fixture_checkpoint):
    """The fixed cases, plus each text as the compat tokenizer cuts it."""
    tokenizer = keras_bert.Tokenizer(vocabs(fixture_checkpoint)["extra"])
    return REMATCH + [[text, tokenizer.tokenize(text)[1:-1], False] for text in TEXTS]


@pytest.fixture(scope="module")
def reference(fixture_checkpoint, tmp_path_factory):
    """keras-bert's results, computed once per module in a subprocess."""
    out = tmp_path_factory.mktemp("keras_bert_compat")
    spec = {
        "vocabs": vocabs(fixture_checkpoint), "texts": TEXTS, "pairs": PAIRS, "max_len": MAX_LEN,
        "rematch": rematch_cases(fixture_checkpoint), "checkpoint": str(fixture_checkpoint),
        "embedding_texts": EMBEDDING_TEXTS, "extract": EXTRACT, "output_layers": OUTPUT_LAYERS,
        "tokens": TOKENS, "segments": SEGMENTS, "optimizer": OPTIMIZER,
        "get_model": SIZES, "task": TASK,
    }
    (out / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    run_reference(["compat", out / "spec.json", out], inputs=[out / "spec.json", fixture_checkpoint],
                  words=["compat"], out_dir=out, outputs=["tokenizers.json", "arrays.npz"])
    with open(out / "tokenizers.json", encoding="utf-8") as f:
        tokenizers = json.load(f)
    return tokenizers, dict(np.load(out / "arrays.npz"))


@pytest.mark.keras_free
def test_tokenizer_matches_keras_bert(reference, fixture_checkpoint):
    theirs, _ = reference
    for name, vocab in vocabs(fixture_checkpoint).items():
        for cased in (False, True):
            ours = tokenizer_outputs(keras_bert.Tokenizer(vocab, cased=cased), TEXTS, PAIRS, MAX_LEN)
            assert ours == theirs[f"{name}/cased={cased}"], f"{name}, cased={cased}"
        subclass = character_tokenizer(keras_bert.Tokenizer)(vocab)
        assert tokenizer_outputs(subclass, TEXTS, PAIRS, MAX_LEN) == theirs[f"{name}/subclass"], name


@pytest.mark.keras_free
def test_rematch_matches_keras_bert(reference, fixture_checkpoint):
    theirs, _ = reference
    cases = rematch_cases(fixture_checkpoint)
    ours = [keras_bert.Tokenizer.rematch(text, tokens, cased=cased) for text, tokens, cased in cases]
    assert json.loads(json.dumps(ours)) == theirs["rematch"]


@pytest.mark.keras_free
def test_unknown_pieces(fixture_checkpoint):
    vocab = vocabs(fixture_checkpoint)["fixture"]
    # kbert's own rule is Google's: a word with an unknown piece is one [UNK].
    assert tokenization.Tokenizer(vocab).encode("allx work")[0] == [2, 1, 6, 3]
    compat = keras_bert.Tokenizer(vocab)
    assert compat.encode("allx work")[0] == [2, 5, 1, 6, 3]
    assert compat.tokenize("allx 钢") == ["[CLS]", "all", "##x", "钢", "[SEP]"]
    with pytest.raises(ConfigError, match="unknown"):
        tokenization.Tokenizer(vocab, unknown="char")


@pytest.mark.keras_free
@pytest.mark.parametrize(
    "make", [keras_bert.Tokenizer, character_tokenizer(keras_bert.Tokenizer)], ids=["compat", "subclass"]
)
def test_batches_honour_keras_bert_rules(make, fixture_checkpoint):
    tokenizer = make(vocabs(fixture_checkpoint)["extra"])
    batch = tokenizer.encode_batch(TEXTS, max_len=MAX_LEN)
    assert batch.token_ids.tolist() == [tokenizer.encode(t, max_len=MAX_LEN)[0] for t in TEXTS]
    with pytest.raises(ConfigError, match="fast=True"):
        tokenizer.encode_batch(TEXTS, fast=True)


@pytest.mark.keras_free
def test_small_helpers():
    paths = keras_bert.get_checkpoint_paths("model")
    assert paths._fields == ("config", "checkpoint", "vocab")
    assert paths == (os.path.join("model", "bert_config.json"), os.path.join("model", "bert_model.ckpt"),
                     os.path.join("model", "vocab.txt"))
    assert keras_bert.get_base_dict() == {"": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
    assert keras_bert.calc_train_steps(num_example=1024, batch_size=32, epochs=10) == (320, 32)
    assert keras_bert.calc_train_steps(1000, 32, 3, warmup_proportion=0.25) == (96, 24)


def test_extract_embeddings_match_keras_bert(reference, fixture_checkpoint):
    _, theirs = reference
    texts = [t if isinstance(t, str) else tuple(t) for t in EMBEDDING_TEXTS]
    results = {key: keras_bert.extract_embeddings(str(fixture_checkpoint), texts, **options)
               for key, options in EXTRACT.items()}
    model = keras_bert.load_trained_model_from_checkpoint(
        os.path.join(fixture_checkpoint, "bert_config.json"), os.path.join(fixture_checkpoint, "bert_model.ckpt"),
        seq_len=None,
    )
    vocab = keras_bert.load_vocabulary(os.path.join(fixture_checkpoint, "vocab.txt"))
    results["built"] = list(keras_bert.extract_embeddings_generator(
        model, texts, poolings=keras_bert.POOL_MAX, vocabs=vocab, batch_size=2))
    for key, embeddings in results.items():
        assert len(embeddings) == len(texts)
        for i, ours in enumerate(embeddings):
            expected = theirs[f"extract/{key}/{i}"]
            assert ours.shape == expected.shape, (key, i)
            np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0, err_msg=f"{key} #{i}")


def test_output_layer_lists_match_keras_bert(reference, fixture_checkpoint):
    _, theirs = reference
    paths = keras_bert.get_checkpoint_paths(str(fixture_checkpoint))
    tokens, segments = np.array(TOKENS, "int32"), np.array(SEGMENTS, "int32")
    for key, layers in OUTPUT_LAYERS.items():
        model = keras_bert.load_trained_model_from_checkpoint(
            paths.config, paths.checkpoint, output_layer_num=layers, seq_len=tokens.shape[1])
        ours = keras.ops.convert_to_numpy(model([tokens, segments]))
        np.testing.assert_allclose(ours, theirs[f"layers/{key}"], atol=1e-5, rtol=0, err_msg=key)


def test_output_layer_num_errors_and_config(fixture_checkpoint):
    paths = keras_bert.get_checkpoint_paths(str(fixture_checkpoint))
    model, config = keras_bert.build_model_from_config(paths.config, output_layer_num=(-1, 0), seq_len=100)
    assert model.get_config()["output_layer_num"] == [-1, 0]
    assert config["max_position_embeddings"] == 16 and model.seq_len == 16
    for bad in ([], [2], [-3], [0.5], 0, "2"):
        with pytest.raises(ConfigError, match="output_layer_num"):
            BertModel(model.bert_config, output_layer_num=bad)
    with pytest.raises(ConfigError, match="task_num must be at least 1"):
        keras_bert.build_model_from_config(paths.config, use_task_embed=True, task_num=0)
    with pytest.raises(ConfigError, match="head_num"):
        keras_bert.build_model_from_config(paths.config, head_num=2)


def test_custom_objects_round_trip(fixture_checkpoint, tmp_path):
    paths = keras_bert.get_checkpoint_paths(str(fixture_checkpoint))
    model = keras_bert.load_trained_model_from_checkpoint(
        paths.config, paths.checkpoint, output_layer_num=[-1, -2], seq_len=12)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects=keras_bert.get_custom_objects())
    assert isinstance(loaded, BertModel) and loaded.get_config() == model.get_config()
    tokens, segments = np.array(TOKENS, "int32"), np.array(SEGMENTS, "int32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded([tokens, segments])),
                                  keras.ops.convert_to_numpy(model([tokens, segments])))


def test_adam_warmup_matches_keras_bert(reference):
    _, theirs = reference
    for key, options in OPTIMIZER["cases"].items():
        adam = keras_bert.AdamWarmup(**options)
        steps = adam_steps(adam, OPTIMIZER, lambda value, name: keras.Variable(value, name=name),
                           keras.ops.convert_to_numpy)
        # Same formula, operations in another order: float32 rounding (~1e-6
        # after a few steps of rate 0.1) and nothing else.
        np.testing.assert_allclose(steps, theirs[f"optimizer/{key}"], atol=1e-5, rtol=0, err_msg=key)
        again = keras_bert.AdamWarmup.from_config(adam.get_config())
        assert again.get_config() == adam.get_config()


def test_adam_warmup_pattern_spares_other_weights():
    # keras-bert documents weight_decay_pattern (its TF 2 optimizer ignores it).
    def final_bias(**options):
        kernel = keras.Variable(np.ones((2, 2), "float32"), name="kernel")
        bias = keras.Variable(np.ones(2, "float32"), name="bias")
        adam = keras_bert.AdamWarmup(decay_steps=4, warmup_steps=1, learning_rate=0.1, **options)
        for _ in range(3):
            adam.apply_gradients([(np.full((2, 2), 0.5, "float32"), kernel), (np.full(2, 0.5, "float32"), bias)])
        return keras.ops.convert_to_numpy(kernel), keras.ops.convert_to_numpy(bias)

    plain_kernel, plain_bias = final_bias()
    kernel, bias = final_bias(weight_decay=0.5, weight_decay_pattern=["kernel"])
    np.testing.assert_array_equal(bias, plain_bias)
    assert np.all(kernel < plain_kernel)


def test_get_model_has_keras_bert_layers(reference):
    theirs = reference[0]["get_model"]
    model = keras_bert.get_model(**SIZES)
    ours = {layer.name: layer.count_params() for layer in model.layers if layer.weights}
    # Every keras-bert layer with weights is there, under its name, with as many.
    assert {name: ours.get(name) for name in theirs["params"]} == theirs["params"]
    assert [list(o.shape) for o in model.outputs] == theirs["outputs"]
    _, output = keras_bert.get_model(**SIZES, training=False, output_layer_num=2)
    assert list(output.shape) == theirs["encoder_output"]


def test_task_embedding_matches_keras_bert(reference, fixture_checkpoint):
    """`use_task_embed`: keras-bert's Input-Task and Embedding-Task, the same outputs."""
    theirs = reference[0]["get_model"]["task"]
    model = keras_bert.get_model(**SIZES, use_task_embed=True, task_num=TASK["task_num"])
    assert [t.name for t in model.inputs] == theirs["inputs"]
    ours = {layer.name: layer.count_params() for layer in model.layers if layer.weights}
    assert {name: ours.get(name) for name in theirs["params"]} == theirs["params"]

    paths = keras_bert.get_checkpoint_paths(fixture_checkpoint)
    model = keras_bert.load_trained_model_from_checkpoint(
        paths.config, paths.checkpoint, seq_len=len(TOKENS[0]), use_task_embed=True, task_num=TASK["task_num"])
    assert model.load_report.initialized == ("Embedding-Task/embeddings",)
    model.get_layer("Embedding-Task").set_weights([np.array(TASK["embeddings"], "float32")])
    tasks = np.array(TASK["ids"])[:, None]
    outputs = model.predict([np.array(TOKENS), np.array(SEGMENTS), tasks], verbose=0)
    np.testing.assert_allclose(outputs, reference[1]["task"], atol=1e-5)
    # Another task, another output; an id beyond task_num is refused.
    other = model.predict([np.array(TOKENS), np.array(SEGMENTS), 1 - np.minimum(tasks, 1)], verbose=0)
    assert np.abs(other - outputs).max() > 1e-3
    with pytest.raises(kbert.DataError, match=r"Input-Task: id 3 .* \(task_num 3\)"):
        model.predict([np.array(TOKENS), np.array(SEGMENTS), tasks + 1], verbose=0)


def test_get_model_learns_mlm_and_nsp_from_scratch():
    """keras-bert's "Train & Use" program: get_model + compile_model on
    batches from gen_batch_inputs; the masked-LM loss falls (next-sentence
    prediction on four sentence types stays near chance in 60 steps)."""
    keras.utils.set_random_seed(3)
    model = keras_bert.get_model(**dict(SIZES, embed_dim=16, feed_forward_dim=32))
    keras_bert.compile_model(model, decay_steps=200, warmup_steps=10, learning_rate=3e-3)
    assert isinstance(model.optimizer, keras_bert.AdamWarmup)
    vocab = {token: i for i, token in enumerate(EXTRA_VOCAB)}
    pairs = [(["all", "work"], ["and", "no", "play"]), (["hello", "world"], ["jack", "play", "##s"]),
             (["你", "好"], ["世", "界"]), (["no", "play"], ["all", "work", "!"])]
    np.random.seed(4)
    losses = []
    for _ in range(60):
        inputs, targets = keras_bert.gen_batch_inputs(pairs * 4, vocab, EXTRA_VOCAB, seq_len=SIZES["seq_len"])
        losses.append(model.train_on_batch(inputs, targets))
    losses = np.array(losses)  # [steps, (total, MLM, NSP)]
    assert np.isfinite(losses).all()
    first, last = losses[:10].mean(axis=0), losses[-10:].mean(axis=0)
    assert last[1] < 0.6 * first[1], (first, last)  # MLM: about 3.2 -> 1.4
    assert last[0] < first[0], (first, last)


@pytest.mark.keras_free
def test_gen_batch_inputs():
    vocab = {token: i for i, token in enumerate(EXTRA_VOCAB)}
    pairs = [(["all", "work"], ["no", "play"]), (["hello"], ["world", "jack", "cafe"]), (["你", "好"], ["世", "界"])]
    np.random.seed(0)
    (tokens, segments, masked), (targets, nsp) = keras_bert.gen_batch_inputs(
        pairs, vocab, EXTRA_VOCAB, seq_len=8, mask_rate=1.0, mask_mask_rate=1.0, swap_sentence_rate=0.0)
    assert tokens.shape == segments.shape == masked.shape == (3, 8) and targets.shape == (3, 8, 1)
    assert nsp.tolist() == [[0.0]] * 3
    assert [vocab.get(t, -1) for t in ["[CLS]", "all", "work", "[SEP]", "no", "play", "[SEP]"]] == targets[0, :7, 0].tolist()
    assert segments[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # padding counts as segment 1, as in keras-bert
    special = np.isin(targets[..., 0], [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")])
    assert (masked == ~special).all() and (tokens[~special] == vocab["[MASK]"]).all()
    (_, _, masked), (_, nsp) = keras_bert.gen_batch_inputs(
        pairs, vocab, EXTRA_VOCAB, seq_len=8, mask_rate=0.0, swap_sentence_rate=1.0)
    assert masked.sum(axis=1).tolist() == [1, 1, 1] and masked[:, 1].all()  # force_mask
    np.random.seed(1)
    for _ in range(5):
        (tokens, _, masked), (targets, nsp) = keras_bert.gen_batch_inputs(pairs, vocab, EXTRA_VOCAB, seq_len=8)
        assert set(nsp.ravel()) <= {0.0, 1.0} and (tokens[masked == 0] == targets[..., 0][masked == 0]).all()


def test_extract_embeddings_windows_combine_each_windows_pooling(fixture_checkpoint):
    """kbert's long_inputs="windows": a 30-piece text through a model of 16
    positions, as the windows' pooled vectors combined by hand here."""
    paths = keras_bert.get_checkpoint_paths(str(fixture_checkpoint))
    model = keras_bert.load_trained_model_from_checkpoint(paths.config, paths.checkpoint, seq_len=None)
    vocab = keras_bert.load_vocabulary(paths.vocab)
    words = "all work and no play makes jack a dull boy".split()
    text = " ".join(words * 3)  # 30 pieces; windows of 14, 7 apart: starts 0, 7, 14 and 16
    short = "jack and play"
    poolings = [keras_bert.POOL_NSP, keras_bert.POOL_MAX, keras_bert.POOL_AVE]
    got = keras_bert.extract_embeddings(model, [text, short], poolings=poolings, vocabs=vocab,
                                        long_inputs="windows", stride=7)
    ids = [vocab[w] for w in text.split()]
    windows = [[2, *ids[s:s + 14], 3] for s in (0, 7, 14, 16)]
    outputs = [keras.ops.convert_to_numpy(model([np.array([w]), np.zeros((1, len(w)), "int32")]))[0]
               for w in windows]
    expected = np.concatenate([np.mean([o[0] for o in outputs], axis=0),
                               np.max([o.max(axis=0) for o in outputs], axis=0),
                               np.mean([o.mean(axis=0) for o in outputs], axis=0)])
    np.testing.assert_allclose(got[0], expected, atol=1e-5)
    # A text that fits is one window: the truncating default's answer.
    plain = keras_bert.extract_embeddings(model, [short], poolings=poolings, vocabs=vocab)
    np.testing.assert_allclose(got[1], plain[0], atol=1e-5)
    with pytest.raises(ConfigError, match="needs poolings"):
        keras_bert.extract_embeddings(model, [text], vocabs=vocab, long_inputs="windows")
    with pytest.raises(ConfigError, match="not pairs"):
        keras_bert.extract_embeddings(model, [(text, short)], poolings=poolings, vocabs=vocab, long_inputs="windows")


@pytest.mark.keras_free
def test_tokenizer_refuses_what_is_not_a_vocabulary(fixture_checkpoint):
    """Defect 9: Tokenizer(None) was a TypeError (and Tokenizer("abc") a
    ValueError from dict()); each odd argument is a ConfigError naming it."""
    import types

    vocab = vocabs(fixture_checkpoint)["extra"]
    for token_dict in (None, "abc", [1, 2], 5, {"[CLS]", "[SEP]"}):
        with pytest.raises(ConfigError, match="token_dict"):
            keras_bert.Tokenizer(token_dict)
    for name in ("token_cls", "token_sep", "token_unk"):
        for token in (None, 0, ["[CLS]"]):
            with pytest.raises(ConfigError, match=name):
                keras_bert.Tokenizer(vocab, **{name: token})
    for pad_index in (None, -1, "0", True, 1.0):
        with pytest.raises(ConfigError, match="pad_index"):
            keras_bert.Tokenizer(vocab, pad_index=pad_index)
    # Any mapping is a vocabulary: the same ids as from the dict.
    text = "all work and no play"
    assert keras_bert.Tokenizer(types.MappingProxyType(vocab)).encode(text, max_len=9) == \
        keras_bert.Tokenizer(vocab).encode(text, max_len=9)


@pytest.mark.keras_free
def test_calc_train_steps_refuses_what_is_not_a_count():
    """Defect 9: calc_train_steps(0, 0, 1) was a ZeroDivisionError."""
    import math

    for args, name in [((0, 0, 1), "batch_size"), ((10, -2, 1), "batch_size"), ((10, 2.0, 1), "batch_size"),
                       ((-1, 4, 1), "num_example"), ((None, 4, 1), "num_example"), ((10, 4, True), "epochs"),
                       ((10, 4, -1), "epochs")]:
        with pytest.raises(ConfigError, match=name):
            keras_bert.calc_train_steps(*args)
    for proportion in (-0.1, 1.5, float("nan"), "0.1", None):
        with pytest.raises(ConfigError, match="warmup_proportion"):
            keras_bert.calc_train_steps(10, 4, 1, warmup_proportion=proportion)
    for n, batch, epochs, proportion in [(0, 1, 3, 0.1), (1, 32, 1, 1.0), (1000, 32, 3, 0.25), (7, 7, 0, 0.5)]:
        total = math.ceil(n / batch) * epochs
        assert keras_bert.calc_train_steps(n, batch, epochs, proportion) == (total, math.floor(total * proportion))
    assert keras_bert.calc_train_steps(np.int64(1000), np.int64(32), 3) == (96, 9)


def test_extract_embeddings_refuses_texts_that_are_not_texts(fixture_checkpoint):
    """Defect 9: [None] was a TypeError and [("a",)] an IndexError; a text
    that is not a string or a pair of strings is a DataError naming it."""
    with pytest.raises(kbert.DataError, match=r"texts\[0\]: expected a string or a \(first, second\) pair"):
        keras_bert.extract_embeddings(str(fixture_checkpoint), [None])
    paths = keras_bert.get_checkpoint_paths(str(fixture_checkpoint))
    model = keras_bert.load_trained_model_from_checkpoint(paths.config, paths.checkpoint, seq_len=None)
    vocab = keras_bert.load_vocabulary(paths.vocab)
    for texts, index in ([("all",)], 0), (["all", ("all", "work", "play")], 1), (["all", "work", 3], 2), \
            ([b"all work"], 0):
        with pytest.raises(kbert.DataError, match=rf"texts\[{index}\]"):
            keras_bert.extract_embeddings(model, texts, vocabs=vocab, poolings=keras_bert.POOL_NSP)
    with pytest.raises(kbert.DataError, match="texts must be a list"):
        keras_bert.extract_embeddings(model, "all work", vocabs=vocab)
    for options, name in [({"poolings": 3}, "poolings"), ({"poolings": [None]}, "poolings"),
                          ({"long_inputs": None}, "long_inputs"), ({"stride": 4}, "stride"),
                          ({"poolings": keras_bert.POOL_NSP, "long_inputs": "windows", "stride": 0}, "stride")]:
        with pytest.raises(ConfigError, match=name):
            keras_bert.extract_embeddings(model, ["all work"], vocabs=vocab, **options)
    with pytest.raises(ConfigError, match="model must be a checkpoint directory or a built Keras model"):
        keras_bert.extract_embeddings(None, ["all work"], vocabs=vocab)
    # A list pair is a pair: the same vector as the tuple (to float rounding: TensorFlow's oneDNN kernels may
    # round two rows of one batch differently by an ulp), and not the vector of the first text alone.
    as_list, as_tuple, first = keras_bert.extract_embeddings(
        model, [["all work", "no play"], ("all work", "no play"), "all work"], vocabs=vocab,
        poolings=keras_bert.POOL_AVE)
    np.testing.assert_allclose(as_list, as_tuple, rtol=1e-6, atol=1e-7)
    assert np.abs(as_list - first).max() > 1e-3


def test_pool_ave_over_a_vocabulary_with_cls_at_id_0(fixture_checkpoint):
    """Defect 9: POOL_AVE gave NaN (POOL_MAX -inf) for a text whose every id
    is 0.  keras-bert (run by hand on these inputs) masks id 0, in attention
    and in pooling, and answers NaN and -1e6 there; kbert keeps its mask, so a
    vocabulary with only [CLS] at 0 gets keras-bert's answer (the mean
    over the other positions, computed here), and a row with nothing left
    to pool is refused."""
    paths = keras_bert.get_checkpoint_paths(str(fixture_checkpoint))
    model = keras_bert.load_trained_model_from_checkpoint(paths.config, paths.checkpoint, seq_len=None)
    vocab = keras_bert.load_vocabulary(paths.vocab)
    vocab["[CLS]"], vocab["[PAD]"] = 0, vocab["[CLS]"]
    texts = ["", "all work and no play"]
    got = keras_bert.extract_embeddings(model, texts, vocabs=vocab, poolings=[keras_bert.POOL_AVE, keras_bert.POOL_MAX])
    for text, vector in zip(texts, got):
        ids = np.array([[0, *(vocab[w] for w in text.split()), vocab["[SEP]"]]], "int32")
        sequence = keras.ops.convert_to_numpy(model([ids, np.zeros_like(ids)]))[0]
        real = ids[0] != 0
        np.testing.assert_allclose(vector, np.concatenate([sequence[real].mean(axis=0), sequence[real].max(axis=0)]),
                                   atol=1e-5)
        assert np.isfinite(vector).all()

    vocab["[SEP]"], vocab["[UNK]"] = 0, vocab["[SEP]"]  # "" is now all id 0
    for options in ({"poolings": keras_bert.POOL_AVE}, {"poolings": [keras_bert.POOL_NSP, keras_bert.POOL_MAX]},
                    {"poolings": keras_bert.POOL_AVE, "long_inputs": "windows"}):
        with pytest.raises(kbert.DataError, match=r"texts\[1\]: every id of its encoding is 0"):
            keras_bert.extract_embeddings(model, ["all work", "", "no play"], vocabs=vocab, **options)
    # [CLS] alone needs no mask: its vector is still given.
    [nsp] = keras_bert.extract_embeddings(model, [""], vocabs=vocab, poolings=keras_bert.POOL_NSP)
    ids = np.zeros((1, 2), "int32")
    np.testing.assert_allclose(nsp, keras.ops.convert_to_numpy(model([ids, ids]))[0, 0], atol=1e-6)


@pytest.mark.keras_free
def test_paths_that_are_not_paths_are_refused(fixture_checkpoint):
    """get_checkpoint_paths(None), load_vocabulary(0) and
    build_model_from_config([]) were TypeErrors from os.path and open()."""
    with pytest.raises(ConfigError, match="model_path must be a path"):
        keras_bert.get_checkpoint_paths(None)
    with pytest.raises(ConfigError, match="vocab_path must be a path"):
        keras_bert.load_vocabulary(0)
    with pytest.raises(ConfigError, match="config_file must be a path"):
        keras_bert.build_model_from_config([])
    import pathlib

    assert keras_bert.load_vocabulary(pathlib.Path(fixture_checkpoint) / "vocab.txt") == \
        dict(tokenization.load_vocab(os.path.join(fixture_checkpoint, "vocab.txt")))


@pytest.mark.keras_free
def test_gen_batch_inputs_refuses_odd_arguments():
    """gen_batch_inputs gave TypeErrors, KeyErrors and IndexErrors for odd
    arguments (seq_len=1, a token_dict without [MASK], a string of pairs),
    and an NSP array of shape (0,) for no pairs."""
    vocab = {token: i for i, token in enumerate(EXTRA_VOCAB)}
    pairs = [(["all", "work"], ["no", "play"])]
    good = dict(sentence_pairs=pairs, token_dict=vocab, token_list=EXTRA_VOCAB, seq_len=8)
    for change, name in [({"sentence_pairs": "abc"}, "sentence_pairs"),
                         ({"sentence_pairs": [(["a"],)]}, r"sentence_pairs\[0\]"),
                         ({"sentence_pairs": [(["a"], [1])]}, r"sentence_pairs\[0\]"),
                         ({"token_dict": None}, "token_dict"),
                         ({"token_dict": {"[UNK]": 1}}, r"token_dict must give '\[MASK\]'"),
                         ({"token_list": ["all", "nope"]}, "token_list: 'nope'"), ({"token_list": 3}, "token_list"),
                         ({"seq_len": 1}, "seq_len"), ({"seq_len": 2**63}, "seq_len"), ({"seq_len": 8.0}, "seq_len"),
                         ({"mask_rate": float("nan")}, "mask_rate"), ({"mask_mask_rate": "0.8"}, "mask_mask_rate"),
                         ({"swap_sentence_rate": 2}, "swap_sentence_rate"),
                         ({"token_list": ["[CLS]", "[SEP]"], "mask_random_rate": 0.5}, "no ordinary token")]:
        with pytest.raises((ConfigError, kbert.DataError), match=name):
            keras_bert.gen_batch_inputs(**dict(good, **change))
    (tokens, _, _), (targets, nsp) = keras_bert.gen_batch_inputs(**dict(good, sentence_pairs=[]))
    assert tokens.shape == (0, 8) and targets.shape == (0, 8, 1) and nsp.shape == (0, 1)
    # The shortest row: [CLS] and the position force_mask marks.
    np.random.seed(0)
    (tokens, _, masked), _ = keras_bert.gen_batch_inputs(**dict(good, seq_len=2, mask_rate=0.0))
    assert tokens[0, 0] == vocab["[CLS]"] and masked.tolist() == [[0, 1]]


def test_adam_warmup_refuses_odd_arguments():
    """AdamWarmup took learning_rate=0 as a Keras ValueError, a string
    weight_decay_pattern as its characters, beta_1=1 (a division by zero in
    the bias correction), and weight_decay=2**63 failed in its first step."""
    for options, name in [({"learning_rate": "0.1"}, "learning_rate"), ({"learning_rate": -1.0}, "learning_rate"),
                          ({"beta_1": 1.0}, "beta_1"), ({"beta_2": float("nan")}, "beta_2"),
                          ({"epsilon": 0}, "epsilon"),
                          ({"min_lr": None}, "min_lr"), ({"weight_decay": -0.1}, "weight_decay"),
                          ({"weight_decay_pattern": "kernel"}, "weight_decay_pattern"), ({"amsgrad": "yes"}, "amsgrad"),
                          ({"unknown_option": 1}, "AdamWarmup")]:
        with pytest.raises(ConfigError, match=name):
            keras_bert.AdamWarmup(decay_steps=10, warmup_steps=2, **options)

    def steps(**options):
        kernel = keras.Variable(np.ones((2, 2), "float32"), name="kernel")
        adam = keras_bert.AdamWarmup(**dict(dict(decay_steps=4, warmup_steps=0, learning_rate=0.1), **options))
        for _ in range(2):
            adam.apply_gradients([(np.full((2, 2), 0.5, "float32"), kernel)])
        return keras.ops.convert_to_numpy(kernel)

    # An int is its float: a rate of 0 leaves the weights alone, and a huge
    # int decay steps as the same float does.
    np.testing.assert_array_equal(steps(learning_rate=0), np.ones((2, 2)))
    np.testing.assert_array_equal(steps(lr=1), steps(learning_rate=1.0))
    np.testing.assert_array_equal(steps(weight_decay=2**63, learning_rate=1e-30),
                                  steps(weight_decay=float(2**63), learning_rate=1e-30))


def test_the_docs_ner_program_masks_padding_out_of_the_loss(monkeypatch):
    """docs/keras-bert.md's token classifier, run as the page shows it: the
    padding mask reaches the loss, which is NumPy's mean over the real
    positions only."""
    import pathlib
    import re

    from needs import missing

    repo = pathlib.Path(__file__).resolve().parents[1]
    if not (repo.parent / "shared" / "fixtures" / "keras_bert_test_checkpoint" / "bert_config.json").is_file():
        missing("the shared fixture ../shared/fixtures/keras_bert_test_checkpoint is missing")
    page = (repo / "docs" / "keras-bert.md").read_text(encoding="utf-8")
    code = re.search(r"<!-- tested: tests/test_keras_bert_compat.py -->\n```python\n(.*?)```", page, re.S).group(1)
    monkeypatch.chdir(repo)
    scope = {}
    exec(compile(code, "docs/keras-bert.md", "exec"), scope)  # noqa: S102 - the page's own program
    model, x, y = scope["model"], scope["x"], scope["y"]
    probs = np.asarray(model.predict(x, verbose=0))  # [1, 6, 3]
    nll = -np.log(probs[0, np.arange(6), y[0]])
    real = int(np.count_nonzero(scope["indices"]))
    assert real == 4
    np.testing.assert_allclose(scope["loss"], nll[:real].mean(), rtol=1e-4)
    assert not np.isclose(nll[:real].mean(), nll.mean(), rtol=1e-3)  # counting the pads would differ
