# `make run` and `make test` each set up a virtual environment inside the checkout on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test fuzz bench corpus corpus-cache clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,audio]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

test: $(STAMP)
	# Two workers (pytest-xdist) on the two cores. What several tests only read (the test tunes, the tiny run,
	# the fresh parse, the wheel) is built once per run and shared through a lock (tests/built_once.py): with
	# pytest 9.2, xdist 3.8's loadgroup no longer keeps an xdist_group on one worker (pytest-xdist #1386).
	# The 15 slowest tests are listed at the end.
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -ra -n 2 --dist loadgroup --durations=15

# The property tests (Hypothesis) with at least 500 cases each instead of the suite's few (tests/conftest.py).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=deep QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -n 2 $$(grep -l "@given" tests/*.py)

bench: $(STAMP)
	$(PY) main.py bench

# Rebuilds midi_data/ from music21's ABC collections (needs the `corpus` extra; takes ~15 minutes),
# then its tokenized form.
corpus: $(STAMP)
	$(PY) -m pip install --quiet -e '.[corpus]'
	$(PY) scripts/build_corpus.py
	$(PY) scripts/build_corpus_cache.py

# Rebuilds midi_data/tokenized.npz + .json, the parsed bundled corpus that ships so that the first launch
# parses nothing (~20 s). Needed after a change to midi_data/ or to the MIDI-to-tokens code: the tests
# fail while it differs from a fresh parse.
corpus-cache: $(STAMP)
	$(PY) scripts/build_corpus_cache.py

clean:
	rm -rf $(VENV) .cache
