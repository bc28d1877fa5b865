"""The run directory: the one module that reads and writes what a stage leaves.

`kbert finetune` (kind "teacher"), `kbert distill` (kind "student") and
`kbert pretrain` (kind "pretrain") each write one run directory;
`kbert evaluate`, `kbert materials`, `kbert run`
and the benchmarks read it back through this module alone.  Its files, and
the one function that writes and the one that reads each:

    file              written by                          read by
    run.json          runs.write_run                      runs.read_run
    vocab.txt         runs.copy_vocab (teacher, pretrain), runs.load_tokenizer
                      runs.write_vocab (student)
    model.keras       runs.save_model (teacher)           runs.load_model
    student.keras     runs.save_model (student)           runs.load_model
    checkpoint/       teacher, pretrain:                  kbert.load_checkpoint
                      weights.export_checkpoint
                      student: distill's epoch state      distill (resume)
    instances.npz     pretraining.Instances.save          pretraining.Instances.load
    training/         pretraining's saved steps           pretraining (resume)
    eval_results*.txt glue.write_eval_results             people (the original's report)
    backup/           keras BackupAndRestore (finetune)   keras BackupAndRestore
    features/         glue.FeatureCache                   glue.FeatureCache

`run.json` holds one `RunRecord`.  Directories written before this module
existed still load: a teacher's record then nested its options and kept
`max_seq_len`/`cased` only there, and a student's record was flat with its
options in a `config.json` beside it.
"""

import dataclasses
import json
import os
import shutil
import zipfile

from kbert.atomic import atomic_output, file_sha256, read_json, save_model_atomic, write_json, write_text_atomic
from kbert.checks import is_int
from kbert.errors import ConfigError, DataError
from kbert.saving import register_all

RUN_FILE = "run.json"
VOCAB_FILE = "vocab.txt"
# A pre-training run's model is its original-format checkpoint/.
MODEL_FILES = {"teacher": "model.keras", "student": "student.keras", "pretrain": "checkpoint/bert_model.ckpt.index"}
# Kinds whose complete run is a classifier of a task.
CLASSIFIERS = ("teacher", "student")
STATUSES = ("training", "complete")
FORMAT = "kbert-run"
FORMAT_VERSION = 2  # 1: the unversioned layouts read by `_from_legacy`


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What `run.json` says about a run.

    Attributes:
        kind: "teacher" (fine-tuned BERT), "student" (distilled CNN) or
            "pretrain" (BERT after more pre-training, no task).
        status: "training" until the model file is written, then "complete".
        options: the stage's options as used (`FinetuneOptions`,
            `DistillOptions` fields), compared when a run resumes.
        task: the GLUE task; None while a record predates it.
        labels: the task's label names in id order (None: regression, or
            materials of a task kbert does not know).
        num_labels: outputs of the model's head.
        max_seq_len: the encoding's maximum length.
        cased: whether the tokenizer keeps case.
        defaults: option -> where its value came from, for the options the
            user left to a recipe (e.g. a preset's learning rate).
        results: what the stage measured (global_step, history, timings...).
        files: path inside the run directory -> sha256 of the file as the
            stage wrote it, for `verify_files` (the opt-in check that
            catches what no format check can, e.g. a flipped bit in a
            weight's data).
    """

    kind: str
    status: str
    options: dict
    task: str = None
    labels: tuple = None
    num_labels: int = None
    max_seq_len: int = None
    cased: bool = False
    defaults: dict = dataclasses.field(default_factory=dict)
    results: dict = dataclasses.field(default_factory=dict)
    files: dict = dataclasses.field(default_factory=dict)

    @property
    def model_file(self):
        return MODEL_FILES[self.kind]

    @property
    def global_step(self):
        return int(self.results.get("global_step", 0))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_json(self):
        value = dataclasses.asdict(self)
        value["labels"] = None if self.labels is None else list(self.labels)
        return dict(value, format=FORMAT, format_version=FORMAT_VERSION, model_file=self.model_file)


def run_file(run_dir):
    return os.path.join(os.fspath(run_dir), RUN_FILE)


def has_run(run_dir):
    """True when `run_dir` holds a run record (of any status)."""
    return os.path.isfile(run_file(run_dir))


def write_run(run_dir, record):
    """Write `record` to RUN_DIR/run.json atomically."""
    write_json(run_file(run_dir), record.to_json())


def start_run(run_dir, record, resume, *, implied=None):
    """Create `run_dir` with `record` (status "training"), or reopen the run
    already there when `resume` and it is of the same kind with the same
    options (a key the stored run predates is compared as `implied[key]`).
    Returns the record in force.

    Raises:
        ConfigError: as `check_start`.
    """
    stored = check_start(run_dir, record, resume, implied=implied)
    if stored is not None:
        return stored
    os.makedirs(run_dir, exist_ok=True)
    write_run(run_dir, record)
    return record


def check_start(run_dir, record, resume, *, implied=None):
    """What `start_run` would do, writing nothing: the stored record it
    would reopen, or None when it would create the run.  A stage that
    checks its inputs before `start_run` calls this first, so that a run
    it could not start is refused before the (slow) checks.

    Raises:
        ConfigError: a run exists and `resume` is false, or it is another
            kind of run or ran with other options; `resume` on a directory
            that holds files but no run.
    """
    if has_run(run_dir):
        stored = read_run(run_dir)
        if not resume:
            raise ConfigError(f"{run_dir}: a run already exists here; pass --resume or choose another --output")
        if stored.kind != record.kind:
            raise ConfigError(f"{run_dir}: holds a {stored.kind!r} run, not a {record.kind!r} run")
        ours = json.loads(json.dumps(record.options))  # tuples as the stored JSON lists
        implied = implied or {}
        theirs = {k: stored.options.get(k, implied.get(k)) for k in ours}
        differ = sorted(k for k in ours if theirs[k] != ours[k])
        if differ:
            detail = ", ".join(f"{k}: run has {theirs[k]!r}, asked {ours[k]!r}" for k in differ)
            raise ConfigError(f"{run_dir}: cannot resume, options differ ({detail})")
        return stored
    if resume and os.path.isdir(run_dir) and os.listdir(run_dir):
        raise ConfigError(f"{run_dir}: --resume given but the directory holds no {RUN_FILE}")
    return None


def read_run(run_dir):
    """The `RunRecord` of `run_dir`, in the current layout or an earlier one.

    Raises:
        ConfigError: naming run.json and the field, when the file is
            missing, unreadable or holds a field of the wrong type.
    """
    path = run_file(run_dir)
    value = read_json(path, error=ConfigError, what="run record", missing="not a kbert run directory")
    if "format_version" in value:
        if value.get("format") != FORMAT or value.get("format_version") != FORMAT_VERSION:
            raise ConfigError(
                f"{path}: run record format {value.get('format')!r} version {value.get('format_version')!r}; "
                f"this kbert reads {FORMAT!r} version {FORMAT_VERSION}"
            )
        fields = {f.name: value[f.name] for f in dataclasses.fields(RunRecord) if f.name in value}
    else:
        fields = _from_legacy(run_dir, value)
    return _checked(path, fields)


def _from_legacy(run_dir, value):
    """Fields of a record written before format_version 2."""
    kind = value.get("kind")
    if kind == "student":
        # The options lived in config.json's "distill" entry.
        config_path = os.path.join(os.fspath(run_dir), "config.json")
        options = {}
        if os.path.isfile(config_path):
            options = read_json(config_path, error=ConfigError, what="student config").get("distill", {})
        results = {k: value[k] for k in ("best_epoch", "global_step", "backend", "teacher") if k in value}
        return dict(kind=kind, status=value.get("status"), options=options, task=value.get("task"),
                    labels=_task_labels(value.get("task")), num_labels=value.get("num_labels"),
                    max_seq_len=value.get("max_seq_len"), cased=value.get("cased", False), results=results)
    if "options" not in value:
        raise ConfigError(f"{run_file(run_dir)}: the run record has no `options`")
    options = value["options"]
    if not isinstance(options, dict):
        raise ConfigError(f"{run_file(run_dir)}: `options` is not a JSON object")
    known = {"kind", "status", "options", "task", "labels", "num_labels"}
    # A regression teacher wrote labels [] where a record now says None.
    return dict(kind=kind, status=value.get("status"), options=options,
                task=value.get("task", options.get("task")), labels=value.get("labels") or None,
                num_labels=value.get("num_labels"), max_seq_len=options.get("max_seq_len"),
                cased=options.get("cased", False),
                results={k: v for k, v in value.items() if k not in known})


def _task_labels(task):
    """The label names of a GLUE classification task; None for others."""
    from kbert.glue import TASKS, get_processor

    if task not in TASKS:
        return None
    return list(get_processor(task).labels) or None


def _is_inside(name):
    """A relative path that stays inside the run directory."""
    parts = name.replace("\\", "/").split("/")
    return bool(name) and not os.path.isabs(name) and ".." not in parts and "" not in parts


def _checked(path, fields):
    """A `RunRecord` from `fields`, every field's type checked."""

    def need(name, ok, expected):
        if not ok:
            raise ConfigError(f"{path}: `{name}` is {fields.get(name)!r}, expected {expected}")

    need("kind", fields.get("kind") in MODEL_FILES, f"one of {sorted(MODEL_FILES)}")
    need("status", fields.get("status") in STATUSES, f"one of {list(STATUSES)}")
    need("options", isinstance(fields.get("options"), dict), "a JSON object")
    need("task", fields.get("task") is None or isinstance(fields.get("task"), str), "a task name")
    labels = fields.get("labels")
    need("labels", labels is None or (isinstance(labels, list) and all(isinstance(x, str) for x in labels)),
         "a list of label names")
    need("num_labels", fields.get("num_labels") is None or is_int(fields["num_labels"], 1),
         "a positive integer")
    need("max_seq_len", fields.get("max_seq_len") is None or is_int(fields["max_seq_len"], 1),
         "a positive integer")
    need("cased", isinstance(fields.get("cased", False), bool), "true or false")
    for name in ("defaults", "results"):
        need(name, isinstance(fields.get(name, {}), dict), "a JSON object")
    files = fields.get("files", {})
    need("files", isinstance(files, dict) and all(
        isinstance(k, str) and _is_inside(k) and isinstance(v, str) and len(v) == 64 for k, v in files.items()),
        "an object of file inside the run -> sha256")
    step = fields.get("results", {}).get("global_step", 0)
    if not is_int(step, 0):
        raise ConfigError(f"{path}: `global_step` is {step!r}, expected a step count")
    if labels is not None and fields.get("num_labels") is not None and len(labels) != fields["num_labels"]:
        raise ConfigError(f"{path}: {len(labels)} `labels` for `num_labels` {fields['num_labels']}")
    if fields["status"] == "complete" and fields["kind"] in CLASSIFIERS:
        for name in ("task", "max_seq_len", "num_labels"):
            need(name, fields.get(name) is not None, "set in a complete run")
    if labels is not None:
        fields["labels"] = tuple(labels)
    return RunRecord(**fields)


def is_complete(run_dir):
    """True when `run_dir` holds a complete run whose model file exists."""
    if not has_run(run_dir):
        return False
    record = read_run(run_dir)
    return record.status == "complete" and os.path.isfile(os.path.join(os.fspath(run_dir), record.model_file))


def complete_run(run_dir):
    """The record of a complete run, or a ConfigError saying what is missing."""
    record = read_run(run_dir)
    model_path = os.path.join(os.fspath(run_dir), record.model_file)
    if record.status != "complete":
        raise ConfigError(f"{run_file(run_dir)}: the run is not complete (status {record.status!r}); resume it first")
    if not os.path.isfile(model_path):
        raise ConfigError(f"{model_path}: missing; is the run complete?")
    return record


def file_hashes(run_dir, kind):
    """{path inside the run: sha256} of the files a complete run is read
    from: the model file, vocab.txt and, for a teacher or a pre-training
    run, checkpoint/."""
    run_dir = os.fspath(run_dir)
    names = [MODEL_FILES[kind], VOCAB_FILE]
    checkpoint = os.path.join(run_dir, "checkpoint")
    if kind in ("teacher", "pretrain") and os.path.isdir(checkpoint):
        names += [f"checkpoint/{name}" for name in sorted(os.listdir(checkpoint))]
    names = list(dict.fromkeys(names))
    return {name: file_sha256(os.path.join(run_dir, name)) for name in names}


def verify_files(run_dir, record):
    """Check every file `record.files` lists against its recorded sha256.

    Raises:
        DataError: naming the first file that is missing or changed, or
            saying that the run records no hashes (written before they were).
    """
    if not record.files:
        raise DataError(f"{run_file(run_dir)}: this run records no file hashes to verify")
    for name, expected in sorted(record.files.items()):
        path = os.path.join(os.fspath(run_dir), name)
        if not os.path.isfile(path):
            raise DataError(f"{path}: missing (run.json records its hash)")
        if file_sha256(path) != expected:
            raise DataError(f"{path}: changed since the run wrote it (sha256 differs from run.json)")


def save_model(run_dir, model, kind):
    """The run's model file, written atomically."""
    save_model_atomic(model, os.path.join(os.fspath(run_dir), MODEL_FILES[kind]))


def load_model(run_dir, record=None, *, verify=False):
    """(Keras model, record) of a complete run; reads on any backend.

    `verify=True` first checks the run's files against the hashes run.json
    records (`verify_files`).
    """
    import keras

    record = record or complete_run(run_dir)
    if record.kind not in CLASSIFIERS:
        raise ConfigError(f"{run_dir}: a {record.kind} run holds an original-format checkpoint, not a "
                          f"classifier; load it with kbert.load_checkpoint({os.fspath(run_dir)!r})")
    if verify:
        verify_files(run_dir, record)
    path = os.path.join(os.fspath(run_dir), record.model_file)
    register_all()
    try:
        model = keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        # A torn zip makes Keras say "File not found"; say what it is.
        raise DataError(f"{path}: not a whole .keras model file ({type(e).__name__}: {e})") from None
    return model, record


def write_vocab(run_dir, tokens):
    """RUN_DIR/vocab.txt: one token a line, line i being token id i."""
    write_text_atomic(os.path.join(os.fspath(run_dir), VOCAB_FILE), "".join(f"{token}\n" for token in tokens))


def copy_vocab(run_dir, source):
    """RUN_DIR/vocab.txt: a byte copy of the checkpoint's, written atomically."""
    with atomic_output(vocab_file(run_dir)) as tmp:
        shutil.copyfile(source, tmp)


def vocab_file(run_dir):
    return os.path.join(os.fspath(run_dir), VOCAB_FILE)


def model_vocab_size(model):
    """Rows of a run model's token embedding (teacher or student)."""
    for name in ("Embedding-Token", "Student-Embedding"):
        try:
            return int(model.get_layer(name).vocab_size)
        except ValueError:  # Keras: no layer of that name
            continue
    return None


def load_tokenizer(run_dir, record, model=None, **kwargs):
    """The tokenizer the run's features were made with (its vocab.txt and
    casing).  Given the run's `model`, a vocabulary with ids beyond the
    model's embedding rows is refused here, not met as NaN later."""
    from kbert.errors import KbertError
    from kbert.tokenization import Tokenizer, load_vocab

    size = None if model is None else model_vocab_size(model)
    try:
        return Tokenizer(load_vocab(vocab_file(run_dir)), cased=record.cased, vocab_size=size, **kwargs)
    except KbertError as e:
        raise ConfigError(f"{vocab_file(run_dir)}: {e}") from None
