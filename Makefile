# cerniq.outreach: two commands on a fresh machine.
#   make demo   sets everything up, starts the local stack and runs the morning check against it
#   make test   sets everything up and runs every test (lint, sanity, unit, integration, Molecule, compat)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell tools/pick-python)
PY_MINOR := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# ansible-core 2.21 needs Python 3.12; on 3.11 the newest is 2.19.
ANSIBLE_CORE_SPEC := $(if $(filter 3.11,$(PY_MINOR)),ansible-core==2.19.*,ansible-core==2.21.*)
# This machine's pip config names local indexes that may not exist; their warnings are noise, errors still show.
QUIET_PIP_WARNINGS := 2> >(grep -v '^WARNING: Location' >&2)
VENV ?= .venv
BIN := $(VENV)/bin
COMPAT_VENV := .venv-2.19
COMPAT_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.11*/bin/python3.11) $(shell command -v python3.11))
COLLECTION_LINK := .collections/ansible_collections/cerniq/outreach
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help setup system-deps venv collection node demo demo-stop stack-start stack-stop stack-status \
        test lint docs sanity units pytest molecule compat bench clean ee-context

help:
	@echo "make demo   # set up, start the local stack, run the main job (morning check) against it"
	@echo "make test   # set up and run every test"
	@echo "make bench  # benchmarks beside the runbook's own procedures (minutes)"
	@echo "make demo-stop  # stop the local stack"

setup: system-deps venv collection node

system-deps:
	@tools/system-deps

venv: $(VENV)/.installed

# The runtime dependencies: exactly the versions and files of requirements.lock (sha256 hashes checked; regenerated
# from requirements.txt with pip-compile --generate-hashes, see docs/security.md). Then ansible-core and the tools.
$(VENV)/.installed: requirements.txt requirements.lock requirements-test.txt
	@echo "Python for the venv: $(PYTHON) ($(PY_MINOR)), $(ANSIBLE_CORE_SPEC)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip $(QUIET_PIP_WARNINGS)
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock $(QUIET_PIP_WARNINGS)
	$(BIN)/python -m pip install -q "$(ANSIBLE_CORE_SPEC)" -r requirements-test.txt $(QUIET_PIP_WARNINGS)
	$(BIN)/python -c 'import ansible, redis, psycopg2, bullmq, pytest, molecule, ansible_runner' 
	touch $@

collection: $(COLLECTION_LINK)

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

node: tests/node/node_modules/.package-lock.json

tests/node/node_modules/.package-lock.json: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error 2> >(grep -v "Unknown user config" >&2)
	test -d tests/node/node_modules/bullmq

stack-start: setup
	$(BIN)/python -m tests.support.stack start

stack-stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m tests.support.stack stop; fi

stack-status:
	$(BIN)/python -m tests.support.stack status

# The demo data has an OFFLINE phone, a drifting status, a leaking counter, a counter without TTL and SLA breaches on
# purpose: the morning check reports them as failed checks, and only here is told not to fail the run for them (any
# other failure - a module error, a service down - still fails `make demo`).
demo: stack-start
	$(BIN)/ansible-playbook -i inventories/local playbooks/check_morning.yml -e check_morning_fail_on_failed_checks=false
	@echo "The local stack keeps running; 'make demo-stop' stops it. Report: reports/check_morning-<date>.json"

demo-stop: stack-stop

test: setup lint docs sanity units pytest molecule compat
	@echo "make test: every suite passed"

lint:
	$(BIN)/ruff check plugins tests tools bench extensions
	$(BIN)/ansible-lint --profile production --offline -q

sanity:
	tools/ansible-test-sanity

# The unit tests (tests/unit/plugins/, mirroring plugins/) through ansible-test units, on a copy, in the venv.
units: setup
	tools/ansible-test-units

# The HTML docsite into .build/docs (antsibull-docs lint and build, Sphinx) and antsibull-changelog lint.
docs: setup
	tools/build-docs

# One worker more than the cores: a test spends about a third of its time waiting (SSH round trips, servers, its
# own subprocesses), so a third worker fills the gaps - the lab alone on 2 cores took 11 min 36 s with 2 workers and
# 9 min 8 s with 3. A file's tests stay together (they share seeded data and servers). The unit tests of
# tests/unit/plugins/ are `make units`' (ansible-test units), not run twice.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
pytest:
	$(BIN)/pytest tests -q -n $(PYTEST_WORKERS) --dist loadfile --ignore=tests/unit/plugins --durations=25

molecule:
	tools/molecule-all

# ansible-core 2.19 on Python 3.11 (tools/compat-check): without Python 3.11 a loud skip for `make compat` alone,
# a failure with CI set or under `make test` (its "every suite passed" would not be true).
compat:
	COMPAT_REQUIRED=$(if $(filter test,$(MAKECMDGOALS)),1,$${COMPAT_REQUIRED:-}) \
	  tools/compat-check "$(COMPAT_PYTHON)" "$(COMPAT_VENV)"

# The build contexts of the AWX execution environment and the EDA decision environment (docs/awx.md).
ee-context: venv
	tools/build-ee-context all

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: stack-stop
	rm -rf .build .collections .pytest_cache .ruff_cache reports
