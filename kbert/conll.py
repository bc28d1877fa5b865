"""CoNLL-2003 files and entity-level scores, for token classification.

A CoNLL-2003 file holds one token a line, its columns separated by
spaces (word, part of speech, chunk, entity tag: only the first and the
last are read), sentences separated by blank lines, and documents begun by
`-DOCSTART-` lines, which are not sentences:

    -DOCSTART- -X- -X- O

    EU NNP B-NP B-ORG
    rejects VBZ B-VP O
    German JJ B-NP B-MISC

`encode_tagged` turns sentences into word pieces for a token classifier,
as BERT's authors did for CoNLL-2003: a word's tag goes to its first word
piece, the other pieces carry no label (-1, left out of the loss), and a
sentence longer than a window is read as overlapping windows; each word's
prediction comes from the window where it has the most context on both
sides (`run_squad.py`'s "max context" rule).

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
from typing import NamedTuple

import numpy as np

from kbert.errors import ConfigError, DataError

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


# Positions without a label: special tokens, padding, and every word piece
# of a word but its first.
IGNORED = -1


class EncodedTagged(NamedTuple):
    """What `encode_tagged` returns: W windows of N sentences."""

    token_ids: np.ndarray
    """int32 [W, T]: [CLS] a window's word pieces [SEP], then pad ids."""
    segment_ids: np.ndarray
    """int32 [W, T]: zeros."""
    lengths: np.ndarray
    """int32 [W]: tokens before padding."""
    labels: np.ndarray
    """int32 [W, T]: the tag id at each word's first piece, IGNORED elsewhere."""
    owner: np.ndarray
    """int64 [W]: the sentence each window reads."""
    words: np.ndarray
    """int64 [W, T]: the word (within its sentence) whose first piece is
    at each position, and whose prediction this window gives (the window
    of its most context); -1 elsewhere."""


def encode_tagged(tokenizer, sentences, tag_ids, max_len=128, stride=None, pieces=None):
    """Sentences ((words, tags) pairs, e.g. `TaggedSentence`s) as word-piece
    windows with first-piece labels (see the module docstring).

    Args:
        tokenizer: a `kbert.tokenization.Tokenizer`.
        sentences: (words, tags) pairs; tags may be None (prediction).
        tag_ids: {tag: id}; a tag outside it is a DataError naming it.
        max_len: tokens a window holds, [CLS] and [SEP] included.
        stride: word pieces between windows (default: half a window).
        pieces: each sentence's words already cut into word pieces (lists
            of the tokenizer's tokens), used instead of cutting the words.

    A word of no word pieces (only characters the tokenizer drops) reads as
    [UNK], so that every word has a first piece and a prediction.
    """
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 3:
        raise ConfigError(f"max_len must be an int of at least 3 ([CLS], a piece, [SEP]), got {max_len!r}")
    room = max_len - 2
    stride = max(room // 2, 1) if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or not 0 < stride <= room:
        raise ConfigError(f"stride must be an int in 1..{room} (a window's word pieces), got {stride!r}")
    cls_token, sep_token, unknown = tokenizer.special_tokens
    cls, sep = tokenizer.convert_tokens_to_ids([cls_token, sep_token])
    windows = []  # (sentence, ids, labels, words)
    for index, (words, tags) in enumerate(sentences):
        if tags is not None and len(tags) != len(words):
            raise DataError(f"sentence {index}: {len(tags)} tags for {len(words)} words")
        ids, firsts = [], []  # the sentence's pieces; each word's first piece
        for w, word in enumerate(words):
            word_ids = tokenizer.convert_tokens_to_ids(
                tokenizer.split(word) if pieces is None else pieces[index][w]) or [unknown]
            firsts.append(len(ids))
            ids.extend(word_ids)
        labels = np.full(len(ids), IGNORED, np.int64)
        if tags is not None:
            for position, tag in zip(firsts, tags):
                if tag not in tag_ids:
                    raise DataError(f"sentence {index}: tag {tag!r} is not one of the model's "
                                    f"({', '.join(sorted(tag_ids))})")
                labels[position] = tag_ids[tag]
        starts = list(range(0, max(len(ids) - room, 0) + 1, stride))
        if starts[-1] + room < len(ids):  # the last window reaches the end
            starts.append(len(ids) - room)
        # Each word's window: the one where its first piece has the most
        # context, min(left, right), the longer window on a tie (run_squad.py).
        best = {}
        for w, start in enumerate(starts):
            span = min(room, len(ids) - start)
            for word, position in enumerate(firsts):
                if start <= position < start + span:
                    score = min(position - start, start + span - 1 - position) + 0.01 * span
                    if word not in best or score > best[word][0]:
                        best[word] = (score, w)
        for w, start in enumerate(starts):
            stop = min(start + room, len(ids))
            owned = np.full(stop - start, -1, np.int64)
            for word, position in enumerate(firsts):
                if start <= position < stop and best[word][1] == w:
                    owned[position - start] = word
            windows.append((index, ids[start:stop], labels[start:stop], owned))
    width = max((len(ids) + 2 for _, ids, _, _ in windows), default=2)
    token_ids = np.full((len(windows), width), tokenizer.pad_index, np.int32)
    labels = np.full((len(windows), width), IGNORED, np.int32)
    owners = np.full((len(windows), width), -1, np.int64)
    for row, (_, ids, window_labels, owned) in enumerate(windows):
        token_ids[row, : len(ids) + 2] = [cls, *ids, sep]
        labels[row, 1 : len(ids) + 1] = window_labels
        owners[row, 1 : len(ids) + 1] = owned
    lengths = np.array([len(ids) + 2 for _, ids, _, _ in windows], np.int32)
    return EncodedTagged(token_ids, np.zeros_like(token_ids), lengths, labels,
                         np.array([index for index, *_ in windows], np.int64), owners)
