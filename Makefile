# chatkeep: `make run` starts the server, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STATE ?= .test-state

.PHONY: run test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "chatkeep needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## Start the server on http://127.0.0.1:8080 (SQLite under ./data, the offline echo model).
run: install
	$(BIN)/chatkeep serve

## Start PostgreSQL and Redis if needed, run every test on SQLite and PostgreSQL, stop what was started.
test: install-test
	scripts/run-tests.sh $(STATE) $(PYTEST_ARGS)

## Benchmarks (not tests): see bench/README.md.
bench: $(VENV)/.installed-bench
	scripts/run-bench.sh $(STATE)

clean:
	rm -rf $(VENV) $(STATE) .pytest_cache
