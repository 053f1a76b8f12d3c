"""Run the guide's code as the tests do, rebuild its pictures (``make pictures``), and time rendering.

A page's ```python blocks run top to bottom in one namespace, through Sybil:
a block starting with ``>>>`` is a doctest whose shown output must match
what it prints, and ``<!-- skip: next -->`` skips the block after it.
``tests/test_docs.py`` runs every page this way; ``build()`` runs the pages
in ``PAGES`` in a scratch directory and copies every ``img/NAME.svg`` the
page links to from there into ``docs/img``. So the code a reader sees is the
code that drew the picture next to it.

    python docs/build.py             # rebuild docs/img/*.svg
    python docs/build.py --measure   # the render-time table of docs/render.md
"""

from __future__ import annotations

import argparse
import doctest
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sybil import Sybil
from sybil.evaluators.doctest import NUMBER
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

DOCS = Path(__file__).resolve().parent
PAGES = ("how-gradients-flow.md", "render.md")
IMAGE = re.compile(r"\]\(img/([\w.-]+\.svg)\)")

#: ELLIPSIS: ``...`` in shown output stands for any text; NUMBER: a shown number is
#: compared to the digits it shows (``0.712`` matches 0.71203); NORMALIZE_WHITESPACE:
#: long output may be wrapped on the page.
EXAMPLES = Sybil(
    parsers=[
        SkipParser(),
        PythonCodeBlockParser(doctest_optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | NUMBER),
    ],
)


def run_page(page: Path, directory: Path) -> dict:
    """Run a page's examples top to bottom in ``directory``; return the page's namespace.

    Raises ``sybil.example.SybilFailure`` when shown output differs from the
    printed one, and whatever a block raises, with the page's line numbers.
    """
    document = EXAMPLES.parse(page)
    document.namespace["__name__"] = f"docs_{page.stem}"
    here = os.getcwd()
    os.chdir(directory)
    try:
        for example in document.examples():
            example.evaluate()
    finally:
        os.chdir(here)
    return document.namespace


def pictures(page: Path) -> list[str]:
    """The ``img/*.svg`` files a page links to."""
    return IMAGE.findall(page.read_text())


def build(out_dir: Path = DOCS / "img", pages=PAGES) -> list[Path]:
    """Run the pages' code in a scratch directory and copy the pictures they link to into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in pages:
        page = DOCS / name
        with tempfile.TemporaryDirectory() as scratch:
            run_page(page, Path(scratch))
            for picture in pictures(page):
                made = Path(scratch) / picture
                if not made.exists():
                    raise SystemExit(f"{name} links to img/{picture}, but its code did not write {picture}")
                shutil.copyfile(made, out_dir / picture)
                written.append(out_dir / picture)
    return written


def layered(n_nodes: int):
    """A layered graph of about ``n_nodes`` nodes: layers of W, b, matmul, add, tanh, one scope per layer."""
    import numpy as np

    import dagrad as dg

    rng = np.random.default_rng(0)
    g = dg.Graph(f"layered-{n_nodes}")
    h = g.input("x", shape=(None, 4))
    for i in range(max(1, (n_nodes - 3) // 5)):
        with g.scope(f"layer{i}"):
            h = dg.tanh(h @ g.param("W", rng.normal(size=(4, 4)) * 0.5) + g.param("b", np.zeros(4)))
    loss = dg.mean(h * h, name="loss")
    return g.backward(loss, feeds={"x": rng.normal(size=(2, 4))})


def measure(sizes=(100, 1000, 5000, 10000), detailed_up_to=1000) -> str:
    """A markdown table of render times (Python, then dot) with the default settings."""
    import dagrad as dg
    from dagrad.render.run import run_dot

    rows = ["| nodes | boxes drawn | max_nodes | build (s) | dot -Tsvg (s) | total (s) |", "| --- | --- | --- | --- | --- | --- |"]
    for n in sizes:
        res = layered(n)
        settings = [200] + ([None] if n <= detailed_up_to else [])
        for max_nodes in settings:
            t0 = time.perf_counter()
            digraph = dg.render(res, max_nodes=max_nodes)
            t1 = time.perf_counter()
            run_dot(digraph.source, "svg", timeout=600)
            t2 = time.perf_counter()
            boxes = sum(1 for line in digraph.body if re.match(r"\s*n\d+ \[", line))
            rows.append(f"| {len(res.graph)} | {boxes} | {max_nodes} | {t1 - t0:.2f} | {t2 - t1:.2f} | {t2 - t0:.2f} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--measure", action="store_true", help="print the render-time table instead")
    args = p.parse_args(argv)
    if args.measure:
        print(measure())
        return 0
    for path in build():
        print(f"wrote {path.relative_to(DOCS.parent)} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
