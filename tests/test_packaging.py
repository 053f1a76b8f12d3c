"""What an installed dagrad carries besides code: licence, type information, change log."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_licence_is_mit_and_named_by_an_spdx_expression():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 the dagrad developers\n")
    meta = importlib.metadata.metadata("dagrad")
    # .get: once dask is imported, importlib_metadata's finder answers, whose metadata raises KeyError for a missing field
    assert meta["License-Expression"] == "MIT" and meta.get("License") is None  # no deprecated licence table


def test_type_information_ships_with_the_package():
    assert importlib.resources.files("dagrad").joinpath("py.typed").is_file()
    assert "Typing :: Typed" in importlib.metadata.metadata("dagrad").get_all("Classifier")


def test_the_change_log_has_the_released_version_and_what_is_coming():
    text = (ROOT / "CHANGELOG.md").read_text()
    version = importlib.metadata.version("dagrad")
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings and headings[0].startswith("Unreleased"), headings
    assert any(h.startswith(f"{version} ") or h == version for h in headings), f"no section for {version}: {headings}"
