"""``mimebundle``: what a Result, a Graph or a Viewer shows in Jupyter when the interactive page is not the answer."""

from __future__ import annotations

from typing import Any

from .diagram import build
from .run import run_dot

__all__ = ["NOTEBOOK_TIMEOUT", "mimebundle"]

NOTEBOOK_TIMEOUT = 20.0  # seconds: a notebook cell waits for dot no longer than this, then shows text


def mimebundle(obj: Any) -> dict:
    """What Jupyter shows for a Result or Graph: the SVG diagram, or text if it cannot be drawn.

    Never raises: notebook display must not fail because Graphviz is missing or slow.
    """
    text = repr(obj)
    try:
        svg = run_dot(build(obj).source, "svg", NOTEBOOK_TIMEOUT).decode("utf-8")
    except Exception as exc:  # noqa: BLE001 - display falls back to text whatever went wrong
        return {"text/plain": f"{text}\n(no diagram: {exc})"}
    return {"image/svg+xml": svg, "text/plain": text}
