# Two commands do all the set-up on a fresh machine:
#   make book   create .venv, install, build the book in the `book` profile (HTML in _build/html)
#   make test   create .venv if missing, install (Chromium too), run every test: the package's
#               tests, every chapter in the `smoke` profile, the smoke build of the book
#               (_build/smoke) and the real-browser check of every page (_build/screenshots)
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed-stamp
# exact versions of every package (torch, torchvision, timm, the book and test tools): what
# `make install`, `make test`, `make book` and CI use. `make lock` refreshes it.
LOCK     := requirements.lock
# a second environment on the day's newest releases (`make test-latest`)
LATEST   := .venv-latest
JOBS     ?= 2
# Debian's Chromium, driven by Playwright in tests/test_book_build.py (never `playwright install`,
# which downloads a browser of its own)
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install lock test-latest browser test book book-check bench gpu-check gpu-check-dry lint clean

install: $(STAMP)

# pip first (its own version is locked too), then every package at its locked version, then
# sret_mini itself, editable, adding nothing: a package missing from the lock fails `pip check`.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$$(grep '^pip==' $(LOCK))"
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# The newest releases that pyproject.toml's loose bounds admit, resolved in one pip call (torch,
# torchvision and timm must match), frozen with exact versions. The CUDA libraries that torch
# pulls in exist only for Linux: they get a marker, so that the lock installs elsewhere too.
# This honours the machine's pip configuration (some machines cap torch at the release on their
# disk): the lock must install where it is made.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet ".[test,book]"
	{ echo "# Exact versions for make install (made by make lock on $$(uname -sm), Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'))."; \
	  .venv-lock/bin/python -m pip freeze --all --exclude sret_mini \
	  | sed -E 's/^((nvidia|cuda|triton)[^=]*==[^ ;]+)$$/\1 ; sys_platform == "linux"/'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock
	@echo "$(LOCK) refreshed: git diff $(LOCK) shows what moved; run make install and make test on it"

# The whole test suite in a second environment on the day's newest releases, ignoring the lock
# and any cap in the machine's pip configuration (PIP_CONFIG_FILE=/dev/null): drift is found here,
# by a command, before a reader on Colab finds it.
test-latest: $(CHROMIUM)
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	PIP_CONFIG_FILE=/dev/null $(LATEST)/bin/python -m pip install --quiet --upgrade pip
	PIP_CONFIG_FILE=/dev/null $(LATEST)/bin/python -m pip install --quiet --upgrade -e ".[test,book]"
	$(LATEST)/bin/python -m pip freeze --exclude-editable | grep -iE '^(torch|torchvision|timm)=='
	CHROMIUM=$(CHROMIUM) $(LATEST)/bin/python -m pytest -n $(JOBS) --dist loadgroup tests

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

# The one prepared check for a GPU machine (bench/README.md): at most 8 minutes on one GPU, results in
# bench/results/*-cuda.json. It needs no .venv (a GPU box may have no pip): torch and timm as installed
# there, sret_mini from this checkout. ARGS passes options, e.g. ARGS="--results-dir $$OUT".
gpu-check:
	PYTHONPATH=. $(PYTHON) bench/gpu_check.py $(ARGS)

# the same code paths on this machine's CPU at tiny sizes (tests/test_gpu_check.py runs it too)
gpu-check-dry: $(STAMP)
	$(BIN)/python bench/gpu_check.py --dry-run --results-dir $${TMPDIR:-/tmp}/sret-gpu-check

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf _build
