"""Fine-tune BERT with a classifier head on a GLUE task (the teacher), or
with a token or span head on a CoNLL-2003 or SQuAD file (`kbert.headtasks`).

The run directory (`kbert.runs` owns its layout) receives run.json,
model.keras, vocab.txt, checkpoint/ (the same weights in the original
format, classifier as run_classifier.py's output_weights/output_bias),
backup/ while training and features/ (the feature cache).

Resuming (`resume=True`) continues a killed run from its last finished
epoch, after checking that the options agree; the batch order and the
dropout of each epoch come from (seed, epoch) alone, so the resumed run
ends with the weights an uninterrupted one gives.
"""

import dataclasses
import logging
import os
import shutil
import time

import keras
import numpy as np

from kbert import runs
from kbert.atomic import file_sha256, refuse_overlap
from kbert.errors import ConfigError
from kbert.options import HEAD_TASKS, RECIPE_FIELDS, FinetuneOptions

logger = logging.getLogger(__name__)

# Options added after runs were written, with the value those runs used.
PREDATING = {"length_bucketing": True, "packing": False}
class _EpochHistory(keras.callbacks.Callback):
    """Keeps run.json's per-epoch history whole across resumes.

    Keras' History holds only the epochs of the current `fit`; after a
    resume that is the last few.  This writes each finished epoch into
    run.json, and on the first epoch of a (resumed) fit cuts the stored
    history to the epochs before it, since BackupAndRestore restarts from
    its last backup.  It runs before BackupAndRestore's own epoch end, so a
    kill between the two leaves a history one epoch ahead, which the cut
    on resume removes.
    """

    def __init__(self, output, record):
        super().__init__()
        self.output, self.record, self.started = output, record, False

    @property
    def history(self):
        return self.record.results.get("history", {})

    def on_epoch_begin(self, epoch, logs=None):
        if not self.started:
            self.started = True
            self._write({k: v[:epoch] for k, v in self.history.items()})

    def on_epoch_end(self, epoch, logs=None):
        history = {k: list(v) for k, v in self.history.items()}
        for key, value in (logs or {}).items():
            history.setdefault(key, []).append(float(value))
        self._write(history)

    def _write(self, history):
        self.record = self.record.replace(results=dict(self.record.results, history=history))
        runs.write_run(self.output, self.record)


def encode_split(processor, split, data_dir, tokenizer, max_seq_len, cache_dir, vocab_file, cased):
    """Features of one split through the feature cache."""
    from kbert.glue import FeatureCache

    cache = FeatureCache(vocab_file, max_seq_len=max_seq_len, cased=cased, cache_dir=cache_dir)
    cache.ensure(processor.name, split, data_dir, tokenizer)
    return cache.load(processor.name, split, data_dir)


def _subset(features, limit, seed):
    """The first `limit` examples after a seeded shuffle."""
    if limit is None or limit >= len(features):
        return features
    rows = np.sort(np.random.default_rng(seed).permutation(len(features))[:limit])
    return dataclasses.replace(
        features,
        input_ids=features.input_ids[rows],
        segment_ids=features.segment_ids[rows],
        lengths=features.lengths[rows],
        labels=features.labels[rows],
    )


def _distribution(enabled, batch_size, packing):
    """With `enabled`, train data-parallel over every device of the job;
    returns (this process's index, the processes' count), (0, 1) alone.

    Several processes (hosts, or processes on one host) join first, before
    JAX computes anything, when the `KERAS_DISTRIBUTION_*` variables that
    `keras.distribution.initialize` reads name more than one; on CPUs their
    gradients meet through JAX's gloo collectives.
    """
    if not enabled:
        return 0, 1
    if keras.backend.backend() != "jax":
        raise ConfigError("--distribute uses keras.distribution, which needs KERAS_BACKEND=jax")
    if packing:
        # DataParallel splits every input along its first axis; packed rows
        # and the [CLS] indices into them do not split that way.
        raise ConfigError("--distribute splits batches by rows, which packed batches do not allow: "
                          "add --no-packing")
    import jax

    processes = os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1")
    if not processes.isdigit() or int(processes) < 1:
        raise ConfigError(f"KERAS_DISTRIBUTION_NUM_PROCESSES must be a positive integer, got {processes!r}")
    if int(processes) > 1 and not jax.distributed.is_initialized():
        # CPU processes have no collectives without it; GPUs and TPUs use their own.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        try:
            keras.distribution.initialize()
        except (ValueError, RuntimeError) as e:  # a bad address or id, a coordinator not reached
            raise ConfigError(f"--distribute: joining {processes} processes (KERAS_DISTRIBUTION_*) failed: "
                              f"{e}") from None
    devices = keras.distribution.list_devices()
    if batch_size % len(devices):
        raise ConfigError(f"--batch-size {batch_size} does not split over {len(devices)} devices")
    # Each process's batches are already its share (`BucketedBatches(process=...)`):
    # Keras' own sharding takes tf.data datasets only.
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
    logger.info("data-parallel over %d devices in %d process(es)", len(devices), jax.process_count())
    return jax.process_index(), jax.process_count()


def finetune(options, output, *, data_dir=None, cache_dir=None, resume=False, distribute=False, verbose=True):
    """Fine-tune `options.checkpoint` on `options.task` (a GLUE task from
    `data_dir`, or "conll" or "squad" from `options.train`); returns the
    `RunRecord`."""
    from kbert import headtasks
    from kbert.batching import BUCKET_WINDOW, BucketedBatches, EpochOrder
    from kbert.conll import IGNORED
    from kbert.glue import get_processor, resolve_data_dir
    from kbert.optimization import create_optimizer, train_jit_compile
    from kbert.packing import PackedBatches
    from kbert.progress import ItemsProgress
    from kbert.seeding import EpochSeed
    from kbert.tokenization import Tokenizer, validate_case_matches_checkpoint
    from kbert.views import packed_classifier
    from kbert.weights.export import export_checkpoint
    from kbert.weights.loading import checkpoint_directory, load_checkpoint

    if resume and runs.has_run(output):
        # Options the caller left to the recipe are those the run used: a
        # run continues as it began, whatever the current recipe says.
        used = dict(PREDATING, **runs.read_run(output).options)
        options = dataclasses.replace(options, **{
            name: used[name] for name in RECIPE_FIELDS + ("packing",)
            if getattr(options, name) is None and name in used})
    options, defaults = options.resolved()
    validate_case_matches_checkpoint(cased=options.cased, checkpoint=options.checkpoint)
    head_task = HEAD_TASKS.get(options.task) and options.task  # "conll", "squad", or None: GLUE
    if head_task:
        processor, inputs = None, [options.train, options.dev]
    else:
        processor = get_processor(options.task)
        data_dir = resolve_data_dir(data_dir)
        inputs = [processor.task_dir(data_dir)]
    # Refused before run.json is written: a run in the checkpoint's folder
    # would replace its vocab.txt, one in the task's data would sit among it.
    refuse_overlap(output, [checkpoint_directory(options.checkpoint), *inputs], flag="--output", error=ConfigError)
    # Read before run.json is written: a bad file leaves nothing behind.
    examples = headtasks.read_training(head_task, options.train, limit=options.max_train_examples,
                                       seed=options.seed) if head_task else None
    # A key a stored run predates is compared as the value runs had then.
    implied = dict(dataclasses.asdict(FinetuneOptions(task=options.task)), **PREDATING)
    record = runs.start_run(
        output,
        runs.RunRecord(kind="teacher", status="training", options=dataclasses.asdict(options), task=options.task,
                       max_seq_len=options.max_seq_len, cased=options.cased, defaults=defaults),
        resume, implied=implied)
    if record.status == "complete":
        logger.info("%s: run already complete", output)
        # A kill after the final run.json, before the backup went, left it.
        shutil.rmtree(os.path.join(output, "backup"), ignore_errors=True)
        return record
    if head_task:
        # The options name the file; its bytes must be the ones the run began on.
        digest = file_sha256(options.train)
        if record.results.get("train_sha256", digest) != digest:
            raise ConfigError(f"{options.train}: changed since {output} began (its sha256 differs from run.json's "
                              "train_sha256); start a new run")
        record = record.replace(results=dict(record.results, train_sha256=digest))
        runs.write_run(output, record)
    for name, source in defaults.items():
        logger.info("%s = %s (%s)", name, getattr(options, name), source)
    # Before anything computes: several processes join before JAX starts.
    process = _distribution(distribute, options.batch_size, options.packing)
    keras.utils.set_random_seed(options.seed)

    # keras-bert semantics: trainable defaults to `training` (False here).
    if head_task:
        # A span head's width is fixed (start, end): it takes no num_labels.
        head, num_labels = HEAD_TASKS[head_task], examples.num_labels if head_task == "conll" else None
    else:
        head, num_labels = "sequence", processor.num_labels
    model = load_checkpoint(options.checkpoint, num_labels=num_labels, trainable=True, head=head)
    if model.vocab_file is None:
        raise ConfigError(f"{options.checkpoint}: no vocab.txt beside the checkpoint")
    runs.copy_vocab(output, model.vocab_file)
    vocab_file = runs.vocab_file(output)
    tokenizer = Tokenizer.from_vocab_file(vocab_file, cased=options.cased)
    batching = dict(batch_size=options.batch_size, seed=options.seed, fill=True,
                    window=BUCKET_WINDOW if options.length_bucketing else 1)
    if head_task:
        rows = headtasks.encode_training(examples, tokenizer, options.max_seq_len)
        batches = BucketedBatches(rows.inputs, rows.targets, rows.lengths, process=process,
                                  position_targets=IGNORED if head_task == "conll" else None,
                                  weight_each_target=True, **batching)
        loss, metrics, train_count = headtasks.loss(head_task), [], len(examples.items)
    else:
        cache_dir = cache_dir or os.path.join(output, "features")
        train = encode_split(processor, "train", data_dir, tokenizer, options.max_seq_len, cache_dir, vocab_file,
                             options.cased)
        train = _subset(train, options.max_train_examples, options.seed)
        labels = train.labels.astype("float32")[:, None] if processor.is_regression else train.labels
        if options.packing:
            batches = PackedBatches((train.input_ids, train.segment_ids), labels, train.lengths, **batching)
        else:
            batches = BucketedBatches((train.input_ids, train.segment_ids), labels, train.lengths, process=process,
                                      **batching)
        loss = (keras.losses.MeanSquaredError() if processor.is_regression
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        metrics, train_count = [] if processor.is_regression else ["accuracy"], len(train)
    total_steps = len(batches) * options.epochs
    compiled = dict(
        optimizer=create_optimizer(
            options.learning_rate, total_steps, options.warmup_proportion, options.weight_decay
        ),
        loss=loss,
        weighted_metrics=metrics,
        jit_compile=train_jit_compile(),
    )
    # A view (packed rows; a span head's stacked logits) trains the model's
    # own layers with the model's own optimizer, so model.keras holds the
    # optimizer state either way.
    model.compile(**compiled)
    if head_task:
        trained = headtasks.trained_model(model, head_task)
    else:
        trained = packed_classifier(model) if options.packing else model
    if trained is not model:
        trained.compile(**compiled)
    # BackupAndRestore needs built weights: one forward pass on a real batch.
    trained(batches[0][0])
    progress = ItemsProgress(options.batch_size, len(batches))
    epochs = _EpochHistory(output, record)
    backup_dir = os.path.join(output, "backup")
    started = time.perf_counter()
    trained.fit(
        batches,
        epochs=options.epochs,
        shuffle=False,  # BucketedBatches shuffles, seeded per epoch
        verbose=0,
        callbacks=[
            EpochOrder(batches),
            EpochSeed(options.seed),
            epochs,
            # The backup outlives fit (delete_checkpoint=False) until run.json
            # says complete: a kill during the final writes then resumes from
            # the last epoch instead of training again from the start.
            keras.callbacks.BackupAndRestore(backup_dir, double_checkpoint=True, delete_checkpoint=False),
            progress,
        ],
    )
    seconds = time.perf_counter() - started

    runs.save_model(output, model, "teacher")
    export_checkpoint(model, os.path.join(output, "checkpoint"), vocab_file=vocab_file, overwrite=True)
    if head_task:
        labels, num_labels = examples.labels, examples.num_labels
        task_results = {"squad_version": examples.version} if head_task == "squad" else {}
    else:
        labels = None if processor.is_regression else tuple(processor.labels)
        num_labels, task_results = processor.num_labels, {}
    record = epochs.record.replace(
        status="complete",
        files=runs.file_hashes(output, "teacher"),
        labels=labels,
        num_labels=num_labels,
        results=dict(
            epochs.record.results,
            **task_results,
            train_examples=train_count,
            global_step=total_steps,
            train_seconds=seconds,
            train_examples_per_second=progress.rates,
            backend=keras.backend.backend(),
        ),
    )
    runs.write_run(output, record)
    shutil.rmtree(backup_dir, ignore_errors=True)
    return record
