"""The token and span heads' tasks, from the user's files: named-entity
tagging on CoNLL-2003 files ("conll", `BertModel(head="token")`) and
extractive question answering on SQuAD files ("squad", `head="span"`).

`kbert.finetuning.finetune` asks this module for a task's training rows,
loss and trained model (`read_training`, `encode_training`, `loss`,
`trained_model`); `kbert evaluate` and `kbert predict` read a finished run
back through `evaluate_head_run` and `predict_texts`.

A run's record: for CoNLL, `labels` are its tags in id order ("O" first,
then the training file's others sorted by type, B- before I-); for SQuAD,
`num_labels` is 2 (the start and end logits), `labels` None, and
`results["squad_version"]` the training file's version (1 or 2): a
version-2 model may answer that a question has no answer.

Shapes: N rows (windows), B batch, T tokens, K tags.
"""

import dataclasses
import logging
import time
import unicodedata
from typing import NamedTuple

import keras
import numpy as np

from kbert.conll import encode_tagged, entities, entity_scores, read_conll
from kbert.errors import ConfigError, DataError
from kbert.losses import TokenCrossentropy
from kbert.numeric import softmax
from kbert.options import HEAD_TASKS
from kbert.squad import Question, answer_spans, best_answers, read_squad, squad_features, squad_scores

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainingExamples:
    """A token or span task's training file, read: `items` are
    `TaggedSentence`s (conll) or `Question`s (squad)."""

    task: str
    path: str
    items: list
    labels: tuple  # the tags (conll); None (squad)
    num_labels: int
    version: int = None  # SQuAD's


class TrainingRows(NamedTuple):
    """What a token or span model trains on."""

    inputs: tuple
    """([N, T] token ids, [N, T] segment ids)."""
    targets: np.ndarray
    """conll: [N, T] tag ids, IGNORED off the words' first pieces; squad:
    [N, 2] the answer's start and end positions (0, 0: none in the window)."""
    lengths: np.ndarray


def tag_set(sentences):
    """The tags of `sentences` in id order: "O", then the others by type,
    B- before I-."""
    found = {tag for sentence in sentences for tag in sentence.tags} - {"O"}
    return ("O", *sorted(found, key=lambda tag: (tag[2:], tag[0])))


def _sample(items, limit, seed):
    """The first `limit` of `items` after a seeded shuffle, in file order."""
    if limit is None or limit >= len(items):
        return items
    keep = np.sort(np.random.default_rng(seed).permutation(len(items))[:limit])
    return [items[i] for i in keep]


def read_training(task, path, *, limit=None, seed=0):
    """The `TrainingExamples` of `task`'s file `path`; `limit` keeps that
    many sentences or questions (a seeded sample).  Raises DataError for a
    file of none."""
    if task == "conll":
        items = list(read_conll(path))
        if not items:
            raise DataError(f"{path}: no sentences (a CoNLL-2003 file: one word and its tag a line)")
        labels = tag_set(items)
        return TrainingExamples(task, path, _sample(items, limit, seed), labels, len(labels))
    version, items = read_squad(path)
    if not items:
        raise DataError(f"{path}: no questions")
    return TrainingExamples(task, path, _sample(items, limit, seed), None, 2, version)


def _pad_features(features, pad_index):
    """[N, T] token ids and segment ids of SQuAD `Feature`s, and [N] lengths."""
    lengths = np.array([len(f.token_ids) for f in features], np.int32)
    width = int(lengths.max()) if len(features) else 1
    ids = np.full((len(features), width), pad_index, np.int32)
    segments = np.zeros((len(features), width), np.int32)
    for row, feature in enumerate(features):
        ids[row, :lengths[row]] = feature.token_ids
        segments[row, :lengths[row]] = feature.segment_ids
    return ids, segments, lengths


def encode_training(examples, tokenizer, max_seq_len):
    """The `TrainingRows` of `examples`: CoNLL sentences as windows with
    first-piece labels (`kbert.conll.encode_tagged`), SQuAD questions as
    `run_squad.py`'s training features (`kbert.squad.squad_features`)."""
    if examples.task == "conll":
        tag_ids = {tag: i for i, tag in enumerate(examples.labels)}
        encoded = encode_tagged(tokenizer, [(s.words, s.tags) for s in examples.items], tag_ids, max_len=max_seq_len)
        return TrainingRows((encoded.token_ids, encoded.segment_ids), encoded.labels, encoded.lengths)
    features = squad_features(tokenizer, examples.items, training=True, max_seq_length=max_seq_len)
    if not features:
        raise DataError(f"{examples.path}: no question's answer is whole words of its context")
    ids, segments, lengths = _pad_features(features, tokenizer.pad_index)
    targets = np.array([[f.start, f.end] for f in features], np.int32)
    return TrainingRows((ids, segments), targets, lengths)


def loss(task):
    """The training loss of `task`'s trained model (`trained_model`)."""
    if task == "conll":
        return TokenCrossentropy()
    # run_squad.py's: the mean of the start's and the end's cross-entropy
    # over the window's positions, unmasked (its padding too, as far as
    # the batch is wide: run_squad.py's always reach 384).
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def trained_model(model, task):
    """The model `fit` trains: the model itself for a token head; for a
    span head, its stacked view (`kbert.views.stacked_span_logits`), so
    that one cross-entropy against the [B, 2] targets is run_squad.py's
    (start loss + end loss) / 2."""
    from kbert.views import stacked_span_logits

    return model if task == "conll" else stacked_span_logits(model)


# ---------------------------------------------------------------- reading a run


def _check_task(model, record, where):
    """The run's task, once its model's head is the task's."""
    task = record.task
    if HEAD_TASKS.get(task) != getattr(model, "head", None):
        raise ConfigError(f"{where}: a {task} run needs a {HEAD_TASKS.get(task)} head; its model has "
                          f"{getattr(model, 'head', None)!r}")
    return task


def _tag_words(model, record, tokenizer, word_lists, *, batch_size, progress, pieces=None):
    """(tags, probabilities) of each word of each list: the likeliest tag
    at the word's first piece, in the window of its most context.
    `pieces`: the words already cut into word pieces."""
    encoded = encode_tagged(tokenizer, [(words, None) for words in word_lists], {}, max_len=record.max_seq_len,
                            pieces=pieces)
    (logits,) = _predict(model, [encoded.token_ids, encoded.segment_ids], encoded.lengths, batch_size,
                         progress)  # [N, T, K]
    probabilities = softmax(logits)
    tags = [[None] * len(words) for words in word_lists]
    scores = [[0.0] * len(words) for words in word_lists]
    for row, position in zip(*np.nonzero(encoded.words >= 0)):
        sentence, word = encoded.owner[row], encoded.words[row, position]
        best = int(np.argmax(probabilities[row, position]))
        tags[sentence][word] = record.labels[best]
        scores[sentence][word] = float(probabilities[row, position, best])
    return tags, scores


def _predict(model, arrays, lengths, batch_size, progress):
    """The model's outputs at every position of the rows of `arrays`
    ([token ids, segment ids]), the progress bar sized to them."""
    from kbert.inference import predict_positions

    if progress is not None:
        progress.total = len(lengths)
        progress.refresh()
    return predict_positions(model, arrays[: len(model.inputs)], lengths, batch_size=batch_size, progress=progress)


def _span_logits(model, tokenizer, features, batch_size, progress):
    """(start logits, end logits) of SQuAD `features`, one row a window
    ([], [] for none: every context empty)."""
    if not features:
        return [], []
    ids, segments, lengths = _pad_features(features, tokenizer.pad_index)
    return _predict(model, [ids, segments], lengths, batch_size, progress)


def evaluate_head_run(model_dir, model, record, tokenizer, file, *, batch_size, verbose):
    """Score a token or span run on a labelled file: CoNLL entity
    precision, recall and F1; SQuAD exact match and F1 (in percent).
    Returns (metrics, examples, seconds, the file scored)."""
    from tqdm.auto import tqdm

    task = _check_task(model, record, model_dir)
    path = file or record.options.get("dev")
    if path is None:
        raise ConfigError(f"{model_dir}: the run was trained without --dev; give the file to score: --file FILE")
    started = time.perf_counter()
    with tqdm(desc="evaluate", unit="window", disable=not verbose) as bar:
        if task == "conll":
            sentences = list(read_conll(path))
            if not sentences:
                raise DataError(f"{path}: no sentences to evaluate")
            predicted, _ = _tag_words(model, record, tokenizer, [s.words for s in sentences],
                                      batch_size=batch_size, progress=bar)
            scores = entity_scores([s.tags for s in sentences], predicted)
            metrics = {name: scores[name] for name in ("precision", "recall", "f1")}
            count = len(sentences)
        else:
            _, questions = read_squad(path)
            if not questions:
                raise DataError(f"{path}: no questions to evaluate")
            features = squad_features(tokenizer, questions, max_seq_length=record.max_seq_len)
            starts, ends = _span_logits(model, tokenizer, features, batch_size, bar)
            # The model's own version decides whether "no answer" is an answer.
            predictions = best_answers(questions, features, starts, ends, cased=record.cased,
                                       version=record.results.get("squad_version", 1))
            scores = squad_scores(questions, predictions)
            metrics = {"exact_match": scores["exact_match"], "f1": scores["f1"]}
            count = len(questions)
    return metrics, count, time.perf_counter() - started, path


def _normalized(text, cased):
    """`text`'s characters as the tokenizer compares them (control
    characters and white space dropped; uncased: lower-cased, accents
    stripped), and for each the index of the character of `text` it
    comes from."""
    chars, owner = [], []
    for i, c in enumerate(text):
        if not cased:
            c = "".join(x for x in unicodedata.normalize("NFD", c.lower()) if unicodedata.category(x) != "Mn")
        for x in c:
            if not (x.isspace() or unicodedata.category(x) in ("Cc", "Cf") or x in "\x00\ufffd"):
                chars.append(x)
                owner.append(i)
    return "".join(chars), owner


def _words_with_spans(tokenizer, text, cased):
    """The words of `text` as the tokenizer cuts them, each as its word
    pieces, with its (start, end) characters in `text`.

    Each word's characters are found in order in `text` as the tokenizer
    sees it (`_normalized`), so white space, lower-casing and stripped
    accents never shift a span; a word the tokenizer reads as [UNK] (or
    one that casing changed, such as a final sigma) spans what lies
    between its neighbours."""
    unknown = tokenizer.convert_ids_to_tokens([tokenizer.special_tokens[2]])[0]
    words = []
    for piece in tokenizer.split(text):
        if piece.startswith("##") and words:
            words[-1].append(piece)
        else:
            words.append([piece])
    norm, owner = _normalized(text, cased)
    found, cursor = [], 0
    for word in words:
        spelled = "".join(p[2:] if k and p.startswith("##") else p for k, p in enumerate(word))
        at = -1 if unknown in word else norm.find(spelled, cursor)
        found.append(None if at < 0 else (at, at + len(spelled)))
        cursor = cursor if at < 0 else at + len(spelled)
    spans = []
    for k, span in enumerate(found):
        if span is None:  # between the words found around it
            lo = next((f[1] for f in reversed(found[:k]) if f is not None), 0)
            hi = next((f[0] for f in found[k + 1:] if f is not None), len(norm))
            span = (lo, max(lo, hi))
        start, end = span
        spans.append((owner[start], owner[end - 1] + 1) if end > start else
                     ((owner[start] if start < len(owner) else len(text)),) * 2)
    return words, spans


def predict_texts(model, record, tokenizer, texts, *, batch_size=64, progress=None):
    """A token or span run's answers to raw `texts`, one dict each, in order:

    - conll (each text a string): `{"text", "entities": [{"text", "label",
      "start", "end", "score"}]}`, the entity's characters `text[start:end]`
      and its score the mean probability of its words' tags;
    - squad (each text a (question, context) pair): `{"question",
      "context", "answer", "start", "end", "score"}`, the answer
      `context[start:end]` and its score the start's probability times the
      end's in its window; answer, start, end and score null when a
      version-2 model finds no answer.
    """
    task = _check_task(model, record, "the run")
    if task == "conll":
        if any(not isinstance(t, str) for t in texts):
            raise DataError("a conll run tags one text an input, not a pair")
        split = [_words_with_spans(tokenizer, text, record.cased) for text in texts]
        tags, scores = _tag_words(model, record, tokenizer, [words for words, _ in split], batch_size=batch_size,
                                  progress=progress, pieces=[words for words, _ in split])
        out = []
        for text, (words, spans), sentence_tags, sentence_scores in zip(texts, split, tags, scores):
            found = []
            for label, first, last in entities(sentence_tags):
                start, end = spans[first][0], spans[last][1]
                found.append({"text": text[start:end], "label": label, "start": start, "end": end,
                              "score": float(np.mean(sentence_scores[first:last + 1]))})
            out.append({"text": text, "entities": found})
        return out
    if any(not (isinstance(t, tuple) and len(t) == 2) for t in texts):
        raise DataError("a squad run answers a (question, context) pair an input: 'question<TAB>context'")
    questions = [Question(str(i), q, c, ()) for i, (q, c) in enumerate(texts)]
    features = squad_features(tokenizer, questions, max_seq_length=record.max_seq_len)
    starts, ends = _span_logits(model, tokenizer, features, batch_size, progress)
    found = answer_spans(questions, features, starts, ends, cased=record.cased,
                         version=record.results.get("squad_version", 1))
    out = []
    for q in questions:
        answer = found.get(q.id)
        out.append({"question": q.question, "context": q.context,
                    "answer": None if answer is None else answer.text,
                    "start": None if answer is None else answer.start,
                    "end": None if answer is None else answer.end,
                    "score": None if answer is None else answer.score})
    return out
