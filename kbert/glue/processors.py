"""Readers for the GLUE task files, one processor per task.

The files are read the way Google's `run_classifier.py` reads them: a tab
separated `csv.reader` with quoting switched off (`quotechar=None`), because
GLUE sentences contain unbalanced quote characters that a quoting reader
would glue across lines.  Files are decoded as UTF-8 with an optional BOM:
MRPC's files begin with one, inherited from the MSR paraphrase corpus.

Each task knows two layouts: the *labeled* layout of `train.tsv` and
`dev.tsv`, and the *unlabeled* layout of `test.tsv`.  Columns follow
`run_classifier.py` and the GLUE conventions; the `guid` of an example is
`<split>-<row index>` as in the original, the header counting as row 0.

Input is checked as it is read, and every refusal is a `DataError` naming
`file:line`: a wrong number of columns, a label outside the task's label
set (for STS-B: a score that is not a number in [0, 5]), and an empty or
whitespace-only sentence.  Empty sentences are refused rather than skipped
because no GLUE file contains one; one appearing means the file was
damaged or is in a different layout, and skipping would silently shift
example counts and guids.
"""

import csv
import dataclasses
import logging
import math
import os
from typing import Iterator, Optional, Sequence, Union

from kbert.errors import DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


@dataclasses.dataclass(frozen=True)
class InputExample:
    """One sentence or sentence pair; `label` is None for unlabeled rows.

    `label` keeps the file's spelling for classification tasks (e.g. "1",
    "not_entailment") and is a float for the regression task STS-B.
    """

    guid: str
    text_a: str
    text_b: Optional[str]
    label: Union[str, float, None]


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the fields of one file layout sit (column indices, -1 = last)."""

    num_columns: int
    has_header: bool
    text_a: int
    text_b: Optional[int] = None
    label: Optional[int] = None


class TaskProcessor:
    """Reads one GLUE task's files.  Subclasses only declare data.

    Attributes:
        name: the canonical GLUE spelling, also the directory name.
        labels: the label strings in id order; empty for regression.
        metric_names: the keys `kbert.glue.metrics.compute_metrics` returns.
        selection_metric: the one of them that picks a student's epoch.
        score_metric: the one GLUE ranks models by (CoLA: MCC, MRPC: F1),
            which `kbert run`'s report puts against speed.
        labeled_layout / test_layout: column positions of the two layouts.
    """

    name: str = ""
    labels: tuple = ()
    metric_names: tuple = ("accuracy",)
    selection_metric: str = "accuracy"
    score_metric: str = "accuracy"
    labeled_layout: Layout
    test_layout: Layout

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        # A regression head predicts one number.
        return len(self.labels) or 1

    def label_id(self, label):
        """The numeric target of a label: its index, or the STS-B score."""
        if self.is_regression:
            return float(label)
        return self.labels.index(label)

    def task_dir(self, data_dir) -> str:
        return os.path.join(os.fspath(data_dir), self.name)

    def split_path(self, data_dir, split: str) -> str:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        return os.path.join(self.task_dir(data_dir), f"{split}.tsv")

    def examples(self, data_dir, split: str) -> list:
        """All examples of `split` ("train", "dev" or "test") under `data_dir`."""
        path = self.split_path(data_dir, split)
        return list(self._read(path, split, labeled=split != "test"))

    def train_examples(self, data_dir) -> list:
        return self.examples(data_dir, "train")

    def dev_examples(self, data_dir) -> list:
        return self.examples(data_dir, "dev")

    def test_examples(self, data_dir) -> list:
        return self.examples(data_dir, "test")

    def read_file(self, path, labeled: bool = True) -> list:
        """Examples of any file in the dev layout (or test layout if not labeled).

        The guid prefix is the file's name without extension.
        """
        path = os.fspath(path)
        prefix = os.path.splitext(os.path.basename(path))[0]
        return list(self._read(path, prefix, labeled))

    # -- reading ----------------------------------------------------------

    def _read(self, path: str, prefix: str, labeled: bool) -> Iterator[InputExample]:
        layout = self.labeled_layout if labeled else self.test_layout
        for line_no, index, row in read_tsv(path):
            where = f"{path}:{line_no}"
            if len(row) != layout.num_columns:
                raise DataError(
                    f"{where}: expected {layout.num_columns} tab-separated columns "
                    f"for {self.name} {'labeled' if labeled else 'test'} data, "
                    f"found {len(row)}{' (blank line)' if not row else ''}"
                )
            if layout.has_header and index == 0:
                self._check_header(row, layout, where)
                continue
            yield InputExample(
                guid=f"{prefix}-{index}",
                text_a=_text(row, layout.text_a, where),
                text_b=None if layout.text_b is None else _text(row, layout.text_b, where),
                label=None if layout.label is None else self._label(row[layout.label], where),
            )

    def _label(self, raw: str, where: str):
        if self.is_regression:
            try:
                score = float(raw)
            except ValueError:
                score = math.nan
            if not 0.0 <= score <= 5.0:  # also false for NaN
                raise DataError(f"{where}: {self.name} score {raw!r} is not a number in [0, 5]")
            return score
        if raw not in self.labels:
            raise DataError(
                f"{where}: label {raw!r} is not one of {self.name}'s labels "
                f"{', '.join(self.labels)}"
            )
        return raw

    def _check_header(self, row, layout: Layout, where: str):
        # The header is skipped unconditionally, as run_classifier does; a
        # header that parses as data most likely means a file written
        # without one, which would silently lose its first example.
        if layout.label is None:
            return
        try:
            self._label(row[layout.label], where)
        except DataError:
            return
        logger.warning("%s: first line looks like data, but is skipped as the header", where)


def _text(row: Sequence[str], column: int, where: str) -> str:
    text = row[column]
    if not text.strip():
        raise DataError(f"{where}: empty sentence in column {column % len(row) + 1}")
    return text


def read_tsv(path) -> Iterator[tuple]:
    """Yield `(line number, row index, columns)` for each row of a TSV file.

    No quote processing; a blank line is yielded as an empty row so that
    the caller's column check names it.  A missing or
    undecodable file is a `DataError`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    # newline="" hands line endings to the csv module, which strips \r\n.
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quotechar=None)
        index = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{path}:{_undecodable_line(path)}: not UTF-8 text ({e.reason})"
                ) from e
            except csv.Error as e:
                raise DataError(f"{path}:{reader.line_num}: {e}") from e
            yield reader.line_num, index, row
            index += 1


def _undecodable_line(path) -> int:
    """The line of `path`'s first byte that is not UTF-8.  The text reader
    decodes a chunk ahead of the rows csv has counted, so its line number
    would name the first line of that chunk, not the bad byte's."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        data = data[: e.start]
    # The line ends the csv module honours: "\r\n", "\r" and "\n".
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n") + 1


# -- the tasks ------------------------------------------------------------


class ColaProcessor(TaskProcessor):
    """CoLA: source, label, original annotation, sentence; no header.

    The test file does have a header: index, sentence.
    """

    name = "CoLA"
    labels = ("0", "1")
    metric_names = ("accuracy", "mcc")
    # GLUE scores CoLA by MCC alone: 70% of its sentences are acceptable, so
    # accuracy favours an epoch that says "acceptable" to everything.
    selection_metric = "mcc"
    score_metric = "mcc"
    labeled_layout = Layout(num_columns=4, has_header=False, text_a=3, label=1)
    test_layout = Layout(num_columns=2, has_header=True, text_a=1)


class Sst2Processor(TaskProcessor):
    """SST-2: header `sentence<TAB>label`; test: `index<TAB>sentence`."""

    name = "SST-2"
    labels = ("0", "1")
    labeled_layout = Layout(num_columns=2, has_header=True, text_a=0, label=1)
    test_layout = Layout(num_columns=2, has_header=True, text_a=1)


class MrpcProcessor(TaskProcessor):
    """MRPC: Quality, #1 ID, #2 ID, #1 String, #2 String (test: index first)."""

    name = "MRPC"
    labels = ("0", "1")
    metric_names = ("accuracy", "f1")
    # GLUE's MRPC score is F1 and accuracy; F1 of the positive ("paraphrase",
    # 68% of dev) class is the one comparisons quote.
    score_metric = "f1"
    labeled_layout = Layout(num_columns=5, has_header=True, text_a=3, text_b=4, label=0)
    test_layout = Layout(num_columns=5, has_header=True, text_a=3, text_b=4)


class RteProcessor(TaskProcessor):
    """RTE: index, sentence1, sentence2, label (test: no label)."""

    name = "RTE"
    labels = ("entailment", "not_entailment")
    labeled_layout = Layout(num_columns=4, has_header=True, text_a=1, text_b=2, label=3)
    test_layout = Layout(num_columns=3, has_header=True, text_a=1, text_b=2)


class WnliProcessor(TaskProcessor):
    """WNLI: the RTE layout with labels 0/1."""

    name = "WNLI"
    labels = ("0", "1")
    labeled_layout = Layout(num_columns=4, has_header=True, text_a=1, text_b=2, label=3)
    test_layout = Layout(num_columns=3, has_header=True, text_a=1, text_b=2)


class StsbProcessor(TaskProcessor):
    """STS-B: ten columns, sentences at 7 and 8, similarity score (0-5) last."""

    name = "STS-B"
    labels = ()
    metric_names = ("pearson", "spearman")
    score_metric = "pearson"
    labeled_layout = Layout(num_columns=10, has_header=True, text_a=7, text_b=8, label=-1)
    test_layout = Layout(num_columns=9, has_header=True, text_a=7, text_b=8)


PROCESSORS = {
    cls.name: cls
    for cls in (
        ColaProcessor,
        Sst2Processor,
        MrpcProcessor,
        StsbProcessor,
        RteProcessor,
        WnliProcessor,
    )
}
TASKS = tuple(PROCESSORS)


def _key(name: str) -> str:
    # "SST-2", "sst2", "Sst_2" and "sts b" all reduce to the same key.
    return "".join(ch for ch in name.lower() if ch.isalnum())


_BY_KEY = {_key(name): name for name in TASKS}


def canonical_task_name(task_name: str) -> str:
    """The GLUE spelling of `task_name`, matched ignoring case and punctuation."""
    name = _BY_KEY.get(_key(str(task_name)))
    if name is None:
        raise DataError(f"unknown GLUE task {task_name!r}; known tasks: {', '.join(TASKS)}")
    return name


def split_texts(examples) -> tuple:
    """(first sentences, second sentences or None): the tokenizer's two inputs.

    A task is a pair task when any example has a second sentence; then every
    example must have one.
    """
    firsts = [e.text_a for e in examples]
    if all(e.text_b is None for e in examples):
        return firsts, None
    missing = [e.guid for e in examples if e.text_b is None]
    if missing:
        raise DataError(f"{missing[0]}: no second sentence, but other examples are pairs")
    return firsts, [e.text_b for e in examples]


def get_processor(task_name: str) -> TaskProcessor:
    """The processor of a task: `get_processor("sst-2")`, `("SST2")`, ..."""
    return PROCESSORS[canonical_task_name(task_name)]()
