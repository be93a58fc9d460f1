# triage-gateway: `make serve` runs the gateway on embedded defaults, `make test` checks everything.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PACKAGES := gateway training eval cli devtools tools loadtest

.PHONY: all install install-extras serve simulate test lint typecheck pytest loadtest bench format clean \
	seed-data experiments-aa

all: test

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The optional extras: LoRA training (`lora`) and the stronger local model (`local-strong`).
# torch's CPU build goes first, so pip never pulls another torch.
EXTRAS_STAMP := $(VENV)/.installed-extras
install-extras: $(EXTRAS_STAMP)

$(EXTRAS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,lora,local-strong]'
	touch $@

serve: install
	$(BIN)/triage-gateway serve

# The upstream simulator on loopback; `make simulate SIM_PORT=18002` for another port (the
# example routes expect 18001). SIM_ARGS adds options, e.g. SIM_ARGS="--latency-scale 0.1".
SIM_PORT ?= 18001
SIM_ARGS ?=
simulate: install
	$(BIN)/triage-gateway simulate --port $(SIM_PORT) $(SIM_ARGS)

lint: install
	$(BIN)/ruff check $(PACKAGES) tests
	$(BIN)/ruff format --check $(PACKAGES) tests
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy $(PACKAGES) tests

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

format: install
	$(BIN)/ruff format $(PACKAGES) tests
	$(BIN)/ruff check --fix $(PACKAGES) tests

# Regenerate the committed seed set from the templates in tools/seed_data/templates/; the
# generator's defaults reproduce gateway/data/seed_reviews.jsonl byte for byte.
seed-data: install
	$(BIN)/python -m tools.seed_data.generate --out gateway/data/seed_reviews.jsonl
	$(BIN)/python -m training.baseline --packaged

# Rewrite the A/A simulation figures in docs/experiments.md (the block between its markers).
experiments-aa: install
	$(BIN)/python -m tools.experiments_aa --write docs/experiments.md

clean:
	rm -rf reports .pytest_cache .mypy_cache .ruff_cache  # the data dir (GATEWAY_DATA_DIR) is kept

# The README's data loop end to end on loopback (free ports, a temporary data directory):
# simulator, gateway, classify, corrections, export, fine-tune, deploy, eval, promote, rollback.
.PHONY: data-loop
data-loop: install
	bash examples/data-loop.sh

# Simulator (50 ms) + gateway in the background, locust headless against them; fails on any
# failed request or a variant share off by more than 2 points. Reports in reports/loadtest*.
loadtest: install
	$(BIN)/python -m loadtest.run_loadtest --users 50 --spawn-rate 25 --run-time 30s --reports reports

# Direct vs passthrough vs gateway vs LiteLLM proxy (when .venv-litellm exists), local model,
# workers, soak: reports/bench.json, a markdown table, docs/benchmarks.md rewritten and the
# measured block of docs/scaling.md (per-core req/s, pods per load) with it.
# BENCH_ARGS=--quick for a smoke run, --soak for the 100,000-request soak. Load comes from wrk
# where it is installed (apt-get install wrk), else from an aiohttp loop that caps the figures.
# The sources are byte-compiled first, as `pip install .` and the image do: the starts it times
# then never compile them, even where Python writes no bytecode (PYTHONDONTWRITEBYTECODE).
bench: install bench-litellm-env
	$(BIN)/python -m compileall -q gateway cli training eval loadtest tools
	$(BIN)/python -m loadtest.bench --out reports/bench.json --doc docs/benchmarks.md --scaling docs/scaling.md $(BENCH_ARGS)

# Pair-store capacity: pairs/s into one Redis and a three-master cluster (started on loopback),
# Redis memory and archive bytes per million pairs, time to export a million archived pairs;
# reports/bench-redis.json and the measured block of docs/scaling.md rewritten.
.PHONY: bench-redis
bench-redis: install
	$(BIN)/python -m tools.bench.redis --out reports/bench-redis.json --doc docs/scaling.md $(BENCH_ARGS)

# Every figure of the local model (the zero-setup baseline on the template-disjoint seed split
# and the hand-labelled sets of tests/data/local_eval/; MARC/Huang per approach where shared/data
# sits beside the repository, the encoder too when the local-strong extra is installed: minutes
# of CPU): reports/local_model.json and the measured block of docs/local-model.md rewritten.
# BENCH_LOCAL_ARGS="--skip-minilm" (or --skip-shared) leaves the slow parts out.
BENCH_LOCAL_ARGS ?=
.PHONY: bench-local-model
bench-local-model: install
	$(BIN)/python -m tools.bench.local_model --out reports/local_model.json --doc docs/local-model.md --readme README.md $(BENCH_LOCAL_ARGS)

# The LiteLLM proxy for `make bench`, in its own venv (its pins clash with the gateway's).
LITELLM_VENV := .venv-litellm
.PHONY: bench-litellm-env
bench-litellm-env: $(LITELLM_VENV)/.installed

$(LITELLM_VENV)/.installed: loadtest/litellm-proxy-requirements.txt
	test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install -q -r loadtest/litellm-proxy-requirements.txt
	echo '*' > $(LITELLM_VENV)/.gitignore  # ~800 MB that git must never pick up
	touch $@
