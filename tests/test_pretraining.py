"""`kbert pretrain`: instances by create_pretraining_data.py's rules, the
pre-training loss, resume after a kill, and the original-format result.

The rules are checked on the instances themselves, by a pass written here:
each instance is taken apart again (its predictions put back) and matched
against the corpus it came from.
"""

import collections
import hashlib
import json
import logging
import os
import random
import shutil
import time

import numpy as np
import pytest

from kbert.errors import CheckpointError, ConfigError, DataError, KbertError
from kbert.pretraining import PretrainOptions, create_instances, read_documents
from kbert.tokenization import Tokenizer

from original_checkpoint import random_bert_weights, read_checkpoint, write_checkpoint

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "film", "was", "good", "bad", "story", "play",
         "un", "##believ", "##able", "re", "##mark", "##ably", "act", "##ing", "a", "long", "day", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
PLAIN = ["the", "cat", "sat", "on", "mat", "dog", "ran", "film", "was", "good", "bad", "story", "play", "a",
         "long", "day"]
SPLIT = ["unbelievable", "remarkably", "acting"]  # several pieces each


def write_corpus(path, documents, seed=0, words=PLAIN + SPLIT):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for d in range(documents):
            for _ in range(rng.randint(1, 8)):
                f.write(" ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) + " .\n")
            f.write("\n")
    return path


SENTENCES = ["the cat sat on the mat .", "the dog ran a long day .", "the film was unbelievable .",
             "the story was remarkably good .", "the acting was bad ."]


def write_template_corpus(path, documents, seed=0):
    """Documents of a few fixed sentences: text a masked LM can learn in a few steps."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(documents):
            f.write("".join(rng.choice(SENTENCES) + "\n" for _ in range(rng.randint(1, 4))) + "\n")
    return path


@pytest.fixture
def tokenizer():
    return Tokenizer({t: i for i, t in enumerate(VOCAB)})


def options(**changes):
    return PretrainOptions(corpus=("unused",), **dict(dict(max_seq_len=32, max_predictions_per_seq=5), **changes))


def sentences_of(documents):
    return [[list(map(int, s)) for s in doc] for doc in documents]


def take_apart(instances, row):
    """(original tokens, A, B, predicted positions) of one instance."""
    n = instances.lengths[row]
    tokens = instances.input_ids[row, :n].copy()
    weights = instances.masked_lm_weights[row]
    positions = instances.masked_lm_positions[row][weights > 0]
    tokens[positions] = instances.masked_lm_ids[row][weights > 0]
    segments = instances.segment_ids[row, :n]
    a_end = int((segments == 0).sum())
    return tokens, tokens[1 : a_end - 1].tolist(), tokens[a_end:-1].tolist(), positions


def is_run_of(pieces, documents, *, allow_cut):
    """Whether `pieces` is consecutive text of one document: whole
    sentences, or (allow_cut) a window into consecutive sentences."""
    for doc in documents:
        flat = [t for s in doc for t in s]
        starts = np.cumsum([0] + [len(s) for s in doc])
        for i in range(len(flat) - len(pieces) + 1):
            if flat[i : i + len(pieces)] == pieces:
                whole = i in starts and i + len(pieces) in starts
                if whole or allow_cut:
                    return True
    return False


@pytest.mark.keras_free
def test_instances_follow_the_original_rules(tmp_path, tokenizer):
    documents = read_documents([write_corpus(tmp_path / "c.txt", 60)], tokenizer)
    docs = sentences_of(documents)
    opts = options(dupe_factor=3, short_seq_prob=0.2)
    instances = create_instances(documents, VOCAB, opts, progress=False)
    cls, sep, mask = 2, 3, 4
    assert len(instances) > 150
    replaced = collections.Counter()
    for row in range(len(instances)):
        tokens, a, b, positions = take_apart(instances, row)
        n = len(tokens)
        assert n <= opts.max_seq_len and tokens[0] == cls and tokens[-1] == sep and tokens[len(a) + 1] == sep
        assert a and b and sep not in a + b and cls not in a + b
        assert instances.segment_ids[row, :n].tolist() == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        assert not instances.input_ids[row, n:].any()
        # The number of predictions: 15% of the pieces, at least 1, at most the cap.
        assert len(positions) == min(opts.max_predictions_per_seq, max(1, round(n * opts.masked_lm_prob)))
        assert (np.diff(positions) > 0).all() and all(tokens[p] not in (cls, sep) for p in positions)
        for p in positions:
            shown = instances.input_ids[row, p]
            replaced["mask" if shown == mask else "kept" if shown == tokens[p] else "random"] += 1
        cut = len(a) + len(b) == opts.max_seq_len - 3  # truncated pairs lose pieces at either end
        if instances.next_sentence_labels[row] == 0 and not cut:
            assert is_run_of(a + b, docs, allow_cut=False)  # the actual next sentences
        else:
            assert is_run_of(a, docs, allow_cut=cut) and is_run_of(b, docs, allow_cut=True)
        unmasked = np.setdiff1d(np.arange(n), positions)
        assert (instances.input_ids[row, unmasked] == tokens[unmasked]).all()
    total = sum(replaced.values())
    # 80% [MASK], 10% kept, 10% a random entry (which is sometimes the piece itself).
    assert abs(replaced["mask"] / total - 0.8) < 0.04, replaced
    assert abs(replaced["kept"] / total - 0.1 - 0.1 / len(VOCAB)) < 0.03, replaced
    assert abs(replaced["random"] / total - 0.1) < 0.03, replaced
    # Random next sentences: half of the chunks with two or more sentences, all single ones.
    assert 0.45 < instances.next_sentence_labels.mean() < 0.8


@pytest.mark.keras_free
def test_masking_rate_without_the_cap(tmp_path, tokenizer):
    documents = read_documents([write_corpus(tmp_path / "c.txt", 40)], tokenizer)
    opts = options(max_predictions_per_seq=32, masked_lm_prob=0.3)
    instances = create_instances(documents, VOCAB, opts, progress=False)
    predicted = instances.masked_lm_weights.sum(axis=1)
    assert (predicted == np.maximum(1, np.round(instances.lengths * 0.3))).all()


@pytest.mark.keras_free
def test_whole_word_masking_takes_all_pieces_of_a_word(tmp_path, tokenizer):
    documents = read_documents([write_corpus(tmp_path / "c.txt", 80, words=SPLIT + ["the", "a"])], tokenizer)
    continues = np.array([t.startswith("##") for t in VOCAB])
    for whole, expect_split in ((True, False), (False, True)):
        opts = options(whole_word_mask=whole, max_predictions_per_seq=8)
        instances = create_instances(documents, VOCAB, opts, progress=False)
        split_words = 0
        for row in range(len(instances)):
            tokens, _, _, positions = take_apart(instances, row)
            chosen = set(positions.tolist())
            assert len(chosen) <= opts.max_predictions_per_seq
            # A word: a piece not starting with ## and the ## pieces after
            # it, [CLS] and [SEP] skipped (as the original groups them: a
            # "##" piece left first in B by truncation joins A's last word).
            words = []
            for i, t in enumerate(tokens):
                if t in (2, 3):
                    continue
                if continues[t] and words:
                    words[-1].append(i)
                else:
                    words.append([i])
            for word in words:
                taken = [i in chosen for i in word]
                if any(taken) and not all(taken):
                    split_words += 1
        assert (split_words > 0) == expect_split, (whole, split_words)


@pytest.mark.keras_free
def test_instances_are_seeded(tmp_path, tokenizer):
    documents = read_documents([write_corpus(tmp_path / "c.txt", 20)], tokenizer)
    first = create_instances(documents, VOCAB, options(seed=1), progress=False)
    again = create_instances(documents, VOCAB, options(seed=1), progress=False)
    other = create_instances(documents, VOCAB, options(seed=2), progress=False)
    assert np.array_equal(first.input_ids, again.input_ids)
    assert np.array_equal(first.masked_lm_positions, again.masked_lm_positions)
    assert not np.array_equal(first.input_ids[: len(other)], other.input_ids[: len(first)])


@pytest.mark.keras_free
def test_corpus_errors_name_the_file(tmp_path, tokenizer):
    with pytest.raises(DataError, match="missing.txt"):
        read_documents([tmp_path / "missing.txt"], tokenizer)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat\n\nthe dog \xff\n")
    with pytest.raises(DataError, match=r"bad.txt, line 3: not UTF-8"):
        read_documents([bad], tokenizer)
    one = tmp_path / "one.txt"
    one.write_text("the cat sat\nthe dog ran\n", encoding="utf-8")
    documents = read_documents([one], tokenizer)
    assert len(documents) == 1 and len(documents[0]) == 2
    with pytest.raises(DataError, match="at least two"):
        create_instances(documents, VOCAB, options(), progress=False)
    # Documents end at blank lines and at the end of each file; blank documents vanish.
    two = tmp_path / "two.txt"
    two.write_text("\n\nthe cat\n\n\n\nthe dog\nran\n", encoding="utf-8")
    assert [len(d) for d in read_documents([two, one], tokenizer)] == [1, 2, 2]


@pytest.mark.keras_free
@pytest.mark.parametrize("change, message", [
    (dict(max_seq_len=4), "--max-seq-len"), (dict(masked_lm_prob=1.5), "--masked-lm-prob"),
    (dict(dupe_factor=0), "--dupe-factor"), (dict(corpus=()), "--corpus"),
    (dict(learning_rate="fast"), "--learning-rate"), (dict(num_train_steps=0), "--num-train-steps"),
])
def test_options_are_checked(change, message):
    with pytest.raises(ConfigError, match=message):
        PretrainOptions(**dict(dict(corpus=("c.txt",)), **change))


# -- training (every backend) --------------------------------------------------

CONFIG = dict(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
              intermediate_size=32, max_position_embeddings=32, type_vocab_size=2, hidden_act="gelu",
              hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02)


@pytest.fixture
def checkpoint(tmp_path):
    """A small original checkpoint over VOCAB, without pre-training heads (pooler only)."""
    weights = random_bert_weights(CONFIG, np.random.default_rng(0))
    return write_checkpoint(str(tmp_path / "ckpt"), CONFIG, weights, vocab=VOCAB)


def test_pretraining_loss_is_the_original_objective(checkpoint, tmp_path):
    """The model's MLM logits at the chosen positions are the full MLM
    head's (keras-bert's, over every position) there, and its loss is the
    original's, computed here in NumPy."""
    import keras

    from kbert import load_checkpoint
    from kbert.pretraining import compile_pretraining
    from kbert.views import pretraining_model

    bert = load_checkpoint(checkpoint, training=True, fresh_heads=True)
    trainer = pretraining_model(bert)
    rng = np.random.default_rng(1)
    tokens = rng.integers(5, len(VOCAB), size=(3, 10)).astype("int32")
    segments = np.zeros_like(tokens)
    positions = np.array([[1, 4, 0], [2, 3, 5], [7, 0, 0]], "int32")
    weights = np.array([[1, 1, 0], [1, 1, 1], [1, 0, 0]], "float32")
    targets = rng.integers(0, len(VOCAB), size=(3, 3)).astype("int32")
    nsp_labels = np.array([0, 1, 1], "int32")
    out = trainer.predict([tokens, segments, positions], verbose=0)
    full, nsp = bert.predict([tokens, segments, np.ones_like(tokens)], verbose=0)  # [B, T, V], [B, 2]
    gathered = np.take_along_axis(full, positions[:, :, None], axis=1)
    logits = out["mlm"]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    np.testing.assert_allclose(probabilities, gathered, atol=1e-6)
    np.testing.assert_allclose(out["nsp"], nsp, atol=1e-6)

    compile_pretraining(trainer, PretrainOptions(corpus=("c",)), 10)
    result = trainer.test_on_batch([tokens, segments, positions], {"mlm": targets, "nsp": nsp_labels},
                                   sample_weight={"mlm": weights, "nsp": np.ones(3, "float32")}, return_dict=True)
    log_p = np.log(probabilities)
    picked = np.take_along_axis(log_p, targets[:, :, None], axis=2)[..., 0]
    mlm = -(picked * weights).sum() / weights.sum()
    nsp_loss = -np.log(nsp[np.arange(3), nsp_labels]).mean()
    np.testing.assert_allclose(result["mlm_loss"], mlm, rtol=1e-5)
    np.testing.assert_allclose(result["nsp_loss"], nsp_loss, rtol=1e-5)
    np.testing.assert_allclose(result["loss"], mlm + nsp_loss, rtol=1e-5)
    assert keras.backend.backend() in ("jax", "tensorflow", "torch")


def test_pretrain_learns_resumes_exactly_and_writes_the_original_format(checkpoint, tmp_path, monkeypatch):
    from kbert import load_checkpoint, pretraining, runs

    corpus = write_template_corpus(tmp_path / "corpus.txt", 40)
    opts = PretrainOptions(corpus=(str(corpus),), checkpoint=checkpoint, max_seq_len=32, batch_size=8,
                           num_train_steps=30, save_every=10, learning_rate=1e-2, warmup_proportion=0.1)
    straight = pretraining.pretrain(opts, str(tmp_path / "straight"), progress=False)
    history = straight.results["history"]
    assert [h["step"] for h in history] == [10, 20, 30]
    assert history[-1]["mlm_loss"] < 0.9 * history[0]["mlm_loss"], history  # about 3.3 -> 2.8
    assert straight.results["initialized"] == [
        "MLM-Dense/kernel", "MLM-Dense/bias", "MLM-Norm/gamma", "MLM-Norm/beta", "MLM-Sim/bias",
        "NSP/kernel", "NSP/bias"]

    # Killed right after its first save, then resumed: the same weights, bit for bit.
    save = pretraining._save_state
    calls = []

    def save_then_die(*args):
        save(*args)
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(pretraining, "_save_state", save_then_die)
    resumed_dir = str(tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        pretraining.pretrain(opts, resumed_dir, progress=False)
    assert runs.read_run(resumed_dir).status == "training"
    with pytest.raises(ConfigError, match="--resume"):
        pretraining.pretrain(opts, resumed_dir, progress=False)
    with pytest.raises(ConfigError, match="options differ"):
        pretraining.pretrain(PretrainOptions(**dict(opts.__dict__, seed=5)), resumed_dir, resume=True,
                             progress=False)
    resumed = pretraining.pretrain(opts, resumed_dir, resume=True, progress=False)
    assert resumed.results["history"] == history
    first, second = read_checkpoint(str(tmp_path / "straight" / "checkpoint")), read_checkpoint(
        os.path.join(resumed_dir, "checkpoint"))
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)

    # The original format with both heads, which Google's code and kbert read back.
    for head in ("cls/predictions/output_bias", "cls/predictions/transform/dense/kernel",
                 "cls/seq_relationship/output_weights", "bert/pooler/dense/kernel"):
        assert head in first
    before = read_checkpoint(checkpoint)
    assert not np.array_equal(before["bert/encoder/layer_0/attention/self/query/kernel"],
                              first["bert/encoder/layer_0/attention/self/query/kernel"])
    model = load_checkpoint(str(tmp_path / "straight"), training=True)  # a run directory: its checkpoint/
    assert not model.load_report.initialized and not model.load_report.unexpected
    assert not os.path.exists(os.path.join(resumed_dir, "training"))
    with pytest.raises(ConfigError, match="load_checkpoint"):
        runs.load_model(resumed_dir)


def test_a_half_pretraining_head_is_refused(checkpoint, tmp_path):
    from kbert import load_checkpoint

    with pytest.raises(CheckpointError, match="fresh_heads=True"):
        load_checkpoint(checkpoint, training=True)
    weights = random_bert_weights(CONFIG, np.random.default_rng(0), heads=("pretraining",))
    del weights["cls/predictions/output_bias"]
    half = write_checkpoint(str(tmp_path / "half"), CONFIG, weights, vocab=VOCAB)
    with pytest.raises(CheckpointError, match="half a MLM-Dense/MLM-Norm/MLM-Sim head"):
        load_checkpoint(half, training=True, fresh_heads=True)


@pytest.mark.single_backend
def test_pretrain_command(checkpoint, tmp_path, capsys):
    from kbert.cli import main

    corpus = write_corpus(tmp_path / "corpus.txt", 12)
    argv = ["pretrain", "--corpus", str(corpus), "--checkpoint", checkpoint, "--output", str(tmp_path / "run"),
            "--max-seq-len", "16", "--batch-size", "4", "--num-train-steps", "3", "--whole-word-mask"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "pre-trained 3 steps, 12 sequences" in out and "checkpoint:" in out
    assert main(argv[:-1] + ["--max-seq-len", "64"]) == 2  # a run exists, and max_position_embeddings is 32
    assert "error:" in capsys.readouterr().err
    assert main(argv + ["--output", str(tmp_path / "decay"), "--weight-decay", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--weight-decay must be at least 0, got -1" in err
    assert not os.path.exists(tmp_path / "decay")


# -- options and instances that used to escape as other errors -----------------


@pytest.mark.keras_free
@pytest.mark.parametrize("decay", [-1.0, -1e-9, float("inf"), float("nan")])
def test_weight_decay_must_be_a_non_negative_number(decay):
    with pytest.raises(ConfigError, match="--weight-decay"):
        PretrainOptions(corpus=("c.txt",), weight_decay=decay)
    assert PretrainOptions(corpus=("c.txt",), weight_decay=0.0).weight_decay == 0.0


@pytest.mark.keras_free
@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_numpy_cannot_take_is_refused(seed):
    # NumPy's own check, the reference: it refused these with a ValueError mid-run.
    with pytest.raises(ValueError):
        np.random.seed(seed)
    with pytest.raises(ConfigError, match="--seed"):
        PretrainOptions(corpus=("c.txt",), seed=seed)


@pytest.mark.keras_free
def test_truncation_follows_the_original_rule_and_a_huge_line_is_fast():
    from kbert.pretraining import _truncate_pair

    def reference(first, second, max_pieces, rng):  # create_pretraining_data.py's truncate_seq_pair
        first, second = list(first), list(second)
        while len(first) + len(second) > max_pieces:
            longer = first if len(first) > len(second) else second
            if rng.random() < 0.5:
                del longer[0]
            else:
                longer.pop()
        return first, second

    cases = random.Random(0)
    for _ in range(200):
        first = list(range(cases.randint(1, 40)))
        second = list(range(100, 100 + cases.randint(1, 40)))
        limit, seed = cases.randint(2, 60), cases.random()
        assert _truncate_pair(first, second, limit, random.Random(seed)) == \
            reference(first, second, limit, random.Random(seed))
    # One sentence of 400,000 pieces: quadratic deletion took minutes.
    huge = list(range(400_000))
    started = time.perf_counter()
    first, second = _truncate_pair(huge, [1, 2], 29, random.Random(1))
    assert len(first) + len(second) == 29 and time.perf_counter() - started < 5


# -- refused runs, and resuming only from checked files --------------------------
# What these check is file handling, the same on every backend: they run
# once (single_backend); the exact resume on each backend is the test above.

RUN_OPTIONS = dict(max_seq_len=16, max_predictions_per_seq=3, batch_size=4, num_train_steps=4, save_every=2,
                   learning_rate=1e-2)


def read_weights(run_dir):
    return read_checkpoint(os.path.join(run_dir, "checkpoint"))


def interrupt_after_first_save(opts, output):
    """Run `opts` into `output` and kill it right after its first save."""
    from kbert import pretraining

    save, calls = pretraining._save_state, []

    def save_then_die(*args):
        save(*args)
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pretraining, "_save_state", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            pretraining.pretrain(opts, output, progress=False)
    assert calls == [1]


def build_small_run(base):
    """A checkpoint and a corpus in `base`, the options of a 4-step run
    saving every 2, its uninterrupted result, and the same run killed after
    step 2."""
    from kbert import pretraining

    checkpoint = write_checkpoint(str(base / "ckpt"), CONFIG, random_bert_weights(CONFIG, np.random.default_rng(0)),
                                  vocab=VOCAB)
    corpus = write_corpus(base / "corpus.txt", 12)
    opts = PretrainOptions(corpus=(str(corpus),), checkpoint=checkpoint, **RUN_OPTIONS)
    straight = pretraining.pretrain(opts, str(base / "straight"), progress=False)
    interrupted = str(base / "interrupted")
    interrupt_after_first_save(opts, interrupted)
    return dict(options=opts, straight=straight, weights=read_weights(base / "straight"), interrupted=interrupted,
                checkpoint=checkpoint)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return build_small_run(tmp_path_factory.mktemp("small_run"))


def copy_of_interrupted(small_run, tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(small_run["interrupted"], run)
    return run


def assert_same_as_straight(record, run, small_run):
    assert record.status == "complete" and record.global_step == 4
    assert record.results["history"] == small_run["straight"].results["history"]
    weights = read_weights(run)
    assert sorted(weights) == sorted(small_run["weights"])
    for name, value in weights.items():
        np.testing.assert_array_equal(value, small_run["weights"][name], err_msg=name)


def snapshot(directory):
    return {os.path.relpath(os.path.join(root, name), directory): open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(directory) for name in names}


@pytest.mark.single_backend
def test_a_refused_corpus_leaves_a_run_the_fixed_command_can_use(small_run, tmp_path):
    from kbert.pretraining import pretrain

    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("mine, not kbert's\n")  # never touched
    empty, binary, one = tmp_path / "empty.txt", tmp_path / "binary.bin", tmp_path / "one.txt"
    empty.write_bytes(b"")
    binary.write_bytes(bytes(range(256)) * 4)
    one.write_text("the cat sat .\nthe dog ran .\n", encoding="utf-8")
    base = small_run["options"]
    refused = [
        (dict(corpus=(str(tmp_path / "missing.txt"),)), DataError, "missing.txt: cannot read it"),
        (dict(corpus=(str(empty),)), DataError, "empty.txt: .*holds 0 document"),
        (dict(corpus=(str(binary),)), DataError, r"binary.bin, line 2: not UTF-8"),
        (dict(corpus=(str(one),)), DataError, "one.txt: .*holds 1 document"),
        (dict(max_seq_len=64), ConfigError, "--max-seq-len 64 exceeds .* max_position_embeddings .32."),
    ]
    for change, error, message in refused:
        for resume, where in ((False, output), (True, tmp_path / "fresh")):
            with pytest.raises(error, match=message):
                pretrain(PretrainOptions(**dict(base.__dict__, **change)), str(where), resume=resume, progress=False)
    # Nothing written: not even the directory kbert would have made.
    assert os.listdir(output) == ["notes.txt"] and not os.path.exists(tmp_path / "fresh")
    record = pretrain(base, str(output), progress=False)  # the corrected command, no --resume
    assert_same_as_straight(record, str(output), small_run)
    assert (output / "notes.txt").read_text() == "mine, not kbert's\n"


@pytest.mark.single_backend
def test_an_output_that_overlaps_an_input_is_refused_before_training(small_run, tmp_path):
    from kbert.pretraining import pretrain

    base = small_run["options"]
    checkpoint = small_run["checkpoint"]
    checkpoint = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)  # a prefix's directory
    before = snapshot(checkpoint)
    for output in (base.corpus[0], os.path.dirname(checkpoint), checkpoint, os.path.join(checkpoint, "out")):
        with pytest.raises(ConfigError, match="--output .*(is the input|contains the input|lies inside the input)"):
            pretrain(base, output, progress=False)
    assert snapshot(checkpoint) == before


@pytest.mark.single_backend
def test_sequences_per_second_counts_the_sequences_trained(small_run):
    results, opts = small_run["straight"].results, small_run["options"]
    # 4 steps of 4 rows; the stream wraps around the instances.
    assert results["sequences"] == opts.num_train_steps * opts.batch_size
    assert results["sequences_per_second"] == pytest.approx(results["sequences"] / results["train_seconds"])


@pytest.mark.single_backend
def test_resume_after_a_kill_between_the_weights_and_state_json(small_run, tmp_path):
    """The second save's weights are written, its state.json is not: the run
    resumes from the first save, not from the first step with the second's weights."""
    from kbert import pretraining

    run, writes = str(tmp_path / "run"), []
    write_json = pretraining.write_json

    def die_before_the_second_state(path, value):
        if path.endswith("state.json"):
            writes.append(path)
            if len(writes) == 2:
                raise KeyboardInterrupt
        write_json(path, value)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pretraining, "write_json", die_before_the_second_state)
        with pytest.raises(KeyboardInterrupt):
            pretraining.pretrain(small_run["options"], run, progress=False)
    assert json.loads(open(os.path.join(run, "training", "state.json")).read())["step"] == 2
    record = pretraining.pretrain(small_run["options"], run, resume=True, progress=False)
    assert_same_as_straight(record, run, small_run)


def resign(state):
    """state.json's checksum, computed here as the format defines it."""
    values = {k: v for k, v in state.items() if k != "checksum"}
    return dict(values, checksum=hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest())


@pytest.mark.single_backend
@pytest.mark.parametrize("change, field", [
    (lambda s: dict(s, step="2"), "`step` is '2'"),
    (lambda s: {k: v for k, v in s.items() if k != "step"}, "`step` is None"),
    (lambda s: resign(dict(s, step=9999)), "`step` is 9999, not a step this run of 4 saves at"),
    (lambda s: resign(dict(s, step=3)), "`step` is 3"),
    (lambda s: resign(dict(s, history=[])), "`history`"),
    (lambda s: resign(dict(s, sequences=5)), "`sequences` is 5"),
    (lambda s: dict(s, seconds=s["seconds"] + 1), "checksum"),
    (lambda s: "not json", "unreadable pre-training state"),
])
def test_resume_refuses_a_damaged_state_json(small_run, tmp_path, change, field):
    from kbert.pretraining import pretrain

    run = copy_of_interrupted(small_run, tmp_path)
    path = os.path.join(run, "training", "state.json")
    with open(path) as f:
        damaged = change(json.load(f))
    with open(path, "w") as f:
        f.write(damaged if isinstance(damaged, str) else json.dumps(damaged))
    before = snapshot(run)
    with pytest.raises(DataError) as refused:
        pretrain(small_run["options"], run, resume=True, progress=False)
    assert str(refused.value).startswith(path) and field in str(refused.value)
    assert snapshot(run) == before  # refused before anything was written
    if damaged == "not json":  # the way out the message gives: remove training/, resume
        assert "remove " + os.path.join(run, "training") in str(refused.value)
        shutil.rmtree(os.path.join(run, "training"))
        assert_same_as_straight(pretrain(small_run["options"], run, resume=True, progress=False), run, small_run)


@pytest.mark.single_backend
@pytest.mark.parametrize("damage", ["truncated", "bit flipped", "missing"])
def test_resume_refuses_a_damaged_or_missing_weights_file(small_run, tmp_path, damage):
    from kbert.pretraining import pretrain

    run = copy_of_interrupted(small_run, tmp_path)
    path = os.path.join(run, "training", "state-2.weights.h5")
    data = open(path, "rb").read()
    if damage == "missing":
        os.remove(path)
    else:
        damaged = data[: len(data) // 2] if damage == "truncated" else \
            data[:-100] + bytes([data[-100] ^ 4]) + data[-99:]
        with open(path, "wb") as f:
            f.write(damaged)
    before = snapshot(run)
    with pytest.raises(DataError, match="state-2.weights.h5: (cannot read it|changed since it was saved)"):
        pretrain(small_run["options"], run, resume=True, progress=False)
    assert snapshot(run) == before  # refused before anything was written
    if damage == "truncated":
        with open(path, "wb") as f:
            f.write(data)  # restored: the run resumes and ends where the uninterrupted one did
        assert_same_as_straight(pretrain(small_run["options"], run, resume=True, progress=False), run, small_run)


@pytest.mark.single_backend
@pytest.mark.parametrize("damage", ["truncated", "bit flipped", "another run's"])
def test_resume_makes_damaged_instances_again_exactly(small_run, tmp_path, caplog, damage):
    from kbert.pretraining import pretrain

    run = copy_of_interrupted(small_run, tmp_path)
    path = os.path.join(run, "instances.npz")
    data = open(path, "rb").read()
    if damage == "truncated":
        damaged = data[:-200]
    elif damage == "bit flipped":  # inside the first array's data: caught by the zip's CRC
        damaged = data[:300] + bytes([data[300] ^ 1]) + data[301:]
    else:  # a whole archive with the right key, of other instances: caught by state.json's sha256
        with np.load(path) as archive:
            arrays = {name: archive[name] for name in archive.files}
        arrays["next_sentence_labels"] = 1 - arrays["next_sentence_labels"]
        np.savez(path, **arrays)
        damaged = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(damaged)
    with caplog.at_level(logging.WARNING, logger="kbert.pretraining"):
        record = pretrain(small_run["options"], run, resume=True, progress=False)
    assert any("instances.npz" in r.getMessage() and "again" in r.getMessage() for r in caplog.records)
    assert_same_as_straight(record, run, small_run)


@pytest.mark.single_backend
def test_resume_refuses_a_corpus_changed_since_the_run_began(small_run, tmp_path):
    from kbert.pretraining import pretrain

    corpus = write_corpus(tmp_path / "corpus.txt", 12)
    opts = PretrainOptions(**dict(small_run["options"].__dict__, corpus=(str(corpus),)))
    run = str(tmp_path / "run")
    interrupt_after_first_save(opts, run)
    with open(corpus, "a", encoding="utf-8") as f:
        f.write("the dog ran a long day .\n\nthe cat sat .\n")
    before = snapshot(run)
    with pytest.raises(DataError, match="corpus.txt: its instances are not those the run .* trained on"):
        pretrain(opts, run, resume=True, progress=False)
    assert snapshot(run) == before


@pytest.mark.single_backend
def test_a_saved_state_without_run_json_is_not_overwritten(small_run, tmp_path):
    from kbert.pretraining import pretrain

    run = copy_of_interrupted(small_run, tmp_path)
    os.remove(os.path.join(run, "run.json"))
    before = snapshot(run)
    with pytest.raises(KbertError, match="saved pre-training state .* but no run.json"):
        pretrain(small_run["options"], run, progress=False)
    assert snapshot(run) == before
