"""SQuAD v1.1 and v2.0 files and the official answer scores, for
extractive question answering.

A SQuAD file is JSON: `{"version": ..., "data": [{"title", "paragraphs":
[{"context", "qas": [{"id", "question", "answers": [{"text",
"answer_start"}], "is_impossible"}]}]}]}`.  Version 2.0 adds questions
with no answer (`is_impossible` true, `answers` empty).  `read_squad`
returns one `Question` per question, each checked: every answer's text
must stand in the context at its `answer_start`.

The scores are the official evaluation script's: answers are compared
after normalising (lower case, punctuation and the articles a, an, the
removed, white space collapsed); a question's exact match and token F1 are
the best over its gold answers; a question with no answer (v2) has the
empty answer as its only gold one.  Both are reported in percent.
"""

import collections
import dataclasses
import json
import logging
import re
import string
from typing import NamedTuple

from kbert.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


@dataclasses.dataclass(frozen=True)
class Question:
    """One SQuAD question: its id, text, the paragraph it asks about, its
    gold answers ((text, character offset) pairs) and, for v2, whether it
    has none."""

    id: str
    question: str
    context: str
    answers: tuple
    is_impossible: bool = False


def read_squad(path):
    """(version 1 or 2, [`Question`, ...]) of the SQuAD file `path`; v2 when
    the file says so (`version` "v2.0") or any question has `is_impossible`.

    Raises DataError naming the file and where in it: bad JSON (with its
    line), a missing or mistyped field (with the path to it, e.g.
    `data[3].paragraphs[0].qas[5].question`), an answer whose text is not
    at its offset, an id given twice, an answerable question without
    answers."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None

    def field(owner, name, kind, where):
        value = owner.get(name) if isinstance(owner, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise DataError(f"{path}: `{where}{'.' if where else ''}{name}` is {value!r}, expected "
                            f"{'a list' if kind is list else 'an object' if kind is dict else kind.__name__}")
        return value

    questions, seen = [], set()
    version2 = str(document.get("version", "")).startswith("v2") if isinstance(document, dict) else False
    for a, article in enumerate(field(document, "data", list, "")):
        for p, paragraph in enumerate(field(article, "paragraphs", list, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = field(paragraph, "context", str, where)
            for q, qa in enumerate(field(paragraph, "qas", list, where)):
                here = f"{where}.qas[{q}]"
                qid = field(qa, "id", str, here)
                if qid in seen:
                    raise DataError(f"{path}: `{here}.id` {qid!r} is given twice")
                seen.add(qid)
                impossible = qa.get("is_impossible", False)
                if not isinstance(impossible, bool):
                    raise DataError(f"{path}: `{here}.is_impossible` is {impossible!r}, expected true or false")
                version2 = version2 or "is_impossible" in qa
                answers = []
                for k, answer in enumerate(field(qa, "answers", list, here)):
                    text = field(answer, "text", str, f"{here}.answers[{k}]")
                    start = field(answer, "answer_start", int, f"{here}.answers[{k}]")
                    if not text.strip():
                        raise DataError(f"{path}: `{here}.answers[{k}]` ({qid}): an empty answer text")
                    if start < 0 or context[start:start + len(text)] != text:
                        raise DataError(f"{path}: `{here}.answers[{k}]` ({qid}): {text!r} is not at offset {start} "
                                        f"of the context ({context[start:start + len(text)]!r} is)")
                    answers.append((text, start))
                if not answers and not impossible:
                    raise DataError(f"{path}: `{here}` ({qid}) has no answer and is not marked is_impossible")
                questions.append(Question(qid, field(qa, "question", str, here), context, tuple(answers),
                                          impossible))
    return (2 if version2 else 1), questions


def normalize_answer(text):
    """The official script's normal form: lower case, no punctuation, no
    articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction, gold):
    """F1 of the normalised answers' tokens (as multisets); two empty
    answers agree fully, an empty and a non-empty one not at all."""
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((collections.Counter(predicted) & collections.Counter(wanted)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def squad_scores(questions, predictions):
    """{"exact_match", "f1", "total"} in percent over `questions`
    (`Question`s), `predictions` mapping each id to its answer text ("" for
    no answer).  Raises DataError for a question without a prediction."""
    missing = [q.id for q in questions if q.id not in predictions]
    if missing:
        raise DataError(f"no prediction for {len(missing)} of {len(questions)} questions, e.g. {missing[0]!r}")
    exact = f1 = 0.0
    for q in questions:
        golds = [text for text, _ in q.answers if normalize_answer(text)] or [""]
        exact += max(exact_match(predictions[q.id], gold) for gold in golds)
        f1 += max(token_f1(predictions[q.id], gold) for gold in golds)
    n = max(len(questions), 1)
    return {"exact_match": 100.0 * exact / n, "f1": 100.0 * f1 / n, "total": len(questions)}


# ---------------------------------------------------------------- features

# run_squad.py's defaults.
MAX_SEQ_LENGTH = 384
DOC_STRIDE = 128
MAX_QUERY_LENGTH = 64
MAX_ANSWER_LENGTH = 30
N_BEST_SIZE = 20


def _is_whitespace(c):
    return c in " \t\r\n" or ord(c) == 0x202F


def doc_words(context):
    """(the context's words split on white space, each character's word
    index): `run_squad.py`'s `doc_tokens` and `char_to_word_offset`."""
    words, offsets, previous_white = [], [], True
    for c in context:
        if _is_whitespace(c):
            previous_white = True
        else:
            if previous_white:
                words.append(c)
            else:
                words[-1] += c
            previous_white = False
        offsets.append(len(words) - 1)
    return words, offsets


class Feature(NamedTuple):
    """One window of one question (`run_squad.py`'s `InputFeatures`)."""

    question: int
    """the question's index in the list given to `squad_features`."""
    token_ids: list
    segment_ids: list
    tokens: list
    """the window's tokens: [CLS] question [SEP] context pieces [SEP]."""
    token_to_word: dict
    """position -> the context word (of `doc_words`) its piece is part of."""
    max_context: dict
    """position -> whether this window gives that piece its most context."""
    start: int
    """the answer's first position (training; 0 when the answer is not in
    this window or there is none)."""
    end: int


def _improve_span(pieces, start, end, tokenizer, answer):
    """run_squad.py's `_improve_answer_span`: the tightest piece span
    inside [start, end] whose pieces are the answer's own."""
    wanted = " ".join(tokenizer.split(answer))
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if " ".join(pieces[new_start:new_end + 1]) == wanted:
                return new_start, new_end
    return start, end


def squad_features(tokenizer, questions, *, training=False, max_seq_length=MAX_SEQ_LENGTH, doc_stride=DOC_STRIDE,
                   max_query_length=MAX_QUERY_LENGTH):
    """The windows (`Feature`s) of `questions` (`Question`s), by
    `run_squad.py`'s `convert_examples_to_features`: the question's pieces
    cut to `max_query_length`, the context's in windows of what is left of
    `max_seq_length`, `doc_stride` pieces apart, each piece's "max
    context" window marked.  With `training`, each feature's answer
    positions come from the question's first answer (0, 0: not in this
    window, or no answer); a question whose answer the context's words do
    not hold (`run_squad.py` warns and skips it) is left out, and logged."""
    if isinstance(doc_stride, bool) or not isinstance(doc_stride, int) or doc_stride < 1:
        raise ConfigError(f"doc_stride must be a positive int, got {doc_stride!r}")
    cls, sep, _ = tokenizer.special_tokens
    features = []
    for index, question in enumerate(questions):
        query = tokenizer.split(question.question)[:max_query_length]
        words, offsets = doc_words(question.context)
        start_word = end_word = None
        if training and question.answers and not question.is_impossible:
            text, offset = question.answers[0]
            start_word, end_word = offsets[offset], offsets[offset + len(text) - 1]
            if " ".join(words[start_word:end_word + 1]).find(" ".join(text.split())) == -1:
                logger.warning("question %s: the answer %r is not whole words of the context; skipped",
                               question.id, text)
                continue
        pieces, piece_word, word_first = [], [], []
        for w, word in enumerate(words):
            word_first.append(len(pieces))
            for piece in tokenizer.split(word):
                piece_word.append(w)
                pieces.append(piece)
        piece_start = piece_end = None
        if start_word is not None:
            piece_start = word_first[start_word]
            piece_end = word_first[end_word + 1] - 1 if end_word < len(words) - 1 else len(pieces) - 1
            piece_start, piece_end = _improve_span(pieces, piece_start, piece_end, tokenizer, question.answers[0][0])
        room = max_seq_length - len(query) - 3
        if room < 1:
            raise ConfigError(f"max_seq_length {max_seq_length} leaves no room for the context after a "
                              f"{len(query)}-piece question")
        spans, offset = [], 0
        while offset < len(pieces):
            length = min(len(pieces) - offset, room)
            spans.append((offset, length))
            if offset + length == len(pieces):
                break
            offset += min(length, doc_stride)
        for s, (span_start, span_length) in enumerate(spans):
            tokens = [cls, *query, sep]
            segments = [0] * len(tokens)
            token_to_word, max_context = {}, {}
            for i in range(span_length):
                position = span_start + i
                token_to_word[len(tokens)] = piece_word[position]
                max_context[len(tokens)] = _is_max_context(spans, s, position)
                tokens.append(pieces[position])
                segments.append(1)
            tokens.append(sep)
            segments.append(1)
            start = end = 0
            if piece_start is not None and span_start <= piece_start and piece_end <= span_start + span_length - 1:
                start = piece_start - span_start + len(query) + 2
                end = piece_end - span_start + len(query) + 2
            features.append(Feature(index, tokenizer.convert_tokens_to_ids(tokens), segments, tokens, token_to_word,
                                    max_context, start, end))
    return features


def _is_max_context(spans, index, position):
    """Whether span `index` gives piece `position` its most context:
    min(left, right) + 0.01 * length, the first span on a tie."""
    best, best_index = None, None
    for s, (start, length) in enumerate(spans):
        end = start + length - 1
        if not start <= position <= end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best is None or score > best:
            best, best_index = score, s
    return best_index == index


# ---------------------------------------------------------------- answers


def _project(prediction, original, cased, skip=None):
    """The (first, last) characters of `original` (context words, spaced as
    they are there) that the tokenized `prediction` stands for: both texts'
    non-space characters aligned one to one.  `skip`: how many non-space
    characters of the tokenized words come before the prediction (its
    pieces' place, so that a repeated spelling is not mistaken for it);
    else its first occurrence, as run_squad.py.  Where they cannot be
    aligned (the prediction is not in the tokenized words, or tokenizing
    changed the count of characters), the original words whole."""
    from kbert.tokenization import BasicTokenizer

    whole = (0, len(original) - 1)
    tokenized = " ".join(BasicTokenizer(cased=cased).tokenize(original))
    original_chars = [i for i, c in enumerate(original) if c != " "]
    tokenized_chars = "".join(c for c in tokenized if c != " ")
    if len(original_chars) != len(tokenized_chars):
        return whole
    wanted = prediction.replace(" ", "")
    if not wanted:
        return whole
    if skip is None or tokenized_chars[skip:skip + len(wanted)] != wanted:
        at = tokenized.find(prediction)
        if at < 0:
            return whole
        skip = len(tokenized[:at].replace(" ", ""))
    return original_chars[skip], original_chars[skip + len(wanted) - 1]


class Answer(NamedTuple):
    """A predicted answer: its text as the context spells it, its
    characters `context[start:end]`, and its probability in its window
    (the start's softmax times the end's)."""

    text: str
    start: int
    end: int
    score: float


def answer_spans(questions, features, start_logits, end_logits, *, cased=False, version=1,
                 n_best_size=N_BEST_SIZE, max_answer_length=MAX_ANSWER_LENGTH, null_score_diff_threshold=0.0):
    """{question id: `Answer`, or None for no answer} from each feature's
    start and end logits, by `run_squad.py`'s `write_predictions`: the
    `n_best_size` likeliest starts and ends of every window of a question,
    kept where both lie in the context, the start's window gives it its
    most context, the end is not before the start and the span is at most
    `max_answer_length` pieces; the best span by start + end logit wins,
    its text taken from the context's own words.  Version 2 compares the
    best span's score with the no-answer score (the least [CLS] start +
    end over the windows) and answers None when that beats it by more than
    `null_score_diff_threshold`."""
    import numpy as np

    by_question = collections.defaultdict(list)
    for k, feature in enumerate(features):
        by_question[feature.question].append(k)
    answers = {}
    for index, question in enumerate(questions):
        words, offsets = doc_words(question.context)
        candidates, null_score = [], None
        for k in by_question.get(index, ()):
            # float64, as run_squad.py adds Python floats: low-precision logits would tie.
            feature = features[k]
            # The window's own positions only: logits beyond it (padding,
            # or zeros where a batch was narrower) are no answer's.
            width = len(feature.token_ids)
            starts = np.asarray(start_logits[k][:width], np.float64)
            ends = np.asarray(end_logits[k][:width], np.float64)
            if version == 2:
                score = float(starts[0] + ends[0])
                null_score = score if null_score is None else min(null_score, score)
            top_starts = np.argsort(-starts, kind="stable")[:n_best_size]
            top_ends = np.argsort(-ends, kind="stable")[:n_best_size]
            for start in top_starts:
                for end in top_ends:
                    start, end = int(start), int(end)
                    if (start not in feature.token_to_word or end not in feature.token_to_word
                            or not feature.max_context.get(start) or end < start
                            or end - start + 1 > max_answer_length):
                        continue
                    candidates.append((float(starts[start] + ends[end]), k, start, end))
        best = max(candidates, key=lambda c: c[0], default=None)  # the first of equal scores
        if version == 2 and (best is None or null_score - best[0] > null_score_diff_threshold):
            answers[question.id] = None
            continue
        if best is None:
            answers[question.id] = None
            continue
        _, k, start, end = best
        feature = features[k]
        pieces = " ".join(feature.tokens[start:end + 1]).replace(" ##", "").replace("##", "")
        pieces = " ".join(pieces.split())
        first_word, last_word = feature.token_to_word[start], feature.token_to_word[end]
        original = " ".join(words[first_word:last_word + 1])
        # The characters of the first word's pieces before the answer's (a
        # word cut by the window's start is caught by _project's check).
        skip = sum(len(feature.tokens[p][2:] if feature.tokens[p].startswith("##") else feature.tokens[p])
                   for p in range(start) if feature.token_to_word.get(p) == first_word)
        first, last = _project(pieces, original, cased, skip)
        # Characters of `original` back to the context's: each word is a
        # run of the context's characters, one space between words here.
        word_start = {}
        for position, word in enumerate(offsets):
            word_start.setdefault(word, position)
        spots = []
        for word in range(first_word, last_word + 1):
            spots.extend(range(word_start[word], word_start[word] + len(words[word])))
            spots.append(None)  # the joining space
        begin, stop = spots[first], spots[last] + 1
        width = len(feature.token_ids)
        starts = np.asarray(start_logits[k][:width], np.float64)
        ends = np.asarray(end_logits[k][:width], np.float64)
        probability = np.exp(starts[start] - _logsumexp(starts) + ends[end] - _logsumexp(ends))
        answers[question.id] = Answer(question.context[begin:stop], begin, stop, float(probability))
    return answers


def _logsumexp(values):
    import numpy as np

    top = values.max()
    return top + np.log(np.exp(values - top).sum())


def best_answers(questions, features, start_logits, end_logits, **kwargs):
    """{question id: answer text ("" for no answer)}: `answer_spans`' texts,
    what the official scores read."""
    return {qid: "" if answer is None else answer.text
            for qid, answer in answer_spans(questions, features, start_logits, end_logits, **kwargs).items()}
