"""Fuzz: `kbert pretrain` on damaged corpora, and resumed from damaged files.

Every outcome must be the right result or a `KbertError` naming the file:
a run on a corpus that is refused leaves nothing behind, one that is
accepted completes with the steps it was asked for; a resumed run either
ends bit for bit where the uninterrupted run does (instances.npz, a cache,
is made again exactly) or is refused naming the damaged file, which is left
where it was.  Never a completed run with a wrong global_step.  One tiny run
is built and killed once for the module; each case works on a copy.
"""

import json
import os
import shutil
import zlib

import numpy as np
import pytest
from mutate import byte_mutations, json_mutations, same_arrays, verdict
from test_pretraining import build_small_run, read_weights, write_corpus

pytestmark = [pytest.mark.single_backend, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return build_small_run(tmp_path_factory.mktemp("fuzz_pretraining"))


# ---------------------------------------------------------------- corpora


def corpus_cases(tmp_path, rng):
    """(name, path, expected outcome or None for either) of damaged corpora."""
    good = write_corpus(tmp_path / "good.txt", 6).read_bytes()
    cases = [("missing", None, "refused"), ("empty", b"", "refused"),
             ("binary", rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), "refused"),
             ("one document", b"the cat sat on the mat .\nthe dog ran .\n", "refused"),
             # One sentence of 300,000 pieces, cut to the sequence length.
             ("huge line", b"the cat " * 150_000 + b".\n\nthe dog ran .\n", "ok")]
    cases += [(what, data, None) for what, data in byte_mutations(good, rng, 4)]
    for i, (what, data, expected) in enumerate(cases):
        path = tmp_path / f"corpus-{i}.txt"
        if data is not None:
            path.write_bytes(data)
        yield what, str(path), expected


def test_damaged_corpora(run, tmp_path):
    from kbert.pretraining import PretrainOptions, pretrain

    rng = np.random.default_rng(zlib.crc32(b"corpus"))
    for i, (what, path, expected) in enumerate(corpus_cases(tmp_path, rng)):
        # One step: what matters is whether and how the run starts.
        options = PretrainOptions(**dict(run["options"].__dict__, corpus=(path,), num_train_steps=1, save_every=1))
        output = str(tmp_path / f"run-{i}")
        outcome, result = verdict(lambda: pretrain(options, output, progress=False), seconds=60)
        assert expected in (None, outcome), f"{what}: {outcome} ({result})"
        if outcome == "refused":
            assert path in str(result), f"{what}: the message does not name the corpus: {result}"
            assert not os.path.exists(output), f"{what}: refused, but wrote {output}"
        else:
            assert result.status == "complete" and result.global_step == 1, what
            assert result.results["sequences"] == options.batch_size and result.results["instances"] >= 2, what


# ---------------------------------------------------------------- resume files


def resume_case(run, tmp_path, name, data, what):
    """Resume a copy of the interrupted run whose `name` holds `data`; check
    the outcome; return it."""
    from kbert.pretraining import pretrain

    case = str(tmp_path / "case")
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(run["interrupted"], case)
    path = os.path.join(case, name)
    with open(path, "wb") as f:
        f.write(data)
    outcome, result = verdict(lambda: pretrain(run["options"], case, resume=True, progress=False), seconds=60)
    if outcome == "ok":
        assert result.status == "complete" and result.global_step == 4, f"{name} {what}: {result.global_step}"
        assert result.results["history"] == run["straight"].results["history"], f"{name} {what}"
        assert same_arrays(read_weights(case), run["weights"]), f"{name} {what}: resumed to other weights"
    else:
        assert os.path.basename(name) in str(result), f"{name} {what}: the message does not name it: {result}"
        with open(path, "rb") as f:
            assert f.read() == data, f"{name} {what}: refused, and the file changed"
    return outcome


@pytest.mark.parametrize("name, count", [("instances.npz", 5), ("training/state-2.weights.h5", 5)])
def test_damaged_resume_files(run, tmp_path, name, count):
    original = open(os.path.join(run["interrupted"], name), "rb").read()
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    outcomes = [resume_case(run, tmp_path, name, data, what) for what, data in byte_mutations(original, rng, count)]
    if name == "instances.npz":  # a cache: made again from the corpus, exactly
        assert outcomes == ["ok"] * count, outcomes
    else:  # the sha256 in state.json: anything but the same bytes is refused
        assert outcomes.count("refused") >= count - 1, outcomes


def test_damaged_state_json(run, tmp_path):
    name = "training/state.json"
    with open(os.path.join(run["interrupted"], name)) as f:
        state = json.load(f)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    mutations = list(json_mutations(state, rng, 12))
    mutations.append(("step=9999", json.dumps(dict(state, step=9999))))
    outcomes = [resume_case(run, tmp_path, name, text.encode("utf-8"), what) for what, text in mutations]
    # Every field is covered by the checksum: no change goes unnoticed.
    assert outcomes == ["refused"] * len(mutations), list(zip([m[0] for m in mutations], outcomes))
