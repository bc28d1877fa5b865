"""Layer-wise distillation (TinyBERT's hidden-state and attention losses):
the loss layer against a NumPy pass, the trainer that runs the teacher in
the step, and `kbert distill --hidden-weight/--attention-weight`."""

import dataclasses
import pathlib
import sys

import keras
import numpy as np
import pytest

from kbert import BertModel, ConfigError, DistillOptions, distill
from kbert.batching import BucketedBatches
from kbert.config import BertConfig
from kbert.layers import LayerwiseDistillation
from kbert.student import cut_teacher, teacher_layers
from kbert.views import attention_probabilities, layer_output_name, layerwise_trainer

from test_case import run_layer_test

REPO = pathlib.Path(__file__).resolve().parents[1]
# benchmarks/ is not installed: its scripts import from the repository root.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.layer_outputs import store_hidden, stored_batches, stored_trainer  # noqa: E402

B, T, C = 3, 6, 2


def numpy_losses(mask, hidden_pairs, attention_pairs, projections):
    """The hidden-state MSE and the attention KL, written out in NumPy."""
    mask = mask.astype(np.float64)
    hidden = []
    for (student, teacher), kernel in zip(hidden_pairs, projections):
        student = student if kernel is None else student @ kernel
        hidden.append((((student - teacher) ** 2).mean(-1) * mask).sum() / mask.sum())
    attention = []
    for student, teacher in attention_pairs:
        if student.shape[1] != teacher.shape[1]:
            student, teacher = student.mean(1, keepdims=True), teacher.mean(1, keepdims=True)
        kl = (teacher * (np.log(teacher + 1e-12) - np.log(student + 1e-12))).sum(-1)  # [B, N, T]
        attention.append((kl * mask[:, None, :]).sum() / (mask.sum() * kl.shape[1]))
    return np.mean(hidden) if hidden else 0.0, np.mean(attention) if attention else 0.0


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_the_loss_layer_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(B, C)).astype("float32")
    mask = np.ones((B, T), bool)
    mask[0, 4:] = False
    hidden = [rng.normal(size=(B, T, 8)).astype("float32"), rng.normal(size=(B, T, 8)).astype("float32"),
              rng.normal(size=(B, T, 12)).astype("float32"), rng.normal(size=(B, T, 8)).astype("float32")]
    # Pair 1: widths 8 -> 12 (a projection); pair 2: 8 and 8 (none).
    student_h, teacher_h = [hidden[0], hidden[1]], [hidden[2], hidden[3]]
    attention = [softmax(rng.normal(size=(B, 2, T, T))).astype("float32"),
                 softmax(rng.normal(size=(B, 4, T, T))).astype("float32")]  # 2 heads against 4
    layer = run_layer_test(LayerwiseDistillation, {"hidden_weight": 0.5, "attention_weight": 2.0,
                                                   "hidden_layers": 2, "attention_layers": 1,
                                                   "name": "Layerwise-Distillation"},
                           [logits, mask, *student_h, *teacher_h, *attention], (B, C))
    out = layer([logits, mask, *student_h, *teacher_h, *attention])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), logits)
    kernel = keras.ops.convert_to_numpy(layer.projections[0].kernel)
    assert layer.projections[1] is None
    hidden_loss, attention_loss = numpy_losses(mask, list(zip(student_h, teacher_h)), [tuple(attention)],
                                               [kernel, None])
    assert attention_loss > 0.1 and hidden_loss > 0.1
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(layer.losses[-1])),
                               0.5 * hidden_loss + 2.0 * attention_loss, rtol=1e-5)


def _teacher(seed=3, depth=4, hidden=16, positions=T):
    keras.utils.set_random_seed(seed)
    config = BertConfig(vocab_size=30, hidden_size=hidden, num_hidden_layers=depth, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=positions, initializer_range=0.3)
    return BertModel(config, num_labels=C)


def _batch(rng):
    x = rng.integers(5, 30, size=(B, T)).astype("int32")
    x[1, 3:] = 0
    return x, (np.arange(T)[None] >= 2).astype("int32") * (x > 0)


def test_a_student_that_is_its_teacher_has_no_layerwise_loss_and_a_cut_has_the_numpy_loss():
    rng = np.random.default_rng(1)
    teacher = _teacher()
    x, segments = _batch(rng)

    def loss_of(student, pairs):
        trainer = layerwise_trainer(student, teacher, pairs, hidden_weight=1.0, attention_weight=1.0)
        trainer([x, segments])
        return float(keras.ops.convert_to_numpy(trainer.losses[-1]))

    whole = cut_teacher(teacher, layers=4, layer_map="spread")
    assert loss_of(whole, [(0, 0)] + [(i, i) for i in range(1, 5)]) == pytest.approx(0.0, abs=1e-6)

    # Two bottom layers matched to the teacher's 2 and 4: the NumPy losses of their outputs.
    student = cut_teacher(teacher, layers=2)
    pairs = [(0, 0), (1, 2), (2, 4)]

    def outputs(model, names):
        probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
        return [np.asarray(keras.ops.convert_to_numpy(o), np.float64) for o in probe([x, segments])]

    def name(i):
        return "Embedding-Norm" if i == 0 else f"Encoder-{i}-FeedForward-Norm"

    hidden_pairs = list(zip(outputs(student, [name(s) for s, _ in pairs]),
                            outputs(teacher, [name(t) for _, t in pairs])))
    attention_pairs = [tuple(np.asarray(keras.ops.convert_to_numpy(attention_probabilities(m, i)([x, segments])),
                                        np.float64) for m, i in ((student, s), (teacher, t))) for s, t in pairs[1:]]
    expected = sum(numpy_losses(x > 0, hidden_pairs, attention_pairs, [None] * 3))
    assert expected > 0.01
    assert loss_of(student, pairs) == pytest.approx(expected, rel=1e-4)


def no_logits_loss(y_true, y_pred):
    """The layer-wise losses alone train."""
    return 0.0 * keras.ops.mean(y_pred)


def test_a_trainer_step_moves_the_student_toward_the_teacher_and_leaves_the_teacher(tmp_path):
    rng = np.random.default_rng(2)
    teacher = _teacher()
    student = cut_teacher(teacher, layers=2, hidden=8, heads=2, intermediate=16)  # narrower: projections learn
    trainer = layerwise_trainer(student, teacher, [(0, 0), (1, 2), (2, 4)], hidden_weight=1.0,
                                attention_weight=1.0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), loss=no_logits_loss)
    x, segments = _batch(rng)
    before_teacher = [keras.ops.convert_to_numpy(w).copy() for w in teacher.weights]
    first = trainer.train_on_batch([x, segments], np.zeros((B, C), "float32"))
    for _ in range(40):
        last = trainer.train_on_batch([x, segments], np.zeros((B, C), "float32"))
    assert last < 0.7 * first, (first, last)
    for old, new in zip(before_teacher, teacher.weights):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))
    projections = trainer.get_layer("Layerwise-Distillation").projections
    assert [p is None for p in projections] == [False, False, False]

    # Reloaded from .keras (a resumed run), it trains the same variables: the student's and the projections,
    # never the frozen teacher's (whose attention and feed-forward sublayers are built after they are frozen).
    path = tmp_path / "trainer.keras"
    trainer.save(path)
    reloaded = keras.saving.load_model(path, compile=False)
    assert sorted(v.path for v in reloaded.trainable_variables) == sorted(v.path for v in trainer.trainable_variables)
    assert len(trainer.trainable_variables) == len(student.trainable_variables) + 3


@pytest.mark.single_backend  # the run's wiring, resume and saved student; the trainer's step, save and reload: every backend above
def test_distill_with_layerwise_losses_saves_a_plain_student(tmp_path):
    from kbert import runs
    from kbert.materials import EncodedSplit, MaterialsOptions, generate_materials

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, 30)]

    def split(n):
        x, segments = zip(*(_batch(rng) for _ in range(n // B)))
        x, segments = np.concatenate(x), np.concatenate(segments)
        return EncodedSplit(x, segments, rng.integers(0, C, len(x)), np.array([f"s{i}" for i in range(len(x))]),
                            (x > 0).sum(1))

    teacher = _teacher(depth=4)
    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    runs.save_model(teacher_dir, teacher, "teacher")
    runs.write_vocab(teacher_dir, vocab)
    runs.write_run(teacher_dir, runs.RunRecord(kind="teacher", status="complete", options={}, task="BOW",
                                               labels=None, num_labels=C, max_seq_len=T))
    rng = np.random.default_rng(0)
    splits = {"train": split(60), "dev": split(21)}
    generate_materials(teacher, splits, str(tmp_path / "materials"), vocab=vocab, teacher_id=str(teacher_dir),
                       options=MaterialsOptions(task="BOW", max_seq_len=T, batch_size=20), verbose=False)
    options = DistillOptions(student="transformer", layers=2, epochs=2, batch_size=20, seed=1, hidden_weight=1.0,
                             attention_weight=1.0)
    out = tmp_path / "student"
    distill(str(tmp_path / "materials"), str(out), dataclasses.replace(options, epochs=1), verbose=0)
    record = distill(str(tmp_path / "materials"), str(out), options, resume=True, verbose=0)
    assert record.results["epochs"] == 2 and record.options["hidden_weight"] == 1.0
    student = keras.saving.load_model(out / "student.keras")
    assert isinstance(student, BertModel) and student.bert_config.num_hidden_layers == 2
    assert not any(layer.name.startswith(("Layerwise", "Teacher")) for layer in student.layers)
    assert record.results["history"][-1]["loss"] > 0

    with pytest.raises(ConfigError, match="--hidden-weight"):
        DistillOptions(student="bilstm", hidden_weight=1.0)
    with pytest.raises(ConfigError, match="attention_weight must be 0 or more"):
        DistillOptions(student="transformer", attention_weight=-1.0)


def test_the_layer_map_of_the_losses_is_tinyberts():
    # Student layer m matches teacher layer m * N / M (TinyBERT's g(m)), the embeddings the embeddings.
    assert teacher_layers(3, 6, "spread") == [2, 4, 6]
    assert teacher_layers(2, 6, "spread") == [3, 6]


@pytest.mark.single_backend  # benchmark code (benchmarks/layer_outputs.py); the in-step loss it matches: every backend above
def test_stored_teacher_outputs_give_the_in_step_loss(tmp_path):
    # benchmarks/layer_outputs.py's other way: the teacher's layer outputs
    # written once (float16, each row's real tokens) and fed to every
    # step.  In shuffled, length-bucketed batches, each batch's stored
    # outputs must be its own rows' (the loss the teacher in the step gives,
    # up to float16's rounding).
    # Rows of 2 to 20 word pieces, in shuffled order: stored, then fed in
    # length-bucketed batches 8, 16 and 20 wide.
    rng = np.random.default_rng(4)
    width, n = 20, 12
    teacher = _teacher(positions=width)
    lengths = rng.permutation([2, 3, 4, 5, 9, 10, 11, 12, 17, 18, 19, 20])
    x = rng.integers(5, 30, size=(n, width)).astype("int32")
    x[np.arange(width)[None] >= lengths[:, None]] = 0
    segments = ((np.arange(width)[None] >= 1) & (x > 0)).astype("int32")
    pairs = [(0, 0), (1, 2), (2, 4)]
    names = [layer_output_name(t) for _, t in pairs]
    offsets = store_hidden(teacher, names, x, segments, lengths, tmp_path / "hidden.npy", batch_size=5)
    assert offsets[-1] == lengths.sum()
    store = np.load(tmp_path / "hidden.npy", mmap_mode="r")
    student = cut_teacher(teacher, layers=2)
    in_step = layerwise_trainer(student, teacher, pairs, hidden_weight=1.0)
    stored = stored_trainer(student, pairs, 1.0)
    batches = BucketedBatches((x, segments), np.zeros((n, 1 + C), "float32"), lengths, batch_size=4, seed=0)
    fed = stored_batches(batches, store, offsets, len(pairs))
    assert len(fed) == 3
    widths = set()
    for index in range(len(fed)):
        inputs, _ = fed[index]
        widths.add(inputs[0].shape[1])
        in_step(list(inputs[:2]))
        stored(list(inputs))
        want, got = (float(keras.ops.convert_to_numpy(m.losses[-1])) for m in (in_step, stored))
        assert want > 0.01
        assert got == pytest.approx(want, rel=2e-3)
    assert widths == {8, 16, 20}
    # Another batch's stored outputs give another loss: the test can fail.
    inputs, _ = fed[0]
    other = fed[1][0]
    common = min(inputs[0].shape[1], other[0].shape[1])
    stored([inputs[0][:, :common], inputs[1][:, :common], *(t[:, :common] for t in other[2:])])
    in_step([inputs[0][:, :common], inputs[1][:, :common]])
    assert float(keras.ops.convert_to_numpy(stored.losses[-1])) != pytest.approx(
        float(keras.ops.convert_to_numpy(in_step.losses[-1])), rel=2e-3)
