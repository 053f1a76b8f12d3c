"""Running Graphviz's ``dot`` with a timeout, and writing its output without ever leaving half a file.

The graphviz package's ``pipe`` and ``render`` wait for ``dot`` forever, and a
large graph can keep ``dot`` busy for minutes, so dagrad starts ``dot`` itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Union

from ..errors import RenderError
from ..files import atomic_write

__all__ = ["FORMATS", "dot_binary", "format_for", "run_dot", "write"]

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".html": "html", ".htm": "html"}
TEXT_FORMATS = {"dot"}

INSTALL = (
    "Graphviz's `dot` program was not found on PATH, and it is needed to draw {what}. Install Graphviz: "
    "`sudo apt-get install graphviz` (Debian, Ubuntu), `brew install graphviz` (macOS), "
    "`conda install -c conda-forge graphviz`, or see https://graphviz.org/download/ "
    "(`make setup` in a dagrad checkout does it). Writing a .dot file, or reading Digraph.source, needs no Graphviz."
)


def dot_binary(what: str = "the diagram") -> str:
    """The path of ``dot``; ``RenderError`` saying how to install Graphviz when it is missing."""
    found = shutil.which("dot")
    if found is None:
        raise RenderError(INSTALL.format(what=what))
    return found


def format_for(path: Union[str, os.PathLike], format: Optional[str]) -> str:
    """The output format: ``format`` if given, else taken from the file's suffix."""
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt == "gv":
            fmt = "dot"
        if fmt not in set(FORMATS.values()):
            raise RenderError(f"unknown diagram format {format!r}; use one of svg, png, pdf, dot, html")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise RenderError(
            f"cannot tell the diagram format from {str(path)!r}: name the file .svg, .png, .pdf, .html, .dot or .gv, "
            f"or pass format="
        )
    return FORMATS[suffix]


def run_dot(source: str, fmt: str, timeout: Optional[float], *, nodes: Optional[int] = None) -> bytes:
    """``dot -T<fmt>`` on ``source``; ``RenderError`` if it is missing, fails or exceeds ``timeout`` seconds."""
    if fmt in TEXT_FORMATS:
        return source.encode("utf-8")
    binary = dot_binary(f"a .{fmt} file")
    size = f" ({nodes} boxes)" if nodes is not None else ""
    try:
        done = subprocess.run(
            [binary, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise RenderError(
            f"Graphviz's dot did not finish the diagram{size} within {timeout} s and was stopped; "
            f"draw fewer boxes (a smaller max_nodes, collapse=[...]), raise timeout=, or write a .dot file"
        ) from None
    except OSError as exc:
        raise RenderError(f"could not run Graphviz's dot ({binary}): {exc}") from exc
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise RenderError(f"Graphviz's dot failed on the diagram{size} (exit {done.returncode}): {detail}")
    return done.stdout


def write(data: bytes, path: Union[str, os.PathLike]) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename it."""
    target = Path(path)
    try:
        with atomic_write(target) as f:
            f.write(data)
    except OSError as exc:
        raise RenderError(f"cannot write the diagram to {str(target)!r}: {exc}") from exc
    return target
