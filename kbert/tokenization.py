"""BERT's WordPiece tokenizer, with the semantics of Google's original code.

Google released BERT together with `tokenization.py`; every released
checkpoint was pre-trained, and every published fine-tuning number measured,
on text cut by its `FullTokenizer`.  A model only sees the token ids, so a
tokenizer that splits one character differently silently feeds the model
something it never saw.  This module therefore reproduces that behaviour,
quirks included:

* cleaning: NUL, U+FFFD and control characters are dropped, where "control"
  means the Unicode categories Cc and Cf only, tab, newline and carriage
  return excepted; those three and every Zs character become a space;
* every CJK ideograph is surrounded by spaces, so it becomes a word of its
  own (the original's block list, kept verbatim, gaps included);
* the text is split on whitespace with `str.split()`, which also splits on a
  few characters the cleaning step kept (U+2028, U+2029);
* uncased models only: each word is lower-cased with `str.lower()` (which
  knows the Greek final sigma), decomposed to NFD and stripped of
  non-spacing marks (category Mn), i.e. accents go;
* each word is split around punctuation: any non-alphanumeric ASCII
  character from `!` to `~` (so `$`, `^`, `` ` `` count although Unicode
  calls them symbols) and any character of a Unicode P* category;
* each piece goes through greedy longest-match-first WordPiece, with `##`
  marking continuations; a word longer than `max_input_chars_per_word`
  characters (200 in the original) or with no segmentation becomes `[UNK]`.

Two implementations live here.  The pure-Python one (`BasicTokenizer`,
`WordpieceTokenizer`) is the reference and serves single sentences.  For
data sets, `Tokenizer.encode_batch` uses the Rust `tokenizers` package when it
is installed, configured to match; where that engine would treat a character
differently from the reference (see `_FastBackend`), the affected texts are
tokenized in Python instead, so both paths always give the same ids.

The Hugging Face ports differ from the original in a few places that matter
for exactness; they are not followed here:

* `transformers`' Python port (`BertTokenizerLegacy` in transformers 5)
  drops every C* category (also unassigned, private-use and surrogate code
  points), NFC-normalises the text before splitting it, gives up on words of
  more than 100 characters, and keeps `[CLS]`-like strings in the input whole;
* the Rust `tokenizers` normaliser drops every C* category too, lower-cases
  per character (no final sigma), has the CJK block starting at U+2B920
  instead of U+2B820, and follows its own Unicode tables.
"""

import collections
import hashlib
import logging
import os
import re
import unicodedata
from typing import NamedTuple

import numpy as np

from kbert.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

TOKEN_CLS = "[CLS]"
TOKEN_SEP = "[SEP]"
TOKEN_UNK = "[UNK]"
TOKEN_PAD = "[PAD]"
TOKEN_MASK = "[MASK]"

# The original WordpieceTokenizer's default, which FullTokenizer never
# overrides.  (The Hugging Face ports use 100: words of 101-200 characters are
# split into pieces here and become [UNK] there.)
MAX_INPUT_CHARS_PER_WORD = 200

# What WordPiece does with a word it cannot cut completely: "word" makes the
# whole word [UNK] (the original FullTokenizer), "piece" only each character
# no entry starts with (keras-bert's Tokenizer).
UNKNOWN_MODES = ("word", "piece")

__all__ = [
    "MAX_INPUT_CHARS_PER_WORD",
    "UNKNOWN_MODES",
    "BasicTokenizer",
    "EncodedBatch",
    "Tokenizer",
    "WordpieceTokenizer",
    "checkpoint_casing",
    "load_vocab",
    "load_vocab_tokens",
    "truncate_seq_pair",
    "validate_case_matches_checkpoint",
    "vocab_sha256",
]


# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------


def load_vocab_tokens(path):
    """The tokens of a BERT `vocab.txt` in id order: kbert's one vocabulary reader.

    The id of a token is its line number, counted from 0.  Like the original
    loader, each line is stripped of surrounding whitespace (so a stray
    `\\r` or trailing blank is ignored) and a blank line still takes an id
    (as an empty token that can never match).

    Raises `DataError` naming the file if it is missing, unreadable, not
    UTF-8, or holds no token.
    """
    path = os.fspath(path)
    try:
        # newline="\n": only LF ends a line, as in the original (which read
        # through tf.gfile); Python's universal newlines would also break
        # lines at a lone \r and shift every following id.
        with open(path, encoding="utf-8", newline="\n") as f:
            lines = f.readlines()
    except FileNotFoundError:
        raise DataError(f"vocabulary file {path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"vocabulary file {path} is a directory, not a vocab.txt") from None
    except UnicodeDecodeError as e:
        raise DataError(f"vocabulary file {path} is not UTF-8 text: {e}") from None
    except OSError as e:
        raise DataError(f"cannot read vocabulary file {path}: {e}") from None

    tokens = [line.strip() for line in lines]
    if not any(tokens):  # nothing, or only blank lines
        raise DataError(f"vocabulary file {path} holds no token")
    if lines[0].startswith("\ufeff"):
        logger.warning(
            "vocabulary file %s starts with a byte-order mark; it stays part of the "
            "first token, %r, as in the original loader",
            path,
            tokens[0],
        )
    return tokens


def vocab_sha256(tokens):
    """The identity of a vocabulary: sha256 of its tokens in id order.

    Two vocabularies give the same ids for every text exactly when their
    hashes agree, whatever their files' line endings or trailing blanks.
    """
    digest = hashlib.sha256()
    for token in tokens:
        digest.update(token.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def load_vocab(path):
    """Read a BERT `vocab.txt` into an insertion-ordered {token: id} dict.

    Tokens and ids as `load_vocab_tokens` reads them; a token listed twice
    keeps the id of its *last* line, as in the original loader -- the earlier
    id then decodes to nothing.  Blank and duplicate lines are logged as
    warnings, since they usually mean a damaged file.
    """
    path = os.fspath(path)
    lines = load_vocab_tokens(path)
    vocab = collections.OrderedDict()
    duplicates = []
    blank = []
    for index, token in enumerate(lines):
        if not token:
            blank.append(index + 1)
        elif token in vocab:
            duplicates.append((token, vocab[token], index))
        vocab[token] = index
    if blank:
        logger.warning(
            "vocabulary file %s has %d blank line(s) (first at line %d); each still takes an id",
            path,
            len(blank),
            blank[0],
        )
    if duplicates:
        shown = ", ".join(f"{t!r} (id {old} -> {new})" for t, old, new in duplicates[:5])
        logger.warning(
            "vocabulary file %s lists %d token(s) more than once; the last line wins, "
            "as in the original loader: %s%s",
            path,
            len(duplicates),
            shown,
            ", ..." if len(duplicates) > 5 else "",
        )
    return vocab


# ---------------------------------------------------------------------------
# Casing from the checkpoint name
# ---------------------------------------------------------------------------

# bert_config.json does not record whether a model expects lower-cased text;
# only the directory names Google gave its downloads do.  A superset of the
# names the original check knew: every size of the English models (the 24
# small BERTs are all uncased), their whole-word-masking variants, and the
# multilingual and Chinese ones (the old "multilingual" and the Chinese model
# lower-case; "multi_cased" does not).
_UNCASED_NAMES = re.compile(
    r"(?:wwm_)?uncased_L-\d+_H-\d+_A-\d+|multilingual_L-12_H-768_A-12|chinese_L-12_H-768_A-12"
)
_CASED_NAMES = re.compile(r"(?:wwm_)?cased_L-\d+_H-\d+_A-\d+|multi_cased_L-12_H-768_A-12")


def checkpoint_casing(checkpoint):
    """Whether a Google checkpoint expects cased text, judged by its path.

    Looks for a known release name (`uncased_L-12_H-768_A-12`,
    `cased_L-24_H-1024_A-16`, `multi_cased_L-12_H-768_A-12`, ...) among the
    components of `checkpoint` (a directory, checkpoint prefix or any file in
    it), nearest component first.  Returns True (cased), False (uncased) or
    None when no component is a known name.
    """
    if not checkpoint:
        return None
    parts = re.split(r"[/\\]", os.fspath(checkpoint))
    for part in reversed(parts):
        if _UNCASED_NAMES.fullmatch(part):
            return False
        if _CASED_NAMES.fullmatch(part):
            return True
    return None


def validate_case_matches_checkpoint(*, cased, checkpoint):
    """Refuse a casing flag that contradicts a known checkpoint's name.

    The counterpart of the original `validate_case_matches_checkpoint`, with
    `cased` (the opposite of the original's `do_lower_case`) taken by keyword
    only, so that a call ported from the original cannot pass
    `do_lower_case` in its place and get the check backwards.  Does nothing
    when `checkpoint` is empty or its name is not a known release.

    Raises `ConfigError` when, say, `cased=True` is paired with
    `.../uncased_L-12_H-768_A-12/bert_model.ckpt`.
    """
    expected = checkpoint_casing(checkpoint)
    if expected is None or bool(cased) == expected:
        return
    kind = "cased" if expected else "uncased (lower-cased, accents stripped)"
    raise ConfigError(
        f"cased={bool(cased)} contradicts checkpoint {os.fspath(checkpoint)!r}: its "
        f"name says the model was pre-trained on {kind} text, and its vocabulary "
        f"only fits text prepared that way; use cased={expected}"
    )


# ---------------------------------------------------------------------------
# Character classes (the reference definitions)
# ---------------------------------------------------------------------------

_OTHER, _DROP, _SPACE, _CJK, _PUNCT = range(5)


def _is_whitespace(char):
    # Tab, newline and carriage return are Cc, but the original counts them
    # as spaces rather than dropping them with the other controls.
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char):
    # Only Cc and Cf: unassigned (Cn), private-use (Co) and surrogate (Cs)
    # code points are kept, unlike in the Hugging Face ports.
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
    cp = ord(char)
    # All printable non-alphanumeric ASCII is punctuation to BERT, even `$`,
    # `+`, `^` or `` ` `` which Unicode files under symbols (S*).
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp):
    # The CJK Unified Ideographs blocks as listed by the original (which
    # calls them "Chinese characters"): Hangul, Hiragana and Katakana are not
    # in them and are tokenized like any alphabet.  Kept exactly as listed;
    # the blocks added to Unicode since are not padded.
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


_CLASS_CACHE = {}


def _char_class(char):
    """The role of a character in cleaning and splitting, memoised."""
    kind = _CLASS_CACHE.get(char)
    if kind is None:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            kind = _DROP
        elif _is_whitespace(char):
            kind = _SPACE
        elif _is_cjk(cp):
            kind = _CJK
        elif _is_punctuation(char):
            kind = _PUNCT
        else:
            kind = _OTHER
        _CLASS_CACHE[char] = kind
    return kind


def _to_text(text, what="text"):
    """The original's convert_to_unicode: str as is, bytes decoded leniently."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        # "ignore", as the original: undecodable bytes vanish silently.
        return text.decode("utf-8", "ignore")
    raise DataError(f"{what} must be str or bytes, not {type(text).__name__}")


# ---------------------------------------------------------------------------
# Reference implementation
# ---------------------------------------------------------------------------


class BasicTokenizer:
    """Cleaning, CJK padding, optional lower-casing and punctuation splitting.

    `tokenize(text)` returns the words handed to WordPiece, exactly as the
    original `BasicTokenizer(do_lower_case=not cased)`.

    `never_split` is not in the original: a whitespace-separated word equal
    to one of its strings (after cleaning) is passed on untouched -- not
    lower-cased, not split at punctuation -- as Hugging Face's option of the
    same name does.  Use it to keep a literal `[MASK]` in augmented text.
    """

    def __init__(self, cased=False, never_split=()):
        self.cased = bool(cased)
        self.never_split = frozenset(never_split)

    def tokenize(self, text):
        text = _to_text(text)
        out = []
        for char in text:
            kind = _char_class(char)
            if kind == _OTHER or kind == _PUNCT:
                out.append(char)
            elif kind == _SPACE:
                out.append(" ")
            elif kind == _CJK:
                out.append(f" {char} ")
        pieces = []
        for word in "".join(out).split():
            if word in self.never_split:
                pieces.append(word)
                continue
            if not self.cased:
                # Lower first, then decompose: the order matters for a few
                # characters, e.g. "İ".lower() is "i" + U+0307, whose mark is
                # then stripped.  str.lower() sees the whole word, hence the
                # Greek final sigma.
                word = unicodedata.normalize("NFD", word.lower())
                word = "".join(c for c in word if unicodedata.category(c) != "Mn")
            pieces.extend(_split_on_punctuation(word))
        # Joined and split again, as the original does: lower-casing and
        # decomposition may in principle have produced whitespace.
        return " ".join(pieces).split()


def _split_on_punctuation(word):
    """Each punctuation character becomes a piece of its own."""
    pieces = []
    current = []
    for char in word:
        if _char_class(char) == _PUNCT:
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(char)
        else:
            current.append(char)
    if current:
        pieces.append("".join(current))
    return pieces


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece over a {token: id} vocabulary.

    `tokenize(text)` splits `text` on whitespace and cuts each word into the
    longest vocabulary entry that starts it, then the longest `##` entry that
    continues, and so on.  A word longer than `max_input_chars_per_word`
    characters becomes `unk_token`.  A word that cannot be cut completely
    becomes `unk_token` as a whole with `unknown="word"` (the original's
    rule); with `unknown="piece"` (keras-bert's), each character where no
    entry starts becomes a piece of its own (`"##x"` inside a word), which
    is no vocabulary entry and so gets the `unk_token` id, and the cut goes on.
    """

    def __init__(
        self, vocab, unk_token=TOKEN_UNK, max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD, unknown="word"
    ):
        if unknown not in UNKNOWN_MODES:
            raise ConfigError(f"unknown must be one of {', '.join(map(repr, UNKNOWN_MODES))}, not {unknown!r}")
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.unknown = unknown
        # No entry is longer than this, so no longer substring needs looking
        # up; only a speed-up, the result is the same.
        self._longest = max((len(t) for t in vocab), default=0)

    def tokenize(self, text):
        output = []
        for word in _to_text(text).split():
            output.extend(self.tokenize_word(word))
        return output

    def tokenize_word(self, word):
        """The pieces of one word (which must hold no whitespace)."""
        n = len(word)
        if n > self.max_input_chars_per_word:
            return [self.unk_token]
        vocab = self.vocab
        pieces = []
        start = 0
        while start < n:
            prefix = "##" if start else ""
            end = min(n, start + self._longest - len(prefix))
            while end > start:
                piece = prefix + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            else:
                if self.unknown == "word":
                    return [self.unk_token]
                # keras-bert's rule: the character nothing starts with is a
                # piece of its own (its id is then [UNK]'s) and the cut goes on.
                end = start + 1
                piece = prefix + word[start]
            pieces.append(piece)
            start = end
        return pieces


def truncate_seq_pair(tokens_a, tokens_b, max_length):
    """Shorten a pair in place until it holds at most `max_length` tokens.

    The original fine-tuning code's rule: one token at a time, from the end
    of the longer sequence, and from `tokens_b` when both are as long --
    which keeps more of a short question than cutting both proportionally.
    Returns how many tokens were removed.
    """
    removed = 0
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()
        removed += 1
    return removed


def _truncate(first, second, max_len):
    """Apply the original's limits for a packed input of `max_len` tokens."""
    if max_len is None:
        return 0
    if second is None:
        # [CLS] first [SEP]
        removed = max(0, len(first) - (max_len - 2))
        del first[max_len - 2 :]
        return removed
    # [CLS] first [SEP] second [SEP]
    return truncate_seq_pair(first, second, max_len - 3)


# ---------------------------------------------------------------------------
# Fast path: Rust `tokenizers`, guarded
# ---------------------------------------------------------------------------

# Characters the fast engine handles like the reference, per casing; shared by
# all tokenizers of a process (the verdict depends on no vocabulary).
_FAST_VERDICTS = {False: {}, True: {}}


class _FastBackend:
    """The Rust `tokenizers` pipeline configured as BERT, plus a guard.

    BertNormalizer (clean_text, handle_chinese_chars, and strip_accents and
    lowercase for uncased models), BertPreTokenizer and WordPiece (`##`
    continuations, the same word-length limit) implement the original
    algorithm, but not always on the same character data.  Comparing it with
    the reference on every code point (tokenizers 0.23, Python 3.11 with
    Unicode 14) finds these differences, and no others:

    * private-use (U+E000... , 137,468 code points) and surrogate (2,048)
      characters: it drops them, as it drops every C* category; the original
      drops only Cc and Cf and keeps them (they usually end up as [UNK]);
    * U+2B820-U+2B91F (256 ideographs of CJK Extension E): its CJK list
      starts that block at U+2B920, so it does not pad them with spaces;
    * some 500 characters assigned, or re-categorised, after its Unicode
      tables were made, so that it disagrees with Python's: about 100
      punctuation marks it does not split off (U+061D, U+2E55-U+2E5D, ...),
      13 format characters it does not drop (U+0890, U+13430, ...) and, for
      uncased models, about 380 non-spacing marks it does not strip
      (U+07FD, U+0898, ...) and a few letters and signs;
    * uncased only: it lower-cases one character at a time, so a word-final
      capital sigma becomes σ where `str.lower()` gives ς; and it lower-cases
      55 letters too new for Python's tables, which Python leaves alone.

    Each of these is a property of a single character (final sigma needs a
    capital sigma in the text), so the guard asks, once per distinct
    character, whether the engine cuts a few short probes containing it
    exactly as the reference does; a text with any character that fails goes
    to the reference implementation.  The probes, not the list above, decide,
    so other versions of either side stay covered.  Verdicts are cached, so a
    corpus pays once per distinct character (some 50 microseconds each).
    """

    def __init__(self, vocab, unk_token, cased, max_input_chars_per_word):
        from tokenizers import Tokenizer as RustTokenizer
        from tokenizers import models, normalizers, pre_tokenizers

        engine = RustTokenizer(
            models.WordPiece(
                vocab={t: int(i) for t, i in vocab.items()},
                unk_token=unk_token,
                continuing_subword_prefix="##",
                max_input_chars_per_word=max_input_chars_per_word,
            )
        )
        engine.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=True,
            strip_accents=not cased,
            lowercase=not cased,
        )
        engine.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        # No added (special) tokens and no post-processor: a literal "[CLS]"
        # in the input must be split like any text, as the original does;
        # the special tokens are added by Tokenizer itself.
        self.engine = engine
        self.cased = cased
        self.reference = BasicTokenizer(cased=cased)
        self.verdicts = _FAST_VERDICTS[cased]

    def basic_split(self, text):
        """The engine's words for `text`, to compare with the reference's."""
        normalized = self.engine.normalizer.normalize_str(text)
        return [w for w, _ in self.engine.pre_tokenizer.pre_tokenize_str(normalized)]

    def _judge(self, char):
        # A word-internal occurrence, a lone one, one after and before a
        # capital letter (for final sigma and case mappings) and one followed
        # by a combining accent (for the lower-case / decompose order).
        probes = (char, f"a{char}a", f"A{char}", f"{char}A", f"A{char}\u0301 x")
        try:
            return all(self.basic_split(p) == self.reference.tokenize(p) for p in probes)
        except Exception:  # e.g. a lone surrogate the engine cannot take
            return False

    def unsafe_chars(self, chars):
        """The characters of `chars` on which the engine and reference differ."""
        verdicts = self.verdicts
        for char in chars:
            if char not in verdicts:
                verdicts[char] = self._judge(char)
        return {c for c in chars if not verdicts[c]}

    def ids(self, texts, never_split=()):
        """Word-piece ids of each text of the list `texts`, no special tokens.

        Returns the list of ids, with None for each text the engine must not
        see, and the indices of those texts, for the reference to tokenize.
        Texts containing a `never_split` string also go to the reference,
        which alone implements that option.
        """
        unsafe = self.unsafe_chars(set("".join(texts)))
        alternatives = [re.escape(s) for s in sorted(never_split)]
        if unsafe:
            alternatives.append("[" + "".join(re.escape(c) for c in sorted(unsafe)) + "]")
        slow = []
        if alternatives:
            pattern = re.compile("|".join(alternatives))
            slow = [i for i, t in enumerate(texts) if pattern.search(t)]
        skip = set(slow)
        fast = [i for i in range(len(texts)) if i not in skip]
        result = [None] * len(texts)
        encodings = self.engine.encode_batch([texts[i] for i in fast], add_special_tokens=False)
        for i, encoding in zip(fast, encodings):
            result[i] = encoding.ids
        return result, slow


# ---------------------------------------------------------------------------
# Public tokenizer
# ---------------------------------------------------------------------------


class EncodedBatch(NamedTuple):
    """What `Tokenizer.encode_batch` returns."""

    token_ids: np.ndarray
    """int32 [N, max_len]: [CLS] first [SEP] (second [SEP]), then pad ids."""
    segment_ids: np.ndarray
    """int32 [N, max_len]: 0 for [CLS], the first text and its [SEP], 1 for
    the second text and its [SEP], 0 for padding."""
    lengths: np.ndarray
    """int32 [N]: tokens before padding, special tokens included."""
    truncated: np.ndarray
    """int32 [N]: word pieces removed from each example to fit max_len."""

    @property
    def num_truncated(self):
        """How many examples lost at least one word piece."""
        return int(np.count_nonzero(self.truncated))


def _check_ids_fit(vocab, pad_index, vocab_size):
    """Every id the tokenizer can produce must have a row in a model's
    embedding table of `vocab_size` rows (an id beyond it would be NaN or
    an error inside the model, far from its cause)."""
    if isinstance(vocab_size, (bool, np.bool_)) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ConfigError(f"vocab_size must be a positive int, not {vocab_size!r}")
    token, index = max(vocab.items(), key=lambda item: item[1])
    if index >= vocab_size:
        beyond = sum(i >= vocab_size for i in vocab.values())
        raise ConfigError(
            f"token {token!r} has id {index}, beyond the model's vocab_size {vocab_size} "
            f"({beyond} token(s) with an id >= {vocab_size})"
        )
    if not 0 <= int(pad_index) < vocab_size:
        raise ConfigError(f"pad_index {pad_index} is outside 0..{vocab_size - 1} (vocab_size {vocab_size})")


class Tokenizer:
    """BERT's tokenizer with the keras-bert interface.

    `token_dict` maps each token to its id (see `load_vocab`, or use
    `Tokenizer.from_vocab_file`); `cased` says whether the model keeps case
    and accents (the original's `do_lower_case` is `not cased`).  Tokens and
    ids are the original `FullTokenizer`'s; `[CLS]`, `[SEP]` and truncation
    follow the original `run_classifier.py`.

    Keyword options: keras-bert's `token_cls`, `token_sep`, `token_unk` and
    `pad_index`; `max_input_chars_per_word` (the original's 200; Hugging
    Face uses 100); and `never_split`, tokens such as `"[MASK]"` kept whole
    where they stand as words of their own (see `BasicTokenizer`; not in the
    original, so empty by default); `vocab_size`, the model's embedding rows
    (`bert_config.json`'s `vocab_size`): when given, a vocabulary holding a
    larger id (or a `pad_index` outside it) is a `ConfigError` here, not
    a NaN or an index error inside the model; `unknown`, what becomes of a
    word WordPiece cannot cut completely: `"word"` (the original's default)
    makes it one `[UNK]`, `"piece"` (keras-bert's rule) only the characters
    no vocabulary entry starts with (see `WordpieceTokenizer`).

    keras-bert's hooks work as there: a subclass may override
    `_tokenize(self, text)` (text -> word pieces, no special tokens), and
    `split`, `tokenize`, `encode` and the batch methods then all use it; it
    can read `self._token_dict` and the character tests `_is_space`,
    `_is_punctuation`, `_is_cjk_character` and `_is_control`.
    `rematch(text, tokens)` maps tokens back to character spans.

    For example, with the vocabulary of `uncased_L-12_H-768_A-12`::

        tok = Tokenizer.from_vocab_file("uncased_L-12_H-768_A-12/vocab.txt")
        tok.tokenize("Héllo, world!")  # ['[CLS]', 'hello', ',', 'world', '!', '[SEP]']
        tok.encode("Héllo, world!", max_len=8)
        # ([101, 7592, 1010, 2088, 999, 102, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0])
    """

    def __init__(
        self,
        token_dict,
        cased=False,
        *,
        token_cls=TOKEN_CLS,
        token_sep=TOKEN_SEP,
        token_unk=TOKEN_UNK,
        pad_index=0,
        max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
        never_split=(),
        vocab_size=None,
        unknown="word",
    ):
        # A non-bool here is most likely keras-bert's positional token_cls.
        if not isinstance(cased, (bool, np.bool_)):
            raise ConfigError(f"cased must be True or False, not {cased!r}")
        vocab = {}
        for token, index in dict(token_dict).items():
            if not isinstance(token, str):
                raise ConfigError(f"token_dict keys must be str, not {type(token).__name__} ({token!r})")
            if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)) or index < 0:
                raise ConfigError(f"token_dict[{token!r}] must be a non-negative int id, not {index!r}")
            vocab[token] = int(index)
        for role, token in (("token_cls", token_cls), ("token_sep", token_sep), ("token_unk", token_unk)):
            if token not in vocab:
                raise ConfigError(f"the vocabulary has no {role} {token!r} ({len(vocab)} tokens)")
        never_split = frozenset([never_split] if isinstance(never_split, str) else never_split)
        for token in never_split:
            if not isinstance(token, str) or token not in vocab or token != "".join(token.split()):
                raise ConfigError(
                    f"never_split entries must be vocabulary tokens without whitespace, not {token!r}"
                )
        if int(max_input_chars_per_word) < 1:
            raise ConfigError(f"max_input_chars_per_word must be at least 1, not {max_input_chars_per_word}")
        if vocab_size is not None:
            _check_ids_fit(vocab, pad_index, vocab_size)
        self._token_dict = vocab
        self._inverse = {i: t for t, i in vocab.items()}
        self._cased = bool(cased)
        self._token_cls = token_cls
        self._token_sep = token_sep
        self._token_unk = token_unk
        self._cls_id = vocab[token_cls]
        self._sep_id = vocab[token_sep]
        self._unk_id = vocab[token_unk]
        self._pad_index = int(pad_index)
        self._never_split = never_split
        self._basic = BasicTokenizer(cased=self._cased, never_split=never_split)
        self._wordpiece = WordpieceTokenizer(vocab, token_unk, int(max_input_chars_per_word), unknown)
        self._word_cache = {}
        self._fast = None  # built on first use; False once found unavailable

    @classmethod
    def from_vocab_file(cls, path, cased=False, **kwargs):
        """A tokenizer over the vocabulary in `path` (a BERT vocab.txt)."""
        vocab = load_vocab(path)
        defaults = {"token_cls": TOKEN_CLS, "token_sep": TOKEN_SEP, "token_unk": TOKEN_UNK}
        for role, default in defaults.items():
            token = kwargs.get(role, default)
            if token not in vocab:
                raise DataError(f"vocabulary file {os.fspath(path)} has no {role} {token!r}")
        if kwargs.get("vocab_size") is not None:
            try:
                _check_ids_fit(vocab, kwargs.get("pad_index", 0), kwargs["vocab_size"])
            except ConfigError as e:
                raise ConfigError(f"vocabulary file {os.fspath(path)}: {e}") from None
        return cls(vocab, cased, **kwargs)

    # -- properties -----------------------------------------------------

    @property
    def cased(self):
        return self._cased

    @property
    def token_dict(self):
        """The {token: id} mapping (a copy)."""
        return dict(self._token_dict)

    @property
    def vocab_size(self):
        """One more than the largest id: the embedding table's row count."""
        return max(self._token_dict.values()) + 1

    @property
    def max_input_chars_per_word(self):
        return self._wordpiece.max_input_chars_per_word

    @property
    def unknown(self):
        return self._wordpiece.unknown

    @property
    def pad_index(self):
        """The id that pads encoded rows."""
        return self._pad_index

    @property
    def special_tokens(self):
        """(the [CLS] token, the [SEP] token, the id of [UNK]) as this
        tokenizer spells and numbers them."""
        return self._token_cls, self._token_sep, self._unk_id

    # -- single texts (reference implementation) ------------------------

    def split(self, text):
        """The word pieces of `text`, without special tokens.

        This is the original `FullTokenizer.tokenize(text)`, or what a
        subclass's `_tokenize` makes of `text`.
        """
        return self._tokenize(text)

    def _tokenize(self, text):
        """keras-bert's hook for subclasses: the word pieces of `text`."""
        pieces = []
        cache = self._word_cache
        for word in self._basic.tokenize(text):
            if word in self._never_split:
                pieces.append(word)
                continue
            cut = cache.get(word)
            if cut is None:
                cut = self._wordpiece.tokenize_word(word)
                if len(cache) > 200_000:  # bound the memory of a long run
                    cache.clear()
                cache[word] = cut
            pieces.extend(cut)
        return pieces

    def convert_tokens_to_ids(self, tokens):
        """Ids of `tokens`; tokens outside the vocabulary get the [UNK] id."""
        vocab, unk = self._token_dict, self._unk_id
        return [vocab.get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        """Tokens of `ids`; raises `DataError` for an id no token has."""
        try:
            return [self._inverse[int(i)] for i in ids]
        except KeyError as e:
            raise DataError(f"token id {e.args[0]} is not in the vocabulary") from None

    def tokenize(self, first, second=None):
        """`[CLS] first [SEP]`, or `[CLS] first [SEP] second [SEP]`, as tokens.

        `second=None` means a single text; `second=""` is a pair whose second
        text is empty (so a second [SEP] follows at once), as in keras-bert.
        """
        tokens = [self._token_cls, *self.split(first), self._token_sep]
        if second is not None:
            tokens += [*self.split(second), self._token_sep]
        return tokens

    def encode(self, first, second=None, max_len=None, *, return_truncated=False):
        """Token ids and segment ids, as two lists.

        With `max_len`, the word pieces are first truncated as the original
        fine-tuning code does (pairs: one piece at a time from the longer
        text, from the second on a tie) to leave room for the special
        tokens, then both lists are padded to `max_len` (token ids with
        `pad_index`, segment ids with 0).  With `return_truncated=True`, a
        third value says how many word pieces were removed.
        """
        first_pieces = self.split(first)
        second_pieces = None if second is None else self.split(second)
        _check_max_len(max_len, second is not None)
        removed = _truncate(first_pieces, second_pieces, max_len)
        token_ids, segment_ids = self._pack(
            self.convert_tokens_to_ids(first_pieces),
            None if second_pieces is None else self.convert_tokens_to_ids(second_pieces),
        )
        if max_len is not None:
            pad = max_len - len(token_ids)
            token_ids += [self._pad_index] * pad
            segment_ids += [0] * pad
        if return_truncated:
            return token_ids, segment_ids, removed
        return token_ids, segment_ids

    def _pack(self, first_ids, second_ids):
        token_ids = [self._cls_id, *first_ids, self._sep_id]
        segment_ids = [0] * len(token_ids)
        if second_ids is not None:
            token_ids += [*second_ids, self._sep_id]
            segment_ids += [1] * (len(second_ids) + 1)
        return token_ids, segment_ids

    def decode(self, ids):
        """The tokens of the first text, or of both as a tuple, as keras-bert.

        Trailing `pad_index` ids are ignored; [CLS] and [SEP] are removed.
        """
        ids = [int(i) for i in ids]
        while ids and ids[-1] == self._pad_index:
            ids.pop()
        tokens = self.convert_ids_to_tokens(ids)
        if tokens and tokens[0] == self._token_cls:
            tokens = tokens[1:]
        if self._token_sep not in tokens:
            return tokens
        sep = tokens.index(self._token_sep)
        first, rest = tokens[:sep], tokens[sep + 1 :]
        if not rest:
            return first
        if rest[-1] == self._token_sep:
            rest = rest[:-1]
        return first, rest

    # -- keras-bert's helpers ---------------------------------------------

    # The character tests keras-bert's subclasses call from `_tokenize`.
    _is_space = staticmethod(_is_whitespace)
    _is_punctuation = staticmethod(_is_punctuation)
    _is_control = staticmethod(_is_control)

    @staticmethod
    def _is_cjk_character(char):
        return _is_cjk(ord(char))

    @staticmethod
    def rematch(text, tokens, cased=False, unknown_token=TOKEN_UNK):
        """The `(start, stop)` character span of each token in `text`, as keras-bert.

        The tokens are written out as one string (a space between words,
        `##` continuations glued on, an `unknown_token` standing for one
        character) and aligned with `text` by least edit distance, so
        lower-casing (`cased=False` compares lower-cased characters),
        stripped accents and [UNK] pieces still land on their characters.
        A token whose span does not read as the token itself is then widened
        to the whitespace around it, without crossing its neighbours' spans.

            >>> Tokenizer.rematch("All rights reserved.", ["all", "rights", "re", "##ser", "##ved", "."])
            [(0, 3), (4, 10), (11, 13), (13, 16), (16, 19), (19, 20)]
        """
        fold = (lambda t: t) if cased else str.lower
        written, offsets = "", []
        for token in tokens:
            piece = "#" if token == unknown_token else fold(token)
            if len(piece) > 2 and piece.startswith("##"):
                piece = piece[2:]
            elif written:
                written += " "
            offsets.append((len(written), len(written) + len(piece)))
            written += piece

        text = text.rstrip()
        heading = 0
        while heading < len(text) and _is_whitespace(text[heading]):
            heading += 1
        text = text[heading:]

        # Levenshtein table over (text prefix, written prefix); `back` holds
        # each cell's predecessor on the chosen path.  A matching character
        # always takes the diagonal; otherwise the diagonal is kept unless
        # dropping a text character, then a written one, is strictly cheaper.
        n, m = len(text), len(written)
        back = [[None] * (m + 1) for _ in range(n + 1)]
        previous = list(range(m + 1))
        for i in range(1, n + 1):
            current = [i] + [0] * m
            char = fold(text[i - 1])
            for j in range(1, m + 1):
                cost, step = previous[j - 1], (i - 1, j - 1)
                if char != written[j - 1]:
                    if previous[j] < cost:
                        cost, step = previous[j], (i - 1, j)
                    if current[j - 1] < cost:
                        cost, step = current[j - 1], (i, j - 1)
                    cost += 1
                current[j], back[i][j] = cost, step
            previous = current
        # Walk the path back; each written position keeps the earliest text
        # position it was paired with (0 where the path never reached it).
        matches = [0] * (m + 1)
        position = (n, m)
        while position is not None:
            i, j = position
            matches[j] = i
            position = back[i][j]

        spans = [[matches[start], matches[stop]] for start, stop in offsets]
        for k, span in enumerate(spans):
            token = tokens[k][2:] if len(tokens[k]) > 2 and tokens[k].startswith("##") else tokens[k]
            if fold(text[span[0] : span[1]]) == fold(token):
                continue
            left = spans[k - 1][1] if k else 0
            while span[0] > left and not _is_whitespace(text[span[0] - 1]):
                span[0] -= 1
            right = spans[k + 1][0] if k + 1 < len(spans) else n
            while span[1] < right and not _is_whitespace(text[span[1]]):
                span[1] += 1
        return [(start + heading, stop + heading) for start, stop in spans]

    # -- batches ----------------------------------------------------------

    def _fast_backend(self, fast):
        # The Rust engine knows neither a subclass's own `_tokenize` nor
        # keras-bert's unknown pieces.
        own = type(self)._tokenize is Tokenizer._tokenize and self.unknown == "word"
        if fast and not own:
            raise ConfigError(
                "fast=True cannot honour an overridden _tokenize or unknown='piece'; "
                "use fast=None or fast=False"
            )
        if fast is False or not own:
            return None
        if self._fast is None:
            try:
                self._fast = _FastBackend(
                    self._token_dict, self._token_unk, self._cased, self._wordpiece.max_input_chars_per_word
                )
            except ImportError:
                logger.info("the tokenizers package is not installed; batches are tokenized in pure Python")
                self._fast = False
        if self._fast is False and fast:
            raise ConfigError("fast=True needs the tokenizers package (pip install tokenizers)")
        return self._fast or None

    def split_ids_batch(self, texts, *, fast=None):
        """Word-piece ids of each text, without special tokens.

        `fast=None` uses the `tokenizers` package when installed, `True`
        requires it, `False` uses the pure-Python reference; all three give
        the same ids.
        """
        texts = [_to_text(t, f"text #{i}") for i, t in enumerate(texts)]
        backend = self._fast_backend(fast)
        if backend is None:
            return [self.convert_tokens_to_ids(self.split(t)) for t in texts]
        ids, slow = backend.ids(texts, self._never_split)
        for i in slow:
            ids[i] = self.convert_tokens_to_ids(self.split(texts[i]))
        if slow:
            logger.debug(
                "%d of %d texts hold characters the tokenizers package treats unlike the "
                "original; tokenized in pure Python",
                len(slow),
                len(texts),
            )
        return ids

    def encode_batch(self, firsts, seconds=None, max_len=128, *, fast=None):
        """Encode many texts (or pairs) into padded int32 arrays.

        `seconds` is None for single texts, or a sequence as long as
        `firsts` whose None entries make single texts.  Each example is
        truncated and packed exactly as `encode` would; `max_len=None` pads
        to the longest example instead of truncating.  See
        `split_ids_batch` for `fast`.

        Returns an `EncodedBatch` of token_ids and segment_ids [N, max_len],
        lengths [N] and truncated [N] (word pieces removed per example; its
        `num_truncated` counts the examples that lost any).
        """
        firsts = list(firsts)
        n = len(firsts)
        if seconds is not None:
            seconds = list(seconds)
            if len(seconds) != n:
                raise ConfigError(f"encode_batch got {n} first texts but {len(seconds)} second texts")
            pair_rows = [i for i, s in enumerate(seconds) if s is not None]
        else:
            pair_rows = []
        _check_max_len(max_len, bool(pair_rows))

        first_ids = self.split_ids_batch(firsts, fast=fast)
        second_ids = [None] * n
        if pair_rows:
            for i, ids in zip(pair_rows, self.split_ids_batch([seconds[i] for i in pair_rows], fast=fast)):
                second_ids[i] = ids

        removed = np.zeros(n, dtype=np.int32)
        rows = []
        for i in range(n):
            a, b = list(first_ids[i]), second_ids[i]
            if b is not None:
                b = list(b)
            removed[i] = _truncate(a, b, max_len)
            rows.append(self._pack(a, b))
        lengths = np.fromiter((len(t) for t, _ in rows), dtype=np.int32, count=n)
        width = max_len if max_len is not None else int(lengths.max(initial=0))
        token_ids = np.full((n, width), self._pad_index, dtype=np.int32)
        segment_ids = np.zeros((n, width), dtype=np.int32)
        for i, (t, s) in enumerate(rows):
            token_ids[i, : len(t)] = t
            segment_ids[i, : len(s)] = s
        return EncodedBatch(token_ids, segment_ids, lengths, removed)

    def encode_windows(self, texts, max_len=128, stride=None, *, fast=None):
        """Each text's word pieces as overlapping windows, none truncated.

        A window holds up to `max_len - 2` pieces between [CLS] and [SEP];
        window k starts `k * stride` pieces in (default stride: half a
        window), and a last window ending at the text's end is added when
        the stride does not land there.  A text that fits is one window, as
        `encode_batch` would give it.  Callers combine the windows' outputs
        per text (`owner`): kbert averages logits (`Classifier.predict`) or
        pooled vectors (`kbert.keras_bert.extract_embeddings`).
        """
        _check_max_len(max_len, False)
        room = max_len - 2
        stride = stride or max(room // 2, 1)
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or not 0 < stride <= room:
            raise ConfigError(f"stride must be an int in 1..{room} (a window's word pieces), got {stride!r}")
        windows, owner = [], []
        for index, ids in enumerate(self.split_ids_batch(list(texts), fast=fast)):
            starts = list(range(0, max(len(ids) - room, 0) + 1, stride))
            if starts[-1] + room < len(ids):  # the last window reaches the end
                starts.append(len(ids) - room)
            for start in starts:
                windows.append(self._pack(list(ids[start:start + room]), None)[0])
                owner.append(index)
        lengths = np.fromiter(map(len, windows), dtype=np.int32, count=len(windows))
        token_ids = np.full((len(windows), int(lengths.max(initial=0))), self._pad_index, dtype=np.int32)
        for row, window in enumerate(windows):
            token_ids[row, : len(window)] = window
        return EncodedWindows(token_ids, np.zeros_like(token_ids), lengths, np.array(owner, dtype=np.int64))


class EncodedWindows(NamedTuple):
    """What `Tokenizer.encode_windows` returns: W windows of N texts."""

    token_ids: np.ndarray
    """int32 [W, T]: [CLS] a window's word pieces [SEP], then pad ids; T is
    the longest window."""
    segment_ids: np.ndarray
    """int32 [W, T]: zeros."""
    lengths: np.ndarray
    """int32 [W]: tokens before padding."""
    owner: np.ndarray
    """int64 [W]: the text each window belongs to (ascending; every text has one)."""


def _check_max_len(max_len, pair):
    if max_len is None:
        return
    need = 3 if pair else 2
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < need:
        raise ConfigError(
            f"max_len must be an int of at least {need} (room for the special tokens of "
            f"{'a pair' if pair else 'a single text'}), not {max_len!r}"
        )
