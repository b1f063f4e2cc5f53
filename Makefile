# gridcare — the two commands that matter are `make run` and `make test`.
# Everything is installed into .venv from uv.lock (exact versions), with this machine's
# Python 3.11; uv itself is installed, pinned, into .tools from PyPI.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.installed
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test test-unit bench asyncapi lint format lock clean help

help:
	@echo "make run     start NATS (embedded) and the four services; Ctrl-C stops"
	@echo "make test    install and run the test suite"
	@echo "make test-unit  the unit tests alone (no server; seconds)"
	@echo "make bench   gate-scan, enforcement, notify and screening benchmarks (reports: bench/results/)"
	@echo "make asyncapi   regenerate docs/asyncapi/<service>.json from the code"
	@echo "make lint    ruff"
	@echo "make lock    re-resolve uv.lock after changing a pyproject.toml"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) uv.lock pyproject.toml */pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/gridcare run

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-unit: install
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

SERVICES := checkpoint screening dispatch notify
asyncapi: install
	@for s in $(SERVICES); do \
		$(VENV)/bin/faststream docs gen --factory gridcare.$$s.bootstrap:asyncapi \
			--out docs/asyncapi/$$s.json || exit 1; \
	done

bench: install
	$(VENV)/bin/python bench/scan_bench.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/enforcement_bench.py
	$(VENV)/bin/python bench/notify_bench.py
	$(VENV)/bin/python bench/screening_bench.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: $(UV)
	$(UV) lock --python $(PYTHON)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache
