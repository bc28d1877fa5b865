# The two commands of the README: `make demo` and `make test`.
# Both create .venv when missing (idempotent: a stamp per extra, redone when
# setup.cfg changes) and then run.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKENDS ?= torch jax tensorflow
PYTEST_ARGS ?=
GLUE_DIR ?= $(if $(wildcard ../shared/glue_data),$(abspath ../shared/glue_data),)
export GLUE_DIR
# With ../shared present, a test that cannot find a fixture fails instead of
# skipping (tests/needs.py), so the suite cannot pass by skipping the core.
export KBERT_REQUIRE_FIXTURES ?= $(if $(wildcard ../shared/fixtures),1,0)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-%: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-demo
	KERAS_BACKEND=$${KERAS_BACKEND:-jax} $(BIN)/kbert run --task SST-2

# The whole suite on every backend; tests marked keras_free (no Keras in
# them) or single_backend (files, options or a command's wiring, a subprocess
# that pins its own backend, or a slow smoke run) run once, with the first
# backend, and only_backend("jax") tests in that backend's pass alone
# (docs/testing.md).  torch goes first: it runs tiny
# test models eagerly, where JAX compiles every new shape (the first pass
# took 302 s on torch, 811 s on JAX).  Two pytest-xdist workers, a test
# file each at a time: the tiny models' steps and JAX's compilations are
# single-threaded, so two files run side by side on the two cores, each
# worker with one compute thread (tests/conftest.py: torch's suite took
# 450 s with each worker's own thread pool, 209 s without).
PYTEST_WORKERS ?= 2
test: $(VENV)/.installed-test
	$(BIN)/ruff check kbert tests benchmarks docs
	$(BIN)/mkdocs build --strict --quiet
	@set -e; first=1; for backend in $(BACKENDS); do \
	  if [ $$first = 1 ]; then select=""; else select="not keras_free and not single_backend"; fi; \
	  echo "== KERAS_BACKEND=$$backend"; \
	  KERAS_BACKEND=$$backend $(BIN)/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile -m "$$select" $(PYTEST_ARGS); \
	  first=0; \
	done

# The documentation site (docs/, mkdocs.yml) into build/site.
docs: $(VENV)/.installed-docs
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) runs build .pytest_cache
