"""CoNLL-2003 files and entity-level scores, for token classification.

A CoNLL-2003 file holds one token a line, its columns separated by
spaces (word, part of speech, chunk, entity tag: only the first and the
last are read), sentences separated by blank lines, and documents begun by
`-DOCSTART-` lines, which are not sentences:

    -DOCSTART- -X- -X- O

    EU NNP B-NP B-ORG
    rejects VBZ B-VP O
    German JJ B-NP B-MISC

Entity tags are `O` or `B-TYPE` / `I-TYPE`, in either scheme: IOB2, where
every entity begins with `B-`, or IOB1 (the original CoNLL-2003 files),
where `B-` only separates two adjacent entities of one type.  `entities`
reads both alike: an entity begins at a `B-` tag, or at an `I-` tag whose
previous tag is not of its type.  Scores count whole entities (type,
first and last word) exactly matched, as the CoNLL evaluation script and
`seqeval` do.
"""

import dataclasses
import re

from kbert.errors import DataError

OUTSIDE = "O"
_TAG = re.compile(r"^(?:O|[BI]-\S+)$")


@dataclasses.dataclass(frozen=True)
class TaggedSentence:
    """One sentence of a CoNLL file: its words, their tags, and the line
    of its first word in the file (from 1)."""

    words: tuple
    tags: tuple
    line: int


def read_conll(path):
    """Yield the `TaggedSentence`s of the CoNLL file `path`, in order.

    Raises DataError naming the file and line: a line of one column, a tag
    that is neither `O` nor `B-`/`I-` and a type, bytes that are not UTF-8."""
    words, tags, first = [], [], None
    try:
        with open(path, encoding="utf-8", newline=None) as f:
            for number, line in enumerate(f, 1):
                columns = line.split()
                if not columns or columns[0] == "-DOCSTART-":
                    if words:
                        yield TaggedSentence(tuple(words), tuple(tags), first)
                    words, tags, first = [], [], None
                    continue
                if len(columns) < 2:
                    raise DataError(f"{path}:{number}: one column {line.strip()!r}; a token line is the word "
                                    "and its tag (and any columns between), separated by spaces")
                if not _TAG.match(columns[-1]):
                    raise DataError(f"{path}:{number}: tag {columns[-1]!r} is not O, B-TYPE or I-TYPE")
                words.append(columns[0])
                tags.append(columns[-1])
                first = first or number
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if words:
        yield TaggedSentence(tuple(words), tuple(tags), first)


def entities(tags):
    """The entities of one sentence's tags (IOB1 or IOB2) as (type, first
    word, last word) triples, in order."""
    found, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + [OUTSIDE]):
        prefix, _, tag_type = tag.partition("-")
        # Where the current entity ends: an O, a B-, or an I- of another type.
        if start is not None and (tag == OUTSIDE or prefix == "B" or tag_type != kind):
            found.append((kind, start, i - 1))
            start = None
        if tag != OUTSIDE and start is None:
            start, kind = i, tag_type
    return found


def entity_scores(gold, predicted):
    """Entity-level precision, recall and F1 (micro, over every sentence and
    type) of `predicted` against `gold`, both lists of per-sentence tag
    sequences of equal lengths; "by_type" holds each type's.

    Raises DataError when the two disagree in sentences or lengths."""
    if len(gold) != len(predicted):
        raise DataError(f"{len(predicted)} predicted sentences for {len(gold)} gold ones")
    counts = {}  # type -> [true positives, predicted, gold]

    def add(kind, column):
        counts.setdefault(kind, [0, 0, 0])[column] += 1

    for k, (want, got) in enumerate(zip(gold, predicted)):
        if len(want) != len(got):
            raise DataError(f"sentence {k}: {len(got)} predicted tags for {len(want)} words")
        expected, found = set(entities(want)), set(entities(got))
        for entity in found:
            add(entity[0], 1)
            if entity in expected:
                add(entity[0], 0)
        for entity in expected:
            add(entity[0], 2)

    def scores(correct, predicted_count, gold_count):
        precision = correct / predicted_count if predicted_count else 0.0
        recall = correct / gold_count if gold_count else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "support": gold_count}

    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    return {**scores(*total), "by_type": {kind: scores(*c) for kind, c in sorted(counts.items())}}
