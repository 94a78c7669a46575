# ImageGateway developer commands. `make install && make run` serves; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BUF := .tools/node_modules/.bin/buf

.PHONY: install run test proto proto-check proto-baseline lint demo emulators bench bench-analytics bench-edits bench-workers clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	$(VENV)/bin/imagegw serve

test: install
	$(PY) -m pytest

proto: install
	PYTHON=$(PY) bash scripts/gen_protos.sh

# Fails when the committed stubs differ from what the protos generate.
proto-check: proto
	git diff --exit-code -- clients/imagegateway/v1 || (echo "generated stubs are stale: run make proto and commit" >&2; exit 1)
	test -z "$$(git status --porcelain -- clients/imagegateway/v1)" || (echo "untracked generated files: run make proto and commit" >&2; exit 1)

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf >/dev/null

# The protos' baseline for `buf breaking`: the API as last released. Refresh it (make proto-baseline)
# only when a release ships, never to make a breaking change pass.
PROTO_BASELINE := protos/breaking-baseline.binpb

lint: install $(BUF)
	$(BUF) lint
	$(BUF) breaking --against $(PROTO_BASELINE)
	$(VENV)/bin/ruff check server clients tests scripts bench
	$(VENV)/bin/ruff format --check server clients tests scripts bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

proto-baseline: $(BUF)
	$(BUF) build -o $(PROTO_BASELINE)

demo: install
	$(PY) scripts/demo.py

# The OpenAI and Stability emulators on ports 9101 and 9102 until Ctrl-C, printing the commands that point
# `make run` and the cookbook's virtual keys at them (README: "Try it without provider keys").
emulators: install
	$(PY) scripts/emulators.py $(EMULATORS_ARGS)

# Every performance figure the issues set a target for (about 10 min on 2 cores):
# run.py: latency, time to first partial image, throughput, memory and 10,000 in flight; writes
# bench/RESULTS.md (BENCH_ARGS=--quick for a smoke run, --no-soak to skip the 10,000-in-flight check,
# --profile for py-spy; BENCH_ARGS=--h2load measures the hot path with h2load instead, ~2.5 min);
# then 1,000 BFL jobs of 5 s at once (async_jobs.py), what SigV4 costs beside an OpenAI call
# (adapter_overhead.py), 32 concurrent uploads of 16 x 2 MiB images over REST and gRPC (edit_uploads.py), Redis-held state
# against in-process (redis_state.py), the PostgreSQL log writer at 2,000 records/s (postgres_log_writer.py)
# two workers against one with h2load (workers_scaling.py), and analytics over 30 days of 1,000,000
# requests (analytics_rollup.py; seeding takes minutes the first time, then the file is reused from
# ~/.cache/imagegw). Each also has its own target below.
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/async_jobs.py
	$(PY) bench/adapter_overhead.py
	$(PY) bench/edit_uploads.py
	$(PY) bench/edit_uploads.py --transport grpc
	$(PY) bench/redis_state.py
	$(PY) bench/postgres_log_writer.py
	$(PY) bench/workers_scaling.py
	$(PY) bench/analytics_rollup.py $(if $(BENCH_ANALYTICS_CACHE),--cache $(BENCH_ANALYTICS_CACHE))

# Analytics over 30 days of 1,000,000 requests on SQLite, from the rollups, then the dashboard's
# Analytics view loaded over HTTP from a gateway on that file; not part of `make bench`. The seeded file
# is cached (seeding takes minutes): BENCH_ANALYTICS_CACHE= seeds a temp file instead.
# BENCH_ANALYTICS_ARGS=--requests 100000 for a quicker run (with BENCH_ANALYTICS_CACHE= or another path).
BENCH_ANALYTICS_CACHE ?= $(HOME)/.cache/imagegw/bench-analytics-1m.db
bench-analytics: install
	$(PY) bench/analytics_rollup.py $(if $(BENCH_ANALYTICS_CACHE),--cache $(BENCH_ANALYTICS_CACHE)) $(BENCH_ANALYTICS_ARGS)

# The PostgreSQL request-log writer at a steady 2,000 records/s on a temp server (~25 s; docs/postgresql.md).
.PHONY: bench-postgres
bench-postgres: install
	$(PY) bench/postgres_log_writer.py $(BENCH_POSTGRES_ARGS)

# Gateway memory under 32 concurrent edit uploads of 16 x 2 MiB images, over REST then gRPC (chunked)
# (target: peak RSS under 600 MB; ~20 s each).
bench-edits: install
	$(PY) bench/edit_uploads.py
	$(PY) bench/edit_uploads.py --transport grpc

# Two workers against one (imagegw serve --workers), h2load on 256 KiB images, Redis as their shared state.
bench-workers: install
	$(PY) bench/workers_scaling.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
