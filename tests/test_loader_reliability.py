"""Bad input meets one error family (issues 12 and 13): inputs outside the
model, config fields of the wrong type, half heads, odd tensor dtypes, and
configs that disagree with the checkpoint they describe.  Every refusal is a
`KbertError` naming the file, field, variable or input, and a refused input
leaves the model exactly as it was."""

import json
import math
import os
import re
import time

import numpy as np
import pytest

from kbert import (
    BertConfig,
    CheckpointError,
    ConfigError,
    DataError,
    KbertError,
    Tokenizer,
    checkpoint_mapping,
    load_checkpoint,
)
from kbert.cli import main as cli
from kbert.weights import name_map

from original_checkpoint import TINY_CONFIG, random_bert_weights, write_checkpoint

CONFIG = TINY_CONFIG
HF_CONFIG = {**CONFIG, "model_type": "bert", "layer_norm_eps": 1e-12, "hidden_act": "gelu_new"}

keras_free = pytest.mark.keras_free


# -- helpers ----------------------------------------------------------------


def hf_tensors(weights):
    """Original-format weights -> the same tensors under HF names and layouts."""
    original = {r.slot: r for r in name_map.expand(name_map.ORIGINAL, CONFIG["num_hidden_layers"])}
    tensors = {}
    for row in name_map.expand(name_map.HUGGING_FACE, CONFIG["num_hidden_layers"]):
        source = original[row.slot]
        if source.name in weights:
            keras_value = name_map.apply_transform(weights[source.name], source.transform)
            tensors[row.name] = np.ascontiguousarray(name_map.invert_transform(keras_value, row.transform))
    return tensors


def write_hf(directory, tensors, config=None):
    from safetensors.numpy import save_file

    os.makedirs(directory, exist_ok=True)
    save_file(tensors, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config or HF_CONFIG, f)
    return directory


def write_config(directory, name="bert_config.json", **changes):
    path = os.path.join(directory, name)
    with open(path) as f:
        values = json.load(f)
    values.update(changes)
    with open(path, "w") as f:
        json.dump(values, f)


def names_command(path, capsys):
    """`kbert names PATH`: (exit status, stderr)."""
    status = cli(["names", str(path)])
    return status, capsys.readouterr().err


@pytest.fixture
def original_dir(tmp_path, rng):
    weights = random_bert_weights(CONFIG, rng, heads=("pooler",))
    return write_checkpoint(tmp_path / "original", CONFIG, weights, adam=False)


@pytest.fixture
def hf_dir(tmp_path, rng):
    weights = random_bert_weights(CONFIG, rng, heads=("pooler",))
    return write_hf(tmp_path / "hf", hf_tensors(weights))


@pytest.fixture(scope="module")
def fixture_model(fixture_checkpoint):
    return load_checkpoint(fixture_checkpoint)


def ids(rng, batch, length, high=15):
    return rng.integers(1, high, (batch, length)).astype("int32")


# -- A: one automatic choice of heads -----------------------------------------


@keras_free
def test_automatic_heads_are_one_library_function(tmp_path, rng, monkeypatch, capsys):
    """`kbert names`/`checkpoint_mapping` and `kbert convert` both ask
    `loading.default_heads`, and build what it says."""
    from kbert.weights import loading

    weights = random_bert_weights(CONFIG, rng, heads=("pretraining",), num_labels=3)
    write_checkpoint(tmp_path / "src", CONFIG, weights, adam=False)
    checkpoint = loading.open_checkpoint(tmp_path / "src")
    # Pre-training heads win over the classifier, as in both callers before.
    assert loading.default_heads(checkpoint) == dict(training=True, num_labels=None, with_pooler=False, head="sequence")

    asked = []
    real = loading.default_heads

    def spy(checkpoint):
        asked.append(checkpoint.reader.path)
        return dict(real(checkpoint), training=False, num_labels=3)

    monkeypatch.setattr(loading, "default_heads", spy)
    report = checkpoint_mapping(tmp_path / "src")
    assert "output_weights" in {a.name for a in report.assigned}
    assert cli(["convert", str(tmp_path / "src"), str(tmp_path / "dst")]) == 0
    assert len(asked) == 2
    converted = loading.open_checkpoint(tmp_path / "dst")
    assert "output_bias" in converted.reader.shapes and "cls/predictions/output_bias" not in converted.reader.shapes


# -- B: a refused input leaves the model as it was ----------------------------


def test_over_long_input_is_refused_and_the_model_still_works(fixture_model, rng):
    model = fixture_model
    x = ids(rng, 2, 5)
    before = model.predict([x, 0 * x], verbose=0)
    before_batch = np.asarray(model.predict_on_batch([x, 0 * x]))
    long = ids(rng, 2, 17)
    for call in (lambda: model.predict([long, 0 * long], verbose=0),
                 lambda: model.predict_on_batch([long, 0 * long]),
                 lambda: model([long, 0 * long])):
        with pytest.raises(DataError, match=r"Input-Token.*length 17.*max_position_embeddings 16"):
            call()
    np.testing.assert_array_equal(model.predict([x, 0 * x], verbose=0), before)
    np.testing.assert_array_equal(np.asarray(model.predict_on_batch([x, 0 * x])), before_batch)


def test_over_long_batch_from_a_py_dataset_is_refused_and_the_model_still_works(fixture_model, rng):
    """Batches that only exist while predict runs are checked as they come."""
    import keras

    model = fixture_model
    x = ids(rng, 2, 5)
    before = model.predict([x, 0 * x], verbose=0)

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            t = x if i == 0 else ids(rng, 2, 17)
            return ([t, 0 * t],)

    with pytest.raises(DataError, match="Input-Token.*length 17"):
        model.predict(Batches(), verbose=0)
    np.testing.assert_array_equal(model.predict([x, 0 * x], verbose=0), before)


def test_interrupted_predict_leaves_the_model_usable(fixture_checkpoint, rng):
    """Whatever stops a predict loop half-way (here a callback after the first
    batch; on JAX the trainer has detached the variables by then), the model
    keeps its weights."""
    import keras

    model = load_checkpoint(fixture_checkpoint)
    x = ids(rng, 4, 5)
    before = model.predict([x, 0 * x], verbose=0)

    class Stop(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.predict([x, 0 * x], batch_size=2, verbose=0, callbacks=[Stop()])
    np.testing.assert_array_equal(model.predict([x, 0 * x], verbose=0), before)


def test_unchecked_dataset_refused_while_tracing_leaves_the_model_usable(fixture_checkpoint, rng):
    """A tf.data pipeline is not checked on the host; on JAX and torch its
    over-long batch is refused while tracing (`Embedding-Position`), and the
    model survives that too."""
    import keras

    if keras.backend.backend() == "tensorflow":
        pytest.skip("in a TensorFlow graph the length is unknown until the step runs (README, Errors)")
    import tensorflow as tf

    model = load_checkpoint(fixture_checkpoint)
    x = ids(rng, 2, 5)
    before = model.predict([x, 0 * x], verbose=0)
    long = ids(rng, 2, 17)
    with pytest.raises(DataError, match="17.*max_position_embeddings 16"):
        model.predict(tf.data.Dataset.from_tensors(((long, 0 * long),)), verbose=0)
    np.testing.assert_array_equal(model.predict([x, 0 * x], verbose=0), before)


# -- C: ids outside the model --------------------------------------------------


@pytest.mark.parametrize("where, value, message", [
    ("token", 15, r"Input-Token.*15.*vocab_size 15"),
    ("token", 10**6, r"Input-Token.*1000000.*vocab_size 15"),
    ("token", -1, r"Input-Token.*-1.*vocab_size 15"),
    ("segment", 2, r"Input-Segment.*2.*type_vocab_size 2"),
    ("segment", -1, r"Input-Segment.*-1.*type_vocab_size 2"),
])
def test_ids_outside_the_model_are_refused(fixture_model, rng, where, value, message):
    model = fixture_model
    x = ids(rng, 2, 5)
    before = model.predict([x, 0 * x], verbose=0)
    tokens, segments = x.copy(), np.zeros_like(x)
    (tokens if where == "token" else segments)[1, 3] = value
    for call in (lambda: model.predict([tokens, segments], verbose=0),
                 lambda: model.predict_on_batch([tokens, segments]),
                 lambda: model([tokens, segments])):
        with pytest.raises(DataError, match=message):
            call()
    np.testing.assert_array_equal(model.predict([x, 0 * x], verbose=0), before)


def test_valid_inputs_of_other_integral_types_still_work(fixture_model, rng):
    model = fixture_model
    x = ids(rng, 2, 5)
    expected = model.predict([x, 0 * x], verbose=0)
    # keras-bert's examples pass float zeros as segments
    np.testing.assert_allclose(model.predict([x.astype("int64"), np.zeros(x.shape)], verbose=0), expected)
    with pytest.raises(DataError, match="Input-Segment.*0.5"):
        model.predict([x, np.full(x.shape, 0.5)], verbose=0)


def test_predict_bucketed_and_fit_check_ids_before_any_step(fixture_checkpoint, rng):
    import keras

    from kbert.batching import BucketedBatches
    from kbert.inference import predict_bucketed

    x = ids(rng, 6, 8)
    with pytest.raises(DataError, match=r"Input-Token.*99.*vocab_size 15"):
        predict_bucketed(load_checkpoint(fixture_checkpoint), [np.where(x == x[4, 2], 99, x), 0 * x])

    model = load_checkpoint(fixture_checkpoint, num_labels=2, trainable=True)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [v.numpy().copy() for v in model.weights]
    bad = x.copy()
    bad[5, 1] = 40  # in the last rows: fit must refuse before the first step
    batches = BucketedBatches((bad, 0 * bad), np.zeros(6, "int32"), np.full(6, 8), batch_size=2, seed=0)
    with pytest.raises(DataError, match=r"Input-Token.*40.*vocab_size 15"):
        model.fit(batches, epochs=1, verbose=0)
    with pytest.raises(DataError, match=r"Input-Segment.*7"):
        model.fit([x, np.full(x.shape, 7)], np.zeros(6, "int32"), epochs=1, verbose=0)
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())
    model.fit(BucketedBatches((x, 0 * x), np.zeros(6, "int32"), np.full(6, 8), batch_size=2, seed=0),
              epochs=1, verbose=0)


def test_inputs_by_name_and_of_the_wrong_structure(fixture_model, rng):
    model = fixture_model
    x = ids(rng, 2, 5)
    expected = model.predict([x, 0 * x], verbose=0)
    np.testing.assert_array_equal(model.predict({"Input-Token": x, "Input-Segment": 0 * x}, verbose=0), expected)
    with pytest.raises(DataError, match="Input-Segment"):
        model.predict({"Input-Token": x}, verbose=0)
    with pytest.raises(DataError, match="takes 2 inputs"):
        model.predict([x, 0 * x, x], verbose=0)
    with pytest.raises(DataError, match="Input-Segment has shape \\[2, 4\\] but Input-Token has \\[2, 5\\]"):
        model.predict_on_batch([x, x[:, :4] * 0])
    with pytest.raises(DataError, match="Input-Token: expected ids of shape \\[batch, length\\]"):
        model.predict_on_batch([x[0], 0 * x[0]])


@keras_free
def test_bucketed_batches_refuse_arrays_that_do_not_line_up(rng):
    from kbert.batching import BucketedBatches

    x = ids(rng, 6, 8)
    with pytest.raises(DataError, match="5 rows.*6"):
        BucketedBatches((x, x[:5]), np.zeros(6), np.full(6, 8), batch_size=2, seed=0)
    with pytest.raises(DataError, match="targets.*4.*6"):
        BucketedBatches(x, np.zeros(4), np.full(6, 8), batch_size=2, seed=0)
    with pytest.raises(DataError, match="lengths.*-1"):
        BucketedBatches(x, np.zeros(6), np.array([8, 8, -1, 8, 8, 8]), batch_size=2, seed=0)


@keras_free
def test_vocab_with_more_lines_than_vocab_size_is_refused_at_load(tmp_path, rng):
    weights = random_bert_weights(CONFIG, rng)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{k}" for k in range(20)]  # 25 lines
    write_checkpoint(tmp_path, CONFIG, weights, adam=False, vocab=vocab)
    with pytest.raises(CheckpointError, match=r"vocab\.txt.*25.*vocab_size.*20"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"vocab\.txt.*25.*vocab_size.*20"):
        checkpoint_mapping(tmp_path)


def test_vocab_with_fewer_lines_than_vocab_size_loads(fixture_checkpoint):
    # The shared fixture itself: 14 lines, vocab_size 15 (padded embedding table).
    model = load_checkpoint(fixture_checkpoint)
    assert model.vocab_file.endswith("vocab.txt")


@keras_free
def test_tokenizer_refuses_ids_beyond_a_given_vocab_size(fixture_checkpoint):
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 40}
    Tokenizer(vocab, vocab_size=41)
    with pytest.raises(ConfigError, match=r"'a'.*40.*vocab_size 20"):
        Tokenizer(vocab, vocab_size=20)
    tok = Tokenizer.from_vocab_file(fixture_checkpoint / "vocab.txt", vocab_size=15)
    assert tok.vocab_size <= 15
    with pytest.raises(ConfigError, match=r"vocab\.txt.*vocab_size 10"):
        Tokenizer.from_vocab_file(fixture_checkpoint / "vocab.txt", vocab_size=10)


# -- D: config fields of the wrong type ----------------------------------------

BAD_FIELDS = [
    ("hidden_dropout_prob", "abc"), ("hidden_dropout_prob", None), ("hidden_dropout_prob", [0.1]),
    ("hidden_dropout_prob", "0.1"), ("hidden_dropout_prob", True), ("hidden_dropout_prob", False),
    ("hidden_dropout_prob", 1.0), ("hidden_dropout_prob", math.nan),
    ("attention_probs_dropout_prob", "0.1"), ("attention_probs_dropout_prob", -0.1),
    ("initializer_range", "x"), ("initializer_range", math.inf), ("initializer_range", -0.02),
    ("initializer_range", None),
    ("vocab_size", True), ("vocab_size", 20.0), ("vocab_size", "20"), ("hidden_size", None),
    ("num_hidden_layers", 0), ("num_attention_heads", [2]), ("intermediate_size", -1),
    ("max_position_embeddings", 1.5), ("type_vocab_size", False), ("type_vocab_size", {"n": 2}),
    ("hidden_act", 3), ("hidden_act", ["gelu"]), ("hidden_act", None),
    ("gelu_approximate", "yes"), ("gelu_approximate", 1),
]


@keras_free
@pytest.mark.parametrize("field, value", BAD_FIELDS, ids=[f"{f}={v!r}" for f, v in BAD_FIELDS])
def test_bad_original_config_field(original_dir, capsys, field, value):
    write_config(original_dir, **{field: value})
    status, err = names_command(original_dir, capsys)
    assert status == 2, err
    assert "bert_config.json" in err and f"`{field}`" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match=f"`{field}`"):
        BertConfig.from_dict({**CONFIG, field: value})


HF_BAD_FIELDS = [
    ("layer_norm_eps", "1e-12"), ("layer_norm_eps", None), ("layer_norm_eps", math.nan),
    ("layer_norm_eps", 1e-5), ("hidden_act", ["gelu"]), ("hidden_act", 5), ("hidden_act", "swish"),
    ("position_embedding_type", ["absolute"]), ("position_embedding_type", "relative_key"),
    ("model_type", ["bert"]), ("model_type", "roberta"), ("hidden_dropout_prob", "0.1"),
    ("vocab_size", True), ("initializer_range", "x"),
]


@keras_free
@pytest.mark.parametrize("field, value", HF_BAD_FIELDS, ids=[f"{f}={v!r}" for f, v in HF_BAD_FIELDS])
def test_bad_hf_config_field(hf_dir, capsys, field, value):
    write_config(hf_dir, "config.json", **{field: value})
    status, err = names_command(hf_dir, capsys)
    assert status == 2, err
    assert "config.json" in err and f"`{field}`" in err


@keras_free
def test_direct_bert_config_checks_types():
    with pytest.raises(ConfigError, match="`hidden_dropout_prob`.*'0.1'"):
        BertConfig(vocab_size=10, hidden_size=8, num_attention_heads=2, hidden_dropout_prob="0.1")
    config = BertConfig(vocab_size=10, hidden_size=8, num_attention_heads=2, hidden_dropout_prob=0)
    assert config.hidden_dropout_prob == 0


@keras_free
@pytest.mark.parametrize("name", ["bert_config.json", "config.json"])
def test_deeply_nested_json_is_a_config_error(original_dir, hf_dir, capsys, name):
    directory = original_dir if name == "bert_config.json" else hf_dir
    with open(os.path.join(directory, name), "w") as f:
        f.write("[" * 100_000 + "]" * 100_000)
    status, err = names_command(directory, capsys)
    assert status == 2 and name in err and "nested" in err


@keras_free
def test_saver_state_file_not_utf8(original_dir, capsys):
    for suffix in (".index", ".data-00000-of-00001"):
        os.rename(original_dir / f"bert_model.ckpt{suffix}", original_dir / f"model.ckpt-7{suffix}")
    (original_dir / "checkpoint").write_bytes(b'model_checkpoint_path: "model.ckpt-\xff\xfe7"\n')
    status, err = names_command(original_dir, capsys)
    assert status == 2 and f"{original_dir / 'checkpoint'}" in err and "UTF-8" in err
    (original_dir / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-7"\n')
    assert names_command(original_dir, capsys)[0] == 0


@keras_free
@pytest.mark.parametrize("weight_map, message", [
    ({"embeddings.word_embeddings.weight": 3}, "'embeddings.word_embeddings.weight'.*3"),
    ({"embeddings.word_embeddings.weight": "../elsewhere.safetensors"}, "elsewhere"),
    ({"embeddings.word_embeddings.weight": None}, "'embeddings.word_embeddings.weight'.*None"),
    ({"embeddings.word_embeddings.weight": ["model-00001-of-00001.safetensors"]}, r"\['model-00001"),
    ({"embeddings.word_embeddings.weight": "model-00001-of-00001.safetensors",
      "pooler.dense.weight": "model-00001-of-00001.safetensors", "not.in.the.shard": "model-00001-of-00001.safetensors"},
     "not.in.the.shard"),
])
def test_bad_shard_index(hf_dir, capsys, weight_map, message):
    os.rename(hf_dir / "model.safetensors", hf_dir / "model-00001-of-00001.safetensors")
    index = {"metadata": {}, "weight_map": weight_map}
    (hf_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    status, err = names_command(hf_dir, capsys)
    assert status == 2 and "model.safetensors.index.json" in err, err
    assert re.search(message, err), err


# -- E: half a classifier head -------------------------------------------------


@keras_free
@pytest.mark.parametrize("present, missing", [
    ("classifier.weight", "classifier.bias"),
    ("classifier.bias", "classifier.weight"),
])
def test_half_hf_classifier(tmp_path, rng, capsys, present, missing):
    weights = random_bert_weights(CONFIG, rng, heads=("pooler",), num_labels=3)
    tensors = hf_tensors(weights)
    del tensors[missing]
    write_hf(tmp_path / "hf", tensors)
    for load in (lambda: load_checkpoint(tmp_path / "hf", num_labels=3),
                 lambda: load_checkpoint(tmp_path / "hf"),
                 lambda: checkpoint_mapping(tmp_path / "hf")):
        with pytest.raises(CheckpointError, match=f"{present}.*{missing}"):
            load()
    assert names_command(tmp_path / "hf", capsys)[0] == 2


@keras_free
@pytest.mark.parametrize("scope", ["", "loss/"])
@pytest.mark.parametrize("present, missing", [("output_weights", "output_bias"), ("output_bias", "output_weights")])
def test_half_original_classifier(tmp_path, rng, scope, present, missing):
    weights = random_bert_weights(CONFIG, rng, heads=("pooler",), num_labels=3)
    extra = {scope + present: weights.pop(present)}
    weights.pop(missing)
    write_checkpoint(tmp_path, CONFIG, weights, adam=False, extra=extra)
    for load in (lambda: load_checkpoint(tmp_path, num_labels=3), lambda: checkpoint_mapping(tmp_path)):
        with pytest.raises(CheckpointError, match=f"'{scope}{present}'.*'{scope}{missing}'"):
            load()


@keras_free
@pytest.mark.parametrize("bias, weight", [
    (np.float32(0.5), (3, 8)),      # a scalar bias
    ((3, 1), (3, 8)),               # a matrix bias
    ((3,), (24,)),                  # a vector kernel
    ((3,), (2, 8)),                 # labels disagree
])
def test_wrong_rank_classifier_tensors(tmp_path, rng, bias, weight):
    weights = random_bert_weights(CONFIG, rng, heads=("pooler",))
    weights["output_bias"] = np.asarray(bias, np.float32) if np.ndim(bias) == 0 else np.zeros(bias, np.float32)
    weights["output_weights"] = np.zeros(weight, np.float32)
    write_checkpoint(tmp_path, CONFIG, weights, adam=False)
    shapes = rf"\[{', '.join(map(str, np.shape(weights['output_weights'])))}\].*\[{', '.join(map(str, np.shape(weights['output_bias'])))}\]"
    for load in (lambda: load_checkpoint(tmp_path, num_labels=3), lambda: checkpoint_mapping(tmp_path)):
        with pytest.raises(CheckpointError, match=shapes):
            load()


# -- F: tensor dtypes -----------------------------------------------------------


def _original_with(tmp_path, rng, name, value):
    weights = random_bert_weights(CONFIG, rng, heads=("pooler",))
    weights[name] = value
    return write_checkpoint(tmp_path / "dtype", CONFIG, weights, adam=False)


@keras_free
@pytest.mark.parametrize("dtype", ["string", "int32", "int64", "bool", "complex64"])
def test_original_non_float_tensor_is_refused(tmp_path, rng, dtype):
    h = CONFIG["hidden_size"]
    value = {"string": np.array([b"x"] * h, object), "bool": np.ones(h, bool)}.get(dtype)
    if value is None:
        value = np.ones(h, dtype)
    directory = _original_with(tmp_path, rng, "bert/embeddings/LayerNorm/beta", value)
    with pytest.raises(CheckpointError, match=f"'bert/embeddings/LayerNorm/beta'.*{dtype}"):
        load_checkpoint(directory)


@keras_free
@pytest.mark.parametrize("dtype", ["int64", "bool", "complex64", "uint8"])
def test_hf_non_float_tensor_is_refused(tmp_path, rng, dtype):
    weights = random_bert_weights(CONFIG, rng, heads=("pooler",))
    tensors = hf_tensors(weights)
    tensors["embeddings.LayerNorm.bias"] = np.ones(CONFIG["hidden_size"], dtype)
    write_hf(tmp_path / "hf", tensors)
    with pytest.raises(CheckpointError, match=f"'embeddings.LayerNorm.bias'.*{dtype}"):
        load_checkpoint(tmp_path / "hf")


def test_float_tensors_of_every_width_load_cast_to_float32(tmp_path, rng):
    import ml_dtypes

    weights = random_bert_weights(CONFIG, rng, heads=("pooler",))
    reference = load_checkpoint(write_checkpoint(tmp_path / "f32", CONFIG, weights, adam=False))
    for dtype in (np.float16, ml_dtypes.bfloat16, np.float64):
        cast = {k: v.astype(dtype) for k, v in weights.items()}
        for directory in (write_hf(tmp_path / f"hf-{np.dtype(dtype).name}", hf_tensors(cast)),
                          write_checkpoint(tmp_path / f"o-{np.dtype(dtype).name}", CONFIG, cast, adam=False)):
            model = load_checkpoint(directory)
            for a, b in zip(reference.weights, model.weights):
                assert b.dtype == "float32"
                expected = a.numpy().astype(dtype).astype(np.float32)
                np.testing.assert_array_equal(b.numpy(), expected, err_msg=f"{directory} {a.path}")


@keras_free
def test_float64_beyond_float32_is_refused(tmp_path, rng):
    value = np.full(CONFIG["hidden_size"], 1e300)
    directory = _original_with(tmp_path, rng, "bert/embeddings/LayerNorm/beta", value)
    with pytest.raises(CheckpointError, match="'bert/embeddings/LayerNorm/beta'.*finite"):
        load_checkpoint(directory)


# -- G: the config is checked against the checkpoint's index first -------------


@keras_free
@pytest.mark.parametrize("changes, message", [
    (dict(num_hidden_layers=100_000), r"num_hidden_layers.*100000.*2 encoder layers.*layer_2"),
    (dict(intermediate_size=10**9), r"'bert/encoder/layer_0/intermediate/dense/kernel'.*\[8, 12\].*\[8, 1000000000\]"),
    (dict(vocab_size=10**9), r"'bert/embeddings/word_embeddings'.*\[20, 8\].*\[1000000000, 8\]"),
    (dict(hidden_size=2**20, num_attention_heads=2), r"'bert/embeddings/word_embeddings'.*\[20, 8\].*\[20, 1048576\]"),
    (dict(max_position_embeddings=10**8), r"'bert/embeddings/position_embeddings'.*\[16, 8\].*\[100000000, 8\]"),
    (dict(type_vocab_size=10**8), r"'bert/embeddings/token_type_embeddings'.*\[2, 8\].*\[100000000, 8\]"),
])
def test_config_larger_than_the_checkpoint_fails_fast(original_dir, hf_dir, changes, message):
    hf_message = (message.replace("'bert/embeddings/word_embeddings'", "'embeddings.word_embeddings.weight'")
                  .replace("'bert/embeddings/position_embeddings'", "'embeddings.position_embeddings.weight'")
                  .replace("'bert/embeddings/token_type_embeddings'", "'embeddings.token_type_embeddings.weight'")
                  .replace(r"'bert/encoder/layer_0/intermediate/dense/kernel'.*\[8, 12\].*\[8, 1000000000\]",
                           r"'encoder.layer.0.intermediate.dense.weight'.*\[12, 8\].*\[1000000000, 8\]")
                  .replace("layer_2", r"encoder\.layer\.2"))
    for directory, pattern, name in ((original_dir, message, "bert_config.json"),
                                     (hf_dir, hf_message, "config.json")):
        write_config(directory, name, **changes)
        for load in (load_checkpoint, checkpoint_mapping):
            started = time.perf_counter()
            with pytest.raises(CheckpointError, match=pattern):
                load(directory)
            assert time.perf_counter() - started < 3


def test_the_fixture_against_a_100000_layer_config(fixture_checkpoint, tmp_path):
    values = json.loads((fixture_checkpoint / "bert_config.json").read_text())
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="100000.*2 encoder layers"):
        load_checkpoint(fixture_checkpoint / "bert_model.ckpt", config={**values, "num_hidden_layers": 100_000})
    assert time.perf_counter() - started < 3


def test_every_refusal_is_a_kbert_error():
    # The classes the README promises (a ConfigError/DataError is also a ValueError).
    assert issubclass(ConfigError, KbertError) and issubclass(DataError, KbertError)
    assert issubclass(CheckpointError, KbertError)


@pytest.mark.parametrize("options", [
    dict(seq_len="8"), dict(seq_len=8.0), dict(num_labels=2.0), dict(output_layer_num=True),
    dict(training="yes"), dict(with_pooler=None), dict(trainable="Encoder"),
], ids=lambda o: f"{next(iter(o))}={next(iter(o.values()))!r}")
def test_model_options_of_the_wrong_type(fixture_checkpoint, options):
    with pytest.raises(ConfigError, match=next(iter(options))):
        load_checkpoint(fixture_checkpoint, **options)


@keras_free
def test_checkpoint_and_config_arguments_of_the_wrong_type(fixture_checkpoint):
    with pytest.raises(CheckpointError, match="preset name or a path"):
        load_checkpoint(None)
    with pytest.raises(ConfigError, match="config must be"):
        load_checkpoint(fixture_checkpoint / "bert_model.ckpt", config=5)
