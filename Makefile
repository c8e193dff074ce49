# Quiver — the two commands are `make run` and `make test`. `make help` lists all.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
VENV2 := .venv2
PY := $(VENV)/bin/python
PY2 := $(VENV2)/bin/python

.PHONY: help run build release test lint-proto test-rust test-python test-python-split test-mlflow2 lint fmt bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

run: ## Build and start Quiver on its embedded default (SQLite + local files) at http://127.0.0.1:5000
	$(CARGO) build --release -p quiver-server
	@echo "Quiver: MLFLOW_TRACKING_URI=http://127.0.0.1:5000 (gRPC on 127.0.0.1:5001, data in ./quiver-data)"
	./target/release/quiver run --services all

build: ## Debug build of every crate and test
	$(CARGO) build --workspace --all-targets

release: ## Release build of the quiver binary
	$(CARGO) build --release -p quiver-server

test: build lint-proto test-rust test-python test-python-split test-mlflow2 ## Everything: proto lint, Rust tests on SQLite+Postgres, then the real mlflow client (3.x and 2.x)

test-rust: $(VENV)/.installed ## Unit, conformance (SQLite, Postgres, S3 via moto, gRPC), gateway and end-to-end tests
	scripts/with-postgres.sh scripts/with-s3.sh $(CARGO) test --workspace --no-fail-fast

$(VENV)/.installed: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

$(VENV2)/.installed: tests/python/requirements-mlflow2.txt
	python3 -m venv $(VENV2)
	$(VENV2)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements-mlflow2.txt
	touch $@

test-python: $(VENV)/.installed ## The stock mlflow 3.x client against `quiver run --services all` (+ an S3 artifact root on moto)
	scripts/with-s3.sh env QUIVER_BIN=$(CURDIR)/target/debug/quiver $(VENV)/bin/pytest tests/python -q

test-python-split: $(VENV)/.installed ## The same suite against tracking, artifacts, registry and gateway as four processes (gRPC between) on Postgres
	scripts/with-postgres.sh scripts/with-s3.sh bash -c 'QUIVER_BIN=$(CURDIR)/target/debug/quiver QUIVER_TEST_TOPOLOGY=split \
	  QUIVER_EXTRA_ARGS="--database-url $$QUIVER_TEST_PG_URL" $(VENV)/bin/pytest tests/python -q -m "not slow"' 

test-mlflow2: $(VENV2)/.installed ## An mlflow 2.22 client against Quiver
	QUIVER_BIN=$(CURDIR)/target/debug/quiver $(VENV2)/bin/pytest tests/python/mlflow2 -q

BUF := .tools/node_modules/.bin/buf
$(BUF):
	mkdir -p .tools && cd .tools && npm install --silent --no-audit --no-fund @bufbuild/buf@1.75.0

lint-proto: $(BUF) ## buf lint (STANDARD) over proto/
	$(BUF) lint

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

bench: ## Quiver vs the real mlflow server, side by side; writes bench/RESULTS.md
	bench/run.sh

clean: ## Remove build outputs and venvs
	$(CARGO) clean
	rm -rf $(VENV) $(VENV2) quiver-data
