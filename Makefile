# The two commands a newcomer runs: `make demo` and `make test`. Both set up everything from nothing:
# a virtual environment in .venv with dagrad, its bundled plugins and test tools, and Graphviz's `dot`.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: demo test setup graphviz docs docs-serve pictures bench clean

demo: setup
	$(PY) -m dagrad.cli demo

test: setup
	$(PY) -m pytest

setup: $(STAMP) graphviz

$(STAMP): pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

# Graphviz's `dot` renders the diagrams; install it with the system package manager when missing.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "Graphviz's dot is missing; installing it"; \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null; \
	  elif command -v brew >/dev/null 2>&1; then brew install graphviz; \
	  elif command -v dnf >/dev/null 2>&1; then sudo dnf install -y graphviz; \
	  else echo "Install Graphviz (https://graphviz.org/download/) and re-run." >&2; exit 1; fi; }

# The docs site, built strictly (a broken link, a missing reference or any warning fails) into site/.
# NO_MKDOCS_2_WARNING: Material for MkDocs prints a notice about its end of life (May 2027) on every run.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve

# Redraw docs/img/*.svg by running the guide pages that draw them.
pictures: setup
	$(PY) docs/build.py

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info .pytest_cache .hypothesis
