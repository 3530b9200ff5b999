# Two commands for a newcomer: `make run` (set up, then open the app) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL := gguf/all-minilm-l6-v2.Q8_0.gguf

.PHONY: run setup test lint bench clean

run: setup
	$(BIN)/localsearch

setup: $(VENV)/.installed $(MODEL)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# llama-cpp-python compiles llama.cpp from source: a few minutes the first time.
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The offline default model, converted from real weights and quantized; built once.
$(MODEL): $(VENV)/.installed
	$(BIN)/localsearch models build

lint: $(VENV)/.installed
	$(BIN)/ruff check localsearch tests bench
	$(BIN)/mypy

test: setup lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/scifact_index.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
