"""SQuAD files and the official scores (`kbert.squad`): the reader against
v1.1- and v2.0-shaped files written here, and the normalisation, exact
match and F1 against a table worked by hand from the official script's
rules."""

import json

import numpy as np
import pytest

from kbert.errors import DataError
from kbert.squad import (
    Question,
    best_answers,
    exact_match,
    normalize_answer,
    read_squad,
    squad_features,
    squad_scores,
    token_f1,
)

pytestmark = pytest.mark.keras_free

CONTEXT = "The Normans were a people who in the 10th and 11th centuries gave their name to Normandy."


def squad(qas, version=None):
    document = {"data": [{"title": "Normans", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}
    return dict(document, version=version) if version else document


def write(tmp_path, document, name="dev.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


V1 = [{"id": "q1", "question": "Who gave their name to Normandy?",
       "answers": [{"text": "The Normans", "answer_start": 0}, {"text": "Normans", "answer_start": 4}]},
      {"id": "q2", "question": "When?", "answers": [{"text": "10th and 11th centuries", "answer_start": 37}]}]


def test_v1_and_v2_files_are_read(tmp_path):
    version, questions = read_squad(write(tmp_path, squad(V1, "1.1")))
    assert version == 1
    assert questions[0] == Question("q1", "Who gave their name to Normandy?", CONTEXT,
                                    (("The Normans", 0), ("Normans", 4)), False)
    assert questions[1].answers == (("10th and 11th centuries", 37),)
    v2 = V1 + [{"id": "q3", "question": "Who gave their name to France?", "answers": [], "is_impossible": True}]
    version, questions = read_squad(write(tmp_path, squad(v2, "v2.0")))
    assert version == 2 and questions[2].is_impossible and questions[2].answers == ()
    # Without a version field, an is_impossible field says v2.
    assert read_squad(write(tmp_path, squad(v2)))[0] == 2


@pytest.mark.parametrize("text, normal", [
    ("The Normans", "normans"),
    ("  an  Apple, a day!", "apple day"),
    ("10th-11th", "10th11th"),
    ("Theater", "theater"),  # "the" only as a word
])
def test_normalisation(text, normal):
    assert normalize_answer(text) == normal


@pytest.mark.parametrize("prediction, gold, em, f1", [
    ("Normans", "The Normans", 1.0, 1.0),
    ("the Normans people", "The Normans", 0.0, 2 * (1 / 2) * 1 / (1 / 2 + 1)),  # P 1/2, R 1
    ("10th century", "10th and 11th centuries", 0.0, 2 * (1 / 2) * (1 / 4) / (1 / 2 + 1 / 4)),  # P 1/2, R 1/4
    ("", "", 1.0, 1.0),
    ("", "Normans", 0.0, 0.0),
    ("Normandy", "Normans", 0.0, 0.0),
])
def test_exact_match_and_f1(prediction, gold, em, f1):
    assert exact_match(prediction, gold) == em
    assert token_f1(prediction, gold) == pytest.approx(f1)


def test_scores_take_the_best_gold_answer_and_the_empty_answer_for_none():
    questions = [Question("q1", "?", CONTEXT, (("The Normans", 0), ("Normans", 4))),
                 Question("q2", "?", CONTEXT, (("10th and 11th centuries", 37),)),
                 Question("q3", "?", CONTEXT, (), True),
                 Question("q4", "?", CONTEXT, (), True)]
    predictions = {"q1": "Normans were", "q2": "11th centuries", "q3": "", "q4": "Normandy"}
    scores = squad_scores(questions, predictions)
    # q1: F1 against "Normans" 2/3 (P 1/2, R 1); q2: F1 2/3 (P 1, R 1/2); q3 right; q4 wrong.
    assert scores["exact_match"] == pytest.approx(25.0)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 1 + 0) / 4)
    assert scores["total"] == 4
    with pytest.raises(DataError, match="no prediction for 1 of 4 questions, e.g. 'q4'"):
        squad_scores(questions, {k: v for k, v in predictions.items() if k != "q4"})


@pytest.mark.parametrize("document, message", [
    ({"data": {}}, r"`data` is \{\}, expected a list"),
    (squad([{"id": "q1", "question": "?", "answers": [{"text": "Normans", "answer_start": 0}]}]),
     r"`data\[0\].paragraphs\[0\].qas\[0\].answers\[0\]` \(q1\): 'Normans' is not at offset 0"),
    (squad([{"id": "q1", "answers": []}]), r"`data\[0\].paragraphs\[0\].qas\[0\]` \(q1\) has no answer"),
    (squad([{"id": "q1", "question": "?", "answers": [], "is_impossible": True}] * 2),
     r"`data\[0\].paragraphs\[0\].qas\[1\].id` 'q1' is given twice"),
    (squad([{"id": "q1", "question": 7, "answers": [], "is_impossible": True}]),
     r"`data\[0\].paragraphs\[0\].qas\[0\].question` is 7, expected str"),
    (squad([{"id": "q1", "question": "?", "answers": [{"text": "The", "answer_start": "0"}]}]),
     r"`data\[0\].paragraphs\[0\].qas\[0\].answers\[0\].answer_start` is '0', expected int"),
])
def test_bad_files_are_data_errors_naming_the_field(tmp_path, document, message):
    with pytest.raises(DataError, match="dev.json: " + message):
        read_squad(write(tmp_path, document))


def test_bad_json_names_its_line(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text('{"data": [\n{"title": "x",\n"paragraphs": [}\n]}', encoding="utf-8")
    with pytest.raises(DataError, match="dev.json:3: not JSON"):
        read_squad(path)


def _tokenizer(*texts):
    from kbert.tokenization import BasicTokenizer, Tokenizer

    words = sorted({w for text in texts for w in BasicTokenizer().tokenize(text)})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words]
    return Tokenizer({token: i for i, token in enumerate(vocab)})


LONG = ("The Normans were a people who, in the 10th and 11th centuries, gave their name to Normandy. "
        "They descended from Norse raiders and pirates from Denmark, Iceland and Norway.")


@pytest.mark.parametrize("max_seq_length, doc_stride", [(384, 128), (16, 4), (14, 3), (20, 8)])
def test_features_hold_the_answer_where_it_fits_and_one_max_context_window_a_piece(max_seq_length, doc_stride):
    questions = [Question("q1", "In what country is Normandy?", LONG, (("Normandy", LONG.index("Normandy")),)),
                 Question("q2", "When?", LONG, (("10th and 11th centuries", LONG.index("10th")),)),
                 Question("q3", "Who were the Normans' ancestors?", LONG, (), True)]
    tokenizer = _tokenizer(LONG, *(q.question for q in questions))
    features = squad_features(tokenizer, questions, training=True, max_seq_length=max_seq_length,
                              doc_stride=doc_stride, max_query_length=5)
    pieces = tokenizer.split(LONG)
    for index, question in enumerate(questions):
        mine = [f for f in features if f.question == index]
        query = tokenizer.split(question.question)[:5]
        for f in mine:
            assert f.tokens[:len(query) + 2] == ["[CLS]", *query, "[SEP]"] and f.tokens[-1] == "[SEP]"
            assert len(f.tokens) <= max_seq_length and f.segment_ids == [0] * (len(query) + 2) + [1] * (
                len(f.tokens) - len(query) - 2)
            assert f.token_ids == tokenizer.convert_tokens_to_ids(f.tokens)
        # The windows cover the context's pieces, each piece the max context of exactly one window.
        assert sum(best for f in mine for best in f.max_context.values()) == len(pieces)
        answered = [f for f in mine if f.start]
        if question.is_impossible:
            assert not answered
            continue
        text = question.answers[0][0]
        assert answered, "no window holds the answer"
        for f in answered:
            assert f.tokens[f.start:f.end + 1] == tokenizer.split(text)
        # Decoding the gold positions gives the answer back, spelled as the context spells it.
        start_logits = [[10.0 if k == f.start else 0.0 for k in range(max_seq_length)] for f in mine]
        end_logits = [[10.0 if k == f.end else 0.0 for k in range(max_seq_length)] for f in mine]
        single = [f._replace(question=0) for f in mine]
        assert best_answers([question], single, start_logits, end_logits) == {question.id: text}


def test_a_stride_that_does_not_advance_is_refused():
    from kbert.errors import ConfigError

    question = Question("q", "Who?", LONG, (("Normans", 4),))
    with pytest.raises(ConfigError, match="doc_stride must be a positive int, got 0"):
        squad_features(_tokenizer(LONG, "Who?"), [question], doc_stride=0)


def test_answers_take_the_contexts_spelling_and_v2_abstains_past_the_threshold():
    context = "They gave their name to NORMANDY, a region."
    question = Question("q", "Which region?", context, (("NORMANDY", context.index("NORMANDY")),))
    tokenizer = _tokenizer(context, question.question)
    (feature,) = squad_features(tokenizer, [question], training=True)
    start, end = [0.0] * len(feature.tokens), [0.0] * len(feature.tokens)
    start[feature.start], end[feature.end] = 5.0, 5.0
    # "normandy" stands for "NORMANDY," of the context: the comma is left out, the case kept.
    assert best_answers([question], [feature], [start], [end]) == {"q": "NORMANDY"}
    start[0], end[0] = 5.5, 5.0  # no answer scores 10.5 against the span's 10
    assert best_answers([question], [feature], [start], [end], version=2) == {"q": ""}
    assert best_answers([question], [feature], [start], [end], version=2, null_score_diff_threshold=1.0) == {
        "q": "NORMANDY"}
    assert best_answers([question], [feature], [start], [end], version=1) == {"q": "NORMANDY"}
    # A span longer than max_answer_length, or ending before it starts, is never the answer.
    start, end = [0.0] * len(feature.tokens), [0.0] * len(feature.tokens)
    first = feature.tokens.index("they")
    start[first], end[feature.end] = 9.0, 9.0  # "They ... NORMANDY": 18, but longer than 3 pieces
    start[feature.start], end[first] = 1.0, 0.5  # "NORMANDY ... They": 1.5, but ending before it starts
    assert best_answers([question], [feature], [start], [end], max_answer_length=3) == {"q": "NORMANDY"}


def test_answer_spans_name_the_chosen_characters_whatever_the_padding():
    from kbert.squad import answer_spans

    context = "The  Apple-apple merger,\nsaid e.g. nothing."
    question = Question("q", "Which?", context, (("apple", context.index("apple")),))
    tokenizer = _tokenizer(context, question.question)
    (feature,) = squad_features(tokenizer, [question], training=True)
    n = len(feature.tokens)
    # The second "apple" of "Apple-apple": the spelling repeats, the place does not.
    second = [i for i, t in enumerate(feature.tokens) if t == "apple"][1]
    start, end = np.full(n + 40, -3.0), np.full(n + 40, -3.0)  # 40 columns beyond the window
    start[second], end[second] = 4.0, 4.0
    start[n:], end[n:] = 0.0, 0.0  # a batch's zeros past the window: never an answer, never in the softmax
    answer = answer_spans([question], [feature], [start], [end])["q"]
    assert (answer.text, answer.start, answer.end) == ("apple", context.index("-apple") + 1, context.index(" merger"))
    p = np.exp(4.0) / (np.exp(4.0) + (n - 1) * np.exp(-3.0))
    np.testing.assert_allclose(answer.score, p * p, rtol=1e-9)
    # An answer over the newline keeps the context's own characters.
    merger = feature.tokens.index("merger")
    said = feature.tokens.index("said")
    start, end = np.full(n, -3.0), np.full(n, -3.0)
    start[merger], end[said] = 4.0, 4.0
    answer = answer_spans([question], [feature], [start], [end])["q"]
    assert answer.text == "merger,\nsaid" == context[answer.start:answer.end]
    # The second "." of "e.g.".
    dots = [i for i, t in enumerate(feature.tokens) if t == "."]
    start, end = np.full(n, -3.0), np.full(n, -3.0)
    start[dots[1]], end[dots[1]] = 4.0, 4.0
    answer = answer_spans([question], [feature], [start], [end])["q"]
    assert answer.start == context.index("e.g.") + 3 and answer.text == "."
