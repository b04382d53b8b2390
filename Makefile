# Two commands on a fresh machine: `make demo` and `make test`.
# Everything is installed into .venv by the project's own files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DATE ?= 2026-04-15

.PHONY: install system-deps demo test lint constraints bench city clean

install: $(STAMP)

# constraints.txt holds the exact versions the tests last passed with, so a fresh machine
# installs those; `make constraints` refreshes it.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ems plan --config config/arao.toml --date $(DEMO_DATE) --out out/demo

# The services the tests talk to (Mosquitto, mbpoll, VictoriaMetrics, ...): installed with
# apt-get where missing, or the one command to run is printed. The list lives in .ci/run.
system-deps:
	@bash .ci/run --system-deps

test: $(STAMP) system-deps
	$(PY) -m pytest -q

# ruff (rules in pyproject.toml) and its formatter's check over the whole tree, then mypy on the
# packages listed there; `ruff format .` rewrites what the check refuses
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Re-resolve the newest versions pyproject.toml allows in a scratch venv and pin them all.
# Then run `make install lint test` (the stamp follows constraints.txt) and commit the file if green.
CONSTRAINTS_VENV := out/constraints-venv
constraints:
	rm -rf $(CONSTRAINTS_VENV)
	$(PYTHON) -m venv $(CONSTRAINTS_VENV)
	$(CONSTRAINTS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CONSTRAINTS_VENV)/bin/python -m pip install --quiet -e '.[dev]'
	{ echo "# exact versions \`make install\` and CI install; refresh with \`make constraints\`"; \
	  $(CONSTRAINTS_VENV)/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf $(CONSTRAINTS_VENV)

bench: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(PY) -m benchmarks --out out/bench.json

# A 6-hour reference day (13:00-19:00) as separate processes on a private broker that `ems city`
# starts and stops, with BCP mode switched on at 14:00 for the three shelters (docs/city.md).
CITY_OUT ?= out/city
CITY_SPEED ?= 60
city: $(STAMP)
	$(VENV)/bin/ems dispatch generate --config config/arao.toml --date $(DEMO_DATE) --requests 120 --seed 0 --out $(CITY_OUT)/requests.csv
	$(VENV)/bin/ems city --config config/arao.toml --requests $(CITY_OUT)/requests.csv --speed $(CITY_SPEED) --hours 6 \
		--start 13:00 --bcp-at 14:00 --outage "start=$(DEMO_DATE)T14:00+09:00; hours=8; sites=shelter_north,shelter_central,shelter_south" \
		--out $(CITY_OUT)

clean:
	rm -rf out .pytest_cache
