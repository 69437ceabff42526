# The two commands a new user needs: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8

# Prefect keeps its state in the project's .prefect and stays quiet: every brukardata command
# and the tests set this up themselves (flows/prefect_home.py).

.PHONY: install demo test lint lock bench clean

# Dependencies are compiled to bytecode once at install: every process then starts seconds
# sooner, also where PYTHONDONTWRITEBYTECODE keeps Python from caching it.
$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(BIN)/.installed  ## the environment only: .venv with brukardata and the dev tools

demo: install  ## sample exports of both surveys, two years, into demo/brukardata.duckdb
	rm -rf demo/brukardata.duckdb demo/brukardata.duckdb.wal
	$(BIN)/brukardata demo --out demo

# Most tests wait on one core (a server starting, a subprocess): one worker per core, each
# module on one worker, so a module's shared warehouse is built once.
test: install  ## the whole test suite
	$(BIN)/pytest --numprocesses auto --maxprocesses 4 --dist loadscope

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy flows tasks schemas warehouse sample tests bench

lock: install  ## re-resolve requirements.lock from the pins in pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python $(BIN)/python -o requirements.lock

clean:
	rm -rf $(VENV) .prefect demo build *.egg-info

# The benchmarks import Prefect before any command sets its home up: give them the project's.
bench: export PREFECT_HOME := $(CURDIR)/.prefect
bench: install  ## benchmarks, figures printed, never asserted (BENCH_ARGS=--quick: national only)
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)
	$(BIN)/python -m bench.disclosure
	$(BIN)/python -m bench.read_large_export --size-mb 1024
