# make run   - venv + install, database (embedded unless DATABASE_URL), migrate, demo data, gunicorn on :5001
# make test  - the whole test suite against a real PostgreSQL (see README: how tests find it)
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test browser install install-dev stop-db bench bench-all bench-peers bench-grid bench-vectorbt-stops bench-strategies bench-robustness bench-scale bench-load bench-import bench-cold clean

$(BIN)/python:
	$(shell command -v $(PYTHON) >/dev/null 2>&1 && echo $(PYTHON) || echo python3) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	$(BIN)/python -m api.serve

# The dashboard's browser test drives Debian's chromium (Playwright, never a browser download): installed here
# when it is missing (needs root, as on CI; elsewhere install the package chromium yourself).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	apt-get install -y --no-install-recommends chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)

browser: $(CHROMIUM)

test: $(VENV)/.installed-dev $(CHROMIUM)
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/benchmark_parallel.py --http

bench-all: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/benchmark_parallel.py --workload all --http
	$(BIN)/python benchmarks/benchmark_parallel.py --calibrate

bench-load: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_load.py

bench-import: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_import.py

bench-cold: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_cold_start.py

.venv-bench/.installed: requirements.txt benchmarks/requirements.txt
	$(shell command -v $(PYTHON) >/dev/null 2>&1 && echo $(PYTHON) || echo python3) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet -r requirements.txt -r benchmarks/requirements.txt
	touch $@

bench-peers: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/bench_peers.py

bench-grid: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/bench_grid.py

bench-vectorbt-stops: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/bench_vectorbt_stops.py

bench-strategies: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_strategies.py

bench-robustness: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_robustness.py

bench-scale: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_scale.py --settings 96 --scales 1,4,16,64 --workloads hourly
	$(BIN)/python benchmarks/bench_scale.py --settings 96 --scales 1,4,16 --workloads minute
	$(BIN)/python benchmarks/bench_append.py

stop-db: $(VENV)/.installed
	$(BIN)/python -c "from api.config import Settings; from api.db.embedded import stop_embedded_postgres as s; print('stopped' if s(Settings.from_env().pgserver_dir) else 'not running')"

clean: stop-db
	rm -rf .pgdata
