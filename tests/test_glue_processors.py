"""GLUE task readers: the shared data parses with the published counts, and
malformed files are refused with errors naming file and line."""

import logging
import os
import pathlib

import pytest

from kbert.errors import DataError
from kbert.glue import TASKS, get_processor, resolve_data_dir
from kbert.glue.processors import InputExample

import needs

pytestmark = pytest.mark.keras_free

REPO = pathlib.Path(__file__).resolve().parents[1]
GLUE_DATA = pathlib.Path(os.environ.get("GLUE_DIR") or REPO.parent / "shared" / "glue_data")

# Published GLUE sizes (the MRPC training count of this layout, see below).
COUNTS = {
    ("SST-2", "train"): 67349, ("SST-2", "dev"): 872, ("SST-2", "test"): 1821,
    ("CoLA", "train"): 8551, ("CoLA", "dev"): 1043, ("CoLA", "test"): 1063,
    # GLUE publishes 3,668 MRPC training pairs; the shared copy's train.tsv
    # has 3,668 lines including its header, so 3,667 pairs.
    ("MRPC", "train"): 3667, ("MRPC", "dev"): 408, ("MRPC", "test"): 1725,
    ("RTE", "train"): 2490, ("RTE", "dev"): 277, ("RTE", "test"): 3000,
    ("STS-B", "train"): 5749, ("STS-B", "dev"): 1500, ("STS-B", "test"): 1379,
    ("WNLI", "train"): 635, ("WNLI", "dev"): 71, ("WNLI", "test"): 146,
}


def _data_lines(path):
    """Rows of a file counted independently of the reader: non-empty lines, less a header."""
    with open(path, "rb") as handle:
        lines = [line for line in handle.read().split(b"\n") if line.strip()]
    return len(lines) - (0 if path.parent.name == "CoLA" and path.stem != "test" else 1)


@pytest.fixture(scope="module")
def glue_data():
    if not GLUE_DATA.is_dir():
        needs.missing(f"the GLUE data is missing: {GLUE_DATA}")
    return GLUE_DATA


@pytest.mark.parametrize("task,split", sorted(COUNTS))
def test_shared_data_parses_with_published_counts(glue_data, task, split):
    if not (glue_data / task / f"{split}.tsv").is_file():
        needs.missing(f"{glue_data / task / split}.tsv is missing")
    processor = get_processor(task)
    examples = processor.examples(glue_data, split)
    assert len(examples) == COUNTS[task, split]
    assert len(examples) == _data_lines(glue_data / task / f"{split}.tsv")
    assert len({e.guid for e in examples}) == len(examples)
    for example in examples:
        assert example.text_a.strip()
        assert (example.text_b is None) == (task in ("CoLA", "SST-2"))
        if split == "test":
            assert example.label is None
        elif processor.is_regression:
            assert 0.0 <= example.label <= 5.0
        else:
            assert example.label in processor.labels


def test_shared_data_first_examples(glue_data):
    mrpc = get_processor("mrpc").dev_examples(glue_data)[0]
    # The BOM belongs to the header, which is skipped; guids count it as row 0.
    assert mrpc.guid == "dev-1" and mrpc.label == "1"
    assert mrpc.text_a.startswith("He said the foodservice pie business")
    cola = get_processor("cola").train_examples(glue_data)[0]
    assert cola == InputExample("train-0", "Our friends won't buy this analysis, let alone the next one we propose.", None, "1")
    stsb = get_processor("sts-b").train_examples(glue_data)[0]
    assert (stsb.text_a, stsb.text_b, stsb.label) == ("A plane is taking off.", "An air plane is taking off.", 5.0)
    sst_test = get_processor("sst2").test_examples(glue_data)[0]
    assert sst_test.text_a == "uneasy mishmash of styles and genres ."


@pytest.mark.parametrize(
    "spelling,name",
    [("sst-2", "SST-2"), ("SST-2", "SST-2"), ("sst2", "SST-2"), ("Sst_2", "SST-2"), ("cola", "CoLA"),
     ("STSB", "STS-B"), ("sts-b", "STS-B"), ("mrpc", "MRPC"), ("rte", "RTE"), ("wnli", "WNLI")],
)
def test_get_processor_ignores_case_and_punctuation(spelling, name):
    assert get_processor(spelling).name == name


def test_unknown_task_lists_known_ones():
    with pytest.raises(DataError) as info:
        get_processor("qqp")
    assert "qqp" in str(info.value)
    for name in TASKS:
        assert name in str(info.value)


def test_processor_attributes():
    assert get_processor("sts-b").num_labels == 1 and get_processor("sts-b").is_regression
    assert get_processor("rte").labels == ("entailment", "not_entailment")
    assert get_processor("rte").label_id("not_entailment") == 1
    assert get_processor("cola").metric_names == ("accuracy", "mcc")
    assert get_processor("mrpc").metric_names == ("accuracy", "f1")
    assert get_processor("sts-b").metric_names == ("pearson", "spearman")
    assert get_processor("sst-2").metric_names == ("accuracy",)
    assert get_processor("sts-b").label_id(3.8) == 3.8


def _write(path, text, bom=False):
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def test_read_file_dev_layout_with_bom_and_unprocessed_quotes(tmp_path):
    path = _write(
        tmp_path / "mine.tsv",
        'Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n'
        '1\t1\t2\t" a quote that never closes\tsecond "\n'
        '0\t3\t4\tthird\tfourth\n',
        bom=True,
    )
    examples = get_processor("MRPC").read_file(path)
    assert examples == [
        InputExample("mine-1", '" a quote that never closes', 'second "', "1"),
        InputExample("mine-2", "third", "fourth", "0"),
    ]


def test_read_file_unlabeled_and_crlf(tmp_path):
    path = _write(tmp_path / "t.tsv", "index\tsentence1\tsentence2\r\n0\tA b.\tC d.\r\n")
    assert get_processor("rte").read_file(path, labeled=False) == [InputExample("t-1", "A b.", "C d.", None)]


def _error(task, tmp_path, text, labeled=True):
    path = _write(tmp_path / "bad.tsv", text)
    with pytest.raises(DataError) as info:
        get_processor(task).read_file(path, labeled=labeled)
    return str(info.value), str(path)


def test_wrong_column_count_names_file_and_line(tmp_path):
    message, path = _error("rte", tmp_path, "index\ts1\ts2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\n")
    assert f"{path}:3" in message and "expected 4" in message and "found 3" in message


def test_label_outside_label_set(tmp_path):
    message, path = _error("sst-2", tmp_path, "sentence\tlabel\ngood\t1\nbad\t2\n")
    assert f"{path}:3" in message and "'2'" in message


def test_rte_label_spelling_is_checked(tmp_path):
    message, path = _error("rte", tmp_path, "index\ts1\ts2\tlabel\n0\ta\tb\tcontradiction\n")
    assert f"{path}:2" in message and "contradiction" in message


@pytest.mark.parametrize("score", ["5.5", "-0.1", "high", "nan", ""])
def test_stsb_score_must_be_in_range(tmp_path, score):
    header = "\t".join(["c"] * 9 + ["score"])
    row = "\t".join(["0"] * 7 + ["s one", "s two", score])
    message, path = _error("sts-b", tmp_path, f"{header}\n{row}\n")
    assert f"{path}:2" in message and "[0, 5]" in message


@pytest.mark.parametrize("sentence", ["", "   ", "\u3000"])
def test_empty_or_blank_sentence_is_an_error(tmp_path, sentence):
    message, path = _error("cola", tmp_path, f"src\t1\t\tfine.\nsrc\t0\t*\t{sentence}\n")
    assert f"{path}:2" in message and "empty sentence" in message


def test_blank_line_is_an_error(tmp_path):
    message, path = _error("sst-2", tmp_path, "sentence\tlabel\ngood\t1\n\nbad\t0\n")
    assert f"{path}:3" in message and "blank line" in message


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        get_processor("wnli").dev_examples(tmp_path)


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "latin.tsv"
    path.write_bytes(b"sentence\tlabel\ngood\t1\ncaf\xe9\t0\n")
    with pytest.raises(DataError) as info:
        get_processor("sst-2").read_file(path)
    assert str(path) in str(info.value) and "UTF-8" in str(info.value)


def test_header_that_looks_like_data_is_skipped_with_a_warning(tmp_path, caplog):
    path = _write(tmp_path / "noheader.tsv", "good\t1\nbad\t0\n")
    with caplog.at_level(logging.WARNING, logger="kbert.glue.processors"):
        examples = get_processor("sst-2").read_file(path)
    assert [e.text_a for e in examples] == ["bad"]
    assert "looks like data" in caplog.text


def test_resolve_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    # Neither given: ../shared/glue_data beside the current directory, if it exists.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="kbert download-glue"):
        resolve_data_dir(None)
    (tmp_path / "checkout").mkdir()
    (tmp_path / "shared" / "glue_data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout")
    assert os.path.samefile(resolve_data_dir(None), tmp_path / "shared" / "glue_data")
    with pytest.raises(DataError, match="kbert download-glue"):
        resolve_data_dir(tmp_path / "nowhere")
    monkeypatch.setenv("GLUE_DIR", str(tmp_path))
    assert resolve_data_dir(None) == str(tmp_path)
