# The two commands of the README: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# What is installed: the runtime (requirements.txt) for `make run`; the development tools on
# top of it (requirements-dev.txt, which includes requirements.txt) for the rest. Switching from
# `make run` to `make test` installs what is missing; an edited file installs again.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test venv bench demo migrate lint messages clean

$(RUN_STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $(RUN_STAMP)

$(DEV_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(DEV_STAMP) $(RUN_STAMP)

venv: $(DEV_STAMP)

## Start everything on 127.0.0.1:8000 (web + worker + embedded Redis when REDIS_URL is unset)
run: $(RUN_STAMP)
	$(PY) -m comfyportal.launcher

## The whole test suite (embedded Redis + SQLite unless DATABASE_URL / REDIS_URL are set)
test: $(DEV_STAMP)
	$(PY) -m comfyportal.embedded -- $(PY) -m pytest $(PYTEST_ARGS)

## Benchmarks against test ComfyUI nodes: throughput, then the portal's overhead per job; then the pages with a big history (see docs/performance.md)
bench: $(DEV_STAMP)
	$(PY) -m comfyportal.embedded -- $(PY) -m bench.jobs $(BENCH_ARGS)
	$(PY) -m comfyportal.embedded -- $(PY) -m bench.models
	$(PY) -m comfyportal.embedded -- $(PY) -m bench.overhead
	$(PY) -m comfyportal.embedded -- $(PY) -m bench.pages

## make run with four test ComfyUI nodes registered
demo: $(DEV_STAMP)
	$(PY) -m comfyportal.launcher --demo-nodes 4

migrate: $(RUN_STAMP)
	$(PY) manage.py migrate

messages: $(DEV_STAMP)
	$(PY) manage.py makemessages -l ru --no-obsolete --ignore=.venv --ignore=var --ignore=tests --ignore=testcomfy --ignore=bench --ignore=static && $(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf var/test.sqlite3 test-artifacts

## ruff (check + format) and the import contracts in pyproject.toml
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
