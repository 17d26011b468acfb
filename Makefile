# Two commands do everything: `make run` (the local stack) and `make test` (the whole suite).
# `make demo` (or `make run DEMO=1`) is the local stack playing every preset's sample event.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SAMVENV := .venv-sam
CHECKOVVENV := .venv-checkov

.PHONY: install run demo test lint typecheck bench validate build checkov clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## the local stack on http://127.0.0.1:$$PORT (default 3000); DEMO=1: as `make demo`
	$(BIN)/python -m cascade.local$(if $(DEMO),.demo)

demo: $(STAMP)  ## the local stack plays every preset's sample event, dates moved to now, in about 3 minutes
	$(BIN)/python -m cascade.local.demo

test: $(STAMP) $(SAMVENV)/bin/sam $(CHECKOVVENV)/bin/checkov lint validate  ## lint and sam validate, then every test (sam build and checkov included)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check shared functions tests
	$(BIN)/cfn-lint template.yaml
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)  ## state transitions, cost per 1,000 cascades, cold import ratio, the local stack under load (CASCADES=2000)
	$(BIN)/python -m tests.bench --cascades $(or $(CASCADES),2000)

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
