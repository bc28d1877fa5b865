"""Augmentation after Tang et al. (2019): rates, determinism, de-duplication."""

import numpy as np
import pytest

from kbert.augment import MASK, augment, augment_words, expected_passes

WORDS = [f"w{i}" for i in range(10)]


def test_mask_rate_is_p_mask():
    rng = np.random.default_rng(0)
    draws = [augment_words(WORDS, rng, p_ng=0.0) for _ in range(4000)]
    masked = np.mean([word == MASK for words in draws for word in words])
    assert abs(masked - 0.1) < 0.01  # 40,000 words: the standard error is 0.0015
    assert all(len(words) == len(WORDS) for words in draws)


def test_ngram_rate_is_p_ng_and_n_is_uniform():
    rng = np.random.default_rng(1)
    draws = [augment_words(WORDS, rng, p_mask=0.0) for _ in range(8000)]
    shortened = [words for words in draws if len(words) < len(WORDS)]
    assert abs(len(shortened) / len(draws) - 0.25) < 0.015  # standard error 0.005
    sizes = np.bincount([len(words) for words in shortened], minlength=6)[1:]
    np.testing.assert_allclose(sizes / len(shortened), 0.2, atol=0.03)
    for words in shortened:  # a contiguous n-gram of the sentence
        start = WORDS.index(words[0])
        assert words == WORDS[start : start + len(words)]


def test_default_rates_together():
    rng = np.random.default_rng(2)
    draws = [augment_words(WORDS, rng) for _ in range(6000)]
    full = [words for words in draws if len(words) == len(WORDS)]
    assert abs(1 - len(full) / len(draws) - 0.25) < 0.02
    assert abs(np.mean([w == MASK for words in full for w in words]) - 0.1) < 0.01


SENTENCES = ["a fine and moving film", "dull", "the plot goes nowhere at all , sadly", "a fine and moving film too"]


def test_deterministic_with_a_seed():
    assert augment(SENTENCES, 8, seed=5) == augment(SENTENCES, 8, seed=5)
    assert augment(SENTENCES, 8, seed=5) != augment(SENTENCES, 8, seed=6)


def test_no_duplicates_and_no_originals():
    out = augment(SENTENCES, 20, seed=0)
    texts = [text for _, text in out]
    assert len(texts) == len(set(texts))
    assert not set(texts) & set(SENTENCES)
    counts = np.bincount([source for source, _ in out], minlength=len(SENTENCES))
    assert counts.max() <= 20
    assert counts[1] <= 1  # "dull" can only become "[MASK]"
    assert [source for source, _ in out] == sorted(source for source, _ in out)


def test_pairs_are_augmented_side_by_side():
    pairs = [("the cat sat on the mat", "a cat was sitting on a mat")]
    out = augment(pairs, 10, seed=3)
    assert out and all(isinstance(text, tuple) and len(text) == 2 for _, text in out)
    assert ("the cat sat on the mat", "a cat was sitting on a mat") not in [text for _, text in out]


def test_zero_copies_and_cost():
    assert augment(SENTENCES, 0, seed=0) == []
    with pytest.raises(ValueError):
        augment(SENTENCES, -1, seed=0)
    assert expected_passes(100, 250) == 2.5


def test_nearest_neighbours_by_cosine_among_whole_words():
    from kbert.augment import nearest_neighbours

    rng = np.random.default_rng(0)
    tokens = ["[PAD]", "[CLS]", "good", "great", "##ly", ",", "bad", "awful", "film", "movie", "fine"]
    vectors = rng.normal(size=(len(tokens), 6)).astype(np.float32)
    got = nearest_neighbours(vectors, tokens, 3, block=3)
    words = [i for i, t in enumerate(tokens) if t.isalpha()]
    assert set(got) == {tokens[i] for i in words}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for i in words:
        others = sorted((j for j in words if j != i), key=lambda j: -(unit[i] @ unit[j]))
        assert got[tokens[i]] == tuple(tokens[j] for j in others[:3])


def test_neighbour_replacement_draws_from_the_candidates():
    neighbours = {"fine": ("great", "good"), "film": ("movie",)}
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(200):
        words = augment_words(["a", "fine", "film"], rng, p_mask=0.0, p_ng=0.0, neighbours=neighbours,
                              p_neighbour=1.0)
        assert words[0] == "a" and words[1] in ("great", "good") and words[2] == "movie"
        seen.add(words[1])
    assert seen == {"great", "good"}
    # Masked words are not replaced; p_neighbour 0 changes nothing.
    words = augment_words(["a", "fine", "film"], rng, p_mask=1.0, p_ng=0.0, neighbours=neighbours, p_neighbour=1.0)
    assert words == [MASK] * 3
    plain = augment(SENTENCES, 5, seed=2)
    assert augment(SENTENCES, 5, seed=2, neighbours=None) == plain


def test_too_many_neighbours_are_refused_by_name():
    from kbert.augment import nearest_neighbours
    from kbert.errors import ConfigError

    with pytest.raises(ConfigError, match="--neighbours 3"):
        nearest_neighbours(np.eye(4, dtype=np.float32), ["a", "b", "c", "##d"], 3)
