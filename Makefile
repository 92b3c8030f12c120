# Everything a developer or CI runs. `make test` builds its own virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck layers unit crds manifests docs sandbox bench chaos clean

$(STAMP): pyproject.toml operator/mltrl_sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./operator/mltrl_sandbox
	touch $(STAMP)

test: $(STAMP) lint typecheck layers
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check operator tests e2e tools

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports --no-cache

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# After changing the API models: regenerate everything derived from them.
crds: $(STAMP)
	$(BIN)/python -m mltrl_operator.api.crdgen crds
	$(BIN)/python tools/render_manifests.py
	$(BIN)/python tools/gen_api_docs.py

manifests: $(STAMP)
	$(BIN)/python tools/render_manifests.py

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

# As the chart runs it: the admission webhooks on, and users to act as (`kubectl --user bob`):
# alice owns fraud-detection, bob is QA, carol the product owner, mallory an editor and
# reviewer, platform a policy admin. The README's tour test runs these same flags.
SANDBOX_PORT ?= 8001
SANDBOX_FLAGS := --webhooks --user alice --user bob --user carol --user mallory --user platform=mltrl-policy-admins
sandbox: $(STAMP)
	$(BIN)/mltrl sandbox --port $(SANDBOX_PORT) --alerts-port 9091 --metrics-port 9090 $(SANDBOX_FLAGS)

# Benchmarks against the sandbox and bare kopf (docs/benchmarks.md): about half an hour on
# two cores. `make bench BENCH_ARGS=--quick` is the two-minute version.
bench: $(STAMP)
	$(BIN)/python -m e2e.bench $(BENCH_ARGS)

# 1,000 promotions and 1,000 alerts while the operator is SIGKILLed at random and the
# sandbox fails 20% of API requests; writes its figures into docs/reliability.md. Minutes on
# two cores; `make chaos CHAOS_ARGS="--promotions 60 --alerts 60"` for a smaller round.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.run --promotions 1000 --alerts 1000 \
		--report docs/reliability.md $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .sandbox .mypy_cache .ruff_cache .pytest_cache
