# `make demo` and `make test` bootstrap a local virtualenv (.venv) on first use.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,redis,dashboards
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "vtrade needs Python 3.11 or newer on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/vtrade warmup
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(BIN)/vtrade demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check vtrade tests benchmarks dashboards

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_books.py

clean:
	rm -rf $(VENV) .pytest_cache test-output
