# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed from here (a virtualenv from PyPI; PostgreSQL and TimescaleDB through
# `locowatch db up`, which builds the extension on Debian when it is missing).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: demo test setup system-packages test-packages lint typecheck pytest db-up protos clean

demo: setup db-up
	$(BIN)/locowatch demo $(ARGS)

test: setup test-packages db-up lint typecheck pytest

setup: $(STAMP) system-packages

system-packages:
	bash deploy/system-packages.sh

# Chromium and chromedriver for the dashboard's browser tests.
test-packages:
	bash deploy/system-packages.sh test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "locowatch needs Python >= 3.11; set PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable '.[test,train]'
	touch $@

db-up: setup
	$(BIN)/locowatch db up > /dev/null

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup test-packages db-up
	$(BIN)/pytest $(ARGS)

# Regenerate locowatch/v1 after editing protos/ (a test fails when they are stale).
protos: setup
	$(BIN)/python protos/generate.py

clean:
	-$(BIN)/locowatch db down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
