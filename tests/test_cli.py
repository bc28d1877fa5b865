"""The `kbert` console script: it answers `--help` without loading a backend
and prints only its own messages.

Each test runs the installed script in a subprocess, as a user does; the
modules it imported are read from Python's own `-X importtime` report
(`PYTHONPROFILEIMPORTTIME`), not from kbert.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from original_checkpoint import TINY_CONFIG, random_bert_weights, write_checkpoint

pytestmark = pytest.mark.keras_free

SCRIPT = os.path.join(os.path.dirname(sys.executable), "kbert")
BACKEND_MODULES = ("keras", "tensorflow", "jax", "torch")


def _script(*args, env=None):
    if not os.path.exists(SCRIPT):
        pytest.fail(f"the console script {SCRIPT} is not installed (pip install -e .)")
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})))


def _imported(stderr):
    """Top-level packages in a `-X importtime` report."""
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)\s*$", stderr, re.M)
    assert names, "no import report: PYTHONPROFILEIMPORTTIME had no effect"
    return {name.split(".")[0] for name in names}


def _commands():
    # The command names of the top-level help, read from its output.
    out = _script("--help").stdout
    block = out.split("positional arguments:")[1].split("options:")[0]
    return re.findall(r"^    (\S+)", block, re.M)


def test_every_help_answers_without_loading_a_backend():
    commands = _commands()
    assert {"finetune", "materials", "distill", "predict", "export", "run"} <= set(commands), commands
    for args in [("--help",)] + [(command, "--help") for command in commands]:
        done = _script(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
        assert done.returncode == 0, (args, done.stderr[-2000:])
        assert "usage: kbert" in done.stdout, args
        loaded = _imported(done.stderr) & set(BACKEND_MODULES)
        assert not loaded, f"`kbert {' '.join(args)}` imported {sorted(loaded)}"
        # Nothing but the import report on stderr.
        others = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
        assert others == [], (args, others)


def test_a_command_prints_only_its_own_messages_unless_verbose(tmp_path):
    config = dict(TINY_CONFIG)
    write_checkpoint(tmp_path / "ckpt", config, random_bert_weights(config, np.random.default_rng(0)),
                     vocab=[f"[unused{i}]" for i in range(config["vocab_size"])])
    # Original-format checkpoints are read with TensorFlow, whose C++ start-up
    # lines ("oneDNN custom operations are on", ...) went to stderr.
    quiet = _script("names", str(tmp_path / "ckpt"))
    assert quiet.returncode == 0, quiet.stderr
    assert "bert/embeddings/word_embeddings -> Embedding-Token/embeddings" in quiet.stdout
    assert quiet.stderr == ""

    # An error is still the command's own one line.
    missing = _script("names", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    lines = missing.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kbert names: error: "), lines
    assert str(tmp_path / "nowhere") in lines[0]
