"""Distilling the teacher into a student (Tang et al. 2019): Kim's CNN,
Tang et al.'s BiLSTM, or a smaller BERT cut from the teacher's own layers
(`kbert.student`).

The student learns to reproduce the teacher's logits z_T:

    loss = alpha * CE(gold label, student)  +  (1 - alpha) * D(z_T, z_S)

with D the mean squared error between logits (Tang et al.'s choice, and
alpha = 0 as in their experiments: the gold labels are already in the
teacher's logits), or optionally the KL divergence between
temperature-softened outputs, scaled by T^2 (Hinton et al. 2015).  Rows
without a gold label (the augmented split, label -1) count in D only.

`distill` (`kbert distill`) trains from stored materials
(`kbert.materials`): the teacher ran once per sentence when the materials
were made, and every epoch reads its logits from the `y` array.  This is a
plain Keras `fit` whose target packs [gold label, teacher logits] per row,
with `StoredLogitsLoss` as the loss.  `keras.distillation.Distiller` does
not fit here: it calls the teacher on every batch, which is the very cost
stored materials exist to avoid (BERT-base forward passes dwarf the CNN's
training step), and it needs teacher and student to take the same inputs.
The loss itself does reuse Keras' distillation code:
`keras.distillation.LogitsDistillation.compute_loss` computes D on the
stored logits, so the temperature and T^2 conventions are Keras' own.

`distill` trains in length-bucketed batches (sentences of similar length
together, each batch trimmed to its longest row), checkpoints every epoch,
and resumes from the last checkpoint with `resume=True`.  It keeps the
latest epoch within one standard error of the best score on a held-out
slice of the training split (`holdout`, 5% by default, drawn to the
scored split's lengths; the score is `selection`, by default agreement
with the teacher): those rows, and the augmented rows made from them, are
not trained on.  The dev split is then scored once, for the kept
epoch only, so the reported dev number played no part in choosing it.
With `holdout=0` the dev split picks the epoch, as runs before the
holdout did (and such runs resume that way).

The output is a run directory of kind "student" (`kbert.runs` owns its
layout): student.keras (the best epoch's student, uncompiled, any backend),
run.json (the options, the materials' identity, the per-epoch history and
the best epoch) and vocab.txt, so that run-directory tools (`kbert
evaluate`) encode text for the student as for its teacher; checkpoint/
holds state.json, epoch-{n}.keras (the last epoch, with optimizer state)
and best-{n}.weights.h5, what `resume=True` reads.
"""

import dataclasses
import inspect
import logging
import os
import time

import keras
import numpy as np

import kbert
from kbert import runs
from kbert.atomic import atomic_output, read_json, refuse_overlap, save_model_atomic, write_json
from kbert.batching import BUCKET_WINDOW, BucketedBatches
from kbert.errors import ConfigError, DataError
from kbert.inference import predict_bucketed
from kbert.materials import load_materials, teacher_sha256
from kbert.numeric import log_softmax
from kbert.options import DistillOptions
from kbert.progress import ItemsProgress
from kbert.registry import STUDENTS, student_classes
from kbert.seeding import EpochSeed
from kbert.student import build_student, cut_teacher, merge_trained_rows, static_start, teacher_layers
from kbert.views import layerwise_trainer, student_trainer

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
# What a run recorded before an option existed used, where that differs
# from the current default: runs before the holdout picked epochs on dev; runs
# before the length-matched draw drew the holdout at random and picked on gold.
PREDATING = {"holdout": 0.0, "holdout_draw": "random", "selection": "gold", "learning_rate": 1e-3,
             "narrow_start": "random", "embedding_rows": "all"}
# A new run's choices for the options left None.
NEW_RUN = {"holdout": 0.05, "holdout_draw": "length", "selection": "agreement", "learning_rate": None,
           "narrow_start": None, "embedding_rows": "seen"}


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

    def __init__(self, alpha=0.0, loss="mse", temperature=1.0, pooled_weight=0.0, num_labels=None,
                 name="stored_logits_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = float(alpha)
        self.loss = loss
        self.temperature = float(temperature)
        self.pooled_weight = float(pooled_weight)
        self.num_labels = num_labels
        if self.pooled_weight and not num_labels:
            raise ConfigError("a pooled-representation loss needs num_labels (where the logits end)")
        self._distillation = logits_distillation(loss, self.temperature)

    def call(self, y_true, y_pred):
        gold = keras.ops.cast(y_true[:, 0], "int32")
        teacher = keras.ops.cast(y_true[:, 1:], y_pred.dtype)
        pooled = None
        if self.pooled_weight:
            # y_true [B, 1 + C + H], y_pred [B, C + H]: the pooled vectors follow the logits.
            c = self.num_labels
            teacher, pooled = teacher[:, :c], teacher[:, c:]
            y_pred, projected = y_pred[:, :c], y_pred[:, c:]
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
        if pooled is not None:
            total = total + self.pooled_weight * keras.ops.mean(keras.ops.square(projected - pooled))
        return total

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, loss=self.loss, temperature=self.temperature,
                      pooled_weight=self.pooled_weight, num_labels=self.num_labels)
        return config


@keras.saving.register_keras_serializable(package="kbert")
def teacher_agreement(y_true, y_pred, num_labels=None):
    """Share of rows where the student's top label is the teacher's (the
    first `num_labels` columns of both, when pooled vectors follow)."""
    teacher, student = y_true[:, 1:], y_pred
    if num_labels:
        teacher, student = teacher[:, :num_labels], student[:, :num_labels]
    return keras.ops.cast(keras.ops.equal(keras.ops.argmax(teacher, axis=-1), keras.ops.argmax(student, axis=-1)),
                          "float32")


def pack_targets(labels, logits, pooled=None):
    """[N] gold labels, [N, C] teacher logits (and [N, H] pooled vectors)
    -> float32 [N, 1 + C (+ H)] targets."""
    parts = [np.asarray(labels, np.float32)[:, None], np.asarray(logits, np.float32)]
    return np.concatenate(parts + ([] if pooled is None else [np.asarray(pooled, np.float32)]), axis=1)


# ---------------------------------------------------------------- batches


def predict_logits(model, x, lengths=None, batch_size=256, segment=None):
    """The student's logits [N, C] for token ids [N, T] (and segment ids
    [N, T] for a student that reads them), in length buckets."""
    arrays = [np.asarray(x, np.int32)]
    if len(model.inputs) > 1:
        if segment is None:
            raise ConfigError(f"{model.name} reads segment ids too; pass segment=")
        arrays.append(np.asarray(segment, np.int32))
    return predict_bucketed(model, arrays, lengths, batch_size=batch_size)


# ---------------------------------------------------------------- checkpoints


def _save_weights(model, path):
    with atomic_output(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def _selection_metric(task):
    """The metric that picks the epoch: the GLUE task's (CoLA: MCC), else accuracy."""
    from kbert.glue import TASKS, get_processor

    return get_processor(task).selection_metric if task in TASKS else "accuracy"


def _split_logits(model, split):
    # A trainer with a pooled projection outputs [logits, projection]: the first C columns.
    return predict_logits(model, split.x, split.length, segment=split.segment)[:, : split.y.shape[1]]


def _dev_scores(model, split, task, logits=None):
    """({metric: score} vs gold, empty without gold; agreement with the teacher)
    on a materials split: accuracy, and the task's selection metric."""
    from kbert.glue.metrics import compute_metrics

    logits = _split_logits(model, split) if logits is None else logits
    predicted = logits.argmax(axis=1)
    agreement = float((predicted == split.y.argmax(axis=1)).mean())
    has_gold = split.label >= 0
    if not has_gold.any():
        return {}, agreement
    scores = {"accuracy": float((predicted[has_gold] == split.label[has_gold]).mean())}
    metric = _selection_metric(task)
    if metric not in scores:
        scores[metric] = compute_metrics(task, split.label[has_gold], predicted[has_gold])[metric]
    return scores, agreement


def _mean_and_error(values):
    """The mean of per-row `values` and its standard error."""
    values = np.asarray(values, np.float64)
    error = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(error)


def selection_signals(logits, split, task):
    """{signal: (score, standard error)} of a student's `logits` [N, C] on a
    materials split, each higher-is-better: "agreement" (the share of rows
    where the student's label is the teacher's), "kl" (minus the mean
    KL(teacher || student) of the softmaxes) and, where every row has a
    gold label, "gold" (the task's selection metric).  A metric that is not
    a mean over rows (CoLA's MCC) gets a bootstrap standard error (200
    resamples, a fixed seed, so the same logits give the same error)."""
    from kbert.glue.metrics import compute_metrics

    logits = np.asarray(logits, np.float64)
    teacher = np.asarray(split.y, np.float64)
    signals = {"agreement": _mean_and_error(logits.argmax(1) == teacher.argmax(1))}
    log_teacher, log_student = log_softmax(teacher), log_softmax(logits)
    kl, error = _mean_and_error((np.exp(log_teacher) * (log_teacher - log_student)).sum(axis=1))
    signals["kl"] = (-kl, error)
    labels = np.asarray(split.label)
    if len(labels) and (labels >= 0).all():
        predicted = logits.argmax(1)
        metric = _selection_metric(task)
        if metric == "accuracy":
            signals["gold"] = _mean_and_error(predicted == labels)
        else:
            score = compute_metrics(task, labels, predicted)[metric]
            draws = np.random.default_rng(0).integers(0, len(labels), size=(200, len(labels)))
            again = [compute_metrics(task, labels[rows], predicted[rows])[metric] for rows in draws]
            signals["gold"] = (float(score), float(np.nanstd(again, ddof=1)))
    return signals


def keeps_epoch(score, error, top):
    """Whether an epoch scoring `score` (standard error `error`) replaces the
    kept one, `top` being the best score of the epochs before (None: none):
    yes when it is within one standard error of the best.  Within the
    slice's own noise the later, more trained epoch is preferred; applied
    epoch by epoch, this keeps the latest epoch within one standard error
    of the best score of them all."""
    return top is None or score >= top - error


class _EpochEnd(keras.callbacks.Callback):
    """Scores the selection split (holdout or dev), keeps the best weights,
    checkpoints; the state file commits."""

    def __init__(self, checkpoint_dir, select, state, task, selection):
        super().__init__()
        self.checkpoint_dir, self.select, self.state, self.task = checkpoint_dir, select, state, task
        self.selection = selection
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        name, split = self.select
        logits = _split_logits(self.model, split)
        scores, agreement = _dev_scores(self.model, split, self.task, logits)
        signals = selection_signals(logits, split, self.task)
        # A slice without gold labels is scored by agreement.
        signal = self.selection if self.selection in signals else "agreement"
        score, error = signals[signal]
        record = {key: float(value) for key, value in (logs or {}).items()}
        record.update({"epoch": epoch + 1, f"{name}_accuracy": scores.get("accuracy"),
                       **{f"{name}_{metric}": value for metric, value in scores.items() if metric != "accuracy"},
                       f"{name}_agreement": agreement, f"{name}_kl": -signals["kl"][0],
                       "selection": signal, "selection_score": score, "selection_error": error,
                       "signals": {key: [value, err] for key, (value, err) in signals.items()},
                       "seconds": round(time.perf_counter() - self.started, 3),
                       "global_step": int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))})
        logger.info("epoch %d: %s %s, agreement %.4f, kl %.4f", epoch + 1, name, scores, agreement,
                    -signals["kl"][0])
        if logs is not None:  # the progress bar, called after this callback, shows them
            logs.update({f"{name}_{metric}": value for metric, value in scores.items()} or
                        {f"{name}_agreement": agreement})

        # Files are named by epoch and state.json, written last, says which
        # are current: a crash in between leaves the previous state whole.
        stale = []
        # A state from before top_score kept the best score as best_score.
        top = self.state.get("top_score", self.state["best_score"])
        if keeps_epoch(score, error, top):
            best = f"best-{epoch + 1}.weights.h5"
            _save_weights(self.model, os.path.join(self.checkpoint_dir, best))
            stale.append(self.state.get("best_weights"))
            self.state.update(best_score=score, best_epoch=epoch + 1, best_weights=best)
        self.state["top_score"] = score if top is None else max(top, score)
        name = f"epoch-{epoch + 1}.keras"
        save_model_atomic(self.model, os.path.join(self.checkpoint_dir, name))
        stale.append(self.state.get("checkpoint"))
        self.state.update(epoch=epoch + 1, checkpoint=name)
        self.state["history"].append(record)
        write_json(os.path.join(self.checkpoint_dir, STATE_FILE), self.state)
        for old in stale:
            if old and os.path.exists(os.path.join(self.checkpoint_dir, old)):
                os.remove(os.path.join(self.checkpoint_dir, old))


# ---------------------------------------------------------------- distill


def _subset(split, keep):
    return dataclasses.replace(split, **{f.name: getattr(split, f.name)[keep] for f in dataclasses.fields(split)
                                         if getattr(split, f.name) is not None})


def length_matched(lengths, targets, count, rng):
    """Indices of `count` distinct rows of `lengths` whose lengths follow
    the distribution of `targets` (the lengths of the text to be scored).

    The `count` evenly spaced quantiles of `targets` are the wanted
    lengths; each takes a row not yet taken of that length or, when none is
    left, of the nearest length (the shorter on a tie), rows of one length
    in the order `rng` shuffles them.  SST-2's train split is 42% parse-tree
    phrases of five words or fewer, its dev split whole sentences: a
    random draw would mostly measure how a student labels short phrases.
    Where train's lengths already look like the targets', this is a random
    draw with the same length distribution.
    """
    lengths = np.asarray(lengths)
    targets = np.sort(np.asarray(targets))
    if not 0 < count <= len(lengths) or not len(targets):
        raise DataError(f"a length-matched draw of {count} of {len(lengths)} rows to {len(targets)} target lengths")
    order = rng.permutation(len(lengths))
    order = order[np.argsort(lengths[order], kind="stable")]  # by length, shuffled within each length
    values, starts, counts = np.unique(lengths[order], return_index=True, return_counts=True)
    taken = np.zeros(len(values), np.int64)
    wanted = targets[np.minimum((np.arange(count) + 0.5) / count * len(targets), len(targets) - 1).astype(int)]
    chosen = np.empty(count, np.int64)
    for k, length in enumerate(wanted):
        left = taken < counts
        distance = np.where(left, np.abs(values - length), np.iinfo(np.int64).max)
        slot = int(np.argmin(distance))  # the first of equals: the shorter length
        chosen[k] = order[starts[slot] + taken[slot]]
        taken[slot] += 1
    return chosen


def _held_out(materials, options):
    """(training splits with the holdout removed, the holdout split or None).

    The holdout: `options.holdout` of the "train" rows, drawn by the seed,
    with `options.holdout_draw` "length" so that their lengths follow the
    dev split's (`length_matched`); augmented rows made from a held-out
    row are dropped with it.
    """
    splits = {name: materials.split(name) for name in options.train_splits if materials.rows(name)}
    if not sum(len(split) for split in splits.values()):
        raise DataError(f"{materials.directory}: no rows in the training splits {list(options.train_splits)}")
    if not options.holdout:
        return splits, None
    if "train" not in splits:
        raise ConfigError(f"{materials.directory}: holdout draws from the train split, which is not trained on "
                          "here; pass --holdout 0 to pick epochs on dev")
    n = len(splits["train"])
    held = np.zeros(n, bool)
    # At least one row, however small the split.
    count = max(1, int(round(options.holdout * n)))
    rng = np.random.default_rng([options.seed, 17])
    if options.holdout_draw == "length":
        # Only the reported split's lengths: its labels are not read here.
        held[length_matched(splits["train"].length, materials.splits[options.dev_split].length, count, rng)] = True
    else:
        held[rng.permutation(n)[:count]] = True
    if held.all():
        raise ConfigError(f"{materials.directory}: a holdout of {options.holdout} leaves no train rows to train on "
                          f"({n} train rows); pass --holdout 0 to pick epochs on dev")
    holdout = _subset(splits["train"], held)
    splits["train"] = _subset(splits["train"], ~held)
    if "augmented" in splits:
        augmented = splits["augmented"]
        if augmented.source is None:
            raise ConfigError(f"{materials.directory}: the augmented split does not record its source rows "
                              "(materials made before kbert recorded them): regenerate the materials, or pass "
                              "--holdout 0 to pick epochs on dev")
        if len(augmented) and augmented.source.max() >= n:
            raise DataError(f"{materials.directory}: augmented rows name source row {augmented.source.max()}, "
                            f"but train has {n}")
        splits["augmented"] = _subset(augmented, ~held[augmented.source])
    logger.info("holding out %d of %d train rows to pick the best epoch", int(held.sum()), n)
    return splits, holdout


def _start(materials, options, splits):
    """The student's starting vectors (see `DistillOptions.embedding`)."""
    if options.embedding == "teacher":
        return materials.embedding
    if materials.static is None:
        raise ConfigError(f"{materials.directory}: no static vectors; make the materials with --static-embedding")
    counts = sum(np.bincount(split.x[split.x > 0], minlength=len(materials.vocab)) for split in splits.values())
    dim = options.embedding_dim or materials.static.shape[1]
    if not 1 <= dim <= materials.static.shape[1]:
        raise ConfigError(f"embedding_dim {dim} is outside 1..{materials.static.shape[1]}")
    return static_start(materials.static, counts, dim)


def _trained_ids(splits, options):
    """The token ids the training splits read (`DistillOptions.embedding_rows`
    "seen"), else None: every row trains.  Padding (0) reads a zero vector
    and is left out.  A registered student whose class takes no
    `trained_rows` trains every row: the same student, only slower."""
    if options.embedding_rows == "all" or options.variant == "static":
        return None
    if "trained_rows" not in inspect.signature(STUDENTS[options.student].load()).parameters:
        logger.info("the %s student trains every embedding row (its class takes no trained_rows)", options.student)
        return None
    ids = _read_ids(splits)
    logger.info("training %d of the embedding's rows: those the training rows read", ids.size)
    return ids if ids.size else None


def _read_ids(splits):
    """The token ids, padding (0) aside, that the training splits read."""
    ids = np.unique(np.concatenate([np.unique(split.x) for split in splits.values()]))
    return ids[ids > 0]


def _check_trained_ids(model, splits, checkpoint_dir):
    """A resumed student trains the rows it began training: materials whose
    training rows now read other ids (regenerated, the same row counts)
    would leave those rows frozen, so they are refused."""
    try:
        layer = model.get_layer("Student-Embedding")
    except ValueError:  # a student cut from the teacher
        return
    if getattr(layer, "trained_rows", None) is None:
        return
    if not np.array_equal(_read_ids(splits), layer.trained_ids()):
        raise DataError(f"{checkpoint_dir}: the student was trained on rows that read other token ids than the "
                        "materials' training rows now do; distil into a new directory")


def _training_rows(directory, splits, pooled, segments=False):
    """(token ids [N, T], or (token ids, segment ids) with `segments`;
    targets; lengths) of the training splits, one after the other."""
    names = list(splits)
    if pooled:
        missing = [name for name, split in splits.items() if split.pooled is None]
        if missing:
            raise ConfigError(f"{directory}: the splits {missing} hold no pooled vectors; make the materials with "
                              "--pooled for --pooled-weight")
    splits = list(splits.values())
    width = max(split.x.shape[1] for split in splits)
    x = np.concatenate([np.pad(s.x, [(0, 0), (0, width - s.x.shape[1])]) for s in splits])
    if segments:
        x = (x, np.concatenate([np.pad(s.segment, [(0, 0), (0, width - s.x.shape[1])]) for s in splits]))
    targets = np.concatenate([pack_targets(s.label, s.y, s.pooled if pooled else None) for s in splits])
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
        "embedding_dim": manifest["embedding"]["dim"],
    }


def _compile(model, options, num_labels):
    pooled = dict(pooled_weight=options.pooled_weight, num_labels=num_labels) if options.pooled_weight else {}
    model.compile(
        optimizer=keras.optimizers.Adam(options.learning_rate),
        loss=StoredLogitsLoss(options.alpha, options.loss, options.temperature, **pooled),
        metrics=[keras.metrics.MeanMetricWrapper(teacher_agreement, name="teacher_agreement",
                                                 num_labels=num_labels)],
    )


def _resume_state(checkpoint_dir, options, identity, resume, available):
    """(the saved state of an earlier run in this directory or None to start
    afresh, `options` with the options left None resolved: the run's own,
    else `NEW_RUN`'s).  `available`: the split names the materials hold, so
    that a training split a run predates (and the materials lack) does not
    count as another setting."""
    path = os.path.join(checkpoint_dir, STATE_FILE)
    # embedding_rows shapes only a student built from the teacher's token
    # vectors; one cut from the teacher keeps it None, new run or old.
    small = STUDENTS[options.student].start == "embedding"
    unset = [name for name in NEW_RUN if getattr(options, name) is None and (small or name != "embedding_rows")]
    if not os.path.exists(path):
        # learning_rate: the student's own (`StudentSpec.learning_rate`).
        fresh = dict(NEW_RUN, learning_rate=STUDENTS[options.student].learning_rate)
        return None, dataclasses.replace(options, **{name: fresh[name] for name in unset})
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
    # Rows added to the materials since (more unlabeled text, say) would make
    # the resumed run another run; runs before the record are not checked.
    if "rows" in state["identity"] and state["identity"]["rows"] != identity["rows"]:
        raise DataError(f"{path}: the student was trained on {state['identity']['rows']} rows, the materials now "
                        f"give {identity['rows']}; distil into a new directory")
    # A setting the run predates is compared as its default.
    earlier = dict(DistillOptions().to_dict(), **PREDATING)
    if not small:
        earlier["embedding_rows"] = None
    earlier.update(state["config"])
    earlier["epochs"] = options.epochs
    options = dataclasses.replace(options, **{name: earlier[name] for name in unset})
    current = options.to_dict()
    for config in (earlier, current):
        config["train_splits"] = [name for name in config["train_splits"] if name in available]
    if earlier != current:
        raise ConfigError(f"{path}: the run used other settings ({state['config']}); only epochs may change on resume")
    return state, options


def distill(materials_dir, out_dir, options=None, *, resume=False, verbose=1, callbacks=()):
    """Train a student on stored teaching materials.

    Args:
        materials_dir: written by `kbert.materials.generate_materials`.
        out_dir: the student's run directory (see the module docstring).
        options: `DistillOptions` (None: the defaults).
        resume: continue the run checkpointed in `out_dir`; a directory
            with no run yet starts one.
        verbose: show a progress bar (items/s) per epoch.
        callbacks: Keras callbacks run after kbert's own at each epoch's
            end (a study's, say, scoring every epoch on another split).

    Returns:
        The student's `RunRecord`; `results` holds best_epoch (and
        selected_on: "holdout" or the dev split; selection_metric: the
        task's, CoLA's MCC or accuracy), dev_accuracy (CoLA: and dev_mcc)
        and dev_agreement of the kept epoch, epochs, global_step and
        history.
    """
    options = options or DistillOptions()
    refuse_overlap(out_dir, [materials_dir], flag="--output", error=ConfigError)
    materials = load_materials(materials_dir)
    if STUDENTS[options.student].start == "teacher":  # the teacher's run is read too
        refuse_overlap(out_dir, [materials.manifest["teacher"]["id"]], flag="--output", error=ConfigError)
    if options.dev_split not in materials.splits or not len(materials.splits[options.dev_split]):
        raise DataError(f"{materials_dir}: no complete, non-empty {options.dev_split!r} split to report")
    if materials.num_labels < 2:
        raise ConfigError(f"{materials_dir}: {materials.num_labels} label(s); the student distils classifiers only")
    identity = _identity(materials)

    if runs.has_run(out_dir) and runs.read_run(out_dir).kind != "student":
        raise ConfigError(f"{out_dir}: holds a {runs.read_run(out_dir).kind} run; give the student its own directory")
    checkpoint_dir = os.path.join(out_dir, "checkpoint")
    os.makedirs(checkpoint_dir, exist_ok=True)
    identity["rows"] = {name: materials.rows(name) for name in options.train_splits if materials.rows(name)}
    state, options = _resume_state(checkpoint_dir, options, identity, resume, set(identity["rows"]) | set(materials.splits))
    if state is not None:  # a run from before the rows were recorded records them from now on
        state["identity"].setdefault("rows", identity["rows"])
    keras.utils.set_random_seed(options.seed)
    splits, holdout = _held_out(materials, options)
    if state is None:
        state = {"epoch": 0, "best_score": None, "best_epoch": None, "best_weights": None, "checkpoint": None,
                 "history": [], "config": options.to_dict(), "identity": identity}
        teacher = _teacher(materials) if STUDENTS[options.student].start == "teacher" else None
        if teacher is not None:
            model = cut_teacher(teacher, **_student_arguments(materials, options))
        else:
            model = build_student(_start(materials, options, splits), materials.num_labels,
                                  student=options.student, variant=options.variant,
                                  embedding_dim=options.embedding_dim, trained_ids=_trained_ids(splits, options),
                                  **_student_arguments(materials, options))
        # What _finish rebuilds the student from, when a trainer wraps it.
        state["student"] = {"class": type(model).__name__, "config": model.get_config()}
        if options.pooled_weight:
            model = student_trainer(model, identity["embedding_dim"])
        if options.hidden_weight or options.attention_weight:
            model = layerwise_trainer(model, teacher, layer_pairs(model.bert_config.num_hidden_layers,
                                                                  teacher.bert_config.num_hidden_layers),
                                      hidden_weight=options.hidden_weight, attention_weight=options.attention_weight)
        _compile(model, options, materials.num_labels)
    else:
        logger.info("resuming after epoch %d", state["epoch"])
        model = keras.saving.load_model(os.path.join(checkpoint_dir, state["checkpoint"]))
        _check_trained_ids(model, splits, checkpoint_dir)
        state["config"] = options.to_dict()
    record = _record(identity, options, status="training")
    runs.write_run(out_dir, record)

    x, targets, lengths = _training_rows(materials.directory, splits, options.pooled_weight > 0,
                                         segments=len(model.inputs) > 1)
    dev = materials.splits[options.dev_split]
    select = (options.dev_split, dev) if holdout is None else ("holdout", holdout)
    if state["epoch"] < options.epochs:
        batches = BucketedBatches(x, targets, lengths, batch_size=options.batch_size, seed=options.seed,
                                  epoch=state["epoch"], window=BUCKET_WINDOW if options.length_bucketing else 1)
        callbacks = [EpochSeed(options.seed), _EpochEnd(checkpoint_dir, select, state, identity["task"],
                                                        options.selection), *callbacks]
        if verbose:  # a tqdm bar counting sentences, so its rate is items/s
            callbacks.append(ItemsProgress(options.batch_size, len(batches), desc="distill"))
        # shuffle=False: BucketedBatches orders each epoch from (seed, epoch)
        # alone.  Keras' own shuffle would reorder the batches again from the
        # global NumPy state, which a resumed process does not share with the
        # run it continues, so the resumed epochs would diverge.
        model.fit(batches, epochs=options.epochs, initial_epoch=state["epoch"], callbacks=callbacks, verbose=0,
                  shuffle=False)
    return _finish(out_dir, model, record, state, materials.vocab, dev, select[0])


def layer_pairs(layers, depth):
    """(student layer, teacher layer) pairs the layer-wise losses match: the
    embeddings' outputs (0, 0), then student layer m of `layers` with
    teacher layer m * depth / layers (TinyBERT's map), ending with both
    last layers."""
    return [(0, 0)] + list(zip(range(1, layers + 1), teacher_layers(layers, depth, "spread")))


def _teacher(materials):
    """The teacher model the materials were made with (its run directory,
    the manifest's teacher id), checked against the manifest's weight hash."""
    teacher = materials.manifest["teacher"]
    run_dir = teacher["id"]
    if teacher.get("quantization"):
        raise ConfigError(f"{materials.directory}: the materials come from an int8 teacher; cut the transformer "
                          "student from materials of the float teacher")
    if not runs.has_run(run_dir) or runs.read_run(run_dir).kind != "teacher":
        raise ConfigError(f"{materials.directory}: the transformer student is cut from the teacher's run, "
                          f"{run_dir!r}, which holds no teacher run")
    model, _ = runs.load_model(run_dir)
    if teacher_sha256(model) != teacher["sha256"]:
        raise DataError(f"{run_dir}: the teacher's weights changed since the materials in {materials.directory} "
                        "were made")
    return model


def _student_arguments(materials, options):
    """The registered student's own constructor arguments from `options`."""
    spec = STUDENTS[options.student]
    arguments = {name: getattr(options, name) for name in spec.options}
    if spec.pairs_apart:
        arguments["separator_id"] = _separator_id(materials, options)
    return arguments


def _separator_id(materials, options):
    """[SEP]'s id for a siamese reading of pairs (`options.pairs`), else None."""
    if options.pairs == "joint":
        return None
    if materials.splits[options.dev_split].sentence.ndim != 2:
        raise ConfigError(f"{materials.directory}: --pairs siamese reads sentence pairs; these materials hold "
                          "single sentences")
    if "[SEP]" not in materials.vocab:
        raise DataError(f"{materials.directory}: the vocabulary has no [SEP] token to split pairs at")
    return materials.vocab.index("[SEP]")


def _record(identity, options, **fields):
    """The student's `RunRecord`, its encoding as the teacher's."""
    from kbert.glue import TASKS, get_processor

    task = identity["task"]
    labels = tuple(get_processor(task).labels) if task in TASKS else None
    return runs.RunRecord(kind="student", options=options.to_dict(), task=task, labels=labels or None,
                          num_labels=identity["num_labels"], max_seq_len=identity["max_seq_len"],
                          cased=identity["cased"], **fields)


def _finish(out_dir, model, record, state, vocab, dev, selected_on):
    """Write the best epoch's student, uncompiled, and the run record, with
    its dev scores: computed here, once, for the kept epoch."""
    weights = os.path.join(out_dir, "checkpoint", state["best_weights"])
    classes = student_classes()
    if isinstance(model, tuple(classes.values())):
        best = type(model).from_config(model.get_config())
        best.load_weights(weights)
    else:  # a trainer: the student's own layers, by name
        best = classes[state["student"]["class"]].from_config(state["student"]["config"])
        model.load_weights(weights)
        for layer in best.layers:
            if layer.weights:
                layer.set_weights(model.get_layer(layer.name).get_weights())
    # Saved without the trained/frozen split of its embedding rows, the
    # student is the same to predict, export and every other reader.
    best = merge_trained_rows(best)
    runs.save_model(out_dir, best, "student")
    runs.write_vocab(out_dir, vocab)
    kept = next(r for r in state["history"] if r["epoch"] == state["best_epoch"])
    scores, agreement = _dev_scores(best, dev, record.task)
    record = record.replace(status="complete", files=runs.file_hashes(out_dir, "student"), results={
        "best_epoch": state["best_epoch"],
        "selected_on": selected_on,
        "selection_metric": _selection_metric(record.task),
        "selection": state["config"].get("selection", PREDATING["selection"]),
        "dev_accuracy": scores.get("accuracy"),
        **{f"dev_{metric}": value for metric, value in scores.items() if metric != "accuracy"},
        "dev_agreement": agreement,
        "epochs": state["epoch"],
        # Optimizer steps up to the kept epoch: eval_results.txt's global_step.
        "global_step": kept.get("global_step", 0),
        "history": state["history"],
        "materials": state["identity"],
        "kbert_version": kbert.__version__,
        "backend": keras.backend.backend(),
    })
    runs.write_run(out_dir, record)
    return record
