# polaronflow: the two commands of the README, each (re)creating the local virtual environment
# .venv from the project's own files (pyproject.toml) when they changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint venv clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# SecantusDB: a MongoDB-wire server for the MongoDB tests only (GPL, beta). It lives in its own
# virtual environment and runs as a separate process; the package never imports it.
MONGO_VENV := .venv-mongo
MONGO_STAMP := $(MONGO_VENV)/.installed
SECANTUSDB_VERSION ?= 0.7.0b3
$(MONGO_STAMP):
	test -x $(MONGO_VENV)/bin/python || $(PYTHON) -m venv $(MONGO_VENV)
	$(MONGO_VENV)/bin/python -m pip install --quiet "secantusdb==$(SECANTUSDB_VERSION)"
	touch $(MONGO_STAMP)

# jobflow-remote (the `remote` extra) requires pymongo<4.11, older than what the default install
# resolves: it gets an environment of its own, polaronflow as users install it with
# `pip install 'polaronflow[remote]'`. The jobflow-remote test runs its CLIs (polaronflow, jf).
REMOTE_VENV := .venv-remote
REMOTE_STAMP := $(REMOTE_VENV)/.installed
$(REMOTE_STAMP): pyproject.toml
	test -x $(REMOTE_VENV)/bin/python || $(PYTHON) -m venv $(REMOTE_VENV)
	$(REMOTE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(REMOTE_VENV)/bin/python -m pip install --quiet -e ".[test,remote]"
	touch $(REMOTE_STAMP)

## make demo: the paper's campaign end to end on the embedded defaults (FireWorks + custodian +
## the mock-VASP emulator; synthetic outputs), then analysis and reproduction into demo-output/
demo: $(STAMP)
	$(BIN)/polaronflow demo --out demo-output --force

## make test: lint + the whole test suite
test: $(STAMP) $(MONGO_STAMP) $(REMOTE_STAMP)
	$(BIN)/ruff check .
	POLARONFLOW_REQUIRE_JFREMOTE=1 $(BIN)/python tools/test_mongo.py --server $(MONGO_VENV)/bin/secantusd-py -- \
		$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(MONGO_VENV) $(REMOTE_VENV) demo-output .pytest_cache .ruff_cache polaronflow.egg-info
