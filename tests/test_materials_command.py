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


@pytest.mark.single_backend  # the commands' wiring; materials and students are computed on every backend in test_materials and test_distill
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


@pytest.mark.single_backend  # the commands' wiring; static vectors are tested on every backend in test_materials
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


CORPUS = ["a fine film", "", "a fine moving film", "great plot", "a fine film", "dull and boring",
          "the plot is great", "sadly boring"]  # lines 3 and 6 are train's and dev's, 5 repeats 1
MORE = ["moving cast", "great plot"]  # in a second file: its line 2 repeats the first file's line 4


def _unlabeled(tmp_path, corpus=CORPUS):
    text = tmp_path / "text"
    text.mkdir(exist_ok=True)
    (text / "a.txt").write_text("".join(f"{line}\n" for line in corpus))
    (text / "b.txt").write_text("".join(f"{line}\n" for line in MORE))
    return text


@pytest.mark.single_backend  # the shards' files and their bookkeeping: the same on every backend
def test_unlabeled_text_is_labelled_in_shards_and_resumes(run_dir, glue_dir, tmp_path, monkeypatch, capsys, caplog):
    """`kbert materials --unlabeled FILE...`: every new non-empty line
    once, in order, in shards of --shard-rows, each row labelled as the
    teacher labels it alone; lines of the task's splits (train and dev) and
    repeats are skipped; an interrupted call resumes at the shard it was
    writing, with the same result."""
    from kbert.runs import load_model
    from kbert.tokenization import Tokenizer

    text = _unlabeled(tmp_path)
    argv = ["--model", str(run_dir), "--data-dir", str(glue_dir), "--splits", "train,dev",
            "--unlabeled", str(text / "a.txt"), str(text / "b*.txt"), "--shard-rows", "2"]
    out = tmp_path / "materials"
    materials_command.run(parse(materials_command, argv + ["--output", str(out)]))
    captured = capsys.readouterr()
    assert "unlabeled: 5 rows in 3 shards" in captured.out
    # One progress bar over every shard, not one a shard.
    assert "teachers on unlabeled text: 5item" in captured.err and "on unlabeled-0" not in captured.err
    materials = load_materials(str(out), vocab=VOCAB)
    shards = {name: materials.splits[name] for name in ("unlabeled-00000", "unlabeled-00001", "unlabeled-00002")}
    assert set(materials.splits) == {"train", "dev", *shards}
    assert [list(s.sentence) for s in shards.values()] == [["a fine film", "great plot"],
                                                           ["the plot is great", "sadly boring"], ["moving cast"]]
    assert [list(s.line) for s in shards.values()] == [[1, 4], [7, 8], [1]]
    entries = materials.manifest["splits"]
    assert entries["unlabeled-00001"]["input"] == str(text / "a.txt") and entries["unlabeled-00001"]["lines"] == [7, 8]
    assert entries["unlabeled-00002"]["input"] == str(text / "b.txt")
    # The teacher's logits, row by row, against the model run here on each sentence alone.
    teacher, _ = load_model(str(run_dir))
    tokenizer = Tokenizer.from_vocab_file(str(run_dir / "vocab.txt"))
    for split in shards.values():
        assert (split.label == -1).all()
        for sentence, y in zip(split.sentence, split.y):
            batch = tokenizer.encode_batch([str(sentence)], max_len=12)
            expected = keras.ops.convert_to_numpy(teacher.predict_on_batch([batch.token_ids, batch.segment_ids]))
            np.testing.assert_allclose(y, expected[0], atol=1e-5)

    # Killed while writing the second shard: the first stays, whole.
    killed = tmp_path / "killed"
    calls = []
    real_run_teacher = materials_module.run_teacher

    def dies_on_the_second_shard(teacher, *args, desc=None, **kwargs):
        calls.append(desc)
        if desc == "teacher on unlabeled-00001":
            raise KeyboardInterrupt
        return real_run_teacher(teacher, *args, desc=desc, **kwargs)

    monkeypatch.setattr(materials_module, "run_teacher", dies_on_the_second_shard)
    with pytest.raises(KeyboardInterrupt):
        materials_command.run(parse(materials_command, argv + ["--output", str(killed)]))
    assert json.loads((killed / "manifest.json").read_text())["splits"]["unlabeled-00001"]["complete"] is False
    calls.clear()
    monkeypatch.setattr(materials_module, "run_teacher", lambda *a, desc=None, **k: (calls.append(desc),
                                                                                    real_run_teacher(*a, desc=desc,
                                                                                                     **k))[1])
    materials_command.run(parse(materials_command, argv + ["--output", str(killed)]))
    assert calls == ["teacher on unlabeled-00001", "teacher on unlabeled-00002"]  # nothing else again
    resumed = load_materials(str(killed), vocab=VOCAB)
    for name, split in shards.items():
        for field in ("x", "y", "line", "sentence"):
            np.testing.assert_array_equal(getattr(resumed.splits[name], field), getattr(split, field))

    # A shorter input: the shards past its end are removed with their files.
    (text / "b.txt").write_text("")
    materials_command.run(parse(materials_command, argv + ["--output", str(out)]))
    assert sorted(json.loads((out / "manifest.json").read_text())["splits"]) == [
        "dev", "train", "unlabeled-00000", "unlabeled-00001"]
    assert not (out / "unlabeled-00002.npz").exists()

    # Whichever splits a call encodes, every task split's sentences are skipped, as the uncased teacher reads
    # them: case and spacing aside.
    (text / "c.txt").write_text("\ufeffDull  and BORING\nA fine FILM\nnew words here\n")  # a byte-order mark first
    fresh = tmp_path / "fresh"
    materials_command.run(parse(materials_command, ["--model", str(run_dir), "--data-dir", str(glue_dir), "--splits",
                                                    "train", "--unlabeled", str(text / "c.txt"), "--output",
                                                    str(fresh)]))
    assert load_materials(str(fresh)).split("unlabeled").sentence.tolist() == ["A fine FILM", "new words here"]

    # distill trains on the shards (the split "unlabeled") unless --no-unlabeled.
    for flag, trained in (("--unlabeled", "train+unlabeled: 9 rows"), ("--no-unlabeled", "train: 5 rows")):
        student = tmp_path / f"student{flag}"
        caplog.clear()
        with caplog.at_level("INFO", logger="kbert.distillation"):
            distill_command.run(parse(distill_command, ["--materials", str(out), "--output", str(student),
                                                        "--epochs", "1", "--batch-size", "4", "--holdout", "0", flag]))
        assert f"training on {trained}" in caplog.text


@pytest.mark.single_backend  # reading files only
def test_unlabeled_input_errors_name_the_file_and_line(tmp_path):
    from kbert.corpus import expand_inputs
    from kbert.errors import DataError
    from kbert.materials import SeenTexts, unlabeled_shards

    def shards(path, pairs):
        encode = lambda firsts, seconds, labels: materials_module.EncodedSplit(  # noqa: E731
            np.ones((len(firsts), 2), np.int32), np.zeros((len(firsts), 2), np.int32), np.array(labels),
            np.array(firsts if seconds is None else list(zip(firsts, seconds))))
        return list(unlabeled_shards([str(path)], pairs=pairs, shard_rows=4, encode=encode, seen=SeenTexts()))

    pairs = tmp_path / "pairs.txt"
    pairs.write_text("one\tpair\n\nno tab here\n")
    with pytest.raises(DataError, match=rf"{pairs}:3: expected 'first<TAB>second', found 1 field"):
        shards(pairs, True)
    # A tab in a single-sentence task's line is damage (an id column?), not part of the text.
    with pytest.raises(DataError, match=rf"{pairs}:1: a tab in a single-sentence input"):
        shards(pairs, False)
    good = tmp_path / "good.txt"
    good.write_text("one\tpair\n\n  \nsecond\tpair\n")  # blank lines are no input here
    assert [s.sentences.tolist() for _, s, _ in shards(good, True)] == [[["one", "pair"], ["second", "pair"]]]
    assert [s.lines.tolist() for _, s, _ in shards(good, True)] == [[1, 4]]
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("fine\nd\u00e9j\u00e0 vu\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{binary}:2: not UTF-8"):
        shards(binary, False)
    named = tmp_path / "data[1].txt"  # a file whose name looks like a glob is that file
    named.write_text("x\n")
    assert expand_inputs([str(named)], "--unlabeled") == [str(named)]
    with pytest.raises(DataError, match="--unlabeled .*missing.txt: no such file"):
        expand_inputs([str(tmp_path / "missing.txt")], "--unlabeled")
    with pytest.raises(DataError, match=r"--unlabeled .*\*.tsv: no file matches"):
        expand_inputs([str(tmp_path / "*.tsv")], "--unlabeled")


def test_seen_texts_finds_every_key_it_was_given():
    """The duplicate check against a plain Python set, over many merges."""
    from kbert.materials import SeenTexts

    rng = np.random.default_rng(0)
    seen, reference = SeenTexts(), set()
    for size in rng.integers(0, 50, 200):
        keys = rng.integers(-1000, 1000, size)
        np.testing.assert_array_equal(seen.contains(keys), [k in reference for k in keys])
        seen.add(keys)
        reference.update(keys.tolist())
    assert len(seen.runs) <= 12 and sum(map(len, seen.runs)) >= len(reference)


def _copy(run_dir, path):
    import shutil

    shutil.copytree(run_dir, path)
    return path


def _member(run_dir, path, seed, **record):
    """Another teacher run like `run_dir`: fresh weights, its run.json's options changed by `record`."""
    import shutil

    shutil.copytree(run_dir, path)
    keras.utils.set_random_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    BertModel(config, num_labels=2).save(path / "model.keras")
    run = json.loads((path / "run.json").read_text())
    run["options"].update(record)
    (path / "run.json").write_text(json.dumps(run))
    return path


@pytest.mark.single_backend  # the members' logits averaged; each teacher's logits are tested on every backend in test_materials
def test_a_teacher_ensemble_averages_its_members_logits(run_dir, glue_dir, tmp_path, capsys):
    """`kbert materials --model A --model B`: y is the mean of the members'
    logits, each member and the ensemble scored on dev, the members named in
    the manifest; members that disagree on what they read are refused."""
    from kbert.errors import ConfigError
    from kbert.runs import load_model

    second = _member(run_dir, tmp_path / "second", 5)
    out = tmp_path / "materials"
    materials_command.run(parse(materials_command, [
        "--model", str(run_dir), "--model", str(second), "--output", str(out), "--data-dir", str(glue_dir),
        "--splits", "train,dev"]))
    printed = capsys.readouterr().out
    materials = load_materials(str(out), vocab=VOCAB)
    members = [load_model(str(d))[0] for d in (run_dir, second)]
    for name in ("train", "dev"):
        split = materials.splits[name]
        each = [keras.ops.convert_to_numpy(m.predict_on_batch([split.x, split.segment])) for m in members]
        # Two different teachers: apart by far more than the mean's tolerance below.  (A tiny random
        # classifier's logits are ~1e-3 in size; which draw run_dir's gets depends on the tests before.)
        assert np.abs(each[0] - each[1]).max() > 1e-4
        np.testing.assert_allclose(split.y, (each[0] + each[1]) / 2, atol=1e-5)
    teacher = materials.manifest["teacher"]
    assert [m["id"] for m in teacher["ensemble"]] == [str(run_dir), str(second)]
    assert teacher["id"] == str(run_dir) and teacher["sha256"] == teacher["ensemble"][0]["sha256"]
    dev = materials.splits["dev"]
    scores = materials.manifest["splits"]["dev"]["scores"]
    accuracy = lambda y: float(np.mean(np.argmax(y, -1) == dev.label))  # noqa: E731
    assert scores["ensemble"]["accuracy"] == pytest.approx(accuracy(dev.y))
    assert [m["accuracy"] for m in scores["members"]] == pytest.approx(
        [accuracy(keras.ops.convert_to_numpy(m.predict_on_batch([dev.x, dev.segment]))) for m in members])
    assert "dev: the ensemble's accuracy" in printed  # every split with labels is scored

    # The transformer student is cut from the first teacher.
    student = tmp_path / "student"
    distill_command.run(parse(distill_command, ["--materials", str(out), "--output", str(student), "--student",
                                                "transformer", "--layers", "1", "--epochs", "1", "--holdout", "0"]))
    assert json.loads((student / "run.json").read_text())["status"] == "complete"

    other_vocab = tmp_path / "other-vocab"
    _member(run_dir, other_vocab, 6)
    (other_vocab / "vocab.txt").write_text("".join(f"{t}\n" for t in VOCAB[:5] + VOCAB[5:][::-1]))
    for member, message in ((_member(run_dir, tmp_path / "longer", 7, max_seq_len=16), "max_seq_len 16, but"),
                            (other_vocab, "another vocabulary"), (run_dir, "names the teacher .* again"),
                            (_copy(run_dir, tmp_path / "copy"), "the same weights as the teacher")):
        with pytest.raises(ConfigError, match=message):
            materials_command.run(parse(materials_command, [
                "--model", str(run_dir), "--model", str(member), "--output", str(tmp_path / "refused"),
                "--data-dir", str(glue_dir), "--splits", "train,dev"]))
