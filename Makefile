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

unit: $(BIN)/taru
	$(BIN)/trial taru.test.test_config taru.test.test_arguments taru.test.test_permissions \
		taru.test.test_output taru.test.test_events taru.test.test_tasks \
		taru.test.test_api taru.test.test_runners taru.test.test_service

integration: $(BIN)/taru
	$(BIN)/trial taru.test.integration

lint: $(BIN)/taru
	$(BIN)/ruff check taru twisted bench
	$(BIN)/ruff format --check taru twisted bench
	$(BIN)/mypy taru

clean:
	rm -rf $(VENV) _trial_temp build *.egg-info
