"""`kbert run` (kbert.pipeline): every stage on a tiny original-format
checkpoint and a tiny GLUE directory, the report's contract, and a re-run that
redoes nothing."""

import json
import os

import numpy as np
import pytest

from original_checkpoint import random_bert_weights, write_checkpoint

WORDS = ("a fine moving film dull plot goes nowhere sadly the cast is great boring "
         "funny warm flat tired bright clumsy").split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + [",", "."]
CONFIG = dict(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=24, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu",
              hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02)
GOOD = "fine moving great funny warm bright".split()
BAD = "dull nowhere boring flat tired clumsy".split()


def _sentences(rng, n):
    rows = []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(GOOD if label else BAD, 3)) + list(rng.choice(["a", "the", "film", "plot"], 2))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    weights = random_bert_weights(CONFIG, np.random.default_rng(0), scale=0.05)
    return str(write_checkpoint(tmp_path_factory.mktemp("ckpt"), CONFIG, weights, vocab=VOCAB))


def _write_task(root, task, rng):
    """Tiny train/dev/test files in the task's GLUE layout (CoLA: no header;
    MRPC: sentence pairs)."""
    folder = root / task
    folder.mkdir()
    for split, n in (("train", 96), ("dev", 32), ("test", 8)):
        rows = _sentences(rng, n)
        seconds = _sentences(rng, n)
        if task == "SST-2":
            lines = (["index\tsentence"] + [f"{i}\t{s}" for i, (s, _) in enumerate(rows)] if split == "test"
                     else ["sentence\tlabel"] + [f"{s}\t{y}" for s, y in rows])
        elif task == "CoLA":
            lines = (["index\tsentence"] + [f"{i}\t{s}" for i, (s, _) in enumerate(rows)] if split == "test"
                     else [f"src\t{y}\t\t{s}" for s, y in rows])
        else:  # MRPC: the pair's label is the first sentence's
            header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
            if split == "test":
                header = "index" + header[len("Quality"):]
            lines = [header] + [f"{i if split == 'test' else y}\t{i}\t{i + 1}\t{s}\t{t}"
                                for i, ((s, y), (t, _)) in enumerate(zip(rows, seconds))]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory):
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("glue")
    for task in ("SST-2", "CoLA", "MRPC"):
        _write_task(root, task, rng)
    return str(root)


def _mtimes(directory):
    return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
            for d, _, files in os.walk(directory) for f in files}


def _eval_results(path):
    return {k: float(v) for k, v in (line.split(" = ") for line in open(path).read().splitlines())}


@pytest.mark.single_backend
@pytest.mark.parametrize("task", ["SST-2", "CoLA", "MRPC"])
def test_pipeline_runs_every_stage_reports_and_resumes(task, checkpoint, glue_dir, tmp_path):
    from kbert.pipeline import PipelineOptions, run_pipeline

    out = str(tmp_path / "run")
    # The user's own text reaches the materials (SST-2 reads single sentences, the others pairs).
    text = tmp_path / "corpus.txt"
    pair = "\tits pair" if task == "MRPC" else ""
    text.write_text("".join(f"{w} unseen line {i}{pair}\n" for i, w in enumerate(["one", "two", "three"])))
    # The default students (the BiLSTM and the transformer cut from the teacher) and a CNN of its own options.
    options = PipelineOptions(task=task, checkpoint=checkpoint, students=("bilstm", "transformer", "cnn:epochs=1"),
                              unlabeled=(str(text),))
    report = run_pipeline(options, out, data_dir=glue_dir)

    for name in ("report.md", "report.json", "report.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    written = json.load(open(os.path.join(out, "report.json")))
    assert written == json.loads(json.dumps(report))
    # The report's contract, checked against the stages' own files: one row per
    # model, its scores those its evaluation wrote, the first student in student/.
    directories = {"teacher": "teacher", "bilstm": "student", "transformer": "student-transformer",
                   "cnn-epochs1": "student-cnn-epochs1"}
    assert [m["name"] for m in report["models"]] == list(directories)
    score = {"SST-2": "eval_accuracy", "CoLA": "eval_mcc", "MRPC": "eval_f1"}[task]
    table = open(os.path.join(out, "report.md")).read()
    for model in report["models"]:
        assert model["directory"] == directories[model["name"]]
        written = _eval_results(os.path.join(out, model["directory"], "eval_results.txt"))
        assert model["metrics"]["eval_accuracy"] == pytest.approx(written["eval_accuracy"], abs=1e-6)
        assert model["score"] == pytest.approx(written[score], abs=1e-6)
        assert model["items_per_second"] > 0 and model["latency_ms"] > 0
        assert f"`{model['directory']}`" in table
    assert json.load(open(os.path.join(out, "student-cnn-epochs1", "run.json")))["options"]["epochs"] == 1
    # The frontier, recomputed by brute force: a model is on it unless another is at least as fast and as
    # good, and better in one.
    points = [(m["items_per_second"], m["score"]) for m in report["models"]]
    expected = [m["name"] for m, p in zip(report["models"], points)
                if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    assert report["frontier"] == expected and expected
    assert [m["frontier"] for m in report["models"]] == [m["name"] in expected for m in report["models"]]
    if task != "SST-2":  # the task's own GLUE metric is a column of the table
        assert f"dev {score[len('eval_'):]}" in table
    assert report["machine"] in table
    assert set(report["stage_seconds"]) == {"finetune", "evaluate teacher", "materials", "time teacher"} | {
        f"{stage} {name}" for name in list(directories)[1:] for stage in ("distill", "evaluate", "time")}
    manifest = json.load(open(os.path.join(out, "materials", "manifest.json")))
    assert {name: entry["count"] for name, entry in manifest["splits"].items()} == {"train": 96, "dev": 32,
                                                                                  "test": 8, "unlabeled-00000": 3}
    assert manifest["splits"]["unlabeled-00000"]["input"] == str(text)

    # A second call finds every stage complete: nothing is trained or written again.
    kept = ["teacher", "materials"] + [os.path.join(d, "checkpoint") for d in list(directories.values())[1:]]
    before = {k: v for d in kept for k, v in _mtimes(os.path.join(out, d)).items()}
    again = run_pipeline(options, out, data_dir=glue_dir)
    after = {k: v for d in kept for k, v in _mtimes(os.path.join(out, d)).items()}
    changed = sorted(path for path in before if after.get(path) != before[path] and
                     not path.endswith("eval_results.txt"))
    assert not changed
    assert [m["score"] for m in again["models"]] == [m["score"] for m in report["models"]]


def test_student_entries_take_their_own_options_and_refuse_bad_ones():
    from kbert.errors import ConfigError
    from kbert.pipeline import PipelineOptions, StudentEntry

    entry = StudentEntry.parse("transformer:layers=4:learning-rate=1e-4")
    assert entry.label == "transformer-layers4-learning-rate0.0001"
    options = PipelineOptions(students=("bilstm", "transformer:layers=4:learning-rate=1e-4"), pairs="siamese",
                              embedding="static", full=True)
    bilstm, transformer = (options.distill_options(e) for e in options.student_entries())
    # The run's pairs and embedding go to the students that take them, not to the one cut from the teacher.
    assert (bilstm.pairs, bilstm.embedding, bilstm.epochs) == ("siamese", "static", 10)
    assert (transformer.pairs, transformer.embedding, transformer.layers, transformer.learning_rate,
            transformer.epochs) == ("joint", "teacher", 4, 1e-4, 3)
    assert options.materials_options().static_embedding
    assert not PipelineOptions(students=("transformer",), embedding="static").materials_options().static_embedding
    for students, message in ((("rnn",), "unknown student 'rnn'"), (("cnn:width=3",), "'width=3'"),
                              (("cnn:epochs",), "'epochs'"), (("cnn:epochs=two",), "epochs in 'cnn:epochs=two'"),
                              (("cnn:epochs=1:epochs=2",), "sets an option twice"), (("cnn", "cnn"), "twice"),
                              ((), "names no student"), (("transformer:units=0",), "units must be >= 1")):
        with pytest.raises(ConfigError, match=message):
            PipelineOptions(students=students)


def test_kbert_run_reads_students_and_the_one_student_spelling():
    from kbert.cli import build_parser

    argv = ["run", "--students", "cnn, transformer:layers=2"]
    assert build_parser(argv).parse_args(argv).students == ("cnn", "transformer:layers=2")
    argv = ["run", "--student", "cnn"]
    assert build_parser(argv).parse_args(argv).students == ("cnn",)
    argv = ["run"]
    assert build_parser(argv).parse_args(argv).students == ("bilstm", "transformer")


@pytest.mark.single_backend  # refused before any backend work
def test_kbert_run_passes_unlabeled_text_on_and_refuses_an_output_around_it(glue_dir, tmp_path):
    from kbert.cli import build_parser
    from kbert.errors import ConfigError
    from kbert.pipeline import PipelineOptions, run_pipeline

    text = tmp_path / "text" / "corpus.txt"
    text.parent.mkdir()
    text.write_text("a line\n")
    argv = ["run", "--unlabeled", str(text), str(tmp_path / "*.txt")]
    assert build_parser(argv).parse_args(argv).unlabeled == [str(text), str(tmp_path / "*.txt")]
    options = PipelineOptions(unlabeled=[str(text)])
    assert options.materials_options().unlabeled == (str(text),)
    with pytest.raises(ConfigError, match="--output .*: contains the input"):
        run_pipeline(options, str(tmp_path), data_dir=glue_dir)
    assert sorted(os.listdir(tmp_path / "text")) == ["corpus.txt"] and not (tmp_path / "teacher").exists()


def test_pipeline_refuses_a_task_it_cannot_distill(checkpoint, glue_dir, tmp_path):
    from kbert.errors import ConfigError
    from kbert.pipeline import PipelineOptions, run_pipeline

    with pytest.raises(ConfigError, match="STS-B is a regression task"):
        run_pipeline(PipelineOptions(task="sts-b", checkpoint=checkpoint, full=True), str(tmp_path), data_dir=glue_dir)
