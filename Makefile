# Meadow: `make run` starts everything with demo data; `make test` runs every check CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
WORKSPACE := libs/contracts libs/runtime devstack services/membership services/content services/rewards services/segments
SOURCES := libs devstack services bench tests
export XDG_RUNTIME_DIR := $(CURDIR)/.devstack/xdg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install run test pytest lint fmt bench contracts lock deploy-check clean

help:
	@echo "make run           install, start Postgres + Kafka (Tansu), all services and workers, load demo data"
	@echo "make test          install, lint, check contracts and deploy manifests, run every test"
	@echo "make bench         benchmarks, printed as ratios against this machine's raw limits"
	@echo "make lint | fmt | contracts | lock | deploy-check | clean"

# A fresh machine needs only python3 (>= 3.11): uv comes from the lock file, everything else through uv.
$(VENV)/.installed: requirements.lock $(foreach p,$(WORKSPACE),$(p)/pyproject.toml)
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --upgrade >/dev/null
	@$(PY) -m pip install --quiet --disable-pip-version-check "$$(grep -E '^uv==' requirements.lock)"
	@$(UV) pip sync --quiet --python $(PY) requirements.lock
	@$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation $(foreach p,$(WORKSPACE),-e $(p))
	@mkdir -p -m 700 $(XDG_RUNTIME_DIR)
	@touch $@

install: $(VENV)/.installed

run: install
	@$(PY) -m meadow_devstack.run

test: install lint deploy-check pytest

pytest: install
	@mkdir -p -m 700 $(XDG_RUNTIME_DIR)
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check $(SOURCES)
	$(VENV)/bin/mypy libs/contracts/src libs/runtime/src devstack/src $(foreach s,membership content rewards segments,services/$(s)/src)

fmt: install
	$(VENV)/bin/ruff check --fix $(SOURCES)
	$(VENV)/bin/ruff format $(SOURCES)

bench: install
	@mkdir -p -m 700 $(XDG_RUNTIME_DIR)
	$(PY) bench/run.py

contracts: install
	$(PY) -m meadow_contracts.schema_export

lock: install
	$(UV) pip compile --quiet --python-version 3.11 --no-header --no-annotate requirements.in -o requirements.lock

deploy-check: install
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash deploy/check.sh

clean:
	rm -rf .devstack .mypy_cache .ruff_cache .pytest_cache
