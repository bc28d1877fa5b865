"""Shared fixtures: the shared checkpoint fixture, checkpoints the tests write
themselves in the original format, and the Keras backend in use."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA compiles the suite's tiny models more often than it runs them, so its
# CPU code is left unoptimised by LLVM here: the same programs (HLO), less
# tuned machine code.  With a cold cache, test_distill.py and
# test_transformer_student.py took 104 s on JAX against 137 s, and
# TensorFlow's XLA-compiled fine-tuning resume test 66 s against 99 s.
# Benchmarks and users run XLA's defaults.
# A test that trains a real model in a subprocess takes these out again (fast_compile_flags_removed).
FAST_COMPILE_XLA_FLAGS = ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true")
xla_flags = list(FAST_COMPILE_XLA_FLAGS)
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # One compute thread per pytest-xdist worker: the workers already share
    # the cores, and a backend's own thread pool in each of them on top
    # oversubscribes the cores (torch's spinning OpenMP threads worst).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    xla_flags += ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
os.environ.setdefault("XLA_FLAGS", " ".join(xla_flags))

# JAX compiles every new shape of every new model; the suite builds many
# alike (a fine-tuning run, killed and resumed, compiles the same steps
# three times).  JAX's own persistent compilation cache, shared by the
# workers and kept in build/ between runs, compiles each program once: the
# same executables, so the same results.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(pathlib.Path(__file__).resolve().parents[1] / "build" /
                                                      "jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def fast_compile_flags_removed(environ):
    """`environ` with XLA's optimisation back on: for a subprocess that
    trains a real model (MiniLM), whose steps run far more often than they
    compile."""
    flags = [flag for flag in environ.get("XLA_FLAGS", "").split() if flag not in FAST_COMPILE_XLA_FLAGS]
    return dict(environ, XLA_FLAGS=" ".join(flags))


import numpy as np  # noqa: E402
import pytest  # noqa: E402

from needs import REQUIRED, missing  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("KBERT_SHARED", REPO.parent / "shared"))
FIXTURE_CHECKPOINT = SHARED / "fixtures" / "keras_bert_test_checkpoint"


def pytest_report_header(config):
    import keras

    fixtures = "a missing fixture fails" if REQUIRED else "a missing fixture skips"
    return f"keras {keras.__version__}, backend {keras.backend.backend()}; {fixtures}"


def pytest_collection_modifyitems(config, items):
    """A test marked only_backend("jax") runs in that backend's pass alone:
    for a slow check that needs a backend other than the suite's first
    (torch exports nothing, and --distribute is JAX's)."""
    import keras

    backend = keras.backend.backend()
    kept, deselected = [], []
    for item in items:
        marker = item.get_closest_marker("only_backend")
        if marker is not None:
            # A typo, or a marker the Makefile's later passes deselect, would
            # leave the test running nowhere, silently.
            if not marker.args or not set(marker.args) <= {"jax", "tensorflow", "torch"}:
                raise pytest.UsageError(f"{item.nodeid}: only_backend takes backend names, got {marker.args!r}")
            if item.get_closest_marker("single_backend") or item.get_closest_marker("keras_free"):
                raise pytest.UsageError(f"{item.nodeid}: only_backend with single_backend or keras_free runs nowhere")
        (deselected if marker and backend not in marker.args else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def fixture_checkpoint():
    if not (FIXTURE_CHECKPOINT / "bert_config.json").is_file():
        missing(f"the shared fixture is missing: {FIXTURE_CHECKPOINT}")
    return FIXTURE_CHECKPOINT


@pytest.fixture(scope="session")
def glue_dir():
    # The Makefile exports GLUE_DIR empty when ../shared/glue_data is absent.
    path = pathlib.Path(os.environ.get("GLUE_DIR") or SHARED / "glue_data")
    if not path.is_dir():
        missing(f"the GLUE data is missing: {path}")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
