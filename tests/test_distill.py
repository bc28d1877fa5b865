"""Distillation: the loss, a smoke run on a known teacher, resuming."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from kbert import runs
from kbert.distillation import DistillOptions, StoredLogitsLoss, distill, pack_targets, predict_logits
from kbert.errors import ConfigError, DataError
from kbert.layers import StudentConv, StudentEmbedding, StudentPool
from kbert.layers.token_embedding import TokenEmbedding
from kbert.materials import EncodedSplit, MaterialsOptions, generate_materials, load_materials
from kbert.registry import STUDENTS, StudentSpec
from kbert.student import BiLSTMStudent, CNNStudent, build_student

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
    generate_materials(teacher, splits, str(out), vocab=VOCAB, teacher_id="bag-of-words",
                       options=MaterialsOptions(task="BOW", max_seq_len=T, batch_size=100), verbose=False)
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


def test_options_validation():
    for bad in (dict(alpha=1.5), dict(loss="l1"), dict(variant="dynamic"), dict(epochs=0), dict(epochs=True),
                dict(batch_size=2.5), dict(learning_rate=0), dict(temperature=-1), dict(alpha="0.5"),
                dict(train_splits="train"), dict(train_splits=("train", 3))):
        with pytest.raises(ConfigError):
            DistillOptions(**bad)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DistillOptions().epochs = 3


# ---------------------------------------------------------------- smoke distillation


def agreement(model, split):
    return float((predict_logits(model, split.x).argmax(1) == split.y.argmax(1)).mean())


@pytest.mark.parametrize("kind", ["cnn", "bilstm"])
def test_student_learns_the_teacher(materials_dir, tmp_path, kind):
    from kbert.materials import load_materials

    dev = load_materials(materials_dir).splits["dev"]
    majority = np.bincount(dev.y.argmax(1), minlength=C).max() / len(dev)
    untrained = build_student(load_materials(materials_dir).embedding, C, student=kind,
                              **({"filters": 32} if kind == "cnn" else {}))

    record = distill(materials_dir, str(tmp_path), DistillOptions(epochs=6, batch_size=25, learning_rate=3e-3,
                                                                  seed=1, student=kind), verbose=0)
    summary = record.results
    student = keras.saving.load_model(tmp_path / "student.keras")
    assert isinstance(student, CNNStudent if kind == "cnn" else BiLSTMStudent)
    learned = agreement(student, dev)
    # Chance is the majority label's share; the student must clearly beat it.
    assert learned >= max(majority, agreement(untrained, dev)) + 0.15, (learned, majority)
    assert learned >= 0.8

    stored = runs.read_run(tmp_path)
    assert stored == record and stored.kind == "student" and stored.status == "complete"
    history = stored.results["history"]
    assert [epoch["epoch"] for epoch in history] == list(range(1, 7))
    # The epoch is picked on the held-out train rows (no gold labels there:
    # agreement with the teacher); dev is scored once, for that epoch only.
    assert all("dev_accuracy" not in epoch for epoch in history)
    # The latest epoch within one standard error of the best agreement.
    top = max(epoch["holdout_agreement"] for epoch in history)
    best = [epoch for epoch in history if epoch["holdout_agreement"] >= top - epoch["selection_error"]][-1]
    assert all(epoch["selection"] == "agreement" for epoch in history)
    assert summary["best_epoch"] == best["epoch"] and summary["selected_on"] == "holdout"
    np.testing.assert_allclose(summary["dev_accuracy"], learned)  # gold dev labels are the teacher's
    assert stored.options["epochs"] == 6 and summary["materials"]["teacher"]["id"] == "bag-of-words"
    assert (stored.task, stored.max_seq_len, stored.num_labels) == ("BOW", T, C)
    assert (tmp_path / "vocab.txt").read_text().splitlines() == VOCAB
    # global_step counts the optimizer's steps up to the kept epoch.
    rows = len(load_materials(materials_dir).splits["train"]) - 25  # 5% of 500 held out
    steps_per_epoch = -(-rows // 25)
    assert [r["global_step"] for r in history] == [steps_per_epoch * e for e in range(1, 7)]
    assert stored.global_step == best["global_step"]


@keras.saving.register_keras_serializable(package="kbert_tests")
class WidthOneStudent(keras.Model):
    """A student the registry does not ship: one filter width, 1, over the embedding."""

    def __init__(self, vocab_size, num_labels, embedding_dim=8, variant="non-static", filters=16, **kwargs):
        ids = keras.Input((None,), dtype="int32", name="Student-Input-Token")
        vectors = StudentEmbedding(vocab_size, embedding_dim, variant, name="Student-Embedding")(ids)
        maps = StudentConv(filters, 1, name="Student-Conv-1")(vectors)
        pooled = StudentPool((1,), name="Student-Pool")([ids, maps])
        super().__init__(ids, keras.layers.Dense(num_labels, name="Student-Logits")(pooled), **kwargs)
        self.vocab_size, self.num_labels, self.embedding_dim = vocab_size, num_labels, embedding_dim
        self.variant, self.filters = variant, filters

    def get_config(self):
        return {"name": self.name, "vocab_size": self.vocab_size, "num_labels": self.num_labels,
                "embedding_dim": self.embedding_dim, "variant": self.variant, "filters": self.filters}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@pytest.mark.single_backend  # the registry and the CLI's wiring; the students train on every backend above
def test_a_student_registered_in_one_row_runs_through_kbert_distill(materials_dir, tmp_path, monkeypatch, capsys):
    from kbert.cli import main as cli
    from kbert.materials import load_materials

    monkeypatch.setitem(STUDENTS, "width1", StudentSpec("width1", f"{__name__}:WidthOneStudent", "width-1 student"))
    out = tmp_path / "student"
    assert cli(["distill", "--materials", materials_dir, "--output", str(out), "--student", "width1",
                "--epochs", "4", "--batch-size", "25", "--learning-rate", "3e-3", "--seed", "1"]) == 0
    assert "best epoch" in capsys.readouterr().out
    student = keras.saving.load_model(out / "student.keras")
    assert type(student) is WidthOneStudent
    record = runs.read_run(out)
    assert record.options["student"] == "width1"
    history = record.results["history"]
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    # The reported dev score is the saved student's (gold dev labels are the teacher's).
    dev = load_materials(materials_dir).splits["dev"]
    np.testing.assert_allclose(record.results["dev_accuracy"], agreement(student, dev))
    # A name the registry lacks is refused by the flag's choices.
    monkeypatch.delitem(STUDENTS, "width1")
    with pytest.raises(SystemExit):
        cli(["distill", "--materials", materials_dir, "--output", str(tmp_path / "x"), "--student", "width1"])


@pytest.mark.single_backend  # subprocesses on the backend the suite starts with
def test_the_console_script_trains_and_reloads_a_student(tmp_path):
    """The `kbert` command loads Keras only when a command runs: its commands
    must still find kbert's registered classes when they read a `.keras` file."""
    import os
    import subprocess
    import sys

    from kbert.predict import load_classifier

    # A vocabulary with the special tokens, which `kbert predict` encodes with.
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(4, V)]
    rng = np.random.default_rng(3)
    materials_dir = str(tmp_path / "materials")
    generate_materials(bag_of_words_teacher(), {"train": random_split(rng, 100, False), "dev": random_split(rng, 40)},
                       materials_dir, vocab=vocab, teacher_id="bag-of-words",
                       options=MaterialsOptions(task="BOW", max_seq_len=T, batch_size=100), verbose=False)
    script = os.path.join(os.path.dirname(sys.executable), "kbert")
    out = tmp_path / "student"

    def command(*args):
        done = subprocess.run([script, *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    command("distill", "--materials", materials_dir, "--output", str(out), "--epochs", "1", "--batch-size", "50")
    printed = json.loads(command("predict", "--model", str(out), "w1 w2 w3 w7").stdout.splitlines()[0])
    expected = load_classifier(out).predict(["w1 w2 w3 w7"])[0]
    assert printed["label"] == expected.label
    np.testing.assert_allclose(printed["logits"], expected.logits, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- resuming


@pytest.mark.single_backend  # state.json's checks; bit-for-bit resumes are tested on every backend below
def test_resume_continues_after_the_last_checkpoint(materials_dir, tmp_path):
    def options(**changes):
        return DistillOptions(**dict(dict(batch_size=100, seed=2), **changes))

    def history():
        return runs.read_run(tmp_path).results["history"]

    distill(materials_dir, str(tmp_path), options(epochs=1), verbose=0)
    first = history()
    assert len(first) == 1

    with pytest.raises(ConfigError, match="resume"):
        distill(materials_dir, str(tmp_path), options(epochs=2), verbose=0)
    with pytest.raises(ConfigError, match="other settings"):
        distill(materials_dir, str(tmp_path), options(epochs=2, alpha=0.5), resume=True, verbose=0)

    with pytest.raises(ConfigError, match="other settings"):
        distill(materials_dir, str(tmp_path), options(epochs=2, length_bucketing=False), resume=True, verbose=0)
    # A run that predates a setting resumes, the setting compared as its default.
    state_path = tmp_path / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    del state["config"]["length_bucketing"]
    # A run from before unlabeled shards, narrow_start and embedding_rows, of
    # materials without shards, resumes.
    state["config"]["train_splits"] = ["train", "augmented"]
    del state["config"]["narrow_start"]
    del state["config"]["embedding_rows"]
    del state["identity"]["rows"]
    # A run from before the holdout picked epochs on dev: its holdout is 0,
    # which an unset holdout keeps on resume, and another one is refused.
    del state["config"]["holdout"]
    state_path.write_text(json.dumps(state))
    with pytest.raises(ConfigError, match="other settings"):
        distill(materials_dir, str(tmp_path), options(epochs=2, holdout=0.05), resume=True, verbose=0)
    state["config"]["holdout"] = 0.05
    state_path.write_text(json.dumps(state))

    record = distill(materials_dir, str(tmp_path), options(epochs=2), resume=True, verbose=0)
    assert [epoch["epoch"] for epoch in history()] == [1, 2]
    assert history()[0] == first[0]  # the first epoch was not run again
    assert record.results["epochs"] == 2
    assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == [
        f"best-{record.results['best_epoch']}.weights.h5", "epoch-2.keras", "state.json"]

    # Nor materials that gained rows since (unlabeled text added, say).
    state = json.loads(state_path.read_text())
    loaded = load_materials(materials_dir)
    assert state["identity"]["rows"] == {name: loaded.rows(name) for name in ("train", "augmented", "unlabeled")
                                         if loaded.rows(name)}
    state["identity"]["rows"]["train"] += 1
    state_path.write_text(json.dumps(state))
    with pytest.raises(DataError, match="rows, the materials now give"):
        distill(materials_dir, str(tmp_path), options(epochs=3), resume=True, verbose=0)
    state["identity"]["rows"]["train"] -= 1
    state_path.write_text(json.dumps(state))

    # Materials of another vocabulary cannot continue this student.
    state = json.loads(state_path.read_text())
    state["identity"]["vocab"]["sha256"] = "0" * 64
    state_path.write_text(json.dumps(state))
    with pytest.raises(DataError, match="another vocabulary"):
        distill(materials_dir, str(tmp_path), options(epochs=3), resume=True, verbose=0)


def test_a_teachers_directory_is_not_overwritten(materials_dir, tmp_path):
    runs.write_run(tmp_path, runs.RunRecord(kind="teacher", status="training", options={}))
    with pytest.raises(ConfigError, match="holds a teacher run"):
        distill(materials_dir, str(tmp_path), DistillOptions(epochs=1), verbose=0)
    assert runs.read_run(tmp_path).kind == "teacher"


def test_empty_training_or_dev_rows_are_refused_before_keras(tmp_path):
    """A 0-row split loads (it is well-formed) but cannot train or pick an
    epoch: a DataError naming the directory, not an error inside Keras' trainer."""
    rng = np.random.default_rng(1)
    teacher = bag_of_words_teacher()
    empty = EncodedSplit(np.zeros((0, T), np.int32), np.zeros((0, T), np.int32), np.zeros(0, np.int32),
                         np.array([], dtype=str), np.zeros(0, np.int32))
    options = MaterialsOptions(task="BOW", max_seq_len=T)
    for name, splits in (("train", {"train": empty, "dev": random_split(rng, 20)}),
                         ("dev", {"train": random_split(rng, 20), "dev": empty})):
        out = tmp_path / name
        generate_materials(teacher, splits, str(out), vocab=VOCAB, teacher_id="t", options=options, verbose=False)
        with pytest.raises(DataError, match=f"{out}.*(no rows in the training|non-empty 'dev')"):
            distill(str(out), str(tmp_path / f"student-{name}"), DistillOptions(epochs=1), verbose=0)


def test_a_resumed_distillation_is_bit_for_bit_the_uninterrupted_one(materials_dir, tmp_path):
    """Dropout included: epoch n's batches and random masks depend on
    (seed, epoch) only, so stopping after epoch 1 changes nothing."""
    options = dict(batch_size=100, seed=4)
    straight = distill(materials_dir, str(tmp_path / "straight"), DistillOptions(epochs=3, **options), verbose=0)
    distill(materials_dir, str(tmp_path / "resumed"), DistillOptions(epochs=1, **options), verbose=0)
    resumed = distill(materials_dir, str(tmp_path / "resumed"), DistillOptions(epochs=3, **options), resume=True,
                      verbose=0)

    def numbers(record):
        return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in record.results["history"]]

    assert numbers(resumed) == numbers(straight)
    a = keras.saving.load_model(tmp_path / "straight" / "checkpoint" / "epoch-3.keras")
    b = keras.saving.load_model(tmp_path / "resumed" / "checkpoint" / "epoch-3.keras")
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(wa.value), keras.ops.convert_to_numpy(wb.value),
                                      err_msg=wa.path)


@pytest.mark.single_backend  # the choice of rows: the same on every backend
def test_holdout_leaves_out_its_rows_and_their_augmented_copies(tmp_path):
    from kbert.materials import load_materials

    rng = np.random.default_rng(4)
    teacher = bag_of_words_teacher()
    train = random_split(rng, 40)
    augmented = random_split(rng, 120, labeled=False)
    augmented.sources = np.repeat(np.arange(40), 3)
    out = tmp_path / "materials"
    generate_materials(teacher, {"train": train, "dev": random_split(rng, 10), "augmented": augmented}, str(out),
                       vocab=VOCAB, teacher_id="bag-of-words",
                       options=MaterialsOptions(task="BOW", max_seq_len=T, batch_size=100), verbose=False)
    materials = load_materials(str(out))
    np.testing.assert_array_equal(materials.splits["augmented"].source, augmented.sources)
    record = distill(str(out), str(tmp_path / "s"), DistillOptions(epochs=1, batch_size=1, holdout=0.25, seed=3),
                     verbose=0)
    # 10 of 40 train rows held out, with their 30 augmented copies: 30 + 90 rows trained on.
    assert record.results["global_step"] == 120 and record.results["selected_on"] == "holdout"
    assert "holdout_accuracy" in record.results["history"][0]

    # Materials whose augmented rows do not name their sources cannot hold out.
    old = tmp_path / "old"
    augmented.sources = None
    generate_materials(teacher, {"train": train, "dev": random_split(rng, 10), "augmented": augmented}, str(old),
                       vocab=VOCAB, teacher_id="bag-of-words",
                       options=MaterialsOptions(task="BOW", max_seq_len=T, batch_size=100), verbose=False)
    with pytest.raises(ConfigError, match="source rows"):
        distill(str(old), str(tmp_path / "s2"), DistillOptions(epochs=1), verbose=0)
    record = distill(str(old), str(tmp_path / "s3"), DistillOptions(epochs=1, holdout=0.0), verbose=0)
    assert record.results["selected_on"] == "dev" and "dev_accuracy" in record.results["history"][0]


def numpy_mcc(labels, predicted):
    tp = np.sum((labels == 1) & (predicted == 1))
    tn = np.sum((labels == 0) & (predicted == 0))
    fp = np.sum((labels == 0) & (predicted == 1))
    fn = np.sum((labels == 1) & (predicted == 0))
    denominator = np.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator


@pytest.mark.single_backend  # the choice of epoch and its metric: the same on every backend
def test_cola_students_are_picked_and_reported_by_mcc(tmp_path):
    """GLUE scores CoLA by MCC: the epoch is kept by the holdout's MCC, and
    dev's MCC is reported beside its accuracy."""
    rng = np.random.default_rng(5)
    teacher = bag_of_words_teacher()
    splits = {"train": random_split(rng, 200), "dev": random_split(rng, 60)}
    generate_materials(teacher, splits, str(tmp_path / "m"), vocab=VOCAB, teacher_id="bag-of-words",
                       options=MaterialsOptions(task="CoLA", max_seq_len=T, batch_size=100), verbose=False)
    record = distill(str(tmp_path / "m"), str(tmp_path / "s"),
                     DistillOptions(epochs=3, batch_size=20, holdout=0.25, seed=2, selection="gold"), verbose=0)
    results, history = record.results, record.results["history"]
    assert results["selection_metric"] == "mcc" and results["selected_on"] == "holdout"
    assert [epoch["selection_score"] for epoch in history] == [epoch["holdout_mcc"] for epoch in history]
    top = max(epoch["holdout_mcc"] for epoch in history)
    kept = [epoch for epoch in history if epoch["holdout_mcc"] >= top - epoch["selection_error"]][-1]
    assert results["best_epoch"] == kept["epoch"]
    assert all("holdout_accuracy" in epoch for epoch in history)
    student = keras.saving.load_model(tmp_path / "s" / "student.keras")
    dev = splits["dev"]
    predicted = predict_logits(student, dev.token_ids, dev.lengths).argmax(1)
    np.testing.assert_allclose(results["dev_mcc"], numpy_mcc(dev.labels, predicted), atol=1e-9)
    np.testing.assert_allclose(results["dev_accuracy"], np.mean(predicted == dev.labels))


@pytest.mark.single_backend  # the options' wiring; the siamese model is tested on every backend in test_student
def test_siamese_pairs(materials_dir, tmp_path):
    """--pairs siamese: a BiLSTM reading each sentence of a pair apart, split at [SEP]."""
    rng = np.random.default_rng(6)
    teacher = bag_of_words_teacher()
    vocab = VOCAB[:1] + ["[CLS]", "[SEP]"] + VOCAB[3:]
    splits = {}
    for name, n in (("train", 60), ("dev", 20)):
        split = random_split(rng, n)
        split.token_ids[:, 0] = 1  # [CLS]
        for row, length in zip(split.token_ids, split.lengths):
            row[length - 1] = 2  # [SEP] ends the pair
            row[length // 2] = 2  # ... and separates its sentences
        split.sentences = np.array([[f"a{i}", f"b{i}"] for i in range(n)])
        splits[name] = split
    generate_materials(teacher, splits, str(tmp_path / "m"), vocab=vocab, teacher_id="bag-of-words",
                       options=MaterialsOptions(task="BOW", max_seq_len=T, batch_size=100), verbose=False)
    record = distill(str(tmp_path / "m"), str(tmp_path / "s"),
                     DistillOptions(epochs=1, batch_size=10, student="bilstm", units=3, pairs="siamese"), verbose=0)
    student = keras.saving.load_model(tmp_path / "s" / "student.keras")
    assert student.get_config()["separator_id"] == 2 and record.options["pairs"] == "siamese"
    assert student.get_layer("Student-Pair-Match").output.shape[-1] == 4 * 2 * 3

    with pytest.raises(ConfigError, match="single sentences"):
        distill(materials_dir, str(tmp_path / "single"), DistillOptions(epochs=1, student="bilstm", pairs="siamese"),
                verbose=0)
    with pytest.raises(ConfigError, match="--student bilstm"):
        DistillOptions(pairs="siamese")
    with pytest.raises(ConfigError, match="pairs must be one of"):
        DistillOptions(student="bilstm", pairs="cross")


def test_static_embedding_start(materials_dir, tmp_path):
    from kbert.materials import load_materials

    # These materials hold no static vectors: refused by name.
    with pytest.raises(ConfigError, match="--static-embedding"):
        distill(materials_dir, str(tmp_path / "s"), DistillOptions(epochs=1, embedding="static"), verbose=0)
    with pytest.raises(ConfigError, match="embedding must be one of"):
        DistillOptions(embedding="random")
    assert load_materials(materials_dir).static is None


@pytest.mark.single_backend  # the run directory's logic: the same on every backend
def test_an_unset_holdout_is_the_resumed_runs_own(materials_dir, tmp_path):
    distill(materials_dir, str(tmp_path), DistillOptions(epochs=1, batch_size=100, holdout=0.0), verbose=0)
    record = distill(materials_dir, str(tmp_path), DistillOptions(epochs=2, batch_size=100), resume=True, verbose=0)
    assert record.options["holdout"] == 0.0 and record.results["selected_on"] == "dev"
    fresh = distill(materials_dir, str(tmp_path / "new"), DistillOptions(epochs=1, batch_size=100), verbose=0)
    assert fresh.options["holdout"] == 0.05 and fresh.results["selected_on"] == "holdout"


def test_loss_with_pooled_vectors(rng):
    c, h = 3, 4
    teacher, student = numpy_logits(rng, 6), numpy_logits(rng, 6)
    pooled, projected = rng.normal(size=(6, h)).astype(np.float32), rng.normal(size=(6, h)).astype(np.float32)
    y_true = pack_targets(np.full(6, -1), teacher, pooled)
    y_pred = np.concatenate([student, projected], axis=1)
    loss = StoredLogitsLoss(alpha=0.0, pooled_weight=0.5, num_labels=c)
    expected = ((teacher - student) ** 2).mean() + 0.5 * ((projected - pooled) ** 2).mean()
    np.testing.assert_allclose(float(loss(y_true, y_pred)), expected, rtol=1e-5)
    assert StoredLogitsLoss.from_config(loss.get_config()).get_config() == loss.get_config()
    with pytest.raises(ConfigError, match="num_labels"):
        StoredLogitsLoss(pooled_weight=1.0)


# ---------------------------------------------------------------- selection


def ks_statistic(a, b):
    """The two-sample Kolmogorov-Smirnov distance, in NumPy."""
    grid = np.union1d(a, b)
    def cdf(v):
        return np.searchsorted(np.sort(v), grid, side="right") / len(v)
    return float(np.abs(cdf(a) - cdf(b)).max())


@pytest.mark.keras_free
def test_a_length_matched_holdout_follows_the_scored_lengths():
    from kbert.distillation import length_matched

    rng = np.random.default_rng(0)
    # Like SST-2: train is mostly short phrases, dev whole sentences.
    train = np.concatenate([rng.integers(3, 8, 6000), rng.integers(8, 60, 4000)])
    dev = rng.integers(12, 50, 800)
    chosen = length_matched(train, dev, 500, np.random.default_rng(1))
    assert len(set(chosen.tolist())) == 500
    assert ks_statistic(train[chosen], dev) < 0.02
    assert ks_statistic(train[np.random.default_rng(1).permutation(len(train))[:500]], dev) > 0.4
    # The same seed, the same rows; another seed, other rows of the same lengths.
    np.testing.assert_array_equal(chosen, length_matched(train, dev, 500, np.random.default_rng(1)))
    other = length_matched(train, dev, 500, np.random.default_rng(2))
    assert set(other.tolist()) != set(chosen.tolist())
    np.testing.assert_array_equal(np.sort(train[other]), np.sort(train[chosen]))
    # Where train already looks like dev, the draw is as a random one's.
    alike = rng.integers(12, 50, 5000)
    assert ks_statistic(alike[length_matched(alike, dev, 500, np.random.default_rng(3))], dev) < 0.02
    # Lengths train lacks are taken from the nearest ones: here its longest rows.
    short = np.arange(100) % 40
    assert sorted(short[length_matched(short, np.full(10, 90), 5, rng)]) == [37, 38, 38, 39, 39]
    with pytest.raises(DataError, match="length-matched draw of 5 of 3"):
        length_matched(np.arange(3), dev, 5, rng)


@pytest.mark.keras_free
def test_the_latest_epoch_within_one_standard_error_of_the_best_is_kept():
    from kbert.distillation import keeps_epoch

    rng = np.random.default_rng(0)
    for _ in range(200):
        scores, errors = rng.normal(0.9, 0.01, 6), rng.uniform(0, 0.01, 6)
        kept, top = None, None
        for epoch, (score, error) in enumerate(zip(scores, errors)):
            if keeps_epoch(score, error, top):
                kept = epoch
            top = score if top is None else max(top, score)
        # Judged at once, afterwards: the last epoch within its error of the best score.
        assert kept == np.flatnonzero(scores >= scores.max() - errors)[-1]


@pytest.mark.keras_free
def test_selection_signals_against_scipy_and_sklearn():
    from scipy.stats import entropy
    from sklearn.metrics import matthews_corrcoef

    from kbert.distillation import selection_signals
    from kbert.materials import MaterialsSplit

    rng = np.random.default_rng(0)
    n = 300
    teacher, student = rng.normal(size=(n, 2)) * 2, rng.normal(size=(n, 2)) * 2
    labels = rng.integers(0, 2, n)
    split = MaterialsSplit(x=None, segment=None, length=None, y=teacher.astype(np.float32), ysm=None, label=labels,
                           sentence=None)
    def softmax(z):
        return np.exp(z) / np.exp(z).sum(1, keepdims=True)
    agree = student.argmax(1) == teacher.argmax(1)
    kl = entropy(softmax(teacher.astype(np.float32).astype(np.float64)), softmax(student), axis=1)

    signals = selection_signals(student, split, "SST-2")
    np.testing.assert_allclose(signals["agreement"], (agree.mean(), agree.std(ddof=1) / np.sqrt(n)))
    np.testing.assert_allclose(signals["kl"], (-kl.mean(), kl.std(ddof=1) / np.sqrt(n)), rtol=1e-6)
    correct = student.argmax(1) == labels
    np.testing.assert_allclose(signals["gold"], (correct.mean(), correct.std(ddof=1) / np.sqrt(n)))

    cola = selection_signals(student, split, "CoLA")
    assert cola["gold"][0] == pytest.approx(matthews_corrcoef(labels, student.argmax(1)))
    # A bootstrap error: about the spread of MCC over resampled rows.
    draws = [matthews_corrcoef(labels[r], student.argmax(1)[r]) for r in rng.integers(0, n, (300, n))]
    assert cola["gold"][1] == pytest.approx(np.std(draws), rel=0.25)
    # No gold where a row has none.
    unlabeled = dataclasses.replace(split, label=np.where(np.arange(n) == 5, -1, labels))
    assert set(selection_signals(student, unlabeled, "SST-2")) == {"agreement", "kl"}


@pytest.mark.single_backend  # the choice of rows and epochs: the same on every backend
def test_dev_labels_are_not_read_during_selection(tmp_path):
    """Two materials alike but for the dev labels (flipped): the same
    holdout, the same epoch kept, the same history; only the dev score
    reported differs."""
    rng = np.random.default_rng(4)
    teacher = bag_of_words_teacher(1)
    train, dev = random_split(rng, 400), random_split(rng, 120)
    flipped = dataclasses.replace(dev, labels=1 - dev.labels)
    options = DistillOptions(epochs=4, batch_size=25, learning_rate=3e-3, seed=2, selection="gold")
    records = []
    for name, split in (("a", dev), ("b", flipped)):
        generate_materials(teacher, {"train": train, "dev": split}, str(tmp_path / name), vocab=VOCAB,
                           teacher_id="bag-of-words", options=MaterialsOptions(task="BOW", max_seq_len=T),
                           verbose=False)
        records.append(distill(str(tmp_path / name), str(tmp_path / f"student-{name}"), options, verbose=0))
    a, b = (record.results for record in records)
    assert a["selected_on"] == "holdout" and a["selection"] == "gold"
    def drop(history):
        return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]
    assert drop(a["history"]) == drop(b["history"]) and a["best_epoch"] == b["best_epoch"]
    assert a["dev_accuracy"] == pytest.approx(1 - b["dev_accuracy"])


@pytest.mark.single_backend  # the run directory's logic: the same on every backend
def test_a_resumed_run_keeps_its_own_draw_and_selection(materials_dir, tmp_path):
    distill(materials_dir, str(tmp_path), DistillOptions(epochs=1, batch_size=25, holdout_draw="random",
                                                         selection="kl"), verbose=0)
    record = distill(materials_dir, str(tmp_path), DistillOptions(epochs=2, batch_size=25), resume=True, verbose=0)
    assert (record.options["holdout_draw"], record.options["selection"]) == ("random", "kl")
    assert [epoch["selection"] for epoch in record.results["history"]] == ["kl", "kl"]
    with pytest.raises(ConfigError, match="only epochs may change"):
        distill(materials_dir, str(tmp_path), DistillOptions(epochs=3, batch_size=25, selection="gold"),
                resume=True, verbose=0)


@pytest.mark.single_backend  # the run's wiring; the sparse update is tested on every backend in test_student
def test_training_only_the_rows_read_gives_the_same_student(tmp_path):
    """`embedding_rows` "seen" (the default) against "all": Adam moves no
    row that no training row reads, so the two students are the same, bit
    for bit; the saved one is a plain student either way."""
    rng = np.random.default_rng(5)
    teacher = bag_of_words_teacher()
    train = random_split(rng, 300, labeled=False)
    train.token_ids[:] = np.where(train.token_ids > 0, (train.token_ids - 1) % (V // 2 - 1) + 1, 0)  # ids 1..V/2-1
    splits = {"train": train, "dev": random_split(rng, 100)}
    materials = str(tmp_path / "materials")
    generate_materials(teacher, splits, materials, vocab=VOCAB, teacher_id="bag-of-words",
                       options=MaterialsOptions(task="BOW", max_seq_len=T, batch_size=100), verbose=False)
    students, records = {}, {}
    for rows in ("seen", "all"):
        records[rows] = distill(materials, str(tmp_path / rows), DistillOptions(
            epochs=2, batch_size=50, learning_rate=3e-3, seed=3, student="bilstm", embedding_rows=rows), verbose=0)
        students[rows] = keras.saving.load_model(tmp_path / rows / "student.keras")
        assert students[rows].get_config()["trained_rows"] is None
    seen_ids = np.unique(train.token_ids[train.token_ids > 0])
    checkpoint = keras.saving.load_model(tmp_path / "seen" / "checkpoint" / "epoch-2.keras")
    assert checkpoint.get_config()["trained_rows"] == seen_ids.size < V - 1
    assert records["seen"].options["embedding_rows"] == "seen"
    for a, b in zip(students["seen"].weights, students["all"].weights):  # bit for bit
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a.value), keras.ops.convert_to_numpy(b.value),
                                      err_msg=a.path)
    table = keras.ops.convert_to_numpy(students["seen"].get_layer("Student-Embedding").embeddings.value)
    start = teacher.get_layer("Embedding-Token").get_weights()[0]
    unread = np.setdiff1d(np.arange(1, V), seen_ids)
    np.testing.assert_array_equal(table[unread], start[unread])  # where the teacher's matrix put them
    # A transformer student, cut from the teacher, has no such rows: a
    # default run leaves the option None (the teacher here has no layers to
    # cut, so the run stops there, after the options are resolved).
    with pytest.raises(ConfigError, match="teacher run"):
        distill(materials, str(tmp_path / "tx"), DistillOptions(epochs=1, student="transformer"), verbose=0)
    assert np.abs(table[seen_ids] - start[seen_ids]).max() > 1e-3  # the rows read did learn
    assert records["seen"].results["dev_accuracy"] == records["all"].results["dev_accuracy"]
    # Materials remade with as many rows, which read other ids: a resumed
    # student would leave those rows frozen, so it is refused.
    generate_materials(teacher, dict(splits, train=random_split(rng, 300, labeled=False)), materials, vocab=VOCAB,
                       teacher_id="bag-of-words", options=MaterialsOptions(task="BOW", max_seq_len=T, batch_size=100),
                       verbose=False)
    with pytest.raises(DataError, match="other token ids"):
        distill(materials, str(tmp_path / "seen"), DistillOptions(epochs=3, batch_size=50, learning_rate=3e-3, seed=3,
                                                                  student="bilstm"), resume=True, verbose=0)
    with pytest.raises(ConfigError, match="embedding_rows must be one of"):
        DistillOptions(embedding_rows="some")
    with pytest.raises(ConfigError, match="--embedding-rows"):
        DistillOptions(student="transformer", embedding_rows="all")
