# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# One test process by default: the rate and fault tests measure what real workers do, and two
# test processes on two cores made them flaky (a rate window of 17 calls for 15 allowed).
# `make test PYTEST_ARGS="-n 2"` runs two processes (pytest-xdist; each starts its own Redis):
# about 6 minutes instead of 11, for a quick look.
PYTEST_ARGS ?=

.PHONY: demo test lint types unit integration bench soak install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes; editable, with the test extras.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/htap-sync demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS) tests/unit

integration: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS) tests/integration

# Lint, types, then every test. pytest exits 5 when it collects nothing: that fails here too.
test: lint types
	$(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks print ratios against a reference measured in the same run (see bench/).
# `python -m bench` runs them all and writes BENCHMARKS.md; the bench extra brings aiohttp, psutil.
bench: $(STAMP)
	$(BIN)/python -c 'import aiohttp, psutil' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench

# The soak (not part of `make test`): the installed product as processes (3 workers, Redis
# with AOF, the simulator with faults) through a worker kill, a Redis restart, a 500 window and
# 429s, for a few minutes; prints one table and writes SOAK.md. `SOAK_ARGS=--sentinel` adds
# two Sentinel failovers. Exits 1 when a ticket was lost, a task created twice or a failure
# was false.
SOAK_ARGS ?=
soak: $(STAMP)
	$(BIN)/python -c 'import aiohttp, psutil' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
