"""Data augmentation for distillation, after Tang et al. (2019), section 3.

A small student needs more sentences than a GLUE training set has; the
teacher can label any sentence, so new, plausible-looking ones are made
from the training set and sent through the teacher like the rest (the
materials' "augmented" split, gold label -1).  Per draw:

1. masking: each word, with probability `p_mask` (0.1), becomes `[MASK]`;
2. n-gram sampling: with probability `p_ng` (0.25), keep only a random
   n-gram of the result, n uniform in 1..`max_n` (5).

Words are whitespace-separated tokens of the raw sentence.  Each sentence
gets `n_copies` draws; a draw equal to an original sentence or to an
earlier draw is dropped, so a sentence yields *up to* `n_copies` new ones.
Each sentence's draws come from a generator seeded by (seed, its index),
so the output is deterministic and needs no global random state.

Tang et al. also replace words by others of the same part of speech
(p_pos = 0.1).  That needs a POS tagger and tagged word lists; no
well-kept offline POS resource is installed with kbert's dependencies.  In
its place, optionally (`neighbours`), an unmasked word becomes, with
probability `p_neighbour`, one of its nearest neighbours among the
teacher's whole-word tokens (`nearest_neighbours`: cosine similarity of
the teacher's own vectors), as TinyBERT's augmentation does with GloVe and
BERT's predictions.  Without neighbours the draws are those of before.

Cost: every augmented sentence is one more teacher forward pass, and the
teacher passes are the expensive part (a draw takes about 8 us: 10 s for
N = 20 on SST-2).  Fewer than N x |train| copies survive: a draw that
changes nothing (no word masked and no shorter n-gram taken: at least
0.75 x 0.9^L of the draws of an L-word sentence) or repeats another
sentence is dropped.  Measured on SST-2's
67,349 training phrases (median 7 words), seed 0:

    N     augmented rows   teacher passes over train   by tokens
    1           35,275              0.52
    5          164,478              2.44                  2.89
    10         309,894              4.60
    20         565,683              8.40                 10.73

("by tokens": the copies of long sentences survive more often, and with
length-bucketed batches the teacher's time follows tokens more than rows.)
`expected_passes` gives the row ratio for a run.

For sentence pairs, each side is augmented on its own with the same rules.

The tokenizer that encodes the copies must keep `[MASK]` whole (BERT's
basic tokenizer splits it into "[", "mask", "]"); `kbert materials`
tokenizes the text around it and puts the mask id in between.
"""

import numpy as np

from kbert.errors import ConfigError

MASK = "[MASK]"
P_MASK = 0.1
P_NG = 0.25
MAX_N = 5


P_NEIGHBOUR = 0.1


def nearest_neighbours(vectors, tokens, k, *, block=2048):
    """{token: its k nearest other tokens}, by cosine similarity of
    `vectors` [V, H], over the whole-word tokens of `tokens` (alphabetic:
    no "##" pieces, punctuation or [SPECIAL] tokens)."""
    words = np.array([i for i, t in enumerate(tokens) if t.isalpha()])
    if k < 1 or len(words) <= k:
        raise ConfigError(f"--neighbours {k}: needs 1..{len(words) - 1} among the vocabulary's {len(words)} "
                          "whole-word tokens")
    unit = np.asarray(vectors, np.float32)[words]
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    out = {}
    for start in range(0, len(words), block):
        similarity = unit[start : start + block] @ unit.T  # [b, W]
        similarity[np.arange(len(similarity)), np.arange(start, start + len(similarity))] = -np.inf  # not itself
        top = np.argpartition(-similarity, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
        for row, picks in enumerate(np.take_along_axis(top, order, axis=1)):
            out[tokens[words[start + row]]] = tuple(tokens[words[j]] for j in picks)
    return out


def augment_words(words, rng, *, p_mask=P_MASK, p_ng=P_NG, max_n=MAX_N, mask_token=MASK, neighbours=None,
                  p_neighbour=P_NEIGHBOUR):
    """One augmentation draw of a word list (see the module docstring)."""
    masked = rng.random(len(words)) < p_mask
    if neighbours:
        swapped = rng.random(len(words)) < p_neighbour
        picks = rng.integers(0, 1 << 30, len(words))
        replaced = []
        for w, m, s, pick in zip(words, masked, swapped, picks):
            candidates = None if m or not s else neighbours.get(w) or neighbours.get(w.lower())
            replaced.append(candidates[pick % len(candidates)] if candidates else w)
        words = replaced
    words = [mask_token if m else w for w, m in zip(words, masked)]
    if words and rng.random() < p_ng:
        n = int(rng.integers(1, max_n + 1))
        if n < len(words):
            start = int(rng.integers(0, len(words) - n + 1))
            words = words[start : start + n]
    return words


def _draw(sentence, rng, options):
    if isinstance(sentence, str):
        return " ".join(augment_words(sentence.split(), rng, **options))
    return tuple(" ".join(augment_words(part.split(), rng, **options)) for part in sentence)


def normalise(sentence):
    """A sentence (or pair, as a tuple) with its whitespace as the copies have it."""
    if isinstance(sentence, str):
        return " ".join(sentence.split())
    return tuple(" ".join(part.split()) for part in sentence)


def augment(sentences, n_copies, seed, *, p_mask=P_MASK, p_ng=P_NG, max_n=MAX_N, mask_token=MASK, neighbours=None,
            p_neighbour=P_NEIGHBOUR):
    """Up to `n_copies` new sentences per sentence, without duplicates.

    Args:
        sentences: strings, or tuples of strings for sentence pairs.
        n_copies: draws per sentence (Tang et al.'s n_iter).
        seed: integer seed; the same seed gives the same output.
        neighbours: {word: candidate replacements} (`nearest_neighbours`),
            or None for Tang et al.'s two steps alone.
        p_neighbour: the chance that an unmasked word with neighbours is
            replaced by one of them.

    Returns:
        A list of (index of the source sentence, new sentence), grouped by
        source in input order; pairs come back as tuples.
    """
    if n_copies < 0:
        raise ValueError(f"n_copies must be >= 0, got {n_copies}")
    options = dict(p_mask=p_mask, p_ng=p_ng, max_n=max_n, mask_token=mask_token, neighbours=neighbours,
                   p_neighbour=p_neighbour)
    canonical = [s if isinstance(s, str) else tuple(s) for s in sentences]
    # Whitespace is normalised by the split/join, so compare originals the same way.
    seen = {normalise(s) for s in canonical}
    out = []
    for index, sentence in enumerate(canonical):
        rng = np.random.default_rng([seed, index])
        for _ in range(n_copies):
            copy = _draw(sentence, rng, options)
            if copy not in seen:
                seen.add(copy)
                out.append((index, copy))
    return out


def expected_passes(n_train, n_augmented):
    """Teacher passes over the training set that augmentation adds."""
    return n_augmented / max(n_train, 1)
