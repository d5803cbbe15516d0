# kitsync: `make demo` runs the main job on the embedded default; `make test` runs the whole suite.
# Both build .venv from requirements.lock when it is missing or older than the lock / pyproject.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kitsync-installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_LOGGING_LEVEL ?= WARNING
# The suite runs in two processes (one per core here and on CI); a test module stays in one process, so its
# fixtures (a Prefect test server, a synced sandbox world) are built once per process.
TEST_WORKERS ?= 2

.PHONY: demo test lint format lock bench bench-quick clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kitsync demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/deptry .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# ruff, then the architecture: DESIGN.md's import directions (import-linter contracts in pyproject.toml) and
# every imported module declared as a direct dependency (deptry).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/deptry .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The performance scripts side by side with their baselines (README "Performance"). Each takes --kits N (the
# README's figures name the sizes they ran at) and --json FILE: every run's measured goals land in
# $(BENCH_OUT)/<n>-<script>.json, and all of them together in $(BENCH_OUT)/figures.json, so runs can be
# compared (bench/figures.py prints them). `make bench` runs everything at the goals' sizes, latency and
# memory included (well over an hour here); `make bench-quick` the same scripts small, in a few minutes.
BENCH_OUT ?= bench-results
BENCH_TUNING := --concurrency 64 --batch-size 500
BENCH_LATENCY := --latency-ms 100
BENCH_RUNS := "taxonomy_parse.py --kits 2000" "client_overhead.py --requests 20000" \
	"sync_vs_raw.py --kits 2000 $(BENCH_TUNING)" "sync_vs_raw.py --kits 1000 $(BENCH_LATENCY) $(BENCH_TUNING)" \
	"sync_vs_dlt.py --kits 2000 $(BENCH_TUNING)" \
	"hourly.py --kits 100000 $(BENCH_TUNING)" "hourly.py --kits 100000 $(BENCH_LATENCY) $(BENCH_TUNING)" \
	"load.py --kits 70000" "memory.py --kits 100000 --mode synthetic $(BENCH_TUNING)" \
	"scale.py --sizes 1000000,10000000,50000000" "scale_hourly.py --kits 5000 $(BENCH_TUNING)" \
	"scale_workers.py --kits 2000 --rounds 3 $(BENCH_TUNING)"
BENCH_QUICK_RUNS := "taxonomy_parse.py --kits 500" "client_overhead.py --requests 3000" \
	"sync_vs_raw.py --kits 500 --limits 64 --skip-slow $(BENCH_TUNING)" \
	"sync_vs_raw.py --kits 300 $(BENCH_LATENCY) $(BENCH_TUNING)" \
	"sync_vs_dlt.py --kits 500 $(BENCH_TUNING)" \
	"hourly.py --kits 5000 $(BENCH_TUNING)" "hourly.py --kits 5000 $(BENCH_LATENCY) $(BENCH_TUNING)" \
	"load.py --kits 10000" "memory.py --kits 3000 --mode synthetic $(BENCH_TUNING)" \
	"scale.py --sizes 100000,1000000 --loads 2" "scale_hourly.py --kits 500 --rounds 2 $(BENCH_TUNING)" \
	"scale_workers.py --kits 300 --rounds 1 $(BENCH_TUNING)"

define run_benches
	@rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	@n=0; for run in $(1); do n=$$((n + 1)); script=$${run%%.py*}; echo "== bench/$$run"; \
		$(BIN)/python bench/$$run --json $(BENCH_OUT)/$$n-$$script.json || exit 1; done
	@$(BIN)/python bench/figures.py $(BENCH_OUT)/[0-9]*.json --out $(BENCH_OUT)/figures.json
endef

bench: $(STAMP)
	$(call run_benches,$(BENCH_RUNS))

bench-quick: $(STAMP)
	$(call run_benches,$(BENCH_QUICK_RUNS))

# Re-resolve dependencies from pyproject.toml and pin them (run by hand when dependencies change).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	.venv-lock/bin/python -m pip freeze --all --exclude-editable --disable-pip-version-check | grep -v "^pip==" | sort > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache $(BENCH_OUT)
