# Two commands do everything: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: install run test bench soak lint clean synth deploy

$(VENV)/.installed: requirements.txt requirements-dev.txt infra/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip>=24,<26.3"  # chalice 1.34 packages with pip and requires <26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

## Start the API on http://127.0.0.1:$(PORT) on an embedded moto server, seeded with a demo brand.
run: install
	PORT=$(PORT) $(PY) -m devtools.cli run-local

## The static checks (ruff, the import contracts, mypy), then the whole suite: unit, HTTP integration
## on moto and on DynamoDB Local, concurrency.
test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(PY) -m mypy
	$(PY) -m pytest -n 2 --dist loadfile

## Benchmarks: request units per operation, handler overhead, cold-start imports, webhook and bulk import
## throughput (python -m bench.imports --rows 100000 for the full import figure); then the program's
## own sections: tiers, reward redemption and capped earns, paid plans, referrals.
bench: install
	$(PY) -m bench.run
	$(PY) -m bench.tiers
	$(PY) -m bench.rewards --iterations 100
	$(PY) -m bench.plans
	$(PY) -m bench.referrals

## Long runs, not part of `make test`: the ledger state machine (tests/model) until at least
## SOAK_STEPS steps on each emulator, and the API fuzzer with SOAK_FUZZ_EXAMPLES examples per
## operation and mode. The step counts are printed at the end; a failure prints its shrunk sequence.
SOAK_STEPS ?= 10000
SOAK_FUZZ_EXAMPLES ?= 100
soak: install
	LOYALTY_SOAK_STEPS=$(SOAK_STEPS) $(PY) -m pytest tests/model/test_ledger_state_machine.py tests/model/test_machine_finds_planted_bugs.py -n 2 --dist load
	LOYALTY_FUZZ_EXAMPLES=$(SOAK_FUZZ_EXAMPLES) $(PY) -m pytest tests/fuzz/test_openapi_fuzz.py -p no:xdist

## Synthesise every deployed stage (dev, prod) into infra/cdk.out offline (no AWS account,
## credentials ignored): cdk-nag's AwsSolutions pack runs during synthesis and fails it; then cfn-lint.
synth: install
	cd infra && env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
	  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
	  ../node_modules/.bin/cdk synth --quiet
	$(VENV)/bin/cfn-lint infra/cdk.out/dev.template.json infra/cdk.out/prod.template.json

## Deploy one stage with your AWS credentials (README, "Deploy to AWS"): make deploy STAGE=prod
deploy: install
	@case "$(STAGE)" in dev|prod) ;; *) echo "usage: make deploy STAGE=dev|prod" >&2; exit 2;; esac
	cd infra && ../node_modules/.bin/cdk deploy $(STAGE) -c stages=$(STAGE) --require-approval broadening

## The static checks of `make test` alone.
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(PY) -m mypy

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis infra/cdk.out
