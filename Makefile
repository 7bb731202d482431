# `make demo` and `make test` bootstrap a local virtualenv (.venv) on first use, installing the
# exact versions in requirements.lock (what CI tested, with hashes). `make upgrade` refreshes it.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
# The extras the lock holds: everything the suite, the dashboards and the notebooks use.
# (bench and fuzz pull in peers and fuzzers: `pip install -e ".[bench]"` when you want them.)
LOCKED_EXTRAS := dev redis dashboards ai kafka
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench upgrade clean

$(STAMP): pyproject.toml $(LOCK)
	@test -n "$(PYTHON)" || { echo "vtrade needs Python 3.11 or newer on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	$(BIN)/vtrade warmup
	@rm -f $(VENV)/.installed*
	@touch $@

demo: $(STAMP)
	$(BIN)/vtrade demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check vtrade tests benchmarks dashboards

# mypy over vtrade/ with the configuration in pyproject.toml ([tool.mypy]; pandas-stubs for pandas).
typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_books.py

# Re-resolve every dependency to its newest release allowed by pyproject.toml, for every
# platform and Python >= 3.11 (uv's universal mode), with hashes; then reinstall from it.
upgrade: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml $(addprefix --extra ,$(LOCKED_EXTRAS)) --universal \
		--python-version 3.11 --generate-hashes --upgrade --quiet -o $(LOCK)
	@rm -f $(STAMP)
	$(MAKE) $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache test-output
