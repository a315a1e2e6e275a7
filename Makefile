# `make run` starts Taru on the example configuration; `make test` runs every
# test. Both set up the virtual environment in .venv first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LISTEN ?= tcp:3000:interface=127.0.0.1

.PHONY: run test unit integration lint clean

$(BIN)/taru: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[test,dev]' --config-settings editable_mode=compat
	touch $@

run: $(BIN)/taru
	$(BIN)/taru --listen $(LISTEN) --state-dir .taru-state examples/taru.yml

test: $(BIN)/taru
	$(BIN)/trial --reporter=text taru
	$(MAKE) --no-print-directory lint

unit: $(BIN)/taru
	$(BIN)/trial $$(ls taru/test/test_*.py | sed 's|/|.|g; s|\.py$$||')

integration: $(BIN)/taru
	$(BIN)/trial taru.test.integration

lint: $(BIN)/taru
	$(BIN)/ruff check taru twisted
	$(BIN)/ruff format --check taru twisted
	$(BIN)/mypy

clean:
	rm -rf $(VENV) _trial_temp build *.egg-info
