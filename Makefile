# The two commands of the README: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv bench demo migrate lint messages clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

## Start everything on 127.0.0.1:8000 (web + worker + embedded Redis when REDIS_URL is unset)
run: $(STAMP)
	$(PY) -m comfyportal.launcher

## The whole test suite (embedded Redis + SQLite unless DATABASE_URL / REDIS_URL are set)
test: $(STAMP)
	$(PY) -m comfyportal.embedded -- $(PY) -m pytest $(PYTEST_ARGS)

## Throughput benchmark against test ComfyUI nodes (see docs/performance.md)
bench: $(STAMP)
	$(PY) -m comfyportal.embedded -- $(PY) -m bench.jobs $(BENCH_ARGS)
	$(PY) -m comfyportal.embedded -- $(PY) -m bench.models

## make run with four test ComfyUI nodes registered
demo: $(STAMP)
	$(PY) -m comfyportal.launcher --demo-nodes 4

migrate: $(STAMP)
	$(PY) manage.py migrate

messages: $(STAMP)
	$(PY) manage.py makemessages -l ru --no-obsolete --ignore=.venv --ignore=var --ignore=tests --ignore=testcomfy --ignore=bench --ignore=static && $(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf var/test.sqlite3 test-artifacts

## ruff (check + format) and the import contracts in pyproject.toml
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
