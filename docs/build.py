"""Run the guide's code as the tests do, rebuild its pictures (``make pictures``), and time rendering.

A page's ```python blocks run top to bottom in one namespace, through Sybil:
a block starting with ``>>>`` is a doctest whose shown output must match
what it prints, and ``<!-- skip: next -->`` skips the block after it.
``tests/test_docs.py`` runs every page this way; ``build()`` runs the pages
in ``PAGES`` in one scratch directory and copies every ``img/NAME.svg`` or
``.png`` the pages link to from there into ``docs/img``. So the code a reader
sees is the code that drew the picture next to it. A linked ``NAME.png`` that
the code did not write but whose ``NAME.html`` (a viewer page) it did is a
screenshot of that page in headless Chromium, halfway through playing
backpropagation. Pictures under ``img/before/`` are kept as they are: they show
what the diagrams looked like before dagrad 0.2.

    python docs/build.py             # rebuild docs/img/*
    python docs/build.py --measure   # the render-time table of docs/render.md, and the viewer's
    python docs/build.py --sizes     # width x height of every diagram, before and after
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
PAGES = ("how-gradients-flow.md", "render.md", "training.md", "higher-order.md")
IMAGE = re.compile(r"\]\(img/([\w.-]+\.(?:svg|png))\)")  # img/before/* is not matched: kept as it is
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

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
    """The ``img/*.svg`` and ``img/*.png`` files a page links to (not those under ``img/before/``)."""
    return IMAGE.findall(page.read_text())


def build(out_dir: Path = DOCS / "img", pages=PAGES, screenshots: bool = True) -> list[Path]:
    """Run the pages' code in one scratch directory and copy the pictures they link to into ``out_dir``.

    A picture may be drawn by one page and shown by another (the training
    plots are drawn by training.md and shown in render.md too).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in pages:
            run_page(DOCS / name, Path(scratch))
        for picture in dict.fromkeys(p for name in pages for p in pictures(DOCS / name)):
            made = Path(scratch) / picture
            if not made.exists() and made.with_suffix(".html").exists():
                if not screenshots:
                    continue
                screenshot(made.with_suffix(".html"), made)
            if not made.exists():
                raise SystemExit(f"the docs link to img/{picture}, but no page's code wrote {picture}")
            shutil.copyfile(made, out_dir / picture)
            written.append(out_dir / picture)
    return written


def screenshot(page: Path, png: Path, size=(1280, 760)) -> None:
    """A picture of a viewer page halfway through playback, with the current node's panel open."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "chromium", args=CHROMIUM_ARGS)
        # reduced motion: the edges stand still, so the same page always gives the same picture
        tab = browser.new_page(viewport={"width": size[0], "height": size[1]}, reduced_motion="reduce")
        tab.goto(page.resolve().as_uri())
        tab.wait_for_function("window.dagradViewer && window.dagradViewer.layouts > 0", timeout=60000)
        tab.evaluate("""() => {  // the first op past half way, so edges carry its gradient back to its inputs
            const v = dagradViewer, half = Math.ceil(v.data.steps / 2);
            const node = v.data.nodes.filter(n => n.rank >= half && n.info.inputs.length)
                .sort((a, b) => a.rank - b.rank)[0];
            v.setStep(node.rank); v.select(node.id); }""")
        tab.screenshot(path=str(png))
        browser.close()


def diagram_sizes(before: Path = DOCS / "img" / "before", after: Path = DOCS / "img") -> str:
    """A markdown table of each diagram's width x height in CSS pixels (SVG points x 4/3), before and after."""
    def size(path: Path) -> str:
        if not path.exists():
            return "-"
        head = path.read_text()[:2000]
        width, height = (float(re.search(rf'{k}="([\d.]+)pt"', head).group(1)) * 4 / 3 for k in ("width", "height"))
        return f"{width:,.0f} x {height:,.0f}"

    rows = ["| diagram | before (0.1) | after |", "| --- | --- | --- |"]
    for path in sorted(after.glob("*.svg")):
        rows.append(f"| {path.name} | {size(before / path.name)} | {size(path)} |")
    return "\n".join(rows)


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


def measure_viewer(n_nodes: int = 10000) -> str:
    """Seconds to write the viewer of a ``n_nodes`` layered graph, and for headless Chromium to open and lay it out."""
    import dagrad as dg
    from playwright.sync_api import sync_playwright

    res = layered(n_nodes)
    with tempfile.TemporaryDirectory() as scratch:
        page = Path(scratch) / "viewer.html"
        t0 = time.perf_counter()
        dg.render(res, page)
        t1 = time.perf_counter()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "chromium", args=CHROMIUM_ARGS)
            tab = browser.new_page(viewport={"width": 1280, "height": 800})
            t2 = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_function("window.dagradViewer && window.dagradViewer.layouts > 0", timeout=120000)
            t3 = time.perf_counter()
            boxes = tab.locator("g.node").count()
            browser.close()
        size = page.stat().st_size / 2**20
    return (f"{len(res.graph)} nodes: viewer written in {t1 - t0:.2f} s ({size:.1f} MiB); "
            f"opened and laid out ({boxes} boxes) in headless Chromium in {t3 - t2:.2f} s")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--measure", action="store_true", help="print the render-time table instead")
    p.add_argument("--sizes", action="store_true", help="print the diagram sizes, before and after")
    args = p.parse_args(argv)
    if args.measure:
        print(measure())
        print(measure_viewer())
        return 0
    if args.sizes:
        print(diagram_sizes())
        return 0
    for path in build():
        print(f"wrote {path.relative_to(DOCS.parent)} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
