# llm-budget-alert: the one command surface. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup emulators test unit lint typecheck fmt-check checkov demo bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

setup: $(STAMP) ## create .venv with the pinned runtime and dev dependencies

emulators: $(STAMP) ## create .venv-emulators (BigQuery emulator, fake GCS) and .venv-moto (AWS STS, Cost Explorer) if needed
	$(PY) -m devservers venv
	$(PY) -m devservers.moto venv

test: setup emulators lint typecheck fmt-check checkov ## everything CI runs: lint, types, terraform checks, the whole test suite
	$(PY) -m pytest -q

unit: setup ## the fast tests only (no emulators)
	$(PY) -m pytest -q -m "not emulator"

lint: setup ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup ## mypy --strict on the deployed code
	$(PY) -m mypy

fmt-check: ## terraform fmt -check (skipped with a message where terraform is absent)
	@if command -v terraform >/dev/null 2>&1; then terraform fmt -check -recursive terraform && echo "terraform fmt: ok"; \
	else echo "terraform fmt: SKIPPED (no terraform binary on this machine)"; fi

checkov: ## checkov over terraform/ in its own venv
	bash scripts/checkov.sh

demo: setup emulators ## run the real check against local simulators: alert, no repeat, replay
	$(PY) demo/run.py

bench: setup emulators ## benchmarks: latency vs critical path, requests, cold start, peer, scale, query bytes
	$(PY) bench/run.py

clean: ## remove venvs, caches and local state
	rm -rf $(VENV) .venv-* .run .state .pytest_cache .mypy_cache .ruff_cache
