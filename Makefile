# `make demo` and `make test` work on a fresh machine: each creates .venv when missing.
PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast test-min lint bench docs clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12) and "versioncube needs Python >= 3.12")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The tests run in WORKERS processes side by side (pytest-xdist; WORKERS=0: in this one). Many
# wait on servers, subprocesses and timeouts rather than on the CPU, so one more worker than
# cores pays: on 2 cores `make test` took 17.4 min with 2 workers, 12.1 min with 3 (clean clone,
# a busy machine). --dist loadgroup: tests share out one by one, except those marked
# xdist_group("name"), which go to one worker together (the tests of an expensive module
# fixture; the bad-input catalogue and the page made from it).
WORKERS ?= 3
XDIST := -n $(WORKERS) --dist loadgroup

# everything: lint, then every test (the `slow` ones included)
test: lint
	$(BIN)/python -m pytest $(XDIST)

# the inner loop: no lint, no `slow` tests (multi-process, SIGKILL, subprocess-heavy, > ~2 s)
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest $(XDIST) -m "not slow"

# The test suite with the oldest dependency versions declared in pyproject.toml (slow: not in `test`).
VENV_MIN := .venv-min

$(VENV_MIN)/.installed: pyproject.toml ci/minimum-versions.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12) and "versioncube needs Python >= 3.12")'
	test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install -q --upgrade pip
	$(VENV_MIN)/bin/python -m pip install -q -e '.[test]' -c ci/minimum-versions.txt
	touch $@

test-min: $(VENV_MIN)/.installed
	$(VENV_MIN)/bin/python -m pytest

# the reference pages regenerated, then the site (mkdocs, material theme) built strictly into
# site/: a broken link, a missing page or a failing notebook stops it
docs: $(VENV)/.installed
	$(BIN)/python docs/generate_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) $(VENV_MIN) .pytest_cache .ruff_cache .mypy_cache .tools site .cache
