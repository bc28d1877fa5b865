"""Fuzz: what `kbert predict` reads, through --file and standard input.

Encodings (latin-1, UTF-16, invalid UTF-8, NUL bytes), empty and giant
lines, odd line ends, seeded byte mutations, and pair lines and task .tsv
rows with too many or too few tab fields.  The same bytes through --file
and stdin must give the same outcome: exit 0 with the library's predictions
for the texts read here by Python's own universal-newline UTF-8 reader, or
exit 2 with one line on stderr naming the input and the line; never a
traceback.  Seeded and bounded (see `mutate.py`).
"""

import io
import json

import numpy as np
import pytest
from mutate import byte_mutations, verdict
from test_predict import WORDS, make_run

pytestmark = [pytest.mark.single_backend, pytest.mark.slow]

BASE = "a fine moving film\ndull plot , goes nowhere sadly\nthe cast is great .\n".encode("utf-8")
GIANT = " ".join(WORDS[i % len(WORDS)] for i in range(200_000))[:1_000_000]  # a 1 MB line


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_predict")
    return {"single": make_run(root / "sst2", "SST-2", 2, ("0", "1")),
            "pairs": make_run(root / "mrpc", "MRPC", 2, ("0", "1"))}


def expected_outcome(data, pairs):
    """("ok", texts) or ("refused", line): the rule worked out here with
    Python's universal-newline reader, not the command's code."""
    def lines_of(raw):
        return io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline=None).readlines()

    try:
        lines = [line.rstrip("\n") for line in lines_of(data)]
    except UnicodeDecodeError:
        bad = _first_bad_byte(data)
        # Lines before the bad byte, plus its own: a stand-in byte ends the prefix.
        return "refused", len(lines_of(data[:bad] + b"x"))
    texts = []
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) != (2 if pairs else 1) or not all(f.strip() for f in fields):
            return "refused", number
        texts.append(tuple(fields) if pairs else line)
    return "ok", texts


def _first_bad_byte(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start
    raise AssertionError("the bytes decode")


def run_command(cli, args, capsys):
    """(exit status, stdout, stderr) of `kbert predict ARGS`; anything but a
    KbertError escaping is an AssertionError (the CLI turns those into 2)."""
    outcome, status = verdict(lambda: cli(["predict", *args]), seconds=60)
    assert outcome == "ok", status
    out = capsys.readouterr()
    return status, out.out, out.err


def check_bytes(data, run, pairs, tmp_path, capsys, monkeypatch, what):
    from kbert import load_classifier
    from kbert.cli import main as cli

    kind, value = expected_outcome(data, pairs)
    path = tmp_path / "inputs.txt"
    path.write_bytes(data)
    results = {}
    for where in (str(path), "<stdin>"):
        if where == "<stdin>":
            monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
            status, out, err = run_command(cli, ["--model", str(run)], capsys)
        else:
            status, out, err = run_command(cli, ["--model", str(run), "--file", where], capsys)
        assert "Traceback" not in err, (what, where)
        if kind == "refused":
            assert status == 2, (what, where, err)
            assert err.startswith(f"kbert predict: error: {where}:{value}: ") and err.count("\n") == 1, \
                (what, where, err)
            results[where] = err.replace(where, "INPUT")
        else:
            assert status == 0, (what, where, err)
            got = [json.loads(line) for line in out.split("\n")[:-1]]  # JSON Lines: "\\n" alone ends one
            assert [tuple(g["text"]) if pairs else g["text"] for g in got] == value, (what, where)
            results[where] = got
    assert results[str(path)] == results["<stdin>"], what  # the same bytes, the same outcome
    if kind == "ok" and value:
        reference = load_classifier(run).predict(value)
        np.testing.assert_allclose([g["logits"] for g in results["<stdin>"]], [p.logits for p in reference],
                                   atol=1e-5, err_msg=what)
        assert np.isfinite([g["logits"] for g in results["<stdin>"]]).all(), what
    return kind


ENCODINGS = {
    "latin-1": "déjà vu, a fine film\n".encode("latin-1"),
    "UTF-16": "a fine film\n".encode("utf-16"),
    "UTF-16-BE, no BOM": "a fine film\n".encode("utf-16-be"),
    "invalid UTF-8 mid-file": BASE + b"the \xc3\x28 cast\n",
    "truncated sequence at the end": BASE + b"caf\xc3",
    "surrogate in UTF-8": b"a fine \xed\xa0\x80 film\n",
    "NUL bytes": b"a fine\x00film\n\x00\n",
    "BOM, CRLF and a lone CR": b"\xef\xbb\xbfa fine film\r\nboring\rgreat",
    "form feed and U+2028 stay in the line": "a fine\x0cfilm\u2028great\n".encode("utf-8"),
    "empty input": b"",
    "only a newline": b"\n",
    "blank line": BASE + b"   \n" + BASE,
    "a tab in a single sentence": b"a fine\tfilm\n",
    "giant line": GIANT.encode("utf-8") + b"\n",
    "giant line of one character": b"x" * 1_000_000,
}


@pytest.mark.parametrize("what", list(ENCODINGS))
def test_encodings_and_odd_lines(runs_dir, tmp_path, capsys, monkeypatch, what):
    check_bytes(ENCODINGS[what], runs_dir["single"], False, tmp_path, capsys, monkeypatch, what)


def test_mutated_bytes(runs_dir, tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(7)
    kinds = [check_bytes(data, runs_dir["single"], False, tmp_path, capsys, monkeypatch, what)
             for what, data in byte_mutations(BASE, rng, 16)]
    assert "ok" in kinds and "refused" in kinds, kinds  # the mutations reach both outcomes


PAIR_LINES = {
    "good": b"a man plays\tsomeone plays\nthe film\ta dull plot\n",
    "too few fields": b"a man plays\tsomeone plays\nthe film a dull plot\n",
    "too many fields": b"a man plays\tsomeone\tplays\n",
    "empty second": b"a man plays\t\n",
    "whitespace first": b" \tsomeone plays\n",
    "only a tab": b"\t\n",
    "CRLF pairs": b"a man plays\tsomeone plays\r\nthe film\ta dull plot\r\n",
}


@pytest.mark.parametrize("what", list(PAIR_LINES))
def test_pair_lines(runs_dir, tmp_path, capsys, monkeypatch, what):
    kind = check_bytes(PAIR_LINES[what], runs_dir["pairs"], True, tmp_path, capsys, monkeypatch, what)
    assert kind == ("ok" if what in ("good", "CRLF pairs") else "refused")


MRPC_DEV = ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            "1\t1\t2\ta man plays\tsomeone plays\n"
            "0\t3\t4\tthe film is great\ta dull plot\n")


@pytest.mark.parametrize("what, row, line", [
    ("a field too few", "1\t5\t6\ta man plays\n", 4),
    ("a field too many", "1\t5\t6\ta man plays\tsomeone\tplays\n", 4),
    ("an empty sentence", "1\t5\t6\t\tsomeone plays\n", 4),
    ("not UTF-8", "1\t5\t6\ta man pl\udcffays\tsomeone\n", 4),
    ("a good row", "0\t5\t6\tthe cast\tis great\n", None),
])
def test_task_tsv_rows(runs_dir, tmp_path, capsys, what, row, line):
    """A .tsv in MRPC's layout: a bad row is refused naming its line; a good
    file gives the pairs the task's own reader gives."""
    from kbert.cli import main as cli
    from kbert.glue import get_processor

    path = tmp_path / "dev.tsv"
    path.write_bytes((MRPC_DEV + row).encode("utf-8", "surrogateescape"))
    status, out, err = run_command(cli, ["--model", str(runs_dir["pairs"]), "--file", str(path)], capsys)
    if line is None:
        assert status == 0, err
        examples = get_processor("MRPC").read_file(path)
        assert [tuple(json.loads(x)["text"]) for x in out.splitlines()] == [(e.text_a, e.text_b) for e in examples]
    else:
        assert status == 2 and err.startswith(f"kbert predict: error: {path}:{line}: "), err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_giant_line_in_windows(runs_dir):
    """A long line read whole (windows) through the library: finite, every
    piece counted; kept at 20,000 words so the case stays fast."""
    from kbert import load_classifier

    text = " ".join(GIANT.split()[:20_000])
    [p] = load_classifier(runs_dir["single"]).predict([text], long_inputs="windows", stride=5)
    assert p.truncated == 0 and p.windows == -(-(20_000 - 10) // 5) + 1
    assert np.isfinite(p.logits).all()
