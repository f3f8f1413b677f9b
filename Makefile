# Two commands do all the set-up on a fresh machine:
#   make book   create .venv, install, build the book in the `book` profile (HTML in _build/html)
#   make test   create .venv if missing, install (Chromium too), run every test: the package's
#               tests, every chapter in the `smoke` profile, the smoke build of the book
#               (_build/smoke) and the real-browser check of every page (_build/screenshots)
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed-stamp
JOBS     ?= 2
# Debian's Chromium, driven by Playwright in tests/test_book_build.py (never `playwright install`,
# which downloads a browser of its own)
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install browser test book book-check bench lint clean

install: $(STAMP)

# torch, torchvision and timm are resolved together in one pip call: a CPU-only torch next to the
# registry's (CUDA-built) torchvision breaks `import timm` ("operator torchvision::nms does not exist").
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch>=2.4" "torchvision>=0.19" "timm>=1.0"
	$(BIN)/python -m pip install --quiet -e ".[test,book]"
	touch $(STAMP)

browser: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "no Chromium at $(CHROMIUM) and no apt-get to install it: install Chromium, then run make with CHROMIUM=/path/to/chromium"; exit 1; }
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null

# OpenMP threads that wait yield their core instead of spinning: on a busy 2-core machine (two
# xdist workers, or a book kernel beside another process) spinning threads make torch many times
# slower. An OMP_WAIT_POLICY set in the environment wins.
export OMP_WAIT_POLICY ?= PASSIVE

# --dist loadgroup keeps the smoke build and the browser checks on one worker (see test_book_build.py)
test: $(STAMP) $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -n $(JOBS) --dist loadgroup tests

book: $(STAMP)
	SRET_PROFILE=$${SRET_PROFILE:-book} $(BIN)/jupyter-book build . -W --keep-going
	@echo "The book is in _build/html: open _build/html/index.html"

# the browser check on the `make book` output (screenshots in _build/screenshots)
book-check: $(STAMP) $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) SRET_BOOK_HTML=_build/html $(BIN)/python -m pytest -q tests/test_book_build.py -k page

# every benchmark on this machine's device (a GPU if torch sees one); figures in bench/results/
bench: $(STAMP)
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/depth_memory.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/distill.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf _build
