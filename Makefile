# The two commands a newcomer needs: `make run` and `make test`. Each builds .venv from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE_KB ?= sample
# llama-cpp-python ships only as source: a portable build takes ~5 minutes once, then pip's
# wheel cache makes re-installs instant.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF

.PHONY: run search test install install-dev lint typecheck bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[local]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,local,tune]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: install, ingest the bundled sample documents (unchanged files are skipped on later
## runs), then serve the API and the web UI on http://127.0.0.1:8321
run: install
	$(BIN)/hanlin kb create $(SAMPLE_KB) --exist-ok
	$(BIN)/hanlin kb add $(SAMPLE_KB) samples/
	$(BIN)/hanlin serve

## make search: the interactive terminal search over the sample knowledge base
search: install
	$(BIN)/hanlin kb search $(SAMPLE_KB)

## make test: install with dev tools, lint, type-check, run the whole suite (slow tests included)
test: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint:
	$(BIN)/ruff check src tests bench

bench: install-dev
	$(BIN)/python bench/retrieval.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
