# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed from here (a virtualenv from PyPI; PostgreSQL and TimescaleDB through
# `locowatch db up`, which builds the extension on Debian when it is missing).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov (the terraform scan of tests/deploy/test_terraform.py) lives in its own virtualenv:
# it pins networkx<2.7 and packaging<24, which would downgrade what torch and pytest use.
# Pinned, so a checkov release with new checks cannot fail CI without a change here.
IAC_VENV := .venv-iac
CHECKOV_VERSION := 3.3.30
# Label Studio (the labelling tool of `locowatch label`) in its own virtualenv too: Django
# and its pins stay out of the product's. tests/onboarding runs its real server. Its
# sentry-sdk floor has no ceiling, and sentry-sdk 3 breaks its start-up: pinned below 3.
LABEL_STUDIO_VENV := .venv-labelstudio
LABEL_STUDIO_VERSION := 1.23.2
ARGS ?=
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test setup system-packages test-packages iac-tools label-studio lint typecheck pytest db-up protos clean

demo: setup db-up
	$(BIN)/locowatch demo $(ARGS)

test: setup test-packages iac-tools label-studio db-up lint typecheck pytest

# System packages first: the virtualenv needs Debian's python3-venv.
setup: system-packages $(STAMP)

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

iac-tools: $(IAC_VENV)/.installed

$(IAC_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(IAC_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $@

label-studio: $(LABEL_STUDIO_VENV)/.installed

$(LABEL_STUDIO_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(LABEL_STUDIO_VENV)
	$(LABEL_STUDIO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LABEL_STUDIO_VENV)/bin/python -m pip install --quiet \
	  'label-studio==$(LABEL_STUDIO_VERSION)' 'sentry-sdk<3'
	touch $@

# Installing PostgreSQL and building TimescaleDB needs root: a non-root user is asked for
# sudo once, only when they are missing. The server itself then runs as that user.
db-up: setup
	$(BIN)/locowatch db install --check > /dev/null 2>&1 || $(SUDO) $(BIN)/locowatch db install
	$(BIN)/locowatch db up > /dev/null

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup test-packages iac-tools db-up
	$(BIN)/pytest $(ARGS)

# Regenerate locowatch/v1 after editing protos/ (a test fails when they are stale).
protos: setup
	$(BIN)/python protos/generate.py

clean:
	-$(BIN)/locowatch db down
	rm -rf $(VENV) $(IAC_VENV) $(LABEL_STUDIO_VENV) .pytest_cache .mypy_cache .ruff_cache
