# The README's commands. `make run` and `make test` set everything up on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := redis-server chromium docker-compose
export OMP_NUM_THREADS ?= 1

.PHONY: run test test-fast e2e lint bench study demo clean

# System packages (redis-server; chromium and docker-compose for the e2e and compose tests), then the venv.
$(BIN)/dalt-installed: pyproject.toml
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(BIN)/dalt-installed  ## backend + RQ worker (+ its own redis-server unless REDIS_URL is set)
	$(BIN)/dalt run

test: $(BIN)/dalt-installed  ## the whole suite: lint, unit, integration, reliability, end-to-end
	$(BIN)/dalt ls-venv --quiet
	$(BIN)/ruff check .
	$(BIN)/pytest -q

test-fast: $(BIN)/dalt-installed  ## everything but the real-Label-Studio end-to-end tests
	$(BIN)/pytest -q -m "not e2e"

e2e: $(BIN)/dalt-installed  ## end-to-end: real Label Studio 1.23.2 + headless Chromium
	$(BIN)/dalt ls-venv --quiet
	$(BIN)/pytest -q -m e2e tests/e2e

demo: $(BIN)/dalt-installed  ## Label Studio + Redis + backend + worker with a sample MNIST project
	$(BIN)/dalt ls-venv --quiet
	$(BIN)/dalt demo

bench: $(BIN)/dalt-installed  ## speed and scale benchmarks (writes docs/bench/results.json and docs/bench.md)
	$(BIN)/dalt bench --json docs/bench/results.json
	$(BIN)/dalt docs

study: $(BIN)/dalt-installed  ## the labeling-efficiency study on MNIST and sklearn digits
	$(BIN)/dalt study --dataset mnist --json docs/study/mnist.json --plot docs/study
	$(BIN)/dalt study --dataset digits --json docs/study/digits.json --plot docs/study

lint: $(BIN)/dalt-installed
	$(BIN)/ruff check .

clean:
	rm -rf var .pytest_cache
