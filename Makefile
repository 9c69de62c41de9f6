# make run: set up .venv from the pinned requirements.txt and start the app.
# make lint: ruff and the import-linter contracts (pyproject.toml); .ci/run runs it first.
# make test: same set-up plus the test tools (requirements-dev.txt), then every test
#            (browser tests skip loudly without chromium). make test-fast: the quick subset.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := $(shell cat requirements.txt | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(LOCK)
DEV_STAMP := $(VENV)/.installed-dev-$(LOCK)-$(shell cat requirements-dev.txt | cksum | cut -d' ' -f1)
PORT ?= 8501
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
export MPLBACKEND := Agg

.PHONY: run test test-fast lint bench assets clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-dev-* && touch $@

run: $(STAMP)
	$(PY) -m studio.serve app.py --server.port $(PORT)

test: $(DEV_STAMP)
	timeout -k 30 80m $(PY) -m pytest

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test-fast: $(DEV_STAMP)
	$(PY) -m pytest -m "not browser and not slow and not distributed"

bench: $(DEV_STAMP)
	for f in loss_speed playground_fps app_train_speed classroom_load lab_scale; do \
		echo "== bench/$$f.py"; $(PY) bench/$$f.py --docs || exit 1; done

assets: $(STAMP)
	$(PY) assets/build.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .numba_cache
