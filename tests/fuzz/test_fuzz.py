"""Fuzz: corrupted checkpoints (original and safetensors), configs,
manifests, .npz materials, run records and GLUE TSVs.

Every outcome must be identical weights (data), or a `KbertError`: never
another exception, a hang, or a model whose output is NaN.  Seeded and
bounded (see `mutate.py`), so it runs in `make test`, once, with the first
backend.

The one corruption no loader can catch: safetensors stores no checksum, so
a flipped bit inside a tensor's data loads as a different weight (the last
test shows it).  The original format's index holds a crc32c per tensor, and
kbert's run directories record sha256 hashes (`kbert evaluate --verify`).
"""

import json
import shutil
import zlib

import numpy as np
import pytest
from mutate import all_finite, byte_mutations, json_mutations, same_arrays, verdict

import needs

pytestmark = [pytest.mark.single_backend, pytest.mark.slow]

INPUT = np.array([[2, 5, 7, 3, 0], [2, 9, 3, 11, 3]], np.int32)


def weights_of(model):
    import keras

    return {w.path: keras.ops.convert_to_numpy(w.value) for w in model.weights}


def outputs_of(model):
    import keras

    ids = np.minimum(INPUT, model.bert_config.vocab_size - 1)
    segments = np.minimum((np.arange(ids.shape[1]) >= 3).astype(np.int32)[None].repeat(2, 0),
                          model.bert_config.type_vocab_size - 1)
    inputs = [ids, segments, np.zeros_like(ids)][: len(model.inputs)]  # Input-Masked when training=True
    out = model(inputs)
    return [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def check_checkpoint_case(load, reference, what):
    outcome, model = verdict(load)
    if outcome == "ok":
        assert same_arrays(weights_of(model), reference), f"{what}: loaded, with other weights"
        assert all_finite(outputs_of(model)), f"{what}: loaded, and gives NaN or inf"
    return outcome


# ---------------------------------------------------------------- original checkpoints


@pytest.fixture(scope="module")
def original(fixture_checkpoint):
    from kbert import load_checkpoint

    return weights_of(load_checkpoint(fixture_checkpoint, training=True))


@pytest.mark.parametrize("name, count", [
    ("bert_model.ckpt.index", 12), ("bert_model.ckpt.data-00000-of-00001", 12), ("vocab.txt", 6)])
def test_original_checkpoint_bytes(fixture_checkpoint, original, tmp_path, name, count):
    from kbert import load_checkpoint

    rng = np.random.default_rng(zlib.crc32(name.encode()))
    outcomes = []
    for i, (what, data) in enumerate(byte_mutations((fixture_checkpoint / name).read_bytes(), rng, count)):
        case = tmp_path / str(i)
        shutil.copytree(fixture_checkpoint, case)
        (case / name).write_bytes(data)
        outcomes.append(check_checkpoint_case(lambda: load_checkpoint(case, training=True), original,
                                              f"{name} {what}"))
    if name != "vocab.txt":  # most damage to the index or data must be refused
        assert outcomes.count("refused") >= count // 2, outcomes


def test_original_config_fields(fixture_checkpoint, original, tmp_path):
    from kbert import load_checkpoint

    config = json.loads((fixture_checkpoint / "bert_config.json").read_text())
    rng = np.random.default_rng(7)
    for i, (what, text) in enumerate(json_mutations(config, rng, 40)):
        case = tmp_path / str(i)
        shutil.copytree(fixture_checkpoint, case)
        (case / "bert_config.json").write_text(text)
        check_checkpoint_case(lambda: load_checkpoint(case, training=True), original, f"bert_config.json {what}")


# ---------------------------------------------------------------- safetensors


@pytest.fixture(scope="module")
def hf_checkpoint(tmp_path_factory):
    transformers = needs.module("transformers")
    needs.module("torch")
    directory = tmp_path_factory.mktemp("hf")
    config = transformers.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=12, max_position_embeddings=16, type_vocab_size=2)
    transformers.BertModel(config).save_pretrained(directory, safe_serialization=True)
    (directory / "vocab.txt").write_text("".join(f"{t}\n" for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                                 + [f"w{i}" for i in range(15)]))
    return directory


@pytest.fixture(scope="module")
def hf_reference(hf_checkpoint):
    from kbert import load_checkpoint

    return weights_of(load_checkpoint(hf_checkpoint, with_pooler=True))


def test_safetensors_header_and_config(hf_checkpoint, hf_reference, tmp_path):
    from kbert import load_checkpoint

    data = (hf_checkpoint / "model.safetensors").read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(11)
    cases = [(f"header {what}", "model.safetensors", mutated + data[header_end:])
             for what, mutated in byte_mutations(data[:header_end], rng, 16)]
    cases += [(f"truncated@{at}", "model.safetensors", data[:at]) for at in rng.integers(0, len(data), 4)]
    config = json.loads((hf_checkpoint / "config.json").read_text())
    cases += [(f"config.json {what}", "config.json", text.encode()) for what, text in json_mutations(config, rng, 24)]
    for i, (what, name, content) in enumerate(cases):
        case = tmp_path / str(i)
        shutil.copytree(hf_checkpoint, case)
        (case / name).write_bytes(content)
        check_checkpoint_case(lambda: load_checkpoint(case, with_pooler=True), hf_reference, what)


def test_safetensors_has_no_checksum_a_data_bit_flip_loads(hf_checkpoint, hf_reference, tmp_path):
    """The documented limit: the format cannot tell; only a recorded hash can."""
    from kbert import load_checkpoint

    shutil.copytree(hf_checkpoint, tmp_path / "flipped")
    data = bytearray((tmp_path / "flipped" / "model.safetensors").read_bytes())
    data[-3] ^= 0x01  # a mantissa bit of the last tensor's last value
    (tmp_path / "flipped" / "model.safetensors").write_bytes(bytes(data))
    loaded = weights_of(load_checkpoint(tmp_path / "flipped", with_pooler=True))
    assert not same_arrays(loaded, hf_reference)


# ---------------------------------------------------------------- materials, run records, TSVs


@pytest.fixture(scope="module")
def materials(tmp_path_factory):
    from test_materials import VOCAB, make_split, make_teacher

    from kbert.materials import MaterialsOptions, generate_materials

    rng = np.random.default_rng(5)
    out = tmp_path_factory.mktemp("materials")
    splits = {"train": make_split(rng, 16, pair=True), "dev": make_split(rng, 8)}
    generate_materials(make_teacher(), splits, str(out), vocab=VOCAB, teacher_id="t",
                       options=MaterialsOptions(task="SST-2", max_seq_len=10), verbose=False)
    return out


def materials_arrays(directory):
    from kbert.materials import load_materials

    loaded = load_materials(str(directory))
    arrays = {"embedding": loaded.embedding}
    for name, split in loaded.splits.items():
        arrays.update({f"{name}.{field}": getattr(split, field) for field in ("x", "segment", "length", "y",
                                                                              "ysm", "label", "sentence")})
    return arrays


def test_materials_manifest_and_npz(materials, tmp_path):
    reference = materials_arrays(materials)
    rng = np.random.default_rng(13)
    manifest = json.loads((materials / "manifest.json").read_text())
    cases = [(f"manifest {what}", "manifest.json", text.encode()) for what, text in json_mutations(manifest, rng, 40)]
    for name in ("dev.npz", "shared.npz"):
        cases += [(f"{name} {what}", name, data)
                  for what, data in byte_mutations((materials / name).read_bytes(), rng, 8)]
    for i, (what, name, content) in enumerate(cases):
        case = tmp_path / str(i)
        shutil.copytree(materials, case)
        (case / name).write_bytes(content)
        outcome, arrays = verdict(lambda: materials_arrays(case))
        if outcome == "ok":
            loaded = {k: v for k, v in arrays.items() if k in reference}
            assert same_arrays(loaded, {k: v for k, v in reference.items() if k in loaded}), what
            assert all_finite(v for k, v in arrays.items() if not k.endswith("sentence")), what


def test_run_records(tmp_path):
    from test_runs import LEGACY_STUDENT, LEGACY_TEACHER

    from kbert import runs

    rng = np.random.default_rng(17)
    for i, (what, text) in enumerate([*json_mutations(LEGACY_TEACHER, rng, 30),
                                       *json_mutations(LEGACY_STUDENT, rng, 20)]):
        case = tmp_path / str(i)
        case.mkdir()
        (case / "run.json").write_text(text)
        verdict(lambda: runs.read_run(case))


def test_glue_tsvs(glue_dir, tmp_path):
    from kbert.glue import get_processor

    rng = np.random.default_rng(19)
    for task in ("SST-2", "CoLA", "MRPC"):
        head = b"".join((glue_dir / task / "dev.tsv").open("rb").readlines()[:30])
        for i, (what, data) in enumerate(byte_mutations(head, rng, 15)):
            path = tmp_path / f"{task}-{i}.tsv"
            path.write_bytes(data)
            outcome, examples = verdict(lambda: get_processor(task).read_file(path, labeled=True))
            if outcome == "ok":
                assert all(isinstance(e.text_a, str) for e in examples), what
