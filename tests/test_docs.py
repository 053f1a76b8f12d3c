"""The docs are tested: their examples run and their output is compared, and the reference pages name everything.

Every page of docs/*.md and README.md runs top to bottom in one namespace
through Sybil (``docs/build.py: run_page``): a ```python block runs as it is,
one starting with ``>>>`` is a doctest whose shown output must be what it
prints, and ``<!-- skip: next -->`` skips the next block. docs/index.md says
so for writers of the docs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dagrad as dg

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load("docs_build", ROOT / "docs" / "build.py")
hooks = _load("docs_hooks", ROOT / "docs" / "hooks.py")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples_run_and_print_what_the_page_shows(page, tmp_path, fresh_registry):
    build.run_page(page, tmp_path)


def test_a_doctest_block_fails_when_the_output_it_shows_is_wrong(tmp_path):
    page = tmp_path / "wrong.md"
    page.write_text("```python\nx = 2\n```\n\n```python\n>>> x + 1\n4\n```\n")
    with pytest.raises(AssertionError, match=r"line 6.*\n.*Expected:\s+4\s+Got:\s+3"):
        build.run_page(page, tmp_path)


def test_a_block_after_skip_next_does_not_run(tmp_path):
    page = tmp_path / "skipped.md"
    page.write_text("<!-- skip: next -->\n```python\nraise SystemExit('ran')\n```\n\n```python\n>>> 1 + 1\n2\n```\n")
    build.run_page(page, tmp_path)


def test_the_ops_page_lists_every_built_in_op():
    text = (ROOT / "docs" / "ops.md").read_text()
    missing = [name for name in dg.registry().plugins["builtins"].ops if f"`{name}`" not in text]
    assert not missing, f"docs/ops.md does not mention {missing}"


def test_every_hook_is_documented_in_the_plugins_guide_with_its_signature():
    text = (ROOT / "docs" / "plugins.md").read_text()
    hooks_ = {name: caller for name, caller in vars(dg.registry().hook).items() if name.startswith("dagrad_")}
    assert hooks_, "no dagrad_* hooks are declared?"
    for name, caller in hooks_.items():
        heading = f"### `{name}({', '.join(caller.spec.argnames)})`"
        assert heading in text, f"docs/plugins.md lacks a hook reference entry {heading}"


# ------------------------------------------------------------------ the site -----


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The docs site, built strictly (a warning fails) from a clean directory."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr}"
    noise = [line for line in done.stderr.splitlines() if not line.startswith("INFO")]
    assert not noise, "mkdocs build printed more than INFO lines:\n" + "\n".join(noise)
    return out


def test_the_site_has_every_guide_page(site):
    for page in (ROOT / "docs").glob("*.md"):
        target = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert target.exists(), f"{page.name} is not in the site"


@pytest.mark.parametrize("module", hooks.REFERENCE, ids=str)
def test_the_reference_lists_every_name_in_the_modules_all(site, module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist yet; its page appears when it does")
    html = (site / "reference" / hooks.page_name(module) / "index.html").read_text()

    def listed(name: str) -> bool:
        path = f"{module}.{name}"
        if path in hooks.REFERENCE:  # a module with a page of its own is a link to it
            return f'href="../{hooks.page_name(path)}/"' in html
        return f'id="{path}"' in html

    missing = [name for name in importlib.import_module(module).__all__ if not listed(name)]
    assert not missing, f"the reference page of {module} lacks {missing}"


def test_quoted_return_annotations_render_as_links_to_their_types(site):
    html = (site / "reference" / "dagrad" / "index.html").read_text()
    start = html.index("doc-signature", html.index('id="dagrad.Graph.backward"'))
    signature = html[start:html.index("</code>", start)]      # backward(...) -> "Result" in the source
    assert 'href="#dagrad.Result"' in signature and "&#39;Result&#39;" not in signature, signature


# ------------------------------------------------------------- the package ------


@pytest.mark.parametrize("module", [m for m in hooks.REFERENCE if importlib.util.find_spec(m)], ids=str)
def test_dir_of_a_public_module_is_its_all(module):
    mod = importlib.import_module(module)
    shown = {name for name in dir(mod) if not name.startswith("_")}
    assert shown == {name for name in mod.__all__ if not name.startswith("_")}, (
        f"dir({module}) and its __all__ differ: only in dir {sorted(shown - set(mod.__all__))}, "
        f"only in __all__ {sorted(set(mod.__all__) - shown)}"
    )


def test_every_name_in_all_exists():
    for module in [m for m in hooks.REFERENCE if importlib.util.find_spec(m)]:
        mod = importlib.import_module(module)
        missing = [name for name in mod.__all__ if not hasattr(mod, name)]
        assert not missing, f"{module}.__all__ names {missing}, which it does not have"
