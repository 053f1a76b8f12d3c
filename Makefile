# The two commands a newcomer runs: `make demo` and `make test`. Both set up everything from nothing:
# a virtual environment in .venv with dagrad, its bundled plugins and test tools, Graphviz's `dot`, and
# Chromium (the browser tests of the HTML viewer run in it, headless).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: demo test setup graphviz chromium docs docs-serve pictures bench clean vendor-js ops-table

demo: setup
	$(PY) -m dagrad.cli demo

test: setup
	$(PY) -m pytest

setup: $(STAMP) graphviz chromium

$(STAMP): pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

# Installing a system tool: `have` asks whether a command exists; `apt_install` installs Debian
# packages (Debian, Ubuntu, the CI image), quietly, with sudo unless we are root.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
have = command -v $(1) >/dev/null 2>&1
apt_install = $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(1) >/dev/null

# Graphviz's `dot` renders the diagrams; install it with the system package manager when missing.
graphviz:
	@$(call have,dot) || { \
	  echo "Graphviz's dot is missing; installing it"; \
	  if $(call have,apt-get); then $(call apt_install,graphviz); \
	  elif $(call have,brew); then brew install graphviz; \
	  elif $(call have,dnf); then $(SUDO) dnf install -y graphviz; \
	  else echo "Install Graphviz (https://graphviz.org/download/) and re-run." >&2; exit 1; fi; }

# Chromium for the viewer's browser tests, from the system's packages (Playwright's own browser
# download is not used). Where no package manager can install it, those tests skip and say why.
chromium:
	@$(call have,chromium) || $(call have,chromium-browser) || { \
	  echo "Chromium is missing; installing it for the viewer's browser tests"; \
	  if $(call have,apt-get); then $(call apt_install,chromium); \
	  elif $(call have,brew); then brew install --cask chromium; \
	  else echo "Install Chromium to run the viewer's browser tests (they skip without it)." >&2; fi; }

# The docs site, built strictly (a broken link, a missing reference or any warning fails) into site/.
# NO_MKDOCS_2_WARNING: Material for MkDocs prints a notice about its end of life (May 2027) on every run.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve

# Rewrite the table of every op in docs/ops.md from the registry (after adding an op, or changing
# a docstring's first line or an op's counterparts); tests/test_op_table.py fails until you do.
ops-table: setup
	$(PY) tools/op_table.py

# Redraw docs/img/*.svg by running the guide pages that draw them.
pictures: setup
	$(PY) docs/build.py

# Re-vendor the viewer's JavaScript from npm at the versions in src/dagrad/render/static/vendor.json.
vendor-js: setup
	$(PY) tools/vendor_js.py

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info .pytest_cache .hypothesis
