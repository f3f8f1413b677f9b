# Two commands do all the set-up on a fresh machine:
#   make book   create .venv, install, build the book (HTML in _build/html)
#   make test   create .venv if missing, install, run every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
JOBS   ?= 2

.PHONY: install test book lint clean

install: $(STAMP)

# torch, torchvision and timm are resolved together in one pip call: a CPU-only torch next to the
# registry's (CUDA-built) torchvision breaks `import timm` ("operator torchvision::nms does not exist").
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch>=2.4" "torchvision>=0.19" "timm>=1.0"
	$(BIN)/python -m pip install --quiet -e ".[test,book]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) tests

book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf _build
