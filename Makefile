# Two commands do everything: `make run` and `make test`. Both install what is missing: `make run`
# only what serving needs (requirements-run.txt, npm's DynamoDB Local); `make test`, `make synth` and
# `make deploy` everything (requirements-dev.txt with the CDK app, the CDK CLI).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
#: make run's data (DynamoDB Local's tables, the local KMS key, the demo keys); make reset wipes it.
LOYALTY_LOCAL_DATA ?= .local
NPM_CI := npm ci --no-audit --no-fund --loglevel=error

.PHONY: install console-browser run reset test bench soak lint clean synth deploy docs docs-serve

$(VENV)/.run-installed: requirements.txt requirements-run.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip>=24,<26.3"  # chalice 1.34 packages with pip and requires <26.3
	$(PY) -m pip install --quiet -r requirements-run.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .  # the `loyalty` command in .venv/bin
	touch $@

$(VENV)/.installed: requirements.txt requirements-run.txt requirements-dev.txt infra/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip>=24,<26.3"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.run-installed

# npm ci empties node_modules first: each stamp is written after it, and the full install writes both.
node_modules/.run-installed: package.json package-lock.json
	$(NPM_CI) --omit=dev
	touch $@

node_modules/.installed: package.json package-lock.json
	$(NPM_CI)
	touch $@ node_modules/.run-installed

# The API reference's browser assets (GET /v1/docs): swagger-ui-dist's script and style sheet, copied
# into chalicelib/ so that Chalice packages them into the Lambda bundle (gitignored; the list is
# chalicelib.api.reference.COPIED_FILES).
API_DOCS_DIR := chalicelib/static/swagger-ui
API_DOCS_FILES := swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE
$(API_DOCS_DIR)/swagger-ui-bundle.js: node_modules/.run-installed
	rm -rf $(API_DOCS_DIR) && mkdir -p $(API_DOCS_DIR)
	cp $(addprefix node_modules/swagger-ui-dist/,$(API_DOCS_FILES)) $(API_DOCS_DIR)/

# The brand console's charting library (GET /console/): uplot's module and style sheet, copied like
# swagger-ui-dist (the list is chalicelib.api.console.COPIED_FILES).
CONSOLE_UPLOT_DIR := chalicelib/static/uplot
CONSOLE_UPLOT_FILES := dist/uPlot.esm.js dist/uPlot.min.css LICENSE
$(CONSOLE_UPLOT_DIR)/uPlot.esm.js: node_modules/.run-installed
	rm -rf $(CONSOLE_UPLOT_DIR) && mkdir -p $(CONSOLE_UPLOT_DIR)
	cp $(addprefix node_modules/uplot/,$(CONSOLE_UPLOT_FILES)) $(CONSOLE_UPLOT_DIR)/

# The console's browser tests drive Debian's chromium (Playwright's own download is not used):
# installed when missing (as root, or through sudo), silent when present.
console-browser:
	@test -x /usr/bin/chromium || { echo "installing chromium for the console's browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq \
	  && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

install: $(VENV)/.installed node_modules/.installed $(API_DOCS_DIR)/swagger-ui-bundle.js $(CONSOLE_UPLOT_DIR)/uPlot.esm.js

## Serve the API on http://127.0.0.1:$(PORT) (chalice local on DynamoDB Local, its data under
## $(LOYALTY_LOCAL_DATA)/, seeded with a demo brand). Ctrl-C or SIGTERM stops everything it started.
run: $(VENV)/.run-installed node_modules/.run-installed $(API_DOCS_DIR)/swagger-ui-bundle.js $(CONSOLE_UPLOT_DIR)/uPlot.esm.js
	PORT=$(PORT) $(PY) -m devtools.cli run-local --data-dir "$(LOYALTY_LOCAL_DATA)"

## Forget make run's data: the brands, members and keys it kept.
reset:
	@test -n "$(LOYALTY_LOCAL_DATA)" && test "$(LOYALTY_LOCAL_DATA)" != "/"
	rm -rf -- "$(LOYALTY_LOCAL_DATA)"

## The static checks (ruff, the import contracts, mypy), then the whole suite: unit, HTTP integration
## on moto and on DynamoDB Local, concurrency.
test: install console-browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(PY) -m mypy
	$(MAKE) docs
	$(PY) -m pytest -n 2 --dist loadfile --durations=20

## Benchmarks: request units per operation, handler overhead, cold-start imports, webhook and bulk import
## throughput (python -m bench.imports --rows 100000 for the full import figure); then the program's
## own sections: tiers, reward redemption and capped earns, paid plans, referrals.
bench: install
	$(PY) -m bench.run
	$(PY) -m bench.tiers
	$(PY) -m bench.rewards --iterations 100
	$(PY) -m bench.plans
	$(PY) -m bench.referrals
	$(PY) -m bench.insights

## Long runs, not part of `make test`: the ledger state machine (tests/model) until at least
## SOAK_STEPS steps on each emulator, and the API fuzzer with SOAK_FUZZ_EXAMPLES examples per
## operation and mode. The step counts are printed at the end; a failure prints its shrunk sequence.
SOAK_STEPS ?= 10000
SOAK_FUZZ_EXAMPLES ?= 100
soak: install
	LOYALTY_SOAK_STEPS=$(SOAK_STEPS) $(PY) -m pytest tests/model/test_ledger_state_machine.py tests/model/test_transfer_state_machine.py tests/model/test_machine_finds_planted_bugs.py -n 2 --dist load
	LOYALTY_FUZZ_EXAMPLES=$(SOAK_FUZZ_EXAMPLES) $(PY) -m pytest tests/fuzz/test_openapi_fuzz.py -p no:xdist

## Synthesise every deployed stage (dev, prod) into infra/cdk.out offline (no AWS account,
## credentials ignored): cdk-nag's AwsSolutions pack runs during synthesis and fails it; then cfn-lint.
synth: install
	cd infra && env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
	  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
	  ../node_modules/.bin/cdk synth --quiet
	$(VENV)/bin/cfn-lint infra/cdk.out/dev.template.json infra/cdk.out/prod.template.json

## Deploy one stage with your AWS credentials (docs: Operations, Deploy): make deploy STAGE=prod
deploy: install
	@case "$(STAGE)" in dev|prod) ;; *) echo "usage: make deploy STAGE=dev|prod" >&2; exit 2;; esac
	cd infra && ../node_modules/.bin/cdk deploy $(STAGE) -c stages=$(STAGE) --require-approval broadening

## The docs site (docs/, mkdocs.yml) built strictly into site/: a broken link fails it. The reference
## pages (API, error codes, event types, jobs, configuration) are generated from the code on every build.
DOCS_ENV := NO_MKDOCS_2_WARNING=1
docs: install
	$(DOCS_ENV) $(PY) -m mkdocs build --strict --quiet

## Serve the docs site with live reload on http://127.0.0.1:$(DOCS_PORT).
DOCS_PORT ?= 8001
docs-serve: install
	$(DOCS_ENV) $(PY) -m mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

## The static checks of `make test` alone.
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(PY) -m mypy

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis infra/cdk.out site chalicelib/static
