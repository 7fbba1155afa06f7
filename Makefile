# Two commands do everything: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: install run test bench soak lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

## Start the API on http://127.0.0.1:$(PORT) on an embedded moto server, seeded with a demo brand.
run: install
	PORT=$(PORT) $(PY) -m chalicelib.cli run-local

## The whole suite: unit, HTTP integration on moto and on DynamoDB Local, concurrency.
test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadfile

## Benchmarks: request units per operation, handler overhead, cold-start imports.
bench: install
	$(PY) -m bench.run

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
