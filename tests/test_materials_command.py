"""`kbert materials` end to end: a tiny fine-tuning run dir and GLUE files -> materials -> distill."""

import argparse
import json

import keras
import numpy as np
import pytest

from kbert import materials as materials_module
from kbert.commands import distill as distill_command
from kbert.commands import materials as materials_command
from kbert.config import BertConfig
from kbert.materials import load_materials
from kbert.model import BertModel

WORDS = "a fine moving film dull plot goes nowhere sadly the cast is great boring".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
TRAIN = ["a fine moving film", "dull plot goes nowhere", "the cast is great", "boring , sadly", "great film"]
DEV = ["a great film", "dull and boring"]


@pytest.fixture
def run_dir(tmp_path):
    """The files of a fine-tuning run that `kbert materials` reads."""
    run = tmp_path / "run"
    run.mkdir()
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    BertModel(config, num_labels=2).save(run / "model.keras")
    (run / "vocab.txt").write_text("".join(f"{token}\n" for token in VOCAB))
    # run.json in the layout kbert wrote before kbert.runs (options nested,
    # max_seq_len and cased only there): such runs must still be read.
    (run / "run.json").write_text(json.dumps(
        {"kind": "teacher", "status": "complete", "task": "SST-2", "labels": ["0", "1"], "num_labels": 2,
         "global_step": 3, "options": {"task": "SST-2", "max_seq_len": 12, "cased": False}}))
    return run


@pytest.fixture
def glue_dir(tmp_path):
    task = tmp_path / "glue" / "SST-2"
    task.mkdir(parents=True)
    (task / "train.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(TRAIN)))
    (task / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(DEV)))
    return tmp_path / "glue"


def parse(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_materials_then_distill(run_dir, glue_dir, tmp_path, capsys):
    out = tmp_path / "materials"
    materials_command.run(parse(materials_command, [
        "--model", str(run_dir), "--output", str(out), "--data-dir", str(glue_dir),
        "--splits", "train,dev", "--augment", "4", "--seed", "1",
    ]))
    printed = capsys.readouterr().out
    assert "extra teacher passes over train" in printed

    materials = load_materials(str(out), vocab=VOCAB)
    assert set(materials.splits) == {"train", "dev", "augmented"}
    assert materials.manifest["task"] == "SST-2" and materials.manifest["max_seq_len"] == 12
    train = materials.splits["train"]
    assert list(train.sentence) == TRAIN and list(train.label) == [0, 1, 0, 1, 0]
    first = [VOCAB[i] for i in train.x[0, : train.length[0]]]
    assert first == ["[CLS]", "a", "fine", "moving", "film", "[SEP]"]
    augmented = materials.splits["augmented"]
    assert len(augmented) > 0 and (augmented.label == -1).all()
    # "[MASK]" in an augmented sentence is the mask token, not "[", "mask", "]".
    for sentence, ids, length in zip(augmented.sentence, augmented.x, augmented.length):
        assert ("[MASK]" in sentence) == (4 in ids[:length])

    student_dir = tmp_path / "student"
    distill_command.run(parse(distill_command, [
        "--materials", str(out), "--out", str(student_dir), "--epochs", "1", "--batch-size", "8",
        "--variant", "multichannel", "--embedding-dim", "4",
    ]))
    captured = capsys.readouterr()
    assert "best epoch 1 of 1" in captured.out
    assert "--out is deprecated; use --output" in captured.err  # the old spelling still works
    config = keras.saving.load_model(student_dir / "student.keras").get_config()
    assert config["variant"] == "multichannel" and config["embedding_dim"] == 4
    run = json.loads((student_dir / "run.json").read_text())
    assert run["kind"] == "student" and run["task"] == "SST-2" and run["max_seq_len"] == 12
    assert run["options"]["variant"] == "multichannel" and run["labels"] == ["0", "1"]
    assert (student_dir / "vocab.txt").read_text().split("\n")[:-1] == VOCAB
    assert isinstance(keras.saving.load_model(student_dir / "student.keras").predict(train.x, verbose=0), np.ndarray)


def test_evaluate_student_run(run_dir, glue_dir, tmp_path):
    """`kbert evaluate --model STUDENT_DIR --file DEV`: the teacher's report
    shape, with an accuracy equal to the student's own predictions."""
    from kbert.distillation import DistillOptions, distill
    from kbert.evaluation import evaluate
    from kbert.materials import MaterialsOptions, materials_from_run
    from kbert.tokenization import Tokenizer

    materials_from_run(str(run_dir), str(tmp_path / "m"), MaterialsOptions(splits=("train", "dev")),
                       data_dir=str(glue_dir), verbose=False)
    distill(str(tmp_path / "m"), str(tmp_path / "s"), DistillOptions(epochs=1, batch_size=4), verbose=0)
    result = evaluate(str(tmp_path / "s"), file=str(glue_dir / "SST-2" / "dev.tsv"), verbose=False)
    text = (tmp_path / "s" / "eval_results_dev.txt").read_text()
    assert {line.split(" = ")[0] for line in text.splitlines()} == {"eval_accuracy", "eval_loss", "global_step", "loss"}
    student = keras.saving.load_model(tmp_path / "s" / "student.keras")
    ids = Tokenizer.from_vocab_file(str(run_dir / "vocab.txt")).encode_batch(DEV, max_len=12).token_ids
    expected = np.mean(np.argmax(student.predict(ids, verbose=0), -1) == np.arange(len(DEV)) % 2)
    assert result["metrics"]["eval_accuracy"] == pytest.approx(expected)


def test_static_vectors_neighbours_and_a_bilstm_student(run_dir, glue_dir, tmp_path, capsys, monkeypatch):
    """`--static-embedding --neighbours K`: the static vectors are stored, the
    augmented sentences swap words only for their neighbours, and a BiLSTM
    student starts from the static vectors."""
    from kbert.augment import nearest_neighbours

    out = tmp_path / "materials"
    materials_command.run(parse(materials_command, [
        "--model", str(run_dir), "--output", str(out), "--data-dir", str(glue_dir), "--splits", "train,dev",
        "--augment", "6", "--seed", "1", "--static-embedding", "--neighbours", "2", "--p-neighbour", "0.5",
    ]))
    materials = load_materials(str(out), vocab=VOCAB)
    assert materials.static.shape == (len(VOCAB), 8)
    neighbours = nearest_neighbours(materials.static, VOCAB, 2)
    swapped = 0
    for sentence, source in zip(materials.splits["augmented"].sentence, materials.splits["augmented"].source):
        original = TRAIN[source].split()
        # Without n-gram sampling a copy keeps its source's length; compare those word by word.
        if len(sentence.split()) == len(original):
            for new, old in zip(sentence.split(), original):
                assert new in (old, "[MASK]") or new in neighbours[old]
                swapped += new not in (old, "[MASK]")
    assert swapped > 0

    # A second call into the same directory reuses the stored static vectors
    # (the same teacher and vocabulary) instead of running every token again.
    monkeypatch.setattr(materials_module, "static_vectors", lambda *a, **k: pytest.fail("recomputed"))
    materials_command.run(parse(materials_command, [
        "--model", str(run_dir), "--output", str(out), "--data-dir", str(glue_dir), "--splits", "train,dev",
        "--augment", "6", "--seed", "1", "--static-embedding", "--neighbours", "2", "--p-neighbour", "0.5",
    ]))
    np.testing.assert_array_equal(load_materials(str(out), vocab=VOCAB).static, materials.static)

    student_dir = tmp_path / "student"
    distill_command.run(parse(distill_command, [
        "--materials", str(out), "--output", str(student_dir), "--epochs", "1", "--batch-size", "8",
        "--student", "bilstm", "--units", "3", "--embedding", "static", "--embedding-dim", "4", "--holdout", "0.2",
    ]))
    assert "picked on holdout" in capsys.readouterr().out
    student = keras.saving.load_model(student_dir / "student.keras")
    assert student.get_config()["units"] == 3
    run = json.loads((student_dir / "run.json").read_text())
    assert run["options"]["embedding"] == "static" and run["results"]["selected_on"] == "holdout"


def _listing(*roots):
    """Every path under `roots` with its bytes: what a refused command must leave as it was."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            found[str(path)] = path.read_bytes() if path.is_file() else None
    return found


@pytest.mark.single_backend  # paths only: refused before any backend work
def test_materials_and_distill_refuse_an_output_that_overlaps_an_input(run_dir, glue_dir, tmp_path):
    from kbert.distillation import DistillOptions, distill
    from kbert.errors import ConfigError
    from kbert.materials import MaterialsOptions, materials_from_run

    options = MaterialsOptions(splits=("train", "dev"))
    before = _listing(run_dir, glue_dir)
    for output, refusal in ((run_dir, "is the input"), (run_dir / "materials", "lies inside the input"),
                            (glue_dir / "SST-2" / "materials", "lies inside the input"),
                            (glue_dir, "contains the input"), (tmp_path, "contains the input")):
        with pytest.raises(ConfigError, match=f"--output {output}: {refusal}"):
            materials_from_run(str(run_dir), str(output), options, data_dir=str(glue_dir), verbose=False)
    assert _listing(run_dir, glue_dir) == before

    materials = tmp_path / "m"
    materials_from_run(str(run_dir), str(materials), options, data_dir=str(glue_dir), verbose=False)
    before = _listing(materials)
    for output, refusal in ((materials, "is the input"), (materials / "student", "lies inside the input"),
                            (tmp_path, "contains the input")):
        with pytest.raises(ConfigError, match=f"--output {output}: {refusal}"):
            distill(str(materials), str(output), DistillOptions(epochs=1, batch_size=4), verbose=0)
    assert _listing(materials) == before
