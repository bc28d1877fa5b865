"""Contextual augmentation (`kbert materials --augment N --mlm CHECKPOINT`):
the masked words of the augmented copies rewritten by a masked LM's
predictions in context, checked against the checkpoint's own full MLM
output (`MLM-Sim` over every position, a separate graph from the
gathered-position view `fill_masks` runs)."""

import argparse
import json

import keras
import numpy as np
import pytest

from kbert.errors import CheckpointError, ConfigError
from kbert.materials import fill_masks
from kbert.tokenization import Tokenizer

WHOLE = "all work and no play makes jack a dull boy".split()  # the fixture's whole-word tokens


def reference_scores(checkpoint, texts):
    """[masks, V] the fixture's MLM probabilities at each [MASK] of `texts`,
    in order, from the whole model's `MLM-Sim` output over every position."""
    from kbert import load_checkpoint

    model = load_checkpoint(str(checkpoint), training=True, seq_len=None)
    sim = keras.Model(model.inputs, model.get_layer("MLM-Sim").output)
    tokenizer = Tokenizer.from_vocab_file(str(checkpoint / "vocab.txt"), cased=False, never_split=("[MASK]",))
    rows = []
    for text in texts:
        batch = tokenizer.encode_batch([text], max_len=16)
        probabilities = keras.ops.convert_to_numpy(sim.predict_on_batch(
            [batch.token_ids, batch.segment_ids, np.zeros_like(batch.token_ids)]))[0]  # [T, V]
        rows += [probabilities[i] for i in np.flatnonzero(batch.token_ids[0] == 4)]
    return np.array(rows)


def likeliest(scores, k):
    """The k likeliest whole words of each row."""
    vocab = (checkpoint_tokens := ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WHOLE)
    allowed = np.array([t in WHOLE for t in checkpoint_tokens])
    return [[vocab[i] for i in np.argsort(-np.where(allowed, row, -np.inf), kind="stable")[:k]] for row in scores]


@pytest.mark.single_backend  # the rewriting; the masked LM's logits at chosen positions: every backend in test_pretraining
def test_each_mask_becomes_a_word_the_masked_lm_predicts_there(fixture_checkpoint):
    originals = ["all work and no play", "makes jack a dull boy"]
    copies = [(0, "all [MASK] and no [MASK]"), (1, "[MASK] jack a dull boy"), (1, "jack a dull")]
    masked = [text for _, text in copies[:2]]
    best = likeliest(reference_scores(fixture_checkpoint, masked), 1)  # one row per mask, in order
    expected = [(0, f"all {best[0][0]} and no {best[1][0]}"), (1, f"{best[2][0]} jack a dull boy"), (1, "jack a dull")]
    expected = [(s, t) for s, t in expected if t != originals[s]]  # a copy equal to its source is dropped
    got = fill_masks(copies, originals, str(fixture_checkpoint), max_seq_len=16, seed=0, top_k=1,
                     verbose=False)
    assert got == expected

    # Sampling: every word among the k likeliest, the same for the same seed, varied across seeds.
    top3 = likeliest(reference_scores(fixture_checkpoint, masked), 3)
    draws = [fill_masks(copies[:1], originals, str(fixture_checkpoint), max_seq_len=16, seed=seed,
                        top_k=3, verbose=False) for seed in range(12)]
    words = [draw[0][1].split() for draw in draws if draw]
    assert all(w[1] in top3[0] and w[4] in top3[1] for w in words)
    assert len({(w[1], w[4]) for w in words}) > 1
    again = fill_masks(copies[:1], originals, str(fixture_checkpoint), max_seq_len=16, seed=3, top_k=3,
                       verbose=False)
    assert again == draws[3]

    # Pairs: each side's masks, in order.
    pair = fill_masks([(0, ("all [MASK]", "[MASK] boy"))], [("all work", "dull boy")], str(fixture_checkpoint),
                      max_seq_len=16, seed=0, top_k=1, verbose=False)
    assert pair[0][1][0].split()[0] == "all" and pair[0][1][1].split()[1] == "boy"
    assert "[MASK]" not in " ".join(pair[0][1])


@pytest.mark.single_backend  # refused before any model runs
def test_a_checkpoint_without_mlm_heads_or_a_mask_cut_off(fixture_checkpoint, tmp_path):
    from kbert import BertModel, export_checkpoint
    from kbert.config import BertConfig

    bare = tmp_path / "bare"
    config = BertConfig.from_json_file(str(fixture_checkpoint / "bert_config.json"))
    export_checkpoint(BertModel(config), str(bare), vocab_file=str(fixture_checkpoint / "vocab.txt"))  # no MLM head
    with pytest.raises(CheckpointError):
        fill_masks([(0, "all [MASK]")], ["all work"], str(bare), max_seq_len=16, seed=0, verbose=False)
    # A mask past max_seq_len: the copy keeps its masks rather than guess which is which.
    long = "all work and no play makes jack a [MASK]"
    assert fill_masks([(0, long)], ["x"], str(fixture_checkpoint), max_seq_len=6, seed=0,
                      verbose=False) == [(0, long)]


@pytest.mark.single_backend  # the command's wiring: the same on every backend
def test_kbert_materials_augment_with_a_masked_lm(fixture_checkpoint, tmp_path, monkeypatch):
    from kbert.commands import materials as materials_command
    from kbert.config import BertConfig
    from kbert.materials import load_materials
    from kbert.model import BertModel
    from kbert.options import MaterialsOptions

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WHOLE
    run = tmp_path / "run"
    run.mkdir()
    config = BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    BertModel(config, num_labels=2).save(run / "model.keras")
    (run / "vocab.txt").write_text("".join(f"{t}\n" for t in vocab))
    (run / "run.json").write_text(json.dumps(
        {"kind": "teacher", "status": "complete", "task": "SST-2", "labels": ["0", "1"], "num_labels": 2,
         "options": {"task": "SST-2", "max_seq_len": 12, "cased": False}}))
    train = ["all work and no play", "makes jack a dull boy", "no play makes a dull boy", "all work makes jack"]
    task = tmp_path / "glue" / "SST-2"
    task.mkdir(parents=True)
    (task / "train.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(train)))
    (task / "dev.tsv").write_text("sentence\tlabel\nall work\t0\n")
    parser = argparse.ArgumentParser()
    materials_command.add_arguments(parser)
    out = tmp_path / "materials"
    materials_command.run(parser.parse_args([
        "--model", str(run), "--output", str(out), "--data-dir", str(tmp_path / "glue"), "--splits", "train,dev",
        "--augment", "8", "--seed", "1", "--mlm", str(fixture_checkpoint), "--mlm-top-k", "4"]))
    augmented = load_materials(str(out)).splits["augmented"]
    assert (out / "augmented-mlm.parts" / "masked-lm-chunk-00000.json").is_file()  # kept for a re-run
    assert len(augmented) > 0
    for sentence, source in zip(augmented.sentence, augmented.source):
        assert "[MASK]" not in sentence and sentence != train[source]
        assert set(sentence.split()) <= set(WHOLE)
    assert 4 not in augmented.x  # no mask id reaches the teacher

    # Materials of another setup in --output are refused before any rewriting.
    from kbert import materials as materials_module
    from kbert.errors import DataError

    monkeypatch.setattr(materials_module, "fill_masks", lambda *a, **k: pytest.fail("rewrote before refusing"))
    with pytest.raises(DataError, match="materials of another max_seq_len"):
        materials_command.run(parser.parse_args([
            "--model", str(run), "--output", str(out), "--data-dir", str(tmp_path / "glue"), "--splits", "train,dev",
            "--augment", "8", "--seed", "1", "--mlm", str(fixture_checkpoint), "--max-seq-len", "10"]))
    with pytest.raises(ConfigError, match="--mlm .* needs --augment N"):
        MaterialsOptions(mlm=str(fixture_checkpoint))


@pytest.mark.single_backend  # the chunks' files and their bookkeeping: the same on every backend
def test_a_killed_rewrite_resumes_at_its_first_unsaved_chunk(fixture_checkpoint, tmp_path, monkeypatch):
    """The rewrites are saved a chunk of copies at a time: killed in the
    second chunk, a second call runs the masked LM on the chunks not saved
    only and returns the uninterrupted call's copies; other options (here
    the seed) start over."""
    import kbert.views as views
    from kbert import materials as materials_module

    monkeypatch.setattr(materials_module, "MLM_CHUNK_COPIES", 2)
    originals = ["all work and no play", "makes jack a dull boy"]
    copies = [(0, "all [MASK] and no play"), (0, "all work [MASK] no [MASK]"), (1, "[MASK] jack a dull boy"),
              (1, "makes [MASK] a dull [MASK]"), (1, "makes jack [MASK] dull boy")]
    kwargs = dict(max_seq_len=16, seed=0, top_k=3, batch_size=1, verbose=False)
    whole = fill_masks(copies, originals, str(fixture_checkpoint), **kwargs)

    calls, kill_at = [], [None]

    class Counting:
        def __init__(self, model):
            self.model = model

        def predict_on_batch(self, x):
            calls.append(len(x[0]))
            if len(calls) == kill_at[0]:
                raise KeyboardInterrupt
            return self.model.predict_on_batch(x)

    real = views.pretraining_model
    monkeypatch.setattr(views, "pretraining_model", lambda bert: Counting(real(bert)))
    out = tmp_path / "materials"
    kill_at[0] = 3  # the first copy of the second chunk
    with pytest.raises(KeyboardInterrupt):
        fill_masks(copies, originals, str(fixture_checkpoint), out_dir=str(out), **kwargs)
    parts = out / "augmented-mlm.parts"
    assert sorted(p.name for p in parts.iterdir()) == ["key.json", "masked-lm-chunk-00000.json"]

    calls.clear()
    kill_at[0] = None
    assert fill_masks(copies, originals, str(fixture_checkpoint), out_dir=str(out), **kwargs) == whole
    assert len(calls) == 3  # chunks 1 and 2 only
    calls.clear()
    assert fill_masks(copies, originals, str(fixture_checkpoint), out_dir=str(out), **kwargs) == whole
    assert calls == []  # a re-run reads every rewrite back

    # A torn chunk is rewritten; another seed's call discards the parts and starts over.
    (parts / "masked-lm-chunk-00001.json").write_text("{")
    assert fill_masks(copies, originals, str(fixture_checkpoint), out_dir=str(out), **kwargs) == whole
    assert len(calls) == 2
    calls.clear()
    other = fill_masks(copies, originals, str(fixture_checkpoint), out_dir=str(out), **dict(kwargs, seed=5))
    assert len(calls) == 5
    assert other == fill_masks(copies, originals, str(fixture_checkpoint), **dict(kwargs, seed=5))

    # The same weights with another vocabulary (a word respelled) rewrite again, in its words.
    import shutil

    respelled = tmp_path / "respelled"
    shutil.copytree(fixture_checkpoint, respelled)
    vocab = (respelled / "vocab.txt").read_text().splitlines()
    (respelled / "vocab.txt").write_text("".join(f"{'toy' if t == 'boy' else t}\n" for t in vocab))
    calls.clear()
    assert fill_masks(copies, originals, str(respelled), out_dir=str(out), **kwargs) == fill_masks(
        copies, originals, str(respelled), **kwargs)
    assert len(calls) == 5 + 5

    # Pairs come back as pairs, killed or not.
    pairs = [(0, ("all [MASK]", "[MASK] boy")), (0, ("all work", "a [MASK] boy")), (1, ("[MASK] jack", "no play"))]
    pair_originals = [("all work", "dull boy"), ("makes jack", "no play")]
    whole = fill_masks(pairs, pair_originals, str(fixture_checkpoint), **kwargs)
    assert all(isinstance(text, tuple) for _, text in whole)
    calls.clear()
    kill_at[0] = 3
    with pytest.raises(KeyboardInterrupt):
        fill_masks(pairs, pair_originals, str(fixture_checkpoint), out_dir=str(tmp_path / "pairs"), **kwargs)
    calls.clear()
    kill_at[0] = None
    assert fill_masks(pairs, pair_originals, str(fixture_checkpoint), out_dir=str(tmp_path / "pairs"),
                      **kwargs) == whole
    assert len(calls) == 1
