# Two commands do everything: `make run` (the local stack) and `make test` (the whole suite).
# `make demo` (or `make run DEMO=1`) is the local stack playing every preset's sample event.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUM    := $(shell cksum pyproject.toml | cut -d' ' -f1)
# Two stamps: `make run` installs the runtime and the local stack only (extra "local"); `make test`
# adds the dev tools (extra "dev", which includes "local"). Either one done stays done.
LOCAL  := $(VENV)/.installed-local-$(SUM)
STAMP  := $(VENV)/.installed-dev-$(SUM)
SAMVENV := .venv-sam
CHECKOVVENV := .venv-checkov

.PHONY: install run demo test lint typecheck bench capacity validate build checkov clean

$(LOCAL): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[local]"
	@rm -f $(VENV)/.installed-* && touch $(LOCAL)

$(STAMP): $(LOCAL)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)  ## everything: the local stack and the dev tools

run: $(LOCAL)  ## the local stack on http://127.0.0.1:$$PORT (default 3000); DEMO=1: as `make demo`
	$(BIN)/python -m cascade.local$(if $(DEMO),.demo)

demo: $(LOCAL)  ## the local stack plays every preset's sample event, dates moved to now, in about 3 minutes
	$(BIN)/python -m cascade.local.demo

test: $(STAMP) $(SAMVENV)/bin/sam $(CHECKOVVENV)/bin/checkov lint validate  ## lint and sam validate, then every test (sam build and checkov included)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check shared functions tests
	$(BIN)/cfn-lint template.yaml
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)  ## state transitions, cost per 1,000 cascades, cold import ratio, the local stack under load (CASCADES=2000), the capacity model
	$(BIN)/python -m tests.bench --cascades $(or $(CASCADES),2000)

capacity: $(STAMP)  ## the capacity model alone: cascades a day per account and region, the binding limit, cost per 1,000
	$(BIN)/python -m tests.bench --capacity-only

$(SAMVENV)/bin/sam:
	$(PYTHON) -m venv $(SAMVENV)
	$(SAMVENV)/bin/python -m pip install -q --disable-pip-version-check aws-sam-cli==1.170.0

validate: $(SAMVENV)/bin/sam  ## sam validate --lint
	SAM_CLI_TELEMETRY=0 $(SAMVENV)/bin/sam validate --lint --region us-east-1

build: $(SAMVENV)/bin/sam  ## sam build (needs python3.12 on PATH)
	PATH="$(CURDIR)/$(SAMVENV)/bin:$$PATH" PYENV_VERSION=3.12.1:3.11.7 SAM_CLI_TELEMETRY=0 $(SAMVENV)/bin/sam build

$(CHECKOVVENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOVVENV)
	$(CHECKOVVENV)/bin/python -m pip install -q --disable-pip-version-check checkov==3.3.30

checkov: $(STAMP) $(CHECKOVVENV)/bin/checkov  ## checkov on template.yaml and on its SAM translation (offline)
	$(CHECKOVVENV)/bin/checkov --config-file .checkov.yaml -f template.yaml
	@mkdir -p .aws-sam && $(BIN)/python -m cascade.local.template > .aws-sam/translated.json
	$(CHECKOVVENV)/bin/checkov --config-file .checkov.yaml -f .aws-sam/translated.json

clean:
	rm -rf $(VENV) $(SAMVENV) $(CHECKOVVENV) .aws-sam .pytest_cache .ruff_cache .mypy_cache
