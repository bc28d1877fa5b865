"""Seeded mutations of files, and the one verdict every mutated input must get.

Plain seeded mutation rather than hypothesis: the cases are the same on
every run and every machine, so a failure names a case that reproduces, and
the count is bounded so the suite stays inside `make test`'s budget.
"""

import contextlib
import json
import signal

import numpy as np

from kbert.errors import KbertError

# Values of every JSON type and several wrong ranges, put where another was.
ODD_VALUES = [None, True, False, 0, -1, 1e30, -1e-30, 2**63, "", "abc", "0.1", "1e-12", "gelu", [], [1, 2],
              {}, {"a": 1}, float("nan"), float("inf"), 1.5, "x" * 1000]


def byte_mutations(data, rng, count):
    """`count` (description, bytes) variants of `data`: a flipped bit, a byte
    set at random, truncation, inserted, deleted, duplicated or zeroed runs."""
    data = bytes(data)
    for _ in range(count):
        kind = rng.choice(["flip", "set", "truncate", "insert", "delete", "duplicate", "zero"])
        n = len(data)
        at = int(rng.integers(0, max(n, 1)))
        span = int(rng.integers(1, 64))
        if kind == "flip" and n:
            out = bytearray(data)
            out[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == "set" and n:
            out = bytearray(data)
            out[at] = int(rng.integers(0, 256))
        elif kind == "truncate":
            out = data[:at]
        elif kind == "insert":
            out = data[:at] + rng.integers(0, 256, span, dtype=np.uint8).tobytes() + data[at:]
        elif kind == "delete":
            out = data[:at] + data[at + span:]
        elif kind == "duplicate":
            out = data[:at + span] + data[at:]
        else:
            out = bytearray(data)
            out[at:at + span] = bytes(len(out[at:at + span]))
        yield f"{kind}@{at}", bytes(out)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def json_mutations(value, rng, count):
    """`count` (description, text) variants of a JSON value: a field replaced
    by a value of another type or range, deleted, or added; or the text cut,
    or nested past any parser's depth."""
    paths = [p for p in _paths(value) if p]
    for _ in range(count):
        kind = rng.choice(["replace", "replace", "replace", "delete", "add", "cut", "deep"])
        if kind == "deep":
            yield "deep", "[" * 100_000 + "]" * 100_000
            continue
        text = json.dumps(value)
        if kind == "cut":
            at = int(rng.integers(0, len(text)))
            yield f"cut@{at}", text[:at]
            continue
        mutated = json.loads(text)
        path = paths[int(rng.integers(0, len(paths)))] if paths else ()
        owner = mutated
        for key in path[:-1]:
            owner = owner[key]
        if kind == "replace" and path:
            new = ODD_VALUES[int(rng.integers(0, len(ODD_VALUES)))]
            owner[path[-1]] = new
            yield f"{'.'.join(map(str, path))}={new!r:.40}", json.dumps(mutated)
        elif kind == "delete" and path and isinstance(owner, dict):
            del owner[path[-1]]
            yield f"del {'.'.join(map(str, path))}", json.dumps(mutated)
        else:
            target = owner if isinstance(owner, dict) else mutated
            if isinstance(target, dict):
                target[f"unknown_{int(rng.integers(0, 1000))}"] = ODD_VALUES[int(rng.integers(0, len(ODD_VALUES)))]
            yield "add", json.dumps(mutated)


class Hang(Exception):
    """A case ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds):
    def stop(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def verdict(function, seconds=20):
    """("ok", result) or ("refused", the KbertError); anything else is raised
    as an AssertionError naming what escaped."""
    try:
        with time_limit(seconds):
            return "ok", function()
    except KbertError as error:
        return "refused", error
    except Hang as error:
        raise AssertionError(f"hang: {error}") from None
    except Exception as error:  # noqa: BLE001 -- the point: nothing else may escape
        raise AssertionError(f"{type(error).__name__} escaped: {error}") from error


def all_finite(arrays):
    return all(np.isfinite(np.asarray(a, dtype=np.float64)).all() for a in arrays if np.asarray(a).size)


def same_arrays(a, b):
    """Two {name: array} maps hold the same names and bit-identical values."""
    return set(a) == set(b) and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)
