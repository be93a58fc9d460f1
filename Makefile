# triage-gateway: `make serve` runs the gateway on embedded defaults, `make test` checks everything.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PACKAGES := gateway training eval loadtest

.PHONY: all install serve simulate test lint typecheck pytest loadtest bench format clean

all: test

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

serve: install
	$(BIN)/triage-gateway serve

simulate: install
	$(BIN)/triage-gateway simulate --port 18001

lint: install
	$(BIN)/ruff check $(PACKAGES) tests
	$(BIN)/ruff format --check $(PACKAGES) tests

typecheck: install
	$(BIN)/mypy $(PACKAGES)

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

format: install
	$(BIN)/ruff format $(PACKAGES) tests
	$(BIN)/ruff check --fix $(PACKAGES) tests

clean:
	rm -rf .triage-data reports .pytest_cache .mypy_cache .ruff_cache
