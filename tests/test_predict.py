"""Classifying raw text with a run: the library's `load_classifier`
and `kbert predict`, checked against the saved model run by hand on the
tokenizer's own encoding, with the softmax and the windows' mean computed here."""

import io
import json

import keras
import numpy as np
import pytest

from kbert import load_classifier, runs
from kbert.cli import main as cli
from kbert.config import BertConfig
from kbert.errors import ConfigError, DataError
from kbert.model import BertModel
from kbert.student import build_student
from kbert.tokenization import Tokenizer

WORDS = "a fine moving film dull plot goes nowhere sadly the cast is great boring man plays someone".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + [",", "."]


def make_run(directory, task, num_labels, labels, *, student=False, max_seq_len=12, head="sequence",
             results=None):
    """A complete run directory; `student`: False (a BERT teacher), True (a
    CNN student) or `build_student` arguments; `head`: a teacher's head
    ("token" for a conll run, "span" for a squad one)."""
    directory.mkdir()
    keras.utils.set_random_seed(0)
    if student:
        model = build_student(np.random.default_rng(0).normal(size=(len(VOCAB), 8)).astype("float32"),
                              num_labels, **({"filters": 4} if student is True else student))
    else:
        config = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=16, max_position_embeddings=32)
        model = BertModel(config, num_labels=None if head == "span" else num_labels, head=head)
    kind = "student" if student else "teacher"
    runs.save_model(directory, model, kind)
    runs.write_vocab(directory, VOCAB)
    runs.write_run(directory, runs.RunRecord(kind=kind, status="complete", options={}, task=task, labels=labels,
                                             num_labels=num_labels, max_seq_len=max_seq_len,
                                             results=results or {}))
    return directory


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "sst2", "SST-2", 2, ("0", "1"))


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def by_hand(run_dir, firsts, seconds=None, max_len=12):
    """Logits of the saved model on the tokenizer's encoding, unpadded: the
    rows of each length together, cut to that length."""
    model = keras.saving.load_model(run_dir / runs.MODEL_FILES[runs.read_run(run_dir).kind])
    enc = Tokenizer.from_vocab_file(run_dir / "vocab.txt").encode_batch(firsts, seconds, max_len=max_len)
    lengths = np.asarray(enc.lengths)
    out = np.zeros((len(lengths), model.output.shape[-1]), np.float32)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        inputs = [np.asarray(enc.token_ids)[rows, :length], np.asarray(enc.segment_ids)[rows, :length]]
        inputs = inputs[: len(model.inputs)]
        out[rows] = keras.ops.convert_to_numpy(model.predict_on_batch(inputs if len(inputs) > 1 else inputs[0]))
    return out


def test_predict_gives_label_names_probabilities_and_logits_in_input_order(sst2_run):
    texts = ["a fine moving film", "dull plot , goes nowhere sadly", "great", "the cast is great . " * 8]
    predictions = load_classifier(sst2_run).predict(texts, batch_size=2)
    expected = by_hand(sst2_run, texts)
    assert [p.text for p in predictions] == texts
    np.testing.assert_allclose([p.logits for p in predictions], expected, atol=1e-5)
    for p, logits in zip(predictions, expected):
        assert p.label == ["0", "1"][int(np.argmax(logits))]
        np.testing.assert_allclose([p.probabilities["0"], p.probabilities["1"]], softmax(logits), atol=1e-6)
    assert [p.truncated > 0 for p in predictions] == [False, False, False, True]
    # Many inputs of mixed lengths: read packed (or not), the same logits.
    many = [" ".join(texts[k % 4].split()[: 1 + k % 9]) for k in range(48)]
    expected = by_hand(sst2_run, many)
    for packing in (True, False):
        got = load_classifier(sst2_run).predict(many, batch_size=8, packing=packing)
        np.testing.assert_allclose([p.logits for p in got], expected, atol=1e-5)


def test_pairs_regression_and_students(tmp_path):
    mrpc = load_classifier(make_run(tmp_path / "mrpc", "MRPC", 2, ("0", "1")))
    pairs = [("a man plays", "someone plays"), ("the film", "a dull plot")]
    got = [p.logits for p in mrpc.predict(pairs)]
    np.testing.assert_allclose(got, by_hand(tmp_path / "mrpc", [a for a, _ in pairs], [b for _, b in pairs]),
                               atol=1e-5)
    with pytest.raises(DataError, match="input 0: MRPC classifies sentence pairs"):
        mrpc.predict(["a man plays"])

    stsb = load_classifier(make_run(tmp_path / "stsb", "STS-B", 1, None))
    [p] = stsb.predict([("a man plays", "someone plays")])
    assert p.label is None and p.probabilities == {} and p.score == pytest.approx(p.logits[0])
    assert json.loads(json.dumps(p.to_json()))["score"] == pytest.approx(p.score)

    student = load_classifier(make_run(tmp_path / "student", "SST-2", 2, ("0", "1"), student=True))
    texts = ["a fine film", "boring"]
    np.testing.assert_allclose([p.logits for p in student.predict(texts)], by_hand(tmp_path / "student", texts),
                               atol=1e-5)
    with pytest.raises(DataError, match="input 1: SST-2 classifies single sentences"):
        student.predict(["a", ("b", "c")])
    with pytest.raises(DataError, match="a list of inputs"):
        student.predict("a fine film")


def test_windows_average_the_logits_of_overlapping_windows(sst2_run):
    """A 30-piece text at max_seq_len 12: windows of 10 pieces, 4 apart,
    the last one ending at the text's end; their logits' mean."""
    text = " ".join(WORDS[i % len(WORDS)] for i in range(30))
    classifier = load_classifier(sst2_run)
    [p] = classifier.predict([text], long_inputs="windows", stride=4)
    tokenizer = Tokenizer.from_vocab_file(sst2_run / "vocab.txt")
    pieces = tokenizer.split(text)
    assert len(pieces) == 30
    starts = [0, 4, 8, 12, 16, 20]  # 20 + 10 = 30: the last window reaches the end
    windows = [" ".join(pieces[s:s + 10]) for s in starts]
    expected = by_hand(sst2_run, windows).mean(axis=0)
    assert p.windows == len(starts) and p.truncated == 0
    np.testing.assert_allclose(p.logits, expected, atol=1e-5)
    [short] = classifier.predict(["a fine film"], long_inputs="windows")
    np.testing.assert_allclose(short.logits, by_hand(sst2_run, ["a fine film"])[0], atol=1e-5)
    with pytest.raises(ConfigError, match="stride"):
        classifier.predict([text], long_inputs="windows", stride=11)
    with pytest.raises(ConfigError, match="batch_size"):
        classifier.predict([text], batch_size=0)


@pytest.mark.single_backend  # the command's reading and printing; the logits are tested on every backend above
def test_command_reads_arguments_files_tsv_and_stdin(sst2_run, tmp_path, capsys, monkeypatch):
    assert cli(["predict", "--model", str(sst2_run), "a fine moving film", "boring"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["a fine moving film", "boring"]
    assert set(lines[0]) == {"text", "label", "probabilities", "logits", "truncated"}
    expected = by_hand(sst2_run, ["a fine moving film", "boring"])
    np.testing.assert_allclose([line["logits"] for line in lines], expected, atol=1e-5)
    assert cli(["predict", "--model", str(sst2_run), "--no-packing", "a fine moving film", "boring"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    np.testing.assert_allclose([line["logits"] for line in lines], expected, atol=1e-5)

    plain = tmp_path / "inputs.txt"
    plain.write_text("a fine moving film\nboring\n")
    assert cli(["predict", "--model", str(sst2_run), "--file", str(plain), "--format", "tsv"]) == 0
    out = capsys.readouterr()
    rows = [line.split("\t") for line in out.out.splitlines()]
    assert rows[0] == ["text", "label", "p_0", "p_1"] and [r[0] for r in rows[1:]] == ["a fine moving film", "boring"]
    assert "2 inputs in" in out.err and "ex/s" in out.err

    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence\tlabel\na fine moving film\t1\nboring\t0\n")
    test = tmp_path / "test.tsv"
    test.write_text("index\tsentence\n0\ta fine moving film\n1\tboring\n")
    for path in (dev, test):
        assert cli(["predict", "--model", str(sst2_run), "--file", str(path)]) == 0
        assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == [
            "a fine moving film", "boring"]

    monkeypatch.setattr("sys.stdin", stdin(b"great\n"))
    assert cli(["predict", "--model", str(sst2_run)]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "great"

    bad = tmp_path / "bad.txt"
    bad.write_text("a fine film\n\nboring\n")
    assert cli(["predict", "--model", str(sst2_run), "--file", str(bad)]) == 2
    assert "bad.txt:2: blank line" in capsys.readouterr().err


def stdin(data):
    """A standard input holding `data`, decoded as a UTF-8 locale's would be."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


@pytest.mark.single_backend  # reading bytes: the same on every backend
def test_stdin_reads_bytes_by_the_rule_of_files(sst2_run, tmp_path, capsys, monkeypatch):
    """Defect 7: non-UTF-8 standard input gave a UnicodeDecodeError traceback.
    The same bytes through --file and stdin: the same texts, or the same
    one-line error naming the line, with "<stdin>" for the file's name."""
    cases = {
        "latin-1 on line 2": (b"a fine film\nd\xe9j\xe0 vu\n", 2),
        "invalid UTF-8 on line 3, CRLF": (b"great\r\nboring\r\n\xff\xfe\r\n", 3),
        "UTF-16 with its BOM": ("a fine film\n".encode("utf-16"), 1),
        "a lone CR ends a line": (b"great\r\xc3\x28\n", 2),
    }
    for what, (data, line) in cases.items():
        path = tmp_path / "inputs.txt"
        path.write_bytes(data)
        assert cli(["predict", "--model", str(sst2_run), "--file", str(path)]) == 2, what
        from_file = capsys.readouterr().err
        monkeypatch.setattr("sys.stdin", stdin(data))
        assert cli(["predict", "--model", str(sst2_run)]) == 2, what
        from_stdin = capsys.readouterr().err
        assert from_file.startswith(f"kbert predict: error: {path}:{line}: not UTF-8 text"), (what, from_file)
        assert from_stdin == from_file.replace(str(path), "<stdin>"), what
        assert from_stdin.count("\n") == 1, what

    # Good bytes: a BOM, CRLF, a lone CR and a last line without its newline.
    data = "\ufeffdéjà vu\r\ngreat\rboring".encode("utf-8")
    expected = ["déjà vu", "great", "boring"]  # Python's universal newlines, read here by hand
    path.write_bytes(data)
    assert cli(["predict", "--model", str(sst2_run), "--file", str(path)]) == 0
    from_file = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    monkeypatch.setattr("sys.stdin", stdin(data))
    assert cli(["predict", "--model", str(sst2_run)]) == 0
    from_stdin = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["text"] for p in from_file] == expected and from_stdin == from_file
    np.testing.assert_allclose([p["logits"] for p in from_stdin], by_hand(sst2_run, expected), atol=1e-5)


def test_a_task_tsv_names_the_line_of_its_first_byte_that_is_not_utf8(sst2_run, tmp_path, capsys):
    """The .tsv reader named the first line of the text chunk being decoded
    (line 1 for a small file), not the bad byte's; counted here by hand."""
    rows = [f"{' '.join(WORDS[k % 7:k % 7 + 3])}\t{k % 2}\n".encode() for k in range(3000)]
    rows[2345] = b"caf\xe9 film\t1\n"  # latin-1, some 40 kB in: past the first chunk
    dev = tmp_path / "dev.tsv"
    dev.write_bytes(b"sentence\tlabel\r\n" + b"".join(rows))
    assert cli(["predict", "--model", str(sst2_run), "--file", str(dev)]) == 2
    line = 1 + 2345 + 1  # the header, the rows before, its own
    err = capsys.readouterr().err
    assert err == f"kbert predict: error: {dev}:{line}: not UTF-8 text (invalid continuation byte)\n"


def test_empty_half_of_a_pair_is_refused_with_its_line(tmp_path, capsys, monkeypatch):
    """A pair line 'first<TAB>' was classified as a pair with an empty
    second sentence, which a task .tsv refuses; now it is refused too."""
    run = make_run(tmp_path / "mrpc", "MRPC", 2, ("0", "1"))
    monkeypatch.setattr("sys.stdin", stdin(b"a man plays\tsomeone plays\na man plays\t \n"))
    assert cli(["predict", "--model", str(run)]) == 2
    assert capsys.readouterr().err == "kbert predict: error: <stdin>:2: empty sentence in field 2\n"


def test_run_records_that_do_not_fit_their_task_or_labels_are_refused(tmp_path, capsys):
    """Defect 9: repeated label names (the probabilities dict kept one of
    them) and an STS-B run with a two-output model (its score was the first
    output) were accepted."""
    repeated = make_run(tmp_path / "repeated", "SST-2", 2, ("1", "1"))
    with pytest.raises(ConfigError, match=r"run.json: `labels` \['1', '1'\] repeat '1'"):
        load_classifier(repeated)
    stsb = make_run(tmp_path / "stsb", "STS-B", 2, None)
    with pytest.raises(ConfigError, match=r"run.json: `num_labels` is 2, but STS-B is a regression task"):
        load_classifier(stsb)
    three = make_run(tmp_path / "three", "SST-2", 3, ("0", "1", "2"), student=True)
    with pytest.raises(ConfigError, match=r"run.json: `num_labels` is 3, but SST-2 is 2 labels 0, 1"):
        load_classifier(three)
    # The same refusal through the command: exit 2 and one line naming the file.
    assert cli(["predict", "--model", str(stsb), "a man plays\tsomeone plays"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kbert predict: error: {stsb / 'run.json'}: `num_labels` is 2") and err.count("\n") == 1


def test_window_options_out_of_range_are_refused(sst2_run):
    """Defect 9: stride=0 (or False) quietly meant "the default"; every odd
    value of the options is now a ConfigError naming the option."""
    text = " ".join(WORDS[i % len(WORDS)] for i in range(30))
    classifier = load_classifier(sst2_run)
    for stride in (0, False, True, -3, 1.5, "4", np.int64(0), [4]):
        with pytest.raises(ConfigError, match="stride"):
            classifier.predict([text], long_inputs="windows", stride=stride)
    with pytest.raises(ConfigError, match="stride 4 is only read with long_inputs='windows'"):
        classifier.predict([text], stride=4)
    for long_inputs in (None, "", "WINDOWS", ["windows"], np.array(["windows"])):
        with pytest.raises(ConfigError, match="long_inputs"):
            classifier.predict([text], long_inputs=long_inputs)
    with pytest.raises(ConfigError, match="packing"):
        classifier.predict([text], packing="no")
    # A NumPy integer is a stride: the same windows as the int.
    [as_numpy] = classifier.predict([text], long_inputs="windows", stride=np.int64(4))
    pieces = Tokenizer.from_vocab_file(sst2_run / "vocab.txt").split(text)
    windows = [" ".join(pieces[s:s + 10]) for s in (0, 4, 8, 12, 16, 20)]
    np.testing.assert_allclose(as_numpy.logits, by_hand(sst2_run, windows).mean(axis=0), atol=1e-5)


def test_a_vocabulary_larger_than_the_model_is_refused_at_load(sst2_run, tmp_path):
    """Extra vocab.txt lines would give ids past the embedding (NaN)."""
    import shutil

    from kbert.evaluation import evaluate

    bigger = tmp_path / "bigger"
    shutil.copytree(sst2_run, bigger)
    (bigger / "vocab.txt").write_text("".join(f"{t}\n" for t in VOCAB + ["extra1", "extra2"]))
    with pytest.raises(ConfigError, match=r"vocab.txt: .*beyond the model's vocab_size 24"):
        load_classifier(bigger)
    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence\tlabel\na fine film\t1\n")
    with pytest.raises(ConfigError, match="vocab.txt"):
        evaluate(str(bigger), file=str(dev), verbose=False)
