"""Shared fixtures: a fresh plugin registry around tests that change it, and fake installed distributions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import dagrad as dg


@pytest.fixture
def fresh_registry():
    """Reload plugins after the test, so registrations made inside it do not leak."""
    yield dg.registry()
    dg.load_plugins()


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Install-like: ``make(dist, version, {entry_name: module_name}, {module_name: source})``.

    Writes a ``*.dist-info`` folder with an ``entry_points.txt`` for the group
    ``dagrad`` beside the modules and puts the folder on ``sys.path``:
    ``importlib.metadata`` then finds a real distribution, exactly as after ``pip install``.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(dist: str, version: str, entry_points: dict, modules: dict) -> Path:
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[dagrad]\n{lines}\n")
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
        return site

    yield make
    monkeypatch.undo()  # sys.path and environment first, so the reload sees only real distributions
    dg.load_plugins()
