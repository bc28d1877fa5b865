"""Distillation: the loss, a smoke run on a known teacher, resuming, evaluating."""

import json

import keras
import numpy as np
import pytest

from kbert.config import BertConfig
from kbert.distill import (
    DistillConfig,
    StoredLogitsLoss,
    distill,
    distill_online,
    evaluate_student,
    pack_targets,
    predict_logits,
    token_only_teacher,
)
from kbert.errors import ConfigError, DataError
from kbert.layers.token_embedding import TokenEmbedding
from kbert.materials import EncodedSplit, generate_materials
from kbert.model import BertModel
from kbert.student import StudentModel, build_student

V, H, C, T = 60, 16, 2, 8  # T = 8: one batch width, so JAX compiles each step once
VOCAB = ["[PAD]"] + [f"w{i}" for i in range(1, V)]


def bag_of_words_teacher(seed=0):
    """A fixed random linear function of the bag of words, shaped like a kbert teacher.

    logits = sum over tokens of E[token] @ A, with E[0] = 0 so padding adds
    nothing; E is the `Embedding-Token` matrix the student starts from.
    """
    rng = np.random.default_rng(seed)
    tokens = keras.Input((None,), dtype="int32", name="Input-Token")
    segments = keras.Input((None,), dtype="int32", name="Input-Segment")
    embedded, _ = TokenEmbedding(V, H, name="Embedding-Token")(tokens)
    # Segments do not matter to this teacher; touching them keeps the input connected.
    unused = keras.ops.expand_dims(keras.ops.cast(segments, "float32") * 0.0, -1)
    summed = keras.ops.sum(embedded + unused, axis=1)
    logits = keras.layers.Dense(C, use_bias=False, name="Classifier-Dense")(summed)
    teacher = keras.Model([tokens, segments], logits)
    matrix = rng.normal(size=(V, H)).astype(np.float32)
    matrix[0] = 0.0
    teacher.get_layer("Embedding-Token").embeddings.assign(matrix)
    teacher.get_layer("Classifier-Dense").kernel.assign(rng.normal(size=(H, C)).astype(np.float32))
    return teacher


def random_split(rng, n, labeled=True):
    lengths = rng.integers(3, T + 1, n)
    x = np.zeros((n, T), np.int32)
    for i, length in enumerate(lengths):
        x[i, :length] = rng.integers(1, V, length)
    labels = rng.integers(0, C, n) if labeled else np.full(n, -1)
    return EncodedSplit(x, np.zeros_like(x), labels, np.array([f"s{i}" for i in range(n)]), lengths)


@pytest.fixture(scope="module")
def materials_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    teacher = bag_of_words_teacher()
    splits = {"train": random_split(rng, 500, labeled=False), "dev": random_split(rng, 200)}
    # Gold dev labels = the teacher's answers, so dev accuracy measures agreement too.
    dev = splits["dev"]
    dev.labels = np.argmax(teacher.predict_on_batch([dev.token_ids, dev.segment_ids]), axis=1)
    out = tmp_path_factory.mktemp("materials")
    generate_materials(teacher, splits, str(out), vocab=VOCAB, task="BOW", max_seq_len=T,
                       teacher_id="bag-of-words", batch_size=100, verbose=False)
    return str(out)


# ---------------------------------------------------------------- loss


def numpy_logits(rng, n):
    return rng.normal(size=(n, 3)).astype(np.float32) * 2


def test_loss_mse_and_ce(rng):
    teacher, student = numpy_logits(rng, 6), numpy_logits(rng, 6)
    labels = np.array([0, 2, -1, 1, -1, 0])
    y_true = pack_targets(labels, teacher)
    mse = float(StoredLogitsLoss(alpha=0.0)(y_true, student))
    np.testing.assert_allclose(mse, ((teacher - student) ** 2).mean(), rtol=1e-5)

    log_p = student - np.log(np.exp(student).sum(1, keepdims=True))
    gold = labels >= 0
    ce = -log_p[gold, labels[gold]].mean()  # rows without a gold label do not count
    np.testing.assert_allclose(float(StoredLogitsLoss(alpha=1.0)(y_true, student)), ce, rtol=1e-5)
    np.testing.assert_allclose(float(StoredLogitsLoss(alpha=0.3)(y_true, student)), 0.3 * ce + 0.7 * mse, rtol=1e-5)


def test_loss_kl_with_temperature(rng):
    teacher, student = numpy_logits(rng, 5), numpy_logits(rng, 5)
    t = 2.5

    def softmax(z):
        e = np.exp(z / t - (z / t).max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p, q = softmax(teacher), softmax(student)
    expected = t**2 * (p * np.log(p / q)).sum(1).mean()
    loss = StoredLogitsLoss(alpha=0.0, loss="kl", temperature=t)
    np.testing.assert_allclose(float(loss(pack_targets(np.full(5, -1), teacher), student)), expected, rtol=1e-4)
    assert StoredLogitsLoss.from_config(loss.get_config()).get_config() == loss.get_config()


def test_config_validation():
    with pytest.raises(ConfigError):
        DistillConfig(alpha=1.5).validate()
    with pytest.raises(ConfigError):
        DistillConfig(loss="l1").validate()
    with pytest.raises(ConfigError):
        DistillConfig(variant="dynamic").validate()


# ---------------------------------------------------------------- smoke distillation


def agreement(model, split):
    return float((predict_logits(model, split.x).argmax(1) == split.y.argmax(1)).mean())


def test_student_learns_the_teacher(materials_dir, tmp_path):
    from kbert.materials import load_materials

    dev = load_materials(materials_dir).splits["dev"]
    majority = np.bincount(dev.y.argmax(1), minlength=C).max() / len(dev)
    untrained = build_student(load_materials(materials_dir).embedding, C, filters=32)

    summary = distill(materials_dir, str(tmp_path), epochs=6, batch_size=25, learning_rate=3e-3,
                      seed=1, verbose=0)
    student = keras.saving.load_model(summary["path"])
    assert isinstance(student, StudentModel)
    learned = agreement(student, dev)
    # Chance is the majority label's share; the student must clearly beat it.
    assert learned >= max(majority, agreement(untrained, dev)) + 0.15, (learned, majority)
    assert learned >= 0.8

    history = json.loads((tmp_path / "history.json").read_text())
    assert [record["epoch"] for record in history] == list(range(1, 7))
    best = max(history, key=lambda record: record["dev_accuracy"])
    assert summary["best_epoch"] == best["epoch"]
    np.testing.assert_allclose(summary["dev_accuracy"], learned)  # gold dev labels are the teacher's
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["distill"]["epochs"] == 6 and config["materials"]["teacher"]["id"] == "bag-of-words"
    assert config["result"]["best_epoch"] == summary["best_epoch"]
    # global_step counts the optimizer's steps up to the kept epoch.
    splits = load_materials(materials_dir).splits
    rows = sum(len(splits[name]) for name in ("train", "augmented") if name in splits)
    steps_per_epoch = -(-rows // 25)
    assert [r["global_step"] for r in history] == [steps_per_epoch * e for e in range(1, 7)]
    assert json.loads((tmp_path / "run.json").read_text())["global_step"] == best["global_step"]

    scores = evaluate_student(str(tmp_path), dev.x, dev.label, vocab=VOCAB)
    assert scores["count"] == len(dev) and np.isclose(scores["accuracy"], learned)
    assert np.isfinite(scores["loss"])


# ---------------------------------------------------------------- resuming


def test_resume_continues_after_the_last_checkpoint(materials_dir, tmp_path):
    small = dict(batch_size=100, seed=2, verbose=0)
    distill(materials_dir, str(tmp_path), epochs=1, **small)
    first = json.loads((tmp_path / "history.json").read_text())
    assert len(first) == 1

    with pytest.raises(ConfigError, match="resume"):
        distill(materials_dir, str(tmp_path), epochs=2, **small)
    with pytest.raises(ConfigError, match="other settings"):
        distill(materials_dir, str(tmp_path), epochs=2, alpha=0.5, resume=True, **small)

    with pytest.raises(ConfigError, match="other settings"):
        distill(materials_dir, str(tmp_path), epochs=2, length_bucketing=False, resume=True, **small)
    # A run that predates a setting resumes, the setting compared as its default.
    state_path = tmp_path / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    del state["config"]["length_bucketing"]
    state_path.write_text(json.dumps(state))

    summary = distill(materials_dir, str(tmp_path), epochs=2, resume=True, **small)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [record["epoch"] for record in history] == [1, 2]
    assert history[0] == first[0]  # the first epoch was not run again
    assert summary["epochs"] == 2
    assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == [
        f"best-{summary['best_epoch']}.weights.h5", "epoch-2.keras", "state.json"]

    # Materials of another vocabulary cannot continue this student.
    state = json.loads(state_path.read_text())
    state["identity"]["vocab"]["sha256"] = "0" * 64
    state_path.write_text(json.dumps(state))
    with pytest.raises(DataError, match="another vocabulary"):
        distill(materials_dir, str(tmp_path), epochs=3, resume=True, **small)
    with pytest.raises(DataError, match="another vocabulary"):
        evaluate_student(str(tmp_path), np.ones((2, 3), np.int32), [0, 1], vocab=VOCAB[:-1] + ["x"])


def test_evaluate_refuses_ids_outside_the_vocabulary(materials_dir, tmp_path):
    model = build_student(np.zeros((V, H), np.float32), C, filters=4)
    model.save(tmp_path / "student.keras")
    with pytest.raises(DataError, match="outside the student's vocabulary"):
        evaluate_student(str(tmp_path), np.full((2, 3), V, np.int32), [0, 1])


# ---------------------------------------------------------------- online, keras.distillation


def test_token_only_teacher_rebuilds_segments():
    # A "teacher" that answers with the segment ids it was given.
    tokens = keras.Input((None,), dtype="int32")
    segments = keras.Input((None,), dtype="int32")
    answer = keras.ops.cast(segments, "float32") + 0.0 * keras.ops.cast(tokens, "float32")
    echo = keras.Model([tokens, segments], answer)
    wrapped = token_only_teacher(echo, sep_id=3)
    got = wrapped(np.array([[2, 5, 3, 7, 8, 3, 0, 0], [2, 5, 3, 0, 0, 0, 0, 0]], np.int32))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(got),
                                  [[0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]])
    zeros = token_only_teacher(echo)(np.array([[2, 5, 3, 7, 3]], np.int32))
    assert not keras.ops.convert_to_numpy(zeros).any()


def test_online_distillation_step():
    # One encoder layer: the point is the Distiller's wiring, and JAX compiles less.
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16)
    teacher = BertModel(config, num_labels=2)
    matrix = keras.ops.convert_to_numpy(teacher.get_layer("Embedding-Token").embeddings.value)
    student = build_student(matrix, 2, filters=8)
    x = np.random.default_rng(0).integers(1, 50, (8, 6)).astype(np.int32)
    before = keras.ops.convert_to_numpy(student.get_layer("Student-Logits").kernel.value).copy()
    history = distill_online(teacher, student, x, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(before, keras.ops.convert_to_numpy(student.get_layer("Student-Logits").kernel.value))
