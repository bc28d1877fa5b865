"""Exact sequence packing (`kbert.packing`, `kbert.views.packed_classifier`).

The layout is checked by taking packed batches apart again; exactness by
comparing the packed model's per-example logits and gradients with the
unpacked model's (the reference: the same weights on one example per row),
for the MiniLM preset and a random BERT-base config, on every backend.
"""

import gc
import weakref

import keras
import numpy as np
import pytest

from kbert.batching import BucketedBatches
from kbert.errors import ConfigError, DataError, KbertError
from kbert.inference import inference_plan, predict_bucketed, predict_packed
from kbert.model import BertModel
from kbert.packing import (
    PackedBatches,
    best_fit_decreasing,
    first_fit_decreasing,
    pack,
    packed_plan,
)
from kbert.views import packed_classifier

# Sentences (and pairs) of very different lengths, as GLUE batches hold them.
TEXTS = [
    ("a gripping , beautifully acted film .", None),
    ("it 's a bad sign when you 're rooting for the film to end .", None),
    ("the screenplay sabotages the movie 's strengths at almost every juncture , and the "
     "characters are so thinly drawn that nobody seems to notice .", None),
    ("terrible .", None),
    ("the company said its third-quarter profit rose sharply on higher sales .",
     "third-quarter earnings at the company rose on strong sales , it said ."),
    ("he was not there .", "he was absent from the meeting that afternoon , according to two colleagues ."),
    ("an utterly charming , often hilarious and ultimately moving look at friendship , "
     "family and the stories we tell ourselves about both .", None),
]


def _encode(tokenizer, max_len=64):
    ids = np.zeros((len(TEXTS), max_len), np.int32)
    segments = np.zeros_like(ids)
    lengths = np.zeros(len(TEXTS), np.int64)
    for i, (a, b) in enumerate(TEXTS):
        token_ids, segment_ids = map(np.asarray, tokenizer.encode(a, b, max_len=max_len))
        n = int(np.count_nonzero(token_ids))
        ids[i, :n], segments[i, :n], lengths[i] = token_ids[:n], segment_ids[:n], n
    return ids, segments, lengths


def _random_batch(rng, n=9, width=24, vocab=100):
    lengths = rng.integers(1, width + 1, n)
    ids = np.zeros((n, width), np.int32)
    segments = np.zeros_like(ids)
    for i, length in enumerate(lengths):
        ids[i, :length] = rng.integers(1, vocab, length)
        segments[i, length // 2 : length] = 1
    return ids, segments, lengths


def test_first_fit_decreasing_fits_every_example_once(rng):
    for _ in range(50):
        lengths = rng.integers(1, 40, rng.integers(1, 40))
        rows = first_fit_decreasing(lengths, 40)
        assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
        assert all(lengths[row].sum() <= 40 for row in rows)
        # No row could take the first example of a later row (first fit).
        for r, row in enumerate(rows):
            for later in rows[r + 1 :]:
                assert lengths[row].sum() + lengths[later[0]] > 40


def test_best_fit_decreasing_matches_a_plain_best_fit(rng):
    for _ in range(30):
        lengths = rng.integers(1, 33, rng.integers(1, 200))
        rows = best_fit_decreasing(lengths, 32)
        assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
        # The reference: each example, longest first, into the fullest row
        # that holds it, searching every row.  Rows of equal room are
        # interchangeable, so the fills agree whichever one is taken.
        fills = []
        for length in sorted(lengths, reverse=True):
            fits = [r for r, fill in enumerate(fills) if fill + length <= 32]
            if fits:
                fills[max(fits, key=lambda r: fills[r])] += length
            else:
                fills.append(length)
        assert sorted(lengths[row].sum() for row in rows) == sorted(fills)


def test_pack_layout_unpacks_to_the_batch(rng):
    ids, segments, lengths = _random_batch(rng)
    cls, token, segment, position, example = pack((ids, segments), lengths, 32)
    assert token.shape == (len(first_fit_decreasing(lengths, 32)), 32)
    flat = [a.reshape(-1) for a in (token, segment, position, example)]
    for i, length in enumerate(lengths):
        span = slice(cls[i], cls[i] + length)
        np.testing.assert_array_equal(flat[0][span], ids[i, :length])
        np.testing.assert_array_equal(flat[1][span], segments[i, :length])
        np.testing.assert_array_equal(flat[2][span], np.arange(length))
        assert len(set(flat[3][span])) == 1 and flat[3][cls[i]] > 0
        assert cls[i] // 32 == (cls[i] + length - 1) // 32  # inside one row
    # Every real token is some example's; empty slots are zero everywhere.
    assert (example > 0).sum() == lengths.sum()
    for a in (token, segment, position):
        assert not a[example == 0].any()


def test_packed_batches_are_the_random_batches(rng):
    ids, segments, lengths = _random_batch(rng, n=40)
    labels = rng.integers(0, 2, 40)
    plain = BucketedBatches((ids, segments), labels, lengths, batch_size=8, seed=3, fill=True, window=1)
    packed = PackedBatches((ids, segments), labels, lengths, pack_len=24, batch_size=8, seed=3, fill=True)
    assert len(plain) == len(packed)
    for k in range(len(plain)):
        (p_ids, _), p_y, p_w = plain[k]
        (cls, token, _, _, _), y, w = packed[k]
        np.testing.assert_array_equal(y, p_y)
        np.testing.assert_array_equal(w, p_w)
        np.testing.assert_array_equal(token.reshape(-1)[cls], p_ids[:, 0])


def test_packed_batches_refuse_what_does_not_fit(rng):
    ids, segments, lengths = _random_batch(rng, n=5, width=24)
    with pytest.raises(DataError, match="does not fit packed rows of 1..8"):
        PackedBatches((ids, segments), np.zeros(5), np.maximum(lengths, 9), pack_len=8, batch_size=2, seed=0)
    with pytest.raises(ConfigError, match="pack_len"):
        PackedBatches((ids, segments), np.zeros(5), lengths, pack_len=0, batch_size=2, seed=0)


def test_packed_classifier_refuses_other_models():
    config = dict(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    with pytest.raises(ConfigError, match="classifier"):
        packed_classifier(BertModel(config))
    with pytest.raises(ConfigError, match="task ids"):
        packed_classifier(BertModel(config, num_labels=2, task_num=2))


def test_packed_fit_checks_ids(rng):
    config = dict(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    model = packed_classifier(BertModel(config, num_labels=2))
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids, segments, lengths = _random_batch(rng, n=6, width=10, vocab=50)
    ids[2, 0] = 77
    batches = PackedBatches((ids, segments), np.zeros(6, np.int32), lengths, pack_len=16, batch_size=3, seed=0)
    with pytest.raises(KbertError, match=r"Input-Token: id 77 .*\(vocab_size 50\)"):
        model.fit(batches, epochs=1, verbose=0)
    with pytest.raises(ConfigError, match="predict with the BertModel"):
        model.predict(batches)


def _small_classifier(**kwargs):
    config = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=64)
    return BertModel(config, num_labels=3, **kwargs)


def test_packed_inference_equals_unpacked(rng):
    keras.utils.set_random_seed(2)
    model = _small_classifier()
    ids, segments, lengths = _random_batch(rng, n=57, width=40, vocab=60)

    class Bar:
        done = 0

        def update(self, n):
            self.done += n

    bar = Bar()
    # Small calls: several of them, the last padded with empty rows.
    got = predict_bucketed(model, [ids, segments], lengths, batch_size=8, progress=bar)
    plan = inference_plan(model, [ids, segments], lengths, 8)
    assert plan is not None and len(plan) > 2 and bar.done == 57
    expected = predict_bucketed(model, [ids, segments], lengths, batch_size=8, packing=False)
    reference = keras.ops.convert_to_numpy(model([ids, segments], training=False))
    np.testing.assert_allclose(expected, reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)
    # Equal calls (one shape per pass), every example once.
    assert all(len(call) <= len(plan[0]) for call in plan) and len(plan[-1]) > len(plan[0]) - len(plan)
    assert sorted(i for call in plan for row in call for i in row) == list(range(57))
    # Where sorted batches waste nothing, packing does not pay: not used.
    same = np.full(57, 8)
    assert inference_plan(model, [ids, segments], same, 8) is None
    assert len(packed_plan(same, 40, 8)[1]) > 0
    # Out-of-vocabulary ids are refused by name before any call.
    ids[5, 1] = 61
    with pytest.raises(DataError, match=r"Input-Token: id 61"):
        predict_bucketed(model, [ids, segments], lengths)


def test_packed_inference_keeps_no_model_alive(rng):
    model = _small_classifier()
    ids, segments, lengths = _random_batch(rng, n=5, width=12, vocab=60)
    predict_bucketed(model, [ids, segments], lengths)
    dead = weakref.ref(model)
    del model
    gc.collect()
    assert dead() is None


def test_inference_falls_back_to_length_sorted_batches(rng):
    ids, segments, lengths = _random_batch(rng, n=6, width=12, vocab=60)
    keras.utils.set_random_seed(3)
    config = dict(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    # A task embedding (per example, not per token), a fixed seq_len and an
    # empty row cannot be packed; their outputs are the model's own.
    for model, arrays, task in (
        (BertModel(config, num_labels=2, task_num=2), [ids, segments, np.ones((6, 1), np.int32)], True),
        (BertModel(config, num_labels=2, seq_len=12), [ids, segments], False),
        (BertModel(config, num_labels=2), [np.where(np.arange(6)[:, None] == 4, 0, ids), segments], False),
    ):
        lengths = (arrays[0] != 0).sum(axis=1)
        got = predict_bucketed(model, arrays, lengths if not task else None)
        expected = keras.ops.convert_to_numpy(model(arrays, training=False))
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def _gradients(model, inputs, labels):
    """{variable path: gradient} of the mean cross-entropy, dropout off."""
    variables = model.trainable_variables

    def loss_of(logits):
        losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        return keras.ops.mean(losses)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def f(values):
            logits, _ = model.stateless_call(values, non_trainable, inputs, training=False)
            return loss_of(logits)

        grads = jax.grad(f)([v.value for v in variables])
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of(model(inputs, training=False))
        grads = tape.gradient(loss, [v.value for v in variables])
    else:
        import torch

        loss = loss_of(model(inputs, training=False))
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    return {v.path: None if g is None else keras.ops.convert_to_numpy(g) for v, g in zip(variables, grads)}


def _check_exact(model, ids, segments, lengths, labels, pack_len):
    width = int(lengths.max())
    unpacked = [ids[:, :width], segments[:, :width]]
    expected = keras.ops.convert_to_numpy(model(unpacked, training=False))
    packed_model = packed_classifier(model)
    packed = list(pack((ids, segments), lengths, pack_len))
    assert packed[1].shape[0] < len(ids)  # more than one example shares a row
    got = keras.ops.convert_to_numpy(packed_model(packed, training=False))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # Teacher passes (materials, predict, evaluate) read the rows packed too.
    plan = packed_plan(lengths, ids.shape[1], batch_size=2)[1]
    passed = predict_packed(model, [ids, segments], lengths, plan)
    np.testing.assert_allclose(passed, expected, atol=1e-5, rtol=0)

    reference = _gradients(model, unpacked, labels)
    grads = _gradients(packed_model, packed, labels)
    assert set(grads) == set(reference)
    # Relative to each variable's largest gradient; a gradient that is zero
    # by construction (attention's key bias: softmax ignores a constant per
    # query) is rounding noise in both, checked against the model's scale.
    noise = 1e-7 * max(np.abs(g).max() for g in reference.values() if g is not None)
    checked = 0
    for path, g in reference.items():
        if g is None:
            assert grads[path] is None, path
            continue
        scale = np.abs(g).max()
        if scale < noise:
            assert np.abs(grads[path]).max() < noise, path
            continue
        np.testing.assert_allclose(grads[path], g, atol=1e-4 * scale, rtol=0, err_msg=path)
        checked += 1
    assert checked > len(reference) // 2


@pytest.mark.slow
# Once, as BERT-base's below: real weights add no backend-specific path; the
# tiny-model equalities above run on every backend.
@pytest.mark.single_backend
def test_packed_minilm_equals_unpacked():
    from kbert.tokenization import Tokenizer
    from kbert.weights.loading import load_checkpoint

    keras.utils.set_random_seed(0)
    model = load_checkpoint("minilm-l6", num_labels=3, trainable=True)
    ids, segments, lengths = _encode(Tokenizer.from_vocab_file(model.vocab_file, cased=False))
    _check_exact(model, ids, segments, lengths, np.array([0, 1, 2, 1, 0, 2, 1]), pack_len=64)


@pytest.mark.slow
# Once: BERT-base's size adds no backend-specific path; the tiny-model
# equalities above run on every backend.
@pytest.mark.single_backend
def test_packed_random_bert_base_equals_unpacked(rng):
    keras.utils.set_random_seed(1)
    base = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
    model = BertModel(base, num_labels=2)
    ids, segments, lengths = _random_batch(rng, n=6, width=40, vocab=30522)
    _check_exact(model, ids, segments, lengths, rng.integers(0, 2, 6), pack_len=64)


# ---------------------------------------------------------------- the packed view's boundary

def _weights(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.weights]


def _packed_inputs(rng, vocab=60):
    ids, segments, lengths = _random_batch(rng, n=6, width=12, vocab=vocab)
    return list(pack((ids, segments), lengths, 16)), np.arange(6) % 3


BAD_PACKED = {
    "token id outside the vocabulary": (1, lambda a: a.__setitem__((0, 0), 999), r"Input-Token: id 999"),
    "segment id 5": (2, lambda a: a.__setitem__((0, 1), 5), r"Input-Segment: id 5 .*type_vocab_size"),
    "position beyond the table": (3, lambda a: a.__setitem__((0, 2), 64), r"Input-Position: id 64"),
    "negative example id": (4, lambda a: a.__setitem__((0, 0), -1), r"Input-Example: id -1"),
    "[CLS] index outside the rows": (0, lambda a: a.__setitem__(0, 10_000), r"Input-Cls: id 10000"),
}


@pytest.mark.parametrize("entry", ["train_on_batch", "test_on_batch", "predict_on_batch", "call", "fit",
                                   "evaluate"])
@pytest.mark.parametrize("bad", list(BAD_PACKED))
def test_the_packed_view_checks_its_inputs_at_every_entry_point(rng, entry, bad):
    """The audit: token id 999 through train_on_batch made every weight of
    the shared model NaN; segment 5, long rows or a [CLS] index out of range
    gave NaN logits.  Each is refused by name, the weights untouched."""
    model = _small_classifier()
    view = packed_classifier(model)
    view.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _packed_inputs(rng)
    index, spoil, message = BAD_PACKED[bad]
    spoil(x[index])
    before = _weights(model)
    call = {"train_on_batch": lambda: view.train_on_batch(x, y), "test_on_batch": lambda: view.test_on_batch(x, y),
            "predict_on_batch": lambda: view.predict_on_batch(x), "call": lambda: view(x),
            "fit": lambda: view.fit(x, y, batch_size=len(y), epochs=1, verbose=0, shuffle=False),
            "evaluate": lambda: view.evaluate(x, y, batch_size=len(y), verbose=0)}[entry]
    with pytest.raises(DataError, match=message):
        call()
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(model), strict=True))


def test_the_packed_view_refuses_rows_longer_than_the_positions(rng):
    model = _small_classifier()  # max_position_embeddings 64
    ids, segments, lengths = _random_batch(rng, n=6, width=12, vocab=60)
    x = list(pack((ids, segments), lengths, 72))
    with pytest.raises(DataError, match="packed rows of 72 slots exceed max_position_embeddings 64"):
        packed_classifier(model).predict_on_batch(x)


def test_packed_evaluate_checks_packed_batches_whole(rng):
    model = _small_classifier()
    view = packed_classifier(model)
    view.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids, segments, lengths = _random_batch(rng, n=6, width=10, vocab=60)
    ids[4, 0] = 60
    batches = PackedBatches((ids, segments), np.zeros(6, np.int32), lengths, pack_len=16, batch_size=3, seed=0)
    with pytest.raises(DataError, match=r"Input-Token: id 60 .*\(vocab_size 60\)"):
        view.evaluate(batches, verbose=0)
    # A valid packed batch passes the same boundary and gives the unpacked logits.
    ids[4, 0] = 7
    x = list(pack((ids, segments), lengths, 16))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(view.predict_on_batch(x)),
                               keras.ops.convert_to_numpy(model([ids, segments])), atol=1e-5, rtol=0)


def test_packing_reads_the_token_ids_not_lengths(rng):
    """The audit: lengths + 3 changed packed logits by 0.019 while the
    unpacked path ignored them.  Packed rows now hold each row's real
    tokens as its ids say; a length that would cut tokens off is refused."""
    model = _small_classifier()
    ids, segments, lengths = _random_batch(rng, n=40, width=40, vocab=60)
    lengths = np.minimum(lengths, 30)
    ids[:, 30:], segments[:, 30:] = 0, 0
    assert inference_plan(model, [ids, segments], lengths, 8) is not None  # the packed path is the one run
    reference = keras.ops.convert_to_numpy(model([ids, segments], training=False))
    for given in (None, lengths, lengths + 3):
        np.testing.assert_allclose(predict_bucketed(model, [ids, segments], given, batch_size=8), reference,
                                   atol=1e-5, rtol=0)
    with pytest.raises(DataError, match="lengths: row 0 has length"):
        predict_bucketed(model, [ids, segments], lengths - 1)
    # A [PAD] inside a row: the padding mask drops it, so the rows are read unpacked.
    ids[3, 1] = 0
    reference = keras.ops.convert_to_numpy(model([ids, segments], training=False))
    np.testing.assert_allclose(predict_bucketed(model, [ids, segments], batch_size=8), reference, atol=1e-5, rtol=0)
    with pytest.raises(DataError, match="row 3: a \\[PAD\\] id"):
        PackedBatches((ids, segments), np.zeros(40), lengths, batch_size=4, seed=0)


@pytest.mark.parametrize("case", ["targets None", "narrow segments", "zero rows", "float lengths"])
def test_packed_batches_refuse_malformed_inputs_by_name(rng, case):
    ids, segments, lengths = _random_batch(rng, n=5, width=12)
    targets = np.zeros(5, np.int32)
    if case == "targets None":
        targets, match = None, "targets"
    elif case == "narrow segments":
        segments, match = segments[:, :6], "input array 1 has shape"
    elif case == "zero rows":
        ids, segments, lengths, targets, match = ids[:0], segments[:0], lengths[:0], targets[:0], "no rows"
    else:
        lengths, match = lengths + 0.5, "lengths must be integers"
    with pytest.raises(DataError, match=match):
        PackedBatches((ids, segments), targets, lengths, batch_size=2, seed=0)
