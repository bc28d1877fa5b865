"""CoNLL-2003 files and entity-level scores (`kbert.conll`): the reader
against files written here, the entities of IOB1 and IOB2 tags against a
table worked by hand, and the scores against `seqeval` where installed."""

import numpy as np
import pytest

from kbert.conll import IGNORED, TaggedSentence, encode_tagged, entities, entity_scores, read_conll
from kbert.errors import DataError

pytestmark = pytest.mark.keras_free

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP I-LOC
"""


def test_sentences_are_read_with_their_first_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(CONLL, encoding="utf-8")
    assert list(read_conll(path)) == [
        TaggedSentence(("EU", "rejects", "German", "call", "."), ("I-ORG", "O", "I-MISC", "O", "O"), 3),
        TaggedSentence(("Peter", "Blackburn"), ("I-PER", "I-PER"), 9),
        TaggedSentence(("BRUSSELS",), ("I-LOC",), 14),
    ]
    # Windows line ends and no final blank line read the same.
    path.write_bytes(CONLL.replace("\n", "\r\n").rstrip().encode())
    assert [s.words for s in read_conll(path)] == [("EU", "rejects", "German", "call", "."),
                                                   ("Peter", "Blackburn"), ("BRUSSELS",)]


@pytest.mark.parametrize("tags, expected", [
    # IOB1: B- only between two adjacent entities of one type.
    (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], [("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 4)]),
    # IOB2: every entity begins with B-.
    (["B-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC"], [("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 5)]),
    # A type change ends an entity; an I- after O begins one.
    (["B-ORG", "I-LOC", "O", "I-ORG", "I-ORG"], [("ORG", 0, 0), ("LOC", 1, 1), ("ORG", 3, 4)]),
    (["O", "O"], []),
    ([], []),
])
def test_entities_of_iob1_and_iob2_tags(tags, expected):
    assert entities(tags) == expected


def test_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    scores = entity_scores(gold, predicted)
    # 2 of 3 predicted entities right, 2 of 3 gold found.
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3) and scores["support"] == 3
    assert scores["by_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["by_type"]["ORG"]["precision"] == pytest.approx(0.5)
    assert scores["by_type"]["PER"]["f1"] == 1.0


def test_scores_match_seqeval_on_random_tags():
    metrics = pytest.importorskip("seqeval.metrics")
    rng = np.random.default_rng(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-ORG"]
    for _ in range(20):
        lengths = rng.integers(1, 12, 30)
        gold = [[tags[i] for i in rng.integers(0, len(tags), n)] for n in lengths]
        predicted = [[t if rng.random() < 0.7 else tags[rng.integers(0, len(tags))] for t in sentence]
                     for sentence in gold]
        scores = entity_scores(gold, predicted)
        assert scores["precision"] == pytest.approx(metrics.precision_score(gold, predicted))
        assert scores["recall"] == pytest.approx(metrics.recall_score(gold, predicted))
        assert scores["f1"] == pytest.approx(metrics.f1_score(gold, predicted))


@pytest.mark.parametrize("text, message", [
    ("EU NNP B-NP B-ORG\nrejects\n", r"train.txt:2: one column 'rejects'"),
    ("EU NNP B-NP B-ORG\nrejects VBZ B-VP X-ORG\n", r"train.txt:2: tag 'X-ORG' is not O, B-TYPE or I-TYPE"),
    ("EU NNP B-NP B-\n", r"train.txt:1: tag 'B-' is not"),
])
def test_bad_lines_are_data_errors_naming_file_and_line(tmp_path, text, message):
    path = tmp_path / "train.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        list(read_conll(path))


def test_unreadable_files_and_mismatched_scores_are_data_errors(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("Köln NNP B-NP B-LOC\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin1.txt: not UTF-8"):
        list(read_conll(tmp_path / "latin1.txt"))
    with pytest.raises(DataError, match="missing.txt: cannot read"):
        list(read_conll(tmp_path / "missing.txt"))
    with pytest.raises(DataError, match="sentence 0: 1 predicted tags for 2 words"):
        entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(DataError, match="1 predicted sentences for 2 gold ones"):
        entity_scores([["O"], ["O"]], [["O"]])


def _tokenizer():
    from kbert.tokenization import Tokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "eu", "re", "##jects", "german", "call", ".", "peter",
             "black", "##burn", "word"]  # "word": the tokenizer's unknown-word mode is no token
    return Tokenizer({token: i for i, token in enumerate(vocab)}), vocab


TAGS = {"O": 0, "B-ORG": 1, "B-MISC": 2, "B-PER": 3, "I-PER": 4}


def test_first_pieces_carry_the_tags():
    tokenizer, vocab = _tokenizer()
    sentences = [(("EU", "rejects", "German", "call", "."), ("B-ORG", "O", "B-MISC", "O", "O")),
                 (("Peter", "Blackburn", "\u200b"), ("B-PER", "I-PER", "O"))]
    encoded = encode_tagged(tokenizer, sentences, TAGS, max_len=16)
    assert [vocab[i] for i in encoded.token_ids[0][: encoded.lengths[0]]] == [
        "[CLS]", "eu", "re", "##jects", "german", "call", ".", "[SEP]"]
    assert encoded.labels[0][:8].tolist() == [IGNORED, 1, 0, IGNORED, 2, 0, 0, IGNORED]
    assert encoded.words[0][:8].tolist() == [-1, 0, 1, -1, 2, 3, 4, -1]
    # A word of no pieces (a zero-width space) reads as [UNK] and keeps its tag.
    assert [vocab[i] for i in encoded.token_ids[1][: encoded.lengths[1]]] == [
        "[CLS]", "peter", "black", "##burn", "[UNK]", "[SEP]"]
    assert encoded.labels[1][:6].tolist() == [IGNORED, 3, 4, IGNORED, 0, IGNORED]
    assert (encoded.token_ids[1][6:] == tokenizer.pad_index).all() and encoded.owner.tolist() == [0, 1]
    with pytest.raises(DataError, match="sentence 0: tag 'B-LOC' is not one of the model's"):
        encode_tagged(tokenizer, [(("EU",), ("B-LOC",))], TAGS)


@pytest.mark.parametrize("room, stride", [(3, 1), (3, 2), (4, 3), (5, None), (12, None)])
def test_windows_cover_every_word_once_where_it_has_most_context(room, stride):
    """Each word is predicted by exactly one window, the one that a brute
    force over all windows picks by run_squad.py's rule."""
    tokenizer, _ = _tokenizer()
    words = ("EU", "rejects", "German", "call", ".", "Peter", "Blackburn", "EU")
    tags = ("B-ORG", "O", "B-MISC", "O", "O", "B-PER", "I-PER", "B-ORG")
    encoded = encode_tagged(tokenizer, [(words, tags)], TAGS, max_len=room + 2, stride=stride)
    pieces = [1, 2, 1, 1, 1, 1, 2, 1]
    firsts = np.cumsum([0] + pieces[:-1])
    total = sum(pieces)
    chosen = {}
    for w in range(len(encoded.token_ids)):
        for position in np.flatnonzero(encoded.words[w] >= 0):
            word = int(encoded.words[w][position])
            assert word not in chosen, f"word {word} predicted by two windows"
            chosen[word] = w
            assert encoded.labels[w][position] == TAGS[tags[word]]
    assert sorted(chosen) == list(range(len(words)))
    # Brute force: the windows' piece ranges, then each word's best by min(left, right) + 0.01 length.
    step = stride or max(room // 2, 1)
    starts = list(range(0, max(total - room, 0) + 1, step))
    if starts[-1] + room < total:
        starts.append(total - room)
    assert len(starts) == len(encoded.token_ids)
    for word, first in enumerate(firsts):
        scores = [min(first - s, min(s + room, total) - 1 - first) + 0.01 * (min(s + room, total) - s)
                  if s <= first < s + room else -1 for s in starts]
        assert chosen[word] == int(np.argmax(scores))
