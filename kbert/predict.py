"""Put a trained run to work: classify raw text with a teacher or a student.

    clf = kbert.load_classifier("runs/sst2")          # any run: teacher or student
    clf.predict(["a gripping film", "a dull one"])    # [Prediction(label="1", ...), ...]
    clf.predict([("A man plays.", "Someone plays.")]) # pair tasks take (first, second)

Tokenization happens inside, cased or uncased as the run records; rows go
through the model in length-bucketed batches and come back in input order.
A classifier's prediction carries the label name, the probabilities by
label name and the logits; a regression task's (STS-B) carries its score.

Inputs longer than the run's `max_seq_len` are truncated, as in training,
and each prediction says whether it was.  `long_inputs="windows"` instead
splits a long single text into overlapping windows of word pieces (each as
long as the model takes, `stride` pieces apart), runs every window, and
averages their logits: the whole text then counts, not only its start.

Inputs of any size (`predict_files`, `kbert predict --input ... --output
DIR`) are read as streams (`kbert.corpus`) and answered in shards of
`shard_rows` inputs, each written atomically beside its own record, so a
re-run after a kill skips the shards already written:

    DIR/part-00000.jsonl   the shard's predictions (.tsv, .parquet by --format)
    DIR/part-00000.json    its record: input file and lines, rows, the
                           inputs' and the output's sha256, the model's,
                           the settings, rows/s; written last, so a shard
                           without it is recomputed
    DIR/manifest.json      every shard, status "running" then "complete"

A shard never spans input files; its rows are its inputs in file order.
"""

import dataclasses
import hashlib
import json
import logging
import os
import re
import time

import numpy as np

from kbert import runs
from kbert.atomic import (
    atomic_output,
    file_sha256,
    os_errors,
    read_json,
    refuse_overlap,
    remove_quietly,
    stale_temporaries,
    write_json,
)
from kbert.errors import ConfigError, DataError
from kbert.numeric import softmax
from kbert.options import PredictOptions
from kbert.raydata import Actor, actor_count, check_backend, map_actors, ray_module, ray_session

logger = logging.getLogger(__name__)

LONG_INPUTS = ("truncate", "windows")
PREDICT_BATCH_SIZE = PredictOptions.batch_size


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One input's answer.

    Attributes:
        text: the input, a string or a (first, second) pair.
        label: the predicted label's name (None for regression).
        probabilities: label name -> probability (empty for regression).
        logits: the model's raw outputs.
        score: the regression output (STS-B), else None.
        truncated: word pieces cut to fit `max_seq_len` (0 with windows).
        windows: how many windows were combined (1 unless windowed).
    """

    text: object
    label: str
    probabilities: dict
    logits: list
    score: float = None
    truncated: int = 0
    windows: int = 1

    def to_json(self):
        value = {"text": self.text if isinstance(self.text, str) else list(self.text)}
        if self.score is None:
            value.update(label=self.label, probabilities=self.probabilities)
        else:
            value["score"] = self.score
        value.update(logits=self.logits, truncated=self.truncated)
        if self.windows > 1:
            value["windows"] = self.windows
        return value


class Classifier:
    """A loaded run (teacher or student) that classifies raw text.

    `where` names the run record in errors (`load_classifier` gives its path).

    Raises:
        ConfigError: the record's `labels` repeat a name, its `num_labels`
            is not its GLUE task's (one output for a regression task such
            as STS-B), or the model's output width is not `num_labels`.
    """

    def __init__(self, model, record, tokenizer, *, where=runs.RUN_FILE):
        from kbert.glue import TASKS, get_processor

        if getattr(model, "head", "sequence") != "sequence":
            raise ConfigError(f"{where}: a {record.task} run's {model.head} head answers per position, not a "
                              "class an input: kbert predict TEXT/--file/stdin (kbert.headtasks.predict_texts) "
                              "reads it")
        self.model, self.record, self.tokenizer = model, record, tokenizer
        processor = get_processor(record.task) if record.task in TASKS else None
        self.is_regression = processor is not None and processor.is_regression
        self.pairs = processor is not None and processor.labeled_layout.text_b is not None
        labels = record.labels or tuple(str(i) for i in range(record.num_labels))
        # A repeated name would merge two outputs' probabilities into one key.
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ConfigError(f"{where}: `labels` {list(labels)} repeat {', '.join(map(repr, repeated))}; "
                              "each of the model's outputs needs its own name")
        if processor is not None and record.num_labels != processor.num_labels:
            kind = "a regression task: one output, its score" if self.is_regression else (
                f"{processor.num_labels} labels {', '.join(processor.labels)}")
            raise ConfigError(f"{where}: `num_labels` is {record.num_labels}, but {record.task} is {kind}")
        self.labels = () if self.is_regression else tuple(labels)
        self.max_seq_len = record.max_seq_len
        width = model.outputs[0].shape[-1]
        if width != record.num_labels:
            raise ConfigError(f"{where}: the run's model gives {width} outputs but `num_labels` is "
                              f"{record.num_labels}")

    def _split_inputs(self, texts):
        firsts, seconds = [], []
        for index, text in enumerate(texts):
            if isinstance(text, str):
                if self.pairs:
                    raise DataError(f"input {index}: {self.record.task} classifies sentence pairs; "
                                    "give (first, second) pairs")
                firsts.append(text)
            elif isinstance(text, (tuple, list)) and len(text) == 2 and all(isinstance(t, str) for t in text):
                if not self.pairs:
                    raise DataError(f"input {index}: {self.record.task} classifies single sentences, not pairs")
                firsts.append(text[0])
                seconds.append(text[1])
            else:
                raise DataError(f"input {index}: expected a string or a (first, second) pair of strings, "
                                f"got {type(text).__name__}")
        return firsts, (seconds if self.pairs else None)

    def predict(self, texts, *, batch_size=PREDICT_BATCH_SIZE, long_inputs="truncate", stride=None,
                progress=None, packing=True):
        """A `Prediction` per input, in input order.

        Args:
            texts: strings, or (first, second) pairs for a pair task.
            batch_size: rows per model call.
            long_inputs: "truncate" (the default, as in training) or
                "windows" (single texts only): see the module docstring.
            stride: word pieces between window starts, a positive int
                (default: half a window); only with "windows".
            progress: a tqdm-like bar to `update(n)` as rows finish.
            packing: a BERT classifier reads the rows packed where that
                pays (`kbert.inference.predict_bucketed`; the same logits).

        Raises:
            DataError: an input is not a string or a pair of strings, or
                not of the run's kind (single or pair).
            ConfigError: an option above has a value outside its range or
                type (named in the message), or `stride` comes without
                "windows".
        """
        from kbert.inference import predict_bucketed

        if isinstance(texts, (str, tuple)):
            raise DataError("predict takes a list of inputs; wrap a single one in a list")
        _check_options(long_inputs, stride, packing)
        texts = list(texts)
        firsts, seconds = self._split_inputs(texts)
        if not texts:
            return []
        self._check_windows(long_inputs)
        if long_inputs == "windows":
            token_ids, segment_ids, lengths, owner = self.tokenizer.encode_windows(firsts, self.max_seq_len, stride)
            truncated = np.zeros(len(texts), np.int64)
        else:
            encoded = self.tokenizer.encode_batch(firsts, seconds, max_len=self.max_seq_len)
            token_ids, segment_ids, lengths = encoded.token_ids, encoded.segment_ids, encoded.lengths
            owner, truncated = np.arange(len(texts)), encoded.truncated
            if encoded.num_truncated:
                logger.info("%d of %d inputs were truncated to %d word pieces", encoded.num_truncated,
                            len(texts), self.max_seq_len)
        arrays = [token_ids, segment_ids][: len(self.model.inputs)]
        rows = predict_bucketed(self.model, arrays, lengths, batch_size=batch_size, progress=progress,
                                packing=packing)
        # Mean of the windows' logits per input (one window each when truncating).
        counts = np.bincount(owner, minlength=len(texts))
        logits = np.zeros((len(texts), rows.shape[1]), np.float64)
        np.add.at(logits, owner, rows.astype(np.float64))
        logits /= counts[:, None]
        return [self._prediction(text, row, int(cut), int(n))
                for text, row, cut, n in zip(texts, logits, truncated, counts)]

    def _check_windows(self, long_inputs):
        if long_inputs == "windows":
            if self.pairs:
                raise ConfigError("long_inputs='windows' splits single texts; pairs are truncated")
            if self.max_seq_len < 3:
                raise ConfigError(f"max_seq_len {self.max_seq_len} leaves no room for a window")

    def _prediction(self, text, logits, truncated, windows):
        if self.is_regression:
            return Prediction(text, None, {}, [float(x) for x in logits], score=float(logits[0]),
                              truncated=truncated, windows=windows)
        probabilities = softmax(logits[None])[0]
        return Prediction(
            text, self.labels[int(np.argmax(logits))],
            {label: float(p) for label, p in zip(self.labels, probabilities)},
            [float(x) for x in logits], truncated=truncated, windows=windows,
        )


def _check_options(long_inputs, stride, packing):
    """Refuse what `Classifier.predict` would otherwise read loosely (a
    stride of 0 or False as "the default", a truthy string as packing)."""
    if not isinstance(long_inputs, str) or long_inputs not in LONG_INPUTS:
        raise ConfigError(f"long_inputs must be one of {LONG_INPUTS}, got {long_inputs!r}")
    if stride is not None:
        if isinstance(stride, (bool, np.bool_)) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ConfigError(f"stride must be a positive integer (word pieces), got {stride!r}")
        if long_inputs != "windows":
            raise ConfigError(f"stride {stride} is only read with long_inputs='windows', not {long_inputs!r}")
    if not isinstance(packing, (bool, np.bool_)):
        raise ConfigError(f"packing must be True or False, got {packing!r}")


def load_classifier(run_dir, *, verify=False):
    """A `Classifier` for a complete run directory (`kbert finetune` or
    `kbert distill`); `verify=True` checks its files' recorded hashes first.

    Raises:
        ConfigError: naming run.json and the field, when the record holds
            no classifier head or does not fit its task or model (see
            `Classifier`); the errors of `kbert.runs.load_model`.
    """
    model, record = runs.load_model(run_dir, verify=verify)
    if record.num_labels is None or record.num_labels < 1:
        raise ConfigError(f"{runs.run_file(run_dir)}: the run records no classifier head")
    return Classifier(model, record, runs.load_tokenizer(run_dir, record, model), where=runs.run_file(run_dir))


def tsv_lines(classifier, predictions):
    """A header, then a tab-separated row a prediction: the text (tabs and
    line breaks in it become spaces, so row n answers input n), then the
    label and each label's probability, or the score of a regression task."""
    heads = ["text_a", "text_b"] if classifier.pairs else ["text"]
    columns = ["score"] if classifier.is_regression else ["label", *(f"p_{label}" for label in classifier.labels)]
    yield "\t".join([*heads, *columns])
    for p in predictions:
        texts = [_ONE_LINE.sub(" ", t) for t in ((p.text,) if isinstance(p.text, str) else p.text)]
        values = [f"{p.score:.6g}"] if p.score is not None else [
            p.label, *(f"{p.probabilities[label]:.6g}" for label in classifier.labels)]
        yield "\t".join([*texts, *values])


# ---------------------------------------------------------------- inputs of any size

# Options that change where and how fast shards are made, not what they hold.
_NOT_SETTINGS = ("shard_rows", "engine", "ray_address", "workers")
_ONE_LINE = re.compile(r"[\t\n\r]")
MANIFEST = "manifest.json"
FORMAT = "kbert-predictions"
# A shard's files: its predictions and, written last, its record.
_SHARD_FILE = re.compile(r"part-(\d{5,})\.(jsonl|tsv|parquet|json)")
# What a killed writer leaves (`kbert.atomic.atomic_output`): .NAME.PID.XXXXXXXX.SUFFIX
_TEMPORARY = re.compile(r"\.(part-\d{5,}\.(?:jsonl|tsv|parquet|json)|manifest\.json)\.\d+\.[a-z0-9_]{8}\."
                        r"(?:tmp|jsonl|tsv|parquet)")
_EXTENSIONS = {"json": "jsonl", "tsv": "tsv", "parquet": "parquet"}


def predict_files(run_dir, inputs, output, options=PredictOptions(), *, verify=False, verbose=True):
    """Classify every input of `inputs` (files or glob patterns, read by
    `kbert.corpus`) into shards under `output` (see the module docstring);
    a re-run skips the shards already written for the same inputs, model
    and settings, and recomputes any other.

    Two passes over the inputs: the first checks every record (an error
    names its file and line before the model runs) and fixes the shards;
    the second answers them, here or (`options.engine` "ray") on Ray Data
    actors that read and write their shards themselves.  Memory holds one
    shard.

    Returns:
        the manifest (also `output`/manifest.json): "shards" (each
        shard's record), "rows", "resumed_rows" (read from earlier calls'
        shards), "seconds" and "rows_per_second" of the rows computed now.

    Raises:
        ConfigError: an `output` that is, contains or lies inside the run
            or an input, or that holds files kbert did not write there;
            Parquet without pyarrow, Ray without Ray Data; a Ray job that
            failed; the errors of `load_classifier`.
        DataError: an input's damage, naming its file and line (or row);
            an input that changed between the two passes.
    """
    import keras
    from tqdm.auto import tqdm

    import kbert
    from kbert.corpus import expand_inputs, parquet_module

    if not isinstance(options, PredictOptions):
        raise ConfigError(f"options must be a PredictOptions, got {type(options).__name__}")
    paths = [os.path.abspath(path) for path in expand_inputs(inputs, "--input")]
    output = os.path.abspath(os.fspath(output))
    refuse_overlap(output, [run_dir, *paths], flag="--output", error=ConfigError)
    with os_errors(output, "--output", ConfigError):
        _check_output_dir(output)
    if options.format == "parquet":
        parquet_module()
    if options.engine == "ray":
        ray_module()
    classifier = load_classifier(run_dir, verify=verify)
    classifier._check_windows(options.long_inputs)
    record = classifier.record
    model_path = os.path.join(os.fspath(run_dir), record.model_file)
    settings = {
        "model_sha256": (record.files or {}).get(record.model_file) or file_sha256(model_path),
        "max_seq_len": classifier.max_seq_len,
        **{field.name: getattr(options, field.name) for field in dataclasses.fields(options)
           if field.name not in _NOT_SETTINGS},
        # What changes the logits' last bits: a resumed call mixes no other.
        "backend": keras.backend.backend(), "kbert": kbert.__version__,
    }
    plan = _plan_shards(paths, classifier.pairs, options.shard_rows)
    entries = [entry for _, shards in plan for entry in shards]
    with os_errors(output, "--output", ConfigError):
        os.makedirs(output, exist_ok=True)
        done = {entry["name"] for entry in entries if _shard_done(output, entry, settings)}
        manifest = {"format": FORMAT, "model": os.path.abspath(os.fspath(run_dir)), "settings": settings,
                    "inputs": paths, "status": "running", "shards": []}
        write_json(os.path.join(output, MANIFEST), manifest)

        total = sum(entry["rows"] for entry in entries)
        resumed = sum(entry["rows"] for entry in entries if entry["name"] in done)
        if done:
            logger.info("%s: %d of %d shards (%d rows) already written; resuming", output, len(done), len(entries),
                        resumed)
        started, records = time.perf_counter(), []
        with tqdm(total=total, initial=resumed, desc="predict", unit="ex", disable=not verbose) as bar:
            if options.engine == "ray":
                todo = [entry for entry in entries if entry["name"] not in done]
                made = {record["name"]: record for record in _ray_shards(
                    todo, os.path.abspath(os.fspath(run_dir)), output, options, settings, classifier.pairs, bar,
                    verbose)}
            for entry, texts in _read_shards(plan, classifier.pairs, skip=done, read=options.engine == "local"):
                if entry["name"] in done:
                    records.append(read_json(os.path.join(output, entry["name"] + ".json"), error=DataError,
                                             what="shard record"))
                elif options.engine == "ray":
                    records.append(made[entry["name"]])
                else:
                    records.append(_write_shard(output, entry, texts, classifier, options, settings, bar))
        seconds = time.perf_counter() - started
        _remove_stale_files(output, {entry["name"] for entry in entries})
        computed = total - resumed
        manifest.update(status="complete", shards=records, rows=total, resumed_rows=resumed,
                        seconds=round(seconds, 3),
                        rows_per_second=round(computed / seconds, 1) if computed and seconds > 0 else None)
        write_json(os.path.join(output, MANIFEST), manifest)
    return manifest


def _check_output_dir(output):
    """Refuse an `output` that is not a directory, or that is not empty and
    not kbert predict's (its manifest.json says so), or that holds a file
    its shards do not explain: such a directory is never written into."""
    if not os.path.lexists(output):
        return
    if not os.path.isdir(output) or os.path.islink(output):
        raise ConfigError(f"--output {output}: exists and is not a directory; write somewhere else")
    names = sorted(os.listdir(output))
    if not names:
        return
    manifest = os.path.join(output, MANIFEST)
    mine = os.path.isfile(manifest) and read_json(manifest, error=ConfigError, what="manifest").get("format") == FORMAT
    if not mine:
        raise ConfigError(f"--output {output}: not empty and not written by kbert predict (no {MANIFEST} of its "
                          f"format); write to a new or empty directory")
    for name in names:
        if name != MANIFEST and not _SHARD_FILE.fullmatch(name) and not _TEMPORARY.fullmatch(name):
            raise ConfigError(f"--output {output}: holds {name}, which kbert predict did not write; "
                              f"write to a new or empty directory")


def _texts_sha256(texts):
    digest = hashlib.sha256()
    for text in texts:
        digest.update(json.dumps(text, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _chunks(records, size):
    """Lists of at most `size` (number, text) records, in order."""
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _plan_shards(paths, pairs, shard_rows):
    """[(path, its shards)] in input order: a shard's name, input file,
    first and last line (or row), rows and the sha256 of its inputs; every
    record checked.  A file given twice is two inputs."""
    from kbert.corpus import read_records

    plan, count = [], 0
    for path in paths:
        shards = []
        for chunk in _chunks(read_records(path, pairs=pairs, blank="error"), shard_rows):
            shards.append({"name": f"part-{count:05d}", "input": path, "first": chunk[0][0], "last": chunk[-1][0],
                           "rows": len(chunk), "inputs_sha256": _texts_sha256(text for _, text in chunk)})
            count += 1
        plan.append((path, shards))
    return plan


def _read_shards(plan, pairs, skip, read=True):
    """(entry, its texts) a shard of `plan`, in order; texts None for a
    shard in `skip` (read past, not kept), and for every shard unless
    `read` (nothing read).

    Raises:
        DataError: an input that no longer holds the records `plan` found.
    """
    from kbert.corpus import read_records

    for path, shards in plan:
        if not read:
            yield from ((entry, None) for entry in shards)
            continue
        if not shards:
            continue
        chunks = _chunks(read_records(path, pairs=pairs, blank="error"), shards[0]["rows"])
        for entry in shards:
            chunk = next(chunks, None)
            texts = _checked_texts(entry, chunk, check=entry["name"] not in skip)
            yield entry, None if entry["name"] in skip else texts
        if next(chunks, None) is not None:
            raise DataError(f"{path}: changed while kbert predict read it (it grew); run again once it is written")


def _checked_texts(entry, chunk, check=True):
    """The texts of `chunk` ((number, text) records), which must be the
    records `entry` planned (their sha256 compared when `check`).

    Raises:
        DataError: the input changed since it was planned.
    """
    changed = chunk is None or (chunk[0][0], chunk[-1][0], len(chunk)) != (entry["first"], entry["last"], entry["rows"])
    texts = None if changed else [text for _, text in chunk]
    if changed or check and _texts_sha256(texts) != entry["inputs_sha256"]:
        raise DataError(f"{entry['input']}: changed while kbert predict read it (records {entry['first']}-"
                        f"{entry['last']}); run again once it is written")
    return texts


def _shard_texts(entry, pairs):
    """A shard's texts read from its input alone (what a Ray actor does):
    the records from `entry["first"]` on, checked against the plan."""
    from kbert.corpus import read_records

    chunk = []
    for number, text in read_records(entry["input"], pairs=pairs, blank="error"):
        if number >= entry["first"]:
            chunk.append((number, text))
            if len(chunk) == entry["rows"]:
                break
    return _checked_texts(entry, chunk or None)


# ---------------------------------------------------------------- on Ray Data


class ShardWorker(Actor):
    """A Ray Data actor: loads the run's classifier once, on the backend the
    caller's settings name, then answers whole shards, each read from its
    input and written (predictions, then record) as the local engine
    writes them; it returns the records, one JSON string a shard."""

    def start(self, run_dir, output, options, settings, pairs):
        check_backend(settings["backend"])
        self.classifier = load_classifier(run_dir)
        self.output, self.options, self.settings, self.pairs = output, options, settings, pairs

    def answer(self, batch):
        records = []
        for text in batch["entry"]:
            entry = json.loads(str(text))
            texts = _shard_texts(entry, self.pairs)
            record = _write_shard(self.output, entry, texts, self.classifier, self.options, self.settings, None)
            records.append(json.dumps(record))
        return {"record": records}


def _ray_shards(entries, run_dir, output, options, settings, pairs, bar, verbose):
    """The records of `entries`' shards, made by Ray Data actors (one shard
    a task), as they finish (`kbert.raydata`)."""
    records = []
    if not entries:
        return records
    with ray_session(options.ray_address, settings["backend"], verbose) as ray:
        workers = actor_count(ray, options.workers, len(entries))
        for row in map_actors(ray, [{"entry": json.dumps(entry)} for entry in entries], ShardWorker,
                              (run_dir, output, options, settings, pairs), workers):
            record = json.loads(row["record"])
            bar.update(record["rows"])
            records.append(record)
    return records


def _shard_done(output, entry, settings):
    """Whether `entry`'s shard is written for these settings: its record
    holds the same inputs and settings and its predictions file the hash
    the record gives."""
    record_path = os.path.join(output, entry["name"] + ".json")
    if not os.path.isfile(record_path):
        return False
    try:
        record = read_json(record_path, error=DataError, what="shard record")
    except DataError as e:
        logger.warning("%s; the shard is recomputed", e)
        return False
    if record.get("settings") != settings or any(record.get(key) != value for key, value in entry.items()):
        return False
    path = os.path.join(output, str(record.get("file")))
    return os.path.isfile(path) and file_sha256(path) == record.get("output_sha256")


def _write_shard(output, entry, texts, classifier, options, settings, bar):
    started = time.perf_counter()
    predictions = classifier.predict(texts, batch_size=options.batch_size, long_inputs=options.long_inputs,
                                     stride=options.stride, packing=options.packing, progress=bar)
    seconds = time.perf_counter() - started
    name = f"{entry['name']}.{_EXTENSIONS[options.format]}"
    path = os.path.join(output, name)
    remove_quietly(os.path.join(output, entry["name"] + ".json"))  # the old record no longer describes it
    with atomic_output(path, suffix="." + _EXTENSIONS[options.format]) as tmp:
        if options.format == "parquet":
            _write_parquet(tmp, classifier, predictions)
        else:
            lines = (tsv_lines(classifier, predictions) if options.format == "tsv" else
                     (json.dumps(p.to_json(), ensure_ascii=False) for p in predictions))
            with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
                for line in lines:
                    handle.write(line + "\n")
    record = {**entry, "file": name, "output_sha256": file_sha256(path), "settings": settings,
              "truncated": sum(1 for p in predictions if p.truncated), "seconds": round(seconds, 3),
              "rows_per_second": round(len(texts) / seconds, 1) if seconds > 0 else None}
    write_json(os.path.join(output, entry["name"] + ".json"), record)
    return record


def _write_parquet(path, classifier, predictions):
    import pyarrow as pa

    from kbert.corpus import parquet_module

    columns = {}
    if classifier.pairs:
        columns["text_a"] = [p.text[0] for p in predictions]
        columns["text_b"] = [p.text[1] for p in predictions]
    else:
        columns["text"] = [p.text for p in predictions]
    if classifier.is_regression:
        columns["score"] = pa.array([p.score for p in predictions], pa.float64())
    else:
        columns["label"] = [p.label for p in predictions]
        for label in classifier.labels:
            columns[f"p_{label}"] = pa.array([p.probabilities[label] for p in predictions], pa.float64())
    columns["logits"] = pa.array([p.logits for p in predictions], pa.list_(pa.float64()))
    columns["truncated"] = pa.array([p.truncated for p in predictions], pa.int64())
    columns["windows"] = pa.array([p.windows for p in predictions], pa.int64())
    parquet_module().write_table(pa.table(columns), path)


def _remove_stale_files(output, names):
    """Shard files of earlier calls that no shard of this one explains (a
    shorter input, another format), and killed writers' temporaries: kbert's
    own, removed once every shard is written."""
    for name in os.listdir(output):
        match = _SHARD_FILE.fullmatch(name)
        if match and (f"part-{match.group(1)}" not in names or not _is_current(output, name)):
            remove_quietly(os.path.join(output, name))
        elif _TEMPORARY.fullmatch(name):
            target = os.path.join(output, _TEMPORARY.fullmatch(name).group(1))
            for stale in stale_temporaries(target):
                remove_quietly(stale)


def _is_current(output, name):
    """Whether a shard's file is the one its record names (a `.json`
    record always is)."""
    stem, extension = name.rsplit(".", 1)
    if extension == "json":
        return True
    try:
        record = read_json(os.path.join(output, stem + ".json"), error=DataError, what="shard record")
    except DataError:  # none: a killed call's predictions, never recorded
        return False
    return record.get("file") == name
