"""Every ```python block in docs/*.md and README.md runs, top to bottom within its page.

A block preceded by the line ``<!-- not run -->`` is skipped (for shell-like
fragments or deliberate errors shown as text).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"(?P<skip><!-- not run -->\s*\n)?```python\n(?P<code>.*?)```", re.S)


def blocks(page: Path) -> list[str]:
    return [m["code"] for m in BLOCK.finditer(page.read_text()) if not m["skip"]]


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGRAD_DOCS_TEST", "1")
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for i, code in enumerate(blocks(page), 1):
        try:
            exec(compile(code, f"{page.name} block {i}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{page.name}, block {i} raised {type(exc).__name__}: {exc}\n---\n{code}")


def test_the_ops_page_lists_every_built_in_op():
    import dagrad as dg

    text = (ROOT / "docs" / "ops.md").read_text()
    missing = [name for name in dg.registry().plugins["builtins"].ops if f"`{name}`" not in text]
    assert not missing, f"docs/ops.md does not mention {missing}"
