"""Atomic writes leave nothing behind: a killed writer's temporary is
removed by the next writer of the same file, a live writer's is not."""

import os
import subprocess
import sys

import pytest

from kbert.atomic import atomic_output, stale_temporaries, write_text_atomic

pytestmark = pytest.mark.keras_free


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "model.keras"
    dead = tmp_path / f".model.keras.{dead_pid()}.abcd.keras"
    old_style = tmp_path / ".model.keras.k3j2h1.keras"  # before names carried a pid
    live = tmp_path / f".model.keras.{os.getpid()}.efgh.keras"  # a writer still at work
    other = tmp_path / f".vocab.txt.{dead_pid()}.x.tmp"  # another file's: not ours to judge
    for path in (dead, old_style, live, other):
        path.write_bytes(b"x" * 100)
    assert sorted(stale_temporaries(target)) == sorted([str(dead), str(old_style)])
    with atomic_output(target, suffix=".keras") as tmp:
        assert f".model.keras.{os.getpid()}." in tmp
        with open(tmp, "wb") as handle:
            handle.write(b"new")
    assert target.read_bytes() == b"new"
    assert not dead.exists() and not old_style.exists() and live.exists() and other.exists()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "run.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
