"""What a test needs from outside the repository: the shared fixtures
(`../shared`) and the packages of the `test` extra.

Without them a test skips, so a checkout without `../shared` still runs
the rest.  With `KBERT_REQUIRE_FIXTURES=1` (which `make test` sets when
`../shared` exists, and so CI) a missing need fails the test instead: a
suite that cannot reach its fixtures must not go green by skipping.
"""

import importlib
import os

import pytest

REQUIRED = os.environ.get("KBERT_REQUIRE_FIXTURES") == "1"


def missing(reason):
    """Skip, or fail under KBERT_REQUIRE_FIXTURES=1, saying what is missing."""
    if REQUIRED:
        pytest.fail(f"KBERT_REQUIRE_FIXTURES=1 and {reason}", pytrace=False)
    pytest.skip(reason)


def module(name):
    """`pytest.importorskip(name)` that fails under KBERT_REQUIRE_FIXTURES=1."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        missing(f"{name} cannot be imported ({e}); install the test extra: pip install -e '.[test]'")
