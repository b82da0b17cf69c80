# Tollgate: `make run` starts the gateway, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
AZURITE := node_modules/.bin/azurite-blob

.PHONY: install run serve test lint typecheck unit fmt clean bench bench-clients chromium

install: $(STAMP) $(AZURITE) chromium

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(AZURITE): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# Headless Chromium renders the latency report's page in tests (Debian's package, as root).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  { echo "make: the tests need chromium: apt-get install chromium" >&2; exit 1; }

run: $(STAMP)
	$(BIN)/tollgate run

serve: $(STAMP)
	$(BIN)/tollgate serve

# What the gateway adds to a request and costs, against the simulator (README: Performance);
# `make bench WORKERS=2` also runs the full path on 2 worker processes and reports the scaling.
WORKERS ?= 1
bench: $(STAMP)
	$(BIN)/python -m bench.run --workers $(WORKERS)

bench-clients: $(STAMP)
	$(BIN)/python -m bench.client_choice

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

unit: install
	$(BIN)/pytest

test: lint typecheck unit

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules .tollgate .mypy_cache .ruff_cache .pytest_cache
