# The README's commands. `make run` and `make test` set everything up on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 1

.PHONY: run test test-fast e2e lint bench study demo clean

$(BIN)/dalt-installed: pyproject.toml
	@command -v redis-server >/dev/null || { echo "installing redis-server"; (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(BIN)/dalt-installed  ## backend + RQ worker (+ its own redis-server unless REDIS_URL is set)
	$(BIN)/python scripts/run_backend.py

test: $(BIN)/dalt-installed  ## the whole suite: lint, unit, integration, end-to-end
	$(BIN)/ruff check .
	$(BIN)/pytest -q

test-fast: $(BIN)/dalt-installed  ## everything but the real-Label-Studio end-to-end tests
	$(BIN)/pytest -q -m "not e2e"

lint: $(BIN)/dalt-installed
	$(BIN)/ruff check .

clean:
	rm -rf var .pytest_cache
