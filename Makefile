# Notifier. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test browser screenshot lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Install everything and start the server on 127.0.0.1:8000 (SQLite, in-process hub).
run: $(STAMP)
	$(BIN)/notifier init-env
	$(BIN)/notifier serve

## Install everything and run the whole test suite.
test: $(STAMP) browser
	$(BIN)/ruff check notifier tests migrations
	$(BIN)/python -m pytest

## Debian's Chromium for the browser tests (apt-get; never a downloaded browser build).
## Off CI a failed install only makes those tests skip; on CI (CI=true) it stops the run.
browser:
	sh scripts/install-browser.sh || [ "$$CI" != "true" ]

## Retake docs/screenshot.png (the page as an admin sees it) with the browser test.
screenshot: $(STAMP) browser
	UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest tests/test_page.py -k admin -q

lint: $(STAMP)
	$(BIN)/ruff check notifier tests migrations
	$(BIN)/ruff format --check notifier tests migrations

format: $(STAMP)
	$(BIN)/ruff format notifier tests migrations
	$(BIN)/ruff check --fix notifier tests migrations

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
