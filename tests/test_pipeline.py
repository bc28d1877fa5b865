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


@pytest.mark.single_backend
@pytest.mark.parametrize("task", ["SST-2", "CoLA", "MRPC"])
def test_pipeline_runs_every_stage_reports_and_resumes(task, checkpoint, glue_dir, tmp_path):
    from kbert.pipeline import PipelineOptions, run_pipeline

    out = str(tmp_path / "run")
    options = PipelineOptions(task=task, checkpoint=checkpoint)
    report = run_pipeline(options, out, data_dir=glue_dir)

    for name in ("report.md", "report.json", "report.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    written = json.load(open(os.path.join(out, "report.json")))
    assert written == json.loads(json.dumps(report))
    # The report's contract (issue "main job"), checked against the stages' own files.
    teacher_eval = dict(line.split(" = ") for line in open(os.path.join(out, "teacher", "eval_results.txt")).read()
                        .splitlines())
    student_eval = dict(line.split(" = ") for line in open(os.path.join(out, "student", "eval_results.txt")).read()
                        .splitlines())
    assert report["teacher_accuracy"] == pytest.approx(float(teacher_eval["eval_accuracy"]), abs=1e-6)
    assert report["student_accuracy"] == pytest.approx(float(student_eval["eval_accuracy"]), abs=1e-6)
    metric = {"SST-2": None, "CoLA": "eval_mcc", "MRPC": "eval_f1"}[task]
    if metric:  # the task's own GLUE metric, in the JSON and as a column of the table
        assert report["teacher_metrics"][metric] == pytest.approx(float(teacher_eval[metric]), abs=1e-6)
        assert f"dev {metric[len('eval_'):]}" in open(os.path.join(out, "report.md")).read()
    assert report["teacher_items_per_second"] > 0 and report["student_items_per_second"] > 0
    assert set(report["stage_seconds"]) == {"finetune", "evaluate teacher", "materials", "distill",
                                            "evaluate student", "time teacher", "time student"}
    manifest = json.load(open(os.path.join(out, "materials", "manifest.json")))
    assert {name: entry["count"] for name, entry in manifest["splits"].items()} == {"train": 96, "dev": 32,
                                                                                  "test": 8}

    # A second call finds every stage complete: nothing is trained or written again.
    before = _mtimes(os.path.join(out, "teacher")) | _mtimes(os.path.join(out, "materials")) \
        | _mtimes(os.path.join(out, "student", "checkpoint"))
    again = run_pipeline(options, out, data_dir=glue_dir)
    after = _mtimes(os.path.join(out, "teacher")) | _mtimes(os.path.join(out, "materials")) \
        | _mtimes(os.path.join(out, "student", "checkpoint"))
    changed = sorted(path for path in before if after.get(path) != before[path] and
                     not path.endswith("eval_results.txt"))
    assert not changed
    assert again["teacher_accuracy"] == report["teacher_accuracy"]
    assert again["student_accuracy"] == report["student_accuracy"]


def test_pipeline_refuses_a_task_it_cannot_distill(checkpoint, glue_dir, tmp_path):
    from kbert.errors import ConfigError
    from kbert.pipeline import PipelineOptions, run_pipeline

    with pytest.raises(ConfigError, match="STS-B is a regression task"):
        run_pipeline(PipelineOptions(task="sts-b", checkpoint=checkpoint, full=True), str(tmp_path), data_dir=glue_dir)
