# Two commands on a fresh machine: `make demo` and `make test`.
# Everything is installed into .venv by the project's own files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DATE ?= 2026-04-15

.PHONY: install system-deps demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ems plan --config config/arao.toml --date $(DEMO_DATE) --out out/demo

# The services the tests talk to (Mosquitto, mbpoll, VictoriaMetrics, ...): installed with
# apt-get where missing, or the one command to run is printed. The list lives in .ci/run.
system-deps:
	@bash .ci/run --system-deps

test: $(STAMP) system-deps
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m benchmarks --out out/bench.json

clean:
	rm -rf out .pytest_cache
