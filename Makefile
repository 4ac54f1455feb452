# Notifier. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test test-fast typecheck browser pgbouncer promtool screenshot lint format clean bench bench-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(BENCH_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

## Notifier vs the tutorial FastAPI server, every scenario (< 10 min on 2 cores):
## prints the table and writes bench/results/<date>.json. See bench/README.md.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

## The same with smaller counts (< 1 min): a smoke test of the benchmark.
bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick

## Install everything and start the server on 127.0.0.1:8000 (SQLite, in-process hub).
run: $(STAMP)
	$(BIN)/notifier init-env
	$(BIN)/notifier serve

## Install everything and run the whole test suite (ruff and mypy --strict first).
test: $(STAMP) browser pgbouncer promtool
	$(BIN)/ruff check notifier tests migrations bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadscope

## The unit tests only (no server, subprocess or service): seconds, for the edit-test loop.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m unit -q

## mypy --strict on notifier/ (config: [tool.mypy] in pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/mypy

## Debian's Chromium for the browser tests (apt-get; never a downloaded browser build).
## Off CI a failed install only makes those tests skip; on CI (CI=true) it stops the run.
browser:
	sh scripts/install-browser.sh || [ "$$CI" != "true" ]

## Debian's PgBouncer for tests/test_pgbouncer.py (apt-get; the test starts its own on a
## free port). Off CI a failed install only makes that test skip; on CI it stops the run.
pgbouncer:
	sh scripts/install-pgbouncer.sh || [ "$$CI" != "true" ]

## Debian's promtool (package prometheus, service not started) to lint /metrics in tests.
## Off CI a failed install only makes those checks skip; on CI (CI=true) it stops the run.
promtool:
	sh scripts/install-promtool.sh || [ "$$CI" != "true" ]

## Retake docs/screenshot.png (the page as an admin sees it) with the browser test.
screenshot: $(STAMP) browser
	UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest tests/test_page.py -k admin -q

lint: $(STAMP)
	$(BIN)/ruff check notifier tests migrations bench
	$(BIN)/ruff format --check notifier tests migrations bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format notifier tests migrations bench
	$(BIN)/ruff check --fix notifier tests migrations bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
