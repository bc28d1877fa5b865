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
import re
import string

from kbert.errors import DataError

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
                    if context[start:start + len(text)] != text:
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
