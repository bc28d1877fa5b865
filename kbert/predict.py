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
"""

import dataclasses
import logging

import numpy as np

from kbert import runs
from kbert.errors import ConfigError, DataError
from kbert.numeric import softmax

logger = logging.getLogger(__name__)

LONG_INPUTS = ("truncate", "windows")
PREDICT_BATCH_SIZE = 32


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
        if long_inputs == "windows":
            if seconds is not None:
                raise ConfigError("long_inputs='windows' splits single texts; pairs are truncated")
            if self.max_seq_len < 3:
                raise ConfigError(f"max_seq_len {self.max_seq_len} leaves no room for a window")
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
