"""Reading large inputs (`kbert.corpus`): text lines split as Python's own
universal newlines split them, JSON lines and Parquet read into the same
records, and every kind of damage named by file and line (or row)."""

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbert.corpus import expand_inputs, read_records, text_lines
from kbert.errors import ConfigError, DataError

pytestmark = pytest.mark.keras_free


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "a film", "\u00e9t\u00e9 \u4e2d", " x y "]),
                          st.sampled_from(["\n", "\r\n", "\r"])), max_size=8),
       st.sampled_from(["", "tail", "\u00e9"]), st.booleans(), st.sampled_from([1, 2, 3, 7, 1 << 20]))
def test_lines_split_as_universal_newlines_split_them(parts, tail, bom, block):
    import kbert.corpus

    text = "".join(line + end for line, end in parts) + tail
    data = ("\ufeff" if bom else "").encode("utf-8") + text.encode("utf-8")
    # The reference: Python's text layer, newline=None, on the same bytes.
    expected = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=None).read().split("\n")
    if expected[-1] == "":
        expected.pop()  # the end of the last line is not a line
    # Read in blocks of `block` bytes: breaks, "\r\n" pairs and characters cut anywhere.
    original, kbert.corpus.READ_BYTES = kbert.corpus.READ_BYTES, block
    try:
        got = list(text_lines(io.BytesIO(data), "x"))
    finally:
        kbert.corpus.READ_BYTES = original
    assert [line for _, line in got] == expected
    assert [number for number, _ in got] == list(range(1, len(expected) + 1))


def test_a_line_without_end_is_refused_past_the_limit(monkeypatch):
    import kbert.corpus

    monkeypatch.setattr(kbert.corpus, "READ_BYTES", 4)
    monkeypatch.setattr(kbert.corpus, "MAX_LINE_BYTES", 10)
    assert [line for _, line in text_lines(io.BytesIO(b"short\r" * 3), "x")] == ["short"] * 3
    with pytest.raises(DataError, match=r"^x:2: a line longer than 10 bytes"):
        list(text_lines(io.BytesIO(b"fine\n" + b"y" * 40), "x"))


def test_text_records_singles_pairs_and_blanks(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"a fine film\r\n\n  \nanother one\n")
    assert list(read_records(path, pairs=False, blank="skip")) == [(1, "a fine film"), (4, "another one")]
    with pytest.raises(DataError, match=rf"^{path}:2: blank line$"):
        list(read_records(path, pairs=False, blank="error"))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("A man plays.\tSomeone plays.\nno tab\n")
    assert next(read_records(pairs, pairs=True, blank="error")) == (1, ("A man plays.", "Someone plays."))
    with pytest.raises(DataError, match=rf"^{pairs}:2: expected 'first<TAB>second', found 1 field"):
        list(read_records(pairs, pairs=True, blank="error"))
    with pytest.raises(DataError, match=rf"^{pairs}:1: a tab in a single-sentence input"):
        list(read_records(pairs, pairs=False, blank="skip"))
    half = tmp_path / "half.txt"
    half.write_text("fine\t \n")
    with pytest.raises(DataError, match=rf"^{half}:1: empty sentence in field 2$"):
        list(read_records(half, pairs=True, blank="skip"))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("ok\nd\u00e9j\u00e0\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"^{latin}:2: not UTF-8 text"):
        list(read_records(latin, pairs=False, blank="skip"))
    with pytest.raises(DataError, match=rf"^{tmp_path / 'none.txt'}: cannot read it"):
        list(read_records(tmp_path / "none.txt", pairs=False, blank="skip"))


def test_compressed_files_are_refused(tmp_path):
    path = tmp_path / "reviews.txt.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00")
    with pytest.raises(DataError, match=rf"^{path}: a compressed file; decompress it first"):
        list(read_records(path, pairs=False, blank="skip"))


def test_json_lines_read_as_the_text_lines_they_stand_for(tmp_path):
    singles = tmp_path / "in.jsonl"
    singles.write_text("\n".join(json.dumps(v) for v in [
        {"text": "a fine film", "id": 7}, {"text": "\u00e9t\u00e9"}]) + "\n\n")
    assert list(read_records(singles, pairs=False, blank="skip")) == [(1, "a fine film"), (2, "\u00e9t\u00e9")]
    pairs = tmp_path / "pairs.ndjson"
    # Both spellings of a pair: predict's own output ("text": [a, b]) and two fields.
    pairs.write_text(json.dumps({"text": ["A man.", "Someone."]}) + "\n"
                     + json.dumps({"text_a": "One.", "text_b": "Two."}) + "\n")
    assert list(read_records(pairs, pairs=True, blank="error")) == [(1, ("A man.", "Someone.")), (2, ("One.", "Two."))]
    for body, pairs_, message in [
        ('{"text": "x"}\n[1, 2]\n', False, r":2: not a JSON object but a list"),
        ('{"text": "x"}\n{"text": \n', False, r":2: not a JSON object \("),
        ('{"txt": "x"}\n', False, r":1: no field 'text'"),
        ('{"text": 3}\n', False, r":1: field 'text' must be a string .* got int"),
        ('{"text": "one"}\n', True, r":1: field 'text' must be \[first, second\]"),
        ('{"text_a": "one"}\n', True, r":1: no field 'text' or 'text_b'"),
        ('{"text_a": "one", "text_b": null}\n', True, r":1: field 'text_b' must be a string, got null"),
        ('{"text": ["one", " "]}\n', True, r":1: empty sentence in field 2"),
        ('{"text": "  "}\n', False, r":1: empty text"),
        ('{"text": ["  ", ""]}\n', True, r":1: empty text"),
        ('{"text": "\\ud83d alone"}\n', False, r":1: text 1 is not Unicode text"),
    ]:
        path = tmp_path / "bad.jsonl"
        path.write_text(body)
        with pytest.raises(DataError, match=rf"^{path}{message}"):
            list(read_records(path, pairs=pairs_, blank="error"))
    # A lone "\r" inside a JSON line is JSON's whitespace, not a line break; ".json" is JSON lines too.
    carriage = tmp_path / "carriage.json"
    carriage.write_bytes(b'{"text":\r "one"}\r\n{"text": "two"}\n')
    assert list(read_records(carriage, pairs=False, blank="error")) == [(1, "one"), (2, "two")]


def test_parquet_reads_the_same_records_across_batches(tmp_path, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    import kbert.corpus

    monkeypatch.setattr(kbert.corpus, "PARQUET_BATCH_ROWS", 3)  # several batches, row numbers running on
    texts = [f"sentence {k}" for k in range(8)]
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(8)), "text": texts}), path, row_group_size=5)
    assert list(read_records(path, pairs=False, blank="error")) == list(enumerate(texts, 1))
    pair_path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"text_a": ["a", "b"], "text_b": ["c", None]}), pair_path)
    with pytest.raises(DataError, match=rf"^{pair_path}, row 2: column 'text_b' must hold strings, got null"):
        list(read_records(pair_path, pairs=True, blank="error"))
    with pytest.raises(DataError, match=rf"^{path}: no column 'text_a' or 'text_b'"):
        list(read_records(path, pairs=True, blank="error"))
    # A pair layout read by a single-sentence task: refused, not read as its first half.
    with pytest.raises(DataError, match=rf"^{pair_path}: no column 'text'; the task reads 'text'"):
        list(read_records(pair_path, pairs=False, blank="error"))
    blank = tmp_path / "blank.parquet"
    pq.write_table(pa.table({"text": ["x", " ", "y"]}), blank)
    assert list(read_records(blank, pairs=False, blank="skip")) == [(1, "x"), (3, "y")]
    with pytest.raises(DataError, match=rf"^{blank}, row 2: empty text"):
        list(read_records(blank, pairs=False, blank="error"))
    torn = tmp_path / "torn.parquet"
    torn.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=rf"^{torn}: not a readable Parquet file"):
        list(read_records(torn, pairs=False, blank="error"))


def test_parquet_without_pyarrow_is_a_config_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ConfigError, match=r'pip install "kbert\[parquet\]"'):
        list(read_records(tmp_path / "x.parquet", pairs=False, blank="error"))


def test_expand_inputs_keeps_order_and_sorts_each_pattern(tmp_path):
    for name in ["b.txt", "a.txt", "c.jsonl", "data[1].txt"]:
        (tmp_path / name).write_text("x\n")
    (tmp_path / "dir.txt").mkdir()  # a directory matching a pattern is not an input
    got = expand_inputs([str(tmp_path / "c.jsonl"), str(tmp_path / "*.txt"), str(tmp_path / "data[1].txt")], "--input")
    assert got == [str(tmp_path / n) for n in ["c.jsonl", "a.txt", "b.txt", "data[1].txt", "data[1].txt"]]
    with pytest.raises(DataError, match=r"^--input .*none\*: no file matches$"):
        expand_inputs([str(tmp_path / "none*")], "--input")
    with pytest.raises(DataError, match=r"^--input .*gone.txt: no such file$"):
        expand_inputs([str(tmp_path / "gone.txt")], "--input")
