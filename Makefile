# `make run` starts Taru on the example configuration; `make test` runs every
# test. Both set up the virtual environment in .venv first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LISTEN ?= tcp:3000:interface=127.0.0.1

.PHONY: run test unit integration lint bench bench-web clean

$(BIN)/taru: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[test,dev]' --config-settings editable_mode=compat
	touch $@

# The browser tests drive Debian's Chromium (Playwright's own browser download
# is not used). Installing packages needs root; the package lists are
# refreshed only when the install fails without them.
CHROMIUM := /usr/bin/chromium
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

$(CHROMIUM):
	$(APT_INSTALL) chromium || { apt-get update && $(APT_INSTALL) chromium; }

# The proxy tests put Debian's nginx in front of Taru.
NGINX := /usr/sbin/nginx

$(NGINX):
	$(APT_INSTALL) nginx || { apt-get update && $(APT_INSTALL) nginx; }

run: $(BIN)/taru
	$(BIN)/taru --listen $(LISTEN) --state-dir .taru-state examples/taru.yml

test: $(BIN)/taru $(CHROMIUM) $(NGINX)
	$(BIN)/trial --reporter=text taru
	$(MAKE) --no-print-directory lint

unit: $(BIN)/taru
	$(BIN)/trial $$(ls taru/test/test_*.py | sed 's|/|.|g; s|\.py$$||')

integration: $(BIN)/taru $(CHROMIUM) $(NGINX)
	$(BIN)/trial taru.test.integration

lint: $(BIN)/taru
	$(BIN)/ruff check taru twisted bench
	$(BIN)/ruff format --check taru twisted bench
	$(BIN)/mypy

# Throughput, latency and memory of the real server under load, over loopback;
# prints one table of medians. About 10 minutes; `$(BIN)/python -m bench
# --help` for choosing scenarios and runs.
bench: $(BIN)/taru
	$(BIN)/python -m bench

# How fast the web page shows 100,000 lines of output, in headless Chromium.
bench-web: $(BIN)/taru $(CHROMIUM)
	$(BIN)/python bench/web_output.py

clean:
	rm -rf $(VENV) _trial_temp build *.egg-info
