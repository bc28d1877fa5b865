"""Distilling the teacher into the CNN student (Tang et al. 2019).

The student learns to reproduce the teacher's logits z_T:

    loss = alpha * CE(gold label, student)  +  (1 - alpha) * D(z_T, z_S)

with D the mean squared error between logits (Tang et al.'s choice, and
alpha = 0 as in their experiments: the gold labels are already in the
teacher's logits), or optionally the KL divergence between
temperature-softened outputs, scaled by T^2 (Hinton et al. 2015).  Rows
without a gold label (the augmented split, label -1) count in D only.

Two ways in:

* `distill` (the main path, `kbert distill`) trains from stored materials
  (`kbert.materials`): the teacher ran once per sentence when the materials
  were made, and every epoch reads its logits from the `y` array.  This is
  a plain Keras `fit` whose target packs [gold label, teacher logits] per
  row, with `StoredLogitsLoss` as the loss.  `keras.distillation.Distiller`
  does not fit here: it calls the teacher on every batch, which is the very
  cost stored materials exist to avoid (BERT-base forward passes dwarf the
  CNN's training step), and it needs teacher and student to take the same
  inputs.  The loss itself does reuse Keras' distillation code:
  `keras.distillation.LogitsDistillation.compute_loss` computes D on the
  stored logits, so the temperature and T^2 conventions are Keras' own.
* `distill_online` distils from a live teacher with
  `keras.distillation.Distiller`, for experiments where storing logits is
  not wanted (e.g. augmentation drawn afresh each epoch).

`distill` trains in length-bucketed batches (sentences of similar length
together, each batch trimmed to its longest row), keeps the epoch with the
best dev accuracy against gold labels (agreement with the teacher where
the dev split has no gold labels), checkpoints every epoch, and resumes
from the last checkpoint with `resume=True`.

Output directory::

    student.keras        the best epoch's student, uncompiled (any backend)
    config.json          the DistillConfig, the materials' identity, the best epoch
    history.json         per epoch: loss, teacher agreement, dev accuracy, seconds
    run.json, vocab.txt  a "student" run record (task, max_seq_len, cased) and the
                         vocabulary, so that run-directory tools (`kbert evaluate`)
                         can encode text for the student as for its teacher
    checkpoint/          state.json, epoch-{n}.keras (the last epoch, with optimizer
                         state), best-{n}.weights.h5; what `resume=True` reads
"""

import dataclasses
import logging
import os
import time

import keras
import numpy as np

import kbert
from kbert.errors import ConfigError, DataError
from kbert.layers.student_embedding import VARIANTS
from kbert.batching import BUCKET_WINDOW, BucketedBatches, predict_bucketed
from kbert.progress import ItemsProgress
from kbert.atomic import atomic_output, read_json, save_model_atomic, write_json, write_text_atomic
from kbert.materials import load_materials, vocab_sha256
from kbert.student import StudentModel, build_student

logger = logging.getLogger(__name__)

LOSSES = ("mse", "kl")
# Batches are formed within chunks of this many batches: shuffled first,
# then sorted by length, so batches are of even length yet differ per epoch.


@dataclasses.dataclass
class DistillConfig:
    """What `distill` does; every field is recorded in `config.json`.

    Attributes:
        epochs: passes over the training rows.
        batch_size: rows per step (Kim used 50).
        learning_rate: Adam's step size.
        alpha: weight of the gold-label cross-entropy (0 = logits only).
        loss: "mse" (logit regression, Tang et al.) or "kl" (softened outputs).
        temperature: the KL's temperature (ignored by "mse").
        variant: the student's embedding, "static", "non-static" or "multichannel".
        embedding_dim: None keeps the teacher's width; smaller projects it.
        seed: seeds initialisation, dropout and batch order.
        train_splits: materials splits to train on; those absent are skipped
            (so "augmented" is used when present).
        dev_split: the split that picks the best epoch.
        length_bucketing: batches of similar length (little padding) or, if
            False, random batches (each still trimmed to its longest row).
    """

    epochs: int = 10
    batch_size: int = 50
    learning_rate: float = 1e-3
    alpha: float = 0.0
    loss: str = "mse"
    temperature: float = 1.0
    variant: str = "non-static"
    embedding_dim: int = None
    seed: int = 0
    train_splits: tuple = ("train", "augmented")
    dev_split: str = "dev"
    length_bucketing: bool = True

    def validate(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")

    def to_dict(self):
        config = dataclasses.asdict(self)
        config["train_splits"] = list(self.train_splits)
        return config


# ---------------------------------------------------------------- loss and metric


def logits_distillation(loss, temperature):
    """`keras.distillation.LogitsDistillation` for "mse" or "kl".

    MSE between raw logits is LogitsDistillation at temperature 1.  For KL
    the loss must be a `keras.losses.KLDivergence` *instance*: in Keras 3.15
    the string "kl_divergence" (LogitsDistillation's default) resolves to a
    plain function, which skips the softmax and the T^2 factor and compares
    clipped logits instead of probabilities.
    """
    if loss == "kl":
        return keras.distillation.LogitsDistillation(temperature=temperature, loss=keras.losses.KLDivergence())
    return keras.distillation.LogitsDistillation(temperature=1.0, loss="mean_squared_error")


@keras.saving.register_keras_serializable(package="kbert")
class StoredLogitsLoss(keras.losses.Loss):
    """alpha * CE(gold) + (1 - alpha) * D(teacher logits, student logits).

    `y_true` is [B, 1 + C]: the gold label id (-1: none) and then the
    teacher's logits, so stored teacher outputs ride along with `fit`'s
    targets on every backend.
    """

    def __init__(self, alpha=0.0, loss="mse", temperature=1.0, name="stored_logits_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = float(alpha)
        self.loss = loss
        self.temperature = float(temperature)
        self._distillation = logits_distillation(loss, self.temperature)

    def call(self, y_true, y_pred):
        gold = keras.ops.cast(y_true[:, 0], "int32")
        teacher = keras.ops.cast(y_true[:, 1:], y_pred.dtype)
        total = keras.ops.zeros((), dtype=y_pred.dtype)
        if self.alpha > 0.0:
            has_gold = keras.ops.cast(gold >= 0, y_pred.dtype)
            ce = keras.losses.sparse_categorical_crossentropy(
                keras.ops.maximum(gold, 0), y_pred, from_logits=True
            )
            ce = keras.ops.sum(ce * has_gold) / keras.ops.maximum(keras.ops.sum(has_gold), 1.0)
            total = total + self.alpha * ce
        if self.alpha < 1.0:
            total = total + (1.0 - self.alpha) * self._distillation.compute_loss(teacher, y_pred)
        return total

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, loss=self.loss, temperature=self.temperature)
        return config


@keras.saving.register_keras_serializable(package="kbert")
def teacher_agreement(y_true, y_pred):
    """Share of rows where the student's top label is the teacher's."""
    teacher = keras.ops.argmax(y_true[:, 1:], axis=-1)
    return keras.ops.cast(keras.ops.equal(teacher, keras.ops.argmax(y_pred, axis=-1)), "float32")


def pack_targets(labels, logits):
    """[N] gold labels and [N, C] teacher logits -> float32 [N, 1 + C] targets."""
    return np.concatenate([np.asarray(labels, np.float32)[:, None], np.asarray(logits, np.float32)], axis=1)


# ---------------------------------------------------------------- batches


def predict_logits(model, x, lengths=None, batch_size=256):
    """The student's logits [N, C] for token ids [N, T], in length buckets."""
    return predict_bucketed(model, [np.asarray(x, np.int32)], lengths, batch_size=batch_size)


# ---------------------------------------------------------------- checkpoints


def _save_weights(model, path):
    with atomic_output(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def _dev_scores(model, split):
    """(accuracy vs gold or None, agreement with the teacher) on a materials split."""
    logits = predict_logits(model, split.x, split.length)
    predicted = logits.argmax(axis=1)
    agreement = float((predicted == split.y.argmax(axis=1)).mean())
    has_gold = split.label >= 0
    accuracy = float((predicted[has_gold] == split.label[has_gold]).mean()) if has_gold.any() else None
    return accuracy, agreement


class _EpochEnd(keras.callbacks.Callback):
    """Scores dev, keeps the best weights, checkpoints; the state file commits."""

    def __init__(self, checkpoint_dir, dev, state):
        super().__init__()
        self.checkpoint_dir, self.dev, self.state = checkpoint_dir, dev, state
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        accuracy, agreement = _dev_scores(self.model, self.dev)
        score = agreement if accuracy is None else accuracy
        record = {key: float(value) for key, value in (logs or {}).items()}
        record.update(epoch=epoch + 1, dev_accuracy=accuracy, dev_agreement=agreement,
                      seconds=round(time.perf_counter() - self.started, 3),
                      global_step=int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))
        logger.info("epoch %d: dev accuracy %s, dev agreement %.4f", epoch + 1, accuracy, agreement)
        if logs is not None:  # the progress bar, called after this callback, shows them
            logs.update({"dev_agreement": agreement} if accuracy is None else {"dev_accuracy": accuracy})

        # Files are named by epoch and state.json, written last, says which
        # are current: a crash in between leaves the previous state whole.
        stale = []
        if self.state["best_score"] is None or score > self.state["best_score"]:
            best = f"best-{epoch + 1}.weights.h5"
            _save_weights(self.model, os.path.join(self.checkpoint_dir, best))
            stale.append(self.state.get("best_weights"))
            self.state.update(best_score=score, best_epoch=epoch + 1, best_weights=best)
        name = f"epoch-{epoch + 1}.keras"
        save_model_atomic(self.model, os.path.join(self.checkpoint_dir, name))
        stale.append(self.state.get("checkpoint"))
        self.state.update(epoch=epoch + 1, checkpoint=name)
        self.state["history"].append(record)
        write_json(os.path.join(self.checkpoint_dir, "state.json"), self.state)
        for old in stale:
            if old and os.path.exists(os.path.join(self.checkpoint_dir, old)):
                os.remove(os.path.join(self.checkpoint_dir, old))


# ---------------------------------------------------------------- distill


def _training_rows(materials, config):
    names = [name for name in config.train_splits if name in materials.splits]
    if not names:
        raise DataError(f"{materials.directory}: none of the training splits {list(config.train_splits)}")
    splits = [materials.splits[name] for name in names]
    width = max(split.x.shape[1] for split in splits)
    x = np.concatenate([np.pad(s.x, [(0, 0), (0, width - s.x.shape[1])]) for s in splits])
    targets = np.concatenate([pack_targets(s.label, s.y) for s in splits])
    lengths = np.concatenate([s.length for s in splits])
    logger.info("training on %s: %d rows", "+".join(names), len(x))
    return x, targets, lengths


def _identity(materials):
    manifest = materials.manifest
    return {
        "materials": os.path.abspath(materials.directory),
        "task": manifest["task"],
        "max_seq_len": manifest["max_seq_len"],
        "cased": manifest.get("cased", False),
        "teacher": manifest["teacher"],
        "vocab": manifest["vocab"],
        "num_labels": manifest["num_labels"],
    }


def _compile(model, config):
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=StoredLogitsLoss(config.alpha, config.loss, config.temperature),
        metrics=[teacher_agreement],
    )


def _resume_state(checkpoint_dir, config, identity, resume):
    """The saved state of an earlier run in this directory, or None to start afresh."""
    path = os.path.join(checkpoint_dir, "state.json")
    if not os.path.exists(path):
        return None
    if not resume:
        raise ConfigError(
            f"{path}: a distillation run is here already; pass resume=True (--resume) or use a new directory"
        )
    state = read_json(path, error=ConfigError, what="distillation state")
    if state["identity"]["vocab"] != identity["vocab"]:
        raise DataError(
            f"{path}: the student was trained on materials of another vocabulary "
            f"(sha256 {state['identity']['vocab']['sha256'][:12]}, now {identity['vocab']['sha256'][:12]})"
        )
    if state["identity"]["teacher"] != identity["teacher"]:
        raise DataError(f"{path}: the student was trained on materials of another teacher")
    # A setting the run predates is compared as its default.
    earlier = dict(DistillConfig().to_dict(), **state["config"])
    earlier["epochs"] = config.epochs
    if earlier != config.to_dict():
        raise ConfigError(f"{path}: the run used other settings ({state['config']}); only epochs may change on resume")
    return state


def distill(materials_dir, out_dir, config=None, *, resume=False, verbose=1, **overrides):
    """Train the CNN student on stored teaching materials.

    Args:
        materials_dir: written by `kbert.materials.generate_materials`.
        out_dir: receives student.keras, config.json, history.json, checkpoint/.
        config: a `DistillConfig` (None: the defaults).
        resume: continue the run checkpointed in `out_dir`.
        verbose: show a progress bar (items/s) per epoch.
        **overrides: `DistillConfig` fields, e.g. `epochs=3, alpha=0.5`.

    Returns:
        A summary dict: best_epoch, dev_accuracy, dev_agreement, path.
    """
    config = dataclasses.replace(config or DistillConfig(), **overrides)
    config.train_splits = tuple(config.train_splits)
    config.validate()
    materials = load_materials(materials_dir)
    if config.dev_split not in materials.splits:
        raise DataError(f"{materials_dir}: no complete {config.dev_split!r} split to pick the best epoch")
    if materials.num_labels < 2:
        raise ConfigError(f"{materials_dir}: {materials.num_labels} label(s); the student distils classifiers only")
    identity = _identity(materials)

    checkpoint_dir = os.path.join(out_dir, "checkpoint")
    os.makedirs(checkpoint_dir, exist_ok=True)
    state = _resume_state(checkpoint_dir, config, identity, resume)
    keras.utils.set_random_seed(config.seed)
    if state is None:
        state = {"epoch": 0, "best_score": None, "best_epoch": None, "best_weights": None, "checkpoint": None,
                 "history": [], "config": config.to_dict(), "identity": identity}
        model = build_student(materials.embedding, materials.num_labels,
                              variant=config.variant, embedding_dim=config.embedding_dim)
        _compile(model, config)
    else:
        logger.info("resuming after epoch %d", state["epoch"])
        model = keras.saving.load_model(os.path.join(checkpoint_dir, state["checkpoint"]))
        state["config"] = config.to_dict()

    x, targets, lengths = _training_rows(materials, config)
    if state["epoch"] < config.epochs:
        batches = BucketedBatches(x, targets, lengths, batch_size=config.batch_size, seed=config.seed,
                                  epoch=state["epoch"], window=BUCKET_WINDOW if config.length_bucketing else 1)
        callbacks = [_EpochEnd(checkpoint_dir, materials.splits[config.dev_split], state)]
        if verbose:  # a tqdm bar counting sentences, so its rate is items/s
            callbacks.append(ItemsProgress(config.batch_size, len(batches), desc="distill"))
        model.fit(batches, epochs=config.epochs, initial_epoch=state["epoch"], callbacks=callbacks, verbose=0)
    return _finish(out_dir, model, config, state, identity, materials.vocab)


def _finish(out_dir, model, config, state, identity, vocab):
    """Write the best epoch's student, uncompiled, and the run's records."""
    best = StudentModel.from_config(model.get_config())
    best.load_weights(os.path.join(out_dir, "checkpoint", state["best_weights"]))
    path = os.path.join(out_dir, "student.keras")
    save_model_atomic(best, path)
    record = next(r for r in state["history"] if r["epoch"] == state["best_epoch"])
    summary = {
        "best_epoch": state["best_epoch"],
        "dev_accuracy": record["dev_accuracy"],
        "dev_agreement": record["dev_agreement"],
        "epochs": state["epoch"],
        # Optimizer steps up to the kept epoch: eval_results.txt's global_step.
        "global_step": record.get("global_step", 0),
        "path": path,
    }
    write_json(os.path.join(out_dir, "config.json"), {
        "kbert_version": kbert.__version__,
        "distill": config.to_dict(),
        "student": best.get_config(),
        "materials": identity,
        "result": summary,
    })
    write_json(os.path.join(out_dir, "history.json"), state["history"])
    _write_run_record(out_dir, identity, summary, vocab)
    return summary


def _write_run_record(out_dir, identity, summary, vocab):
    """run.json and vocab.txt in the layout of a fine-tuning run, kind "student"."""
    write_text_atomic(os.path.join(out_dir, "vocab.txt"), "".join(f"{token}\n" for token in vocab))
    write_json(os.path.join(out_dir, "run.json"), {
        "kind": "student",
        "status": "complete",
        "task": identity["task"],
        "max_seq_len": identity["max_seq_len"],
        "cased": identity["cased"],
        "num_labels": identity["num_labels"],
        "teacher": identity["teacher"],
        "best_epoch": summary["best_epoch"],
        "global_step": summary["global_step"],
        "backend": keras.backend.backend(),
    })


# ---------------------------------------------------------------- evaluate


def evaluate_student(model_dir, x, labels, *, vocab=None, batch_size=256):
    """Accuracy and mean cross-entropy of a distilled student on encoded data.

    Args:
        model_dir: a `distill` output directory (or a path to a .keras file).
        x: teacher-tokenizer ids int [N, T], 0-padded.
        labels: gold label ids int [N]; rows with -1 are not scored.
        vocab: the vocabulary `x` was encoded with (tokens or sha256);
            checked against the one the student was distilled with.

    Returns:
        {"accuracy", "loss", "count"}.
    """
    path = model_dir if model_dir.endswith(".keras") else os.path.join(model_dir, "student.keras")
    if not os.path.exists(path):
        raise DataError(f"{path}: no student here")
    if vocab is not None:
        config_path = os.path.join(os.path.dirname(path), "config.json")
        try:
            expected = read_json(config_path, error=DataError, what="student config")["materials"]["vocab"]["sha256"]
        except (KeyError, TypeError):
            raise DataError(f"{config_path}: cannot tell the student's vocabulary (no materials.vocab.sha256)") from None
        given = vocab if isinstance(vocab, str) else vocab_sha256(vocab)
        if given != expected:
            raise DataError(f"{config_path}: the student was distilled with another vocabulary than the data's")
    model = keras.saving.load_model(path, compile=False)
    x = np.asarray(x, np.int32)
    labels = np.asarray(labels)
    if x.ndim != 2 or len(labels) != len(x):
        raise DataError(f"x must be [N, T] with N labels, got {x.shape} and {labels.shape}")
    vocab_size = model.get_layer("Student-Embedding").vocab_size
    if x.size and (x.min() < 0 or x.max() >= vocab_size):
        raise DataError(f"{path}: token ids outside the student's vocabulary of {vocab_size}; another tokenizer?")
    logits = predict_logits(model, x, batch_size=batch_size)
    scored = labels >= 0
    if not scored.any():
        raise DataError("no row has a gold label to score")
    log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    gold = labels[scored].astype(np.int64)
    return {
        "accuracy": float((logits[scored].argmax(axis=1) == gold).mean()),
        "loss": float(-log_probs[scored, gold].mean()),
        "count": int(scored.sum()),
    }


# ---------------------------------------------------------------- online


def token_only_teacher(teacher, sep_id=None):
    """Wrap a [token ids, segment ids] teacher as a token-ids-only model.

    `keras.distillation.Distiller` feeds teacher and student the same
    inputs, and the student reads token ids only.  Segment ids are rebuilt
    from the ids: 0 up to and including the first `sep_id`, 1 after it
    (BERT's pair encoding), or all 0 with `sep_id=None` (single sentences).
    """
    tokens = keras.Input(shape=(None,), dtype="int32", name="Student-Input-Token")
    if sep_id is None:
        segments = keras.ops.zeros_like(tokens)
    else:
        is_sep = keras.ops.cast(keras.ops.equal(tokens, sep_id), "int32")
        after_first = keras.ops.cumsum(is_sep, axis=1) - is_sep
        segments = keras.ops.cast(after_first > 0, "int32") * keras.ops.cast(tokens != 0, "int32")
    return keras.Model(tokens, teacher([tokens, segments]), name="token_only_teacher")


def distill_online(teacher, student, x, labels=None, *, epochs=1, batch_size=32, learning_rate=1e-3,
                   alpha=0.0, loss="mse", temperature=1.0, sep_id=None, verbose=1):
    """Distil from a live teacher with `keras.distillation.Distiller`.

    The teacher runs on every batch (no stored logits); gold labels are
    needed only with alpha > 0 and must then all be >= 0.

    Returns:
        The Keras History of the Distiller's fit; the student is trained in place.
    """
    if alpha > 0 and (labels is None or np.min(labels) < 0):
        raise DataError("alpha > 0 needs a gold label (>= 0) for every row")
    distiller = keras.distillation.Distiller(
        teacher=token_only_teacher(teacher, sep_id),
        student=student,
        distillation_losses=logits_distillation(loss, temperature),
        student_loss_weight=alpha,
    )
    distiller.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = np.asarray(x, np.int32)
    y = np.zeros(len(x), np.int32) if labels is None else np.asarray(labels, np.int32)
    return distiller.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=verbose)
