# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install migrate shell lint clean-data

# The server is the distribution `lookglass-server`; the client package (clients/python, the
# `lookglass` command and the rule evaluators the server runs) is installed beside it.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e ".[embedded,dev,compiled]" -e ./clients/python
	@touch $(STAMP)

# The ingest hot path compiled with Cython (config/compiled.py): only modules whose source changed
# since their last build, so a no-op most times; without a C compiler they stay interpreted.
.PHONY: compile
compile: $(STAMP)
	@$(PY) -m config.compiled build

install: $(STAMP) compile

run: $(STAMP) compile
	@$(PY) -m config.devstack run

# TEST_WORKERS=2 runs the suite on two pytest-xdist processes, each with its own test databases and
# Redis database (config/test_settings.py), a file's tests together on one worker (module fixtures
# start once): half the time. Serial by default until the fuzz ingestion test's failures under two
# workers (2 of about 12 whole runs; never serially) are understood (README, Tests).
TEST_WORKERS ?= 0
test: $(STAMP) compile
	@$(PY) -m config.devstack test -- -n $(TEST_WORKERS) --dist loadfile $(ARGS)

migrate: $(STAMP) compile
	@$(PY) -m config.devstack exec -- $(PY) manage.py migrate_all

# ruff, the import-linter layer contracts ([tool.importlinter] in pyproject.toml) and the check that
# only the ingest package writes the telemetry tables.
lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/lint-imports
	@$(PY) -m config.lint_writes

shell: $(STAMP) compile
	@$(PY) -m config.devstack exec -- $(PY) manage.py shell

clean-data:
	rm -rf .data

# Prompt fetch latency against gunicorn on the embedded stack (BENCH_CLIENTS, BENCH_SECONDS).
.PHONY: bench-prompts
bench-prompts: $(STAMP) compile
	@$(PY) -m config.devstack exec -- $(PY) bench/bench_prompts.py

# Updates of 20 stored calls on a project grown since its last ANALYZE: ms and rows read per batch
# (BENCH_UPDATE_CALLS, BENCH_UPDATE_BATCHES: bench/bench_update_path.py).
.PHONY: bench-updates
bench-updates: $(STAMP) compile
	@$(PY) -m config.devstack exec -- $(PY) bench/bench_update_path.py

# PII redaction throughput on realistic chat payloads (MB/s, per-detector cost, worst cases).
.PHONY: bench-redact
bench-redact: $(STAMP) compile
	@$(PY) bench/bench_redact.py

# Trace ingestion end to end against gunicorn on the durable embedded stack: spans/s accepted and
# queryable, batch latency at half that rate, peak RSS per web worker (BENCH_* knobs: bench/bench_ingest.py).
# PROFILE=openinference|genai|langfuse: issue 13's agent-turn workloads instead of the default one.
.PHONY: bench-ingest
bench-ingest: $(STAMP) compile
	@$(if $(PROFILE),BENCH_WORKLOAD=$(PROFILE) )$(PY) -m config.devstack exec -- $(PY) bench/bench_ingest.py

# Alert evaluation: 1,000 rules of every kind over 35 days of rollups, timed as the per-region beat
# task runs them (budget 10 s per minute; BENCH_ALERT_* knobs: bench/bench_alerts.py).
.PHONY: bench-alerts
bench-alerts: $(STAMP) compile
	@$(PY) -m config.devstack exec -- $(PY) bench/bench_alerts.py

# Any manage.py command against the same stack as `make run` (shares it when it is up):
#   make manage ARGS="create_project --org Acme --project bot --json"
.PHONY: manage
manage: $(STAMP) compile
	@$(PY) -m config.devstack exec -- $(PY) manage.py $(ARGS)

# A reproducible telemetry volume loaded through the ingest API (OTLP + Langfuse batch) on the durable
# embedded stack: SCALE=1 is 1M observations (200k traces, 30 days); SCALE=10 is 10M. SEED, and ARGS for
# the rest (--project-keys PUBLIC:SECRET, --base URL, --end, --start/--stop): bench/seed_volume.py --help.
.PHONY: seed-volume
seed-volume: $(STAMP) compile
	@SCALE=$(SCALE) SEED=$(SEED) $(PY) -m config.devstack exec -- $(PY) bench/seed_volume.py $(ARGS)

# p50/p95 server time of every read endpoint and the console trace list over the seed-volume project
# (BENCH_READS_RUNS per endpoint; BENCH_PROJECT=NAME times an existing project instead, e.g. the 10M
# console seed; ARGS: bench/bench_reads.py --help).
.PHONY: bench-reads
bench-reads: $(STAMP) compile
	@$(PY) -m config.devstack exec -- $(PY) bench/bench_reads.py $(ARGS)
# Evaluation throughput on the embedded stack: rule evaluators end to end, LLM judge against a local
# fake with 300 ms latency, nightly sample selection over 1M observations (BENCH_* knobs: bench/bench_evals.py).
.PHONY: bench-evals
bench-evals: $(STAMP) compile
	@$(PY) -m config.devstack exec -- $(PY) bench/bench_evals.py
# Server time of every console page (Django test client, in-process) over a project filled through
# ingest (kept and reused; ARGS: --traces N --repeat R; console/management/commands/console_bench.py),
# or seeded with SQL at volume: ARGS="--observations 10000000" (bench/console_volume.py).
.PHONY: bench-console
bench-console: $(STAMP) compile
	@$(PY) -m config.devstack exec -- sh -c '$(PY) manage.py migrate_all >/dev/null && $(PY) manage.py console_bench $(ARGS)'

# Dashboard and metrics-query latency at volume (BENCH_OBSERVATIONS, default 10M over BENCH_DAYS=30;
# the seeded project is kept and reused): bench/bench_dashboards.py.
.PHONY: bench-dashboards
bench-dashboards: $(STAMP) compile
	@$(PY) -m config.devstack exec -- $(PY) bench/bench_dashboards.py
# Erasure of one end user among BENCH_OBSERVATIONS (10M) observations generated with SQL, and a retention
# run of BENCH_RETENTION_ROWS rows, on the durable embedded stack (bench/bench_privacy.py).
# MODE=retention-under-load: ingest p99 at bench-ingest's half rate without, with and again without a
# retention run of BENCH_RETENTION_ROWS (200k) rows in the same database (bench/bench_retention_load.py).
.PHONY: bench-privacy
bench-privacy: $(STAMP) compile
	@$(if $(MODE),BENCH_PRIVACY_MODE=$(MODE) )$(PY) -m config.devstack exec -- $(PY) bench/bench_privacy.py
