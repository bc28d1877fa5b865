"""kbert.runs: run.json in the current layout and in the layouts kbert wrote
before it (written here by the test, as those versions wrote them), and
refusal of records whose fields are of the wrong type."""

import json

import pytest

from kbert import runs
from kbert.errors import ConfigError, DataError

pytestmark = pytest.mark.keras_free

# A complete teacher as finetune.py wrote it before kbert.runs: options nested,
# max_seq_len and cased only inside them, results at the top level.
LEGACY_TEACHER = {
    "kind": "teacher", "status": "complete", "task": "MRPC", "labels": ["0", "1"], "num_labels": 2,
    "options": {"task": "MRPC", "checkpoint": "minilm-l6", "batch_size": 32, "learning_rate": 7e-05, "epochs": 3,
                "max_seq_len": 128, "max_train_examples": None, "seed": 42, "warmup_proportion": 0.1,
                "weight_decay": 0.01, "cased": False, "length_bucketing": False},
    "train_examples": 3668, "global_step": 345, "history": {"loss": [0.6, 0.5, 0.4]}, "train_seconds": 600.0,
    "train_examples_per_second": [18.0], "backend": "jax",
}
# A student as distill.py wrote it: a flat run.json, options in config.json.
LEGACY_STUDENT = {"kind": "student", "status": "complete", "task": "SST-2", "max_seq_len": 128, "cased": False,
                  "num_labels": 2, "teacher": {"id": "/runs/t", "sha256": "ab"}, "best_epoch": 3,
                  "global_step": 3000, "backend": "jax"}
LEGACY_STUDENT_CONFIG = {"kbert_version": "0.1.0", "distill": {"epochs": 4, "variant": "multichannel"},
                         "student": {}, "materials": {}, "result": {}}


def write(directory, name, value):
    (directory / name).write_text(json.dumps(value))


def test_reads_a_legacy_teacher(tmp_path):
    write(tmp_path, "run.json", LEGACY_TEACHER)
    record = runs.read_run(tmp_path)
    assert (record.kind, record.status, record.task, record.labels, record.num_labels) == (
        "teacher", "complete", "MRPC", ("0", "1"), 2)
    assert (record.max_seq_len, record.cased, record.model_file) == (128, False, "model.keras")
    assert record.options == LEGACY_TEACHER["options"]
    assert record.global_step == 345 and record.results["history"] == {"loss": [0.6, 0.5, 0.4]}
    assert not runs.is_complete(tmp_path)  # no model.keras
    (tmp_path / "model.keras").write_bytes(b"")
    assert runs.is_complete(tmp_path)


def test_reads_a_legacy_teacher_still_training(tmp_path):
    write(tmp_path, "run.json", {"kind": "teacher", "status": "training", "options": LEGACY_TEACHER["options"]})
    record = runs.read_run(tmp_path)
    assert (record.status, record.task, record.max_seq_len, record.num_labels) == ("training", "MRPC", 128, None)
    with pytest.raises(ConfigError, match="not complete"):
        runs.complete_run(tmp_path)


def test_reads_a_legacy_student_with_its_config(tmp_path):
    write(tmp_path, "run.json", LEGACY_STUDENT)
    write(tmp_path, "config.json", LEGACY_STUDENT_CONFIG)
    record = runs.read_run(tmp_path)
    assert (record.kind, record.task, record.max_seq_len, record.num_labels) == ("student", "SST-2", 128, 2)
    assert record.options == {"epochs": 4, "variant": "multichannel"} and record.global_step == 3000
    assert record.model_file == "student.keras" and record.results["best_epoch"] == 3
    assert record.labels == ("0", "1")  # from the task, as current students record them


def test_round_trip_of_todays_layout(tmp_path):
    record = runs.RunRecord(kind="student", status="complete", options={"epochs": 2}, task="CoLA",
                            labels=("0", "1"), num_labels=2, max_seq_len=64, cased=True,
                            defaults={"epochs": "recipe"}, results={"global_step": 7})
    runs.write_run(tmp_path, record)
    written = json.loads((tmp_path / "run.json").read_text())
    assert written["format"] == "kbert-run" and written["format_version"] == 2
    assert written["model_file"] == "student.keras" and written["labels"] == ["0", "1"]
    assert runs.read_run(tmp_path) == record


@pytest.mark.parametrize("change, field", [
    ({"kind": "teacher-ish"}, "kind"),
    ({"status": None}, "status"),
    ({"options": [1]}, "options"),
    ({"max_seq_len": "128"}, "max_seq_len"),
    ({"max_seq_len": True}, "max_seq_len"),
    ({"num_labels": 0}, "num_labels"),
    ({"labels": "01"}, "labels"),
    ({"cased": "no"}, "cased"),
    ({"results": []}, "results"),
    ({"task": None}, "task"),  # a complete run names its task
    ({"format_version": 3}, "version 3"),
    ({"results": {"global_step": "x"}}, "global_step"),
    ({"labels": ["0", "1", "2"]}, "3 `labels` for `num_labels` 2"),
    ({"files": {"../model.keras": "0" * 64}}, "files"),
])
def test_a_field_of_the_wrong_type_is_a_config_error_naming_it(tmp_path, change, field):
    record = runs.RunRecord(kind="teacher", status="complete", options={}, task="SST-2", labels=("0", "1"),
                            num_labels=2, max_seq_len=16)
    write(tmp_path, "run.json", dict(record.to_json(), **change))
    with pytest.raises(ConfigError, match=field) as info:
        runs.read_run(tmp_path)
    assert "run.json" in str(info.value)


def test_a_legacy_teacher_without_options_is_a_config_error(tmp_path):
    write(tmp_path, "run.json", {"kind": "teacher", "status": "complete", "task": "SST-2"})
    with pytest.raises(ConfigError, match="no `options`"):
        runs.read_run(tmp_path)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 torn", b"not a zip at all"])
def test_a_torn_model_file_is_a_data_error_naming_it(tmp_path, content):
    record = runs.RunRecord(kind="teacher", status="complete", options={}, task="SST-2", labels=("0", "1"),
                            num_labels=2, max_seq_len=16)
    runs.write_run(tmp_path, record)
    (tmp_path / "model.keras").write_bytes(content)
    with pytest.raises(DataError, match="model.keras: not a whole .keras model file"):
        runs.load_model(tmp_path)


def test_verify_files_catches_a_flipped_bit_no_format_check_sees(tmp_path):
    """The opt-in hash check: a changed byte in any recorded file is a DataError."""
    (tmp_path / "model.keras").write_bytes(b"weights" * 100)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "bert_model.ckpt.data-00000-of-00001").write_bytes(b"\x00" * 64)
    files = runs.file_hashes(tmp_path, "teacher")
    assert set(files) == {"model.keras", "vocab.txt", "checkpoint/bert_model.ckpt.data-00000-of-00001"}
    record = runs.RunRecord(kind="teacher", status="complete", options={}, task="SST-2", num_labels=2,
                            max_seq_len=8, files=files)
    runs.write_run(tmp_path, record)
    runs.verify_files(tmp_path, runs.read_run(tmp_path))  # untouched: passes
    data = bytearray((tmp_path / "checkpoint" / "bert_model.ckpt.data-00000-of-00001").read_bytes())
    data[17] ^= 0x04
    (tmp_path / "checkpoint" / "bert_model.ckpt.data-00000-of-00001").write_bytes(bytes(data))
    with pytest.raises(DataError, match="bert_model.ckpt.data-00000-of-00001: changed since the run wrote it"):
        runs.verify_files(tmp_path, runs.read_run(tmp_path))
    with pytest.raises(DataError, match="records no file hashes"):
        runs.verify_files(tmp_path, record.replace(files={}))
