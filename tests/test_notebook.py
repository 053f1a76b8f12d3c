"""In a Jupyter notebook: fit shows a progress bar without warnings, and results display briefly or as the viewer.

A small notebook is built here and run by nbclient in a fresh kernel (the
test dependencies nbclient, nbformat and ipykernel are in the dev extra).
"""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[dev]')")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[dev]')")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[dev]')")

CELLS = [
    """import warnings
warnings.simplefilter("always")       # any warning would show in the cell's output
import numpy as np, dagrad as dg
rng = np.random.default_rng(0)
X, Y = rng.normal(size=(96, 3)), rng.integers(0, 2, size=96)
g = dg.Graph("notebook")
x, y = g.input("x", shape=(None, 3)), g.input("y", shape=(None,), dtype="int64")
logits = dg.nn.dense(dg.nn.dense(x, 4, activation="tanh", name="fc1"), 2, name="fc2")
loss = dg.nn.cross_entropy(logits, y)""",
    """history = dg.fit(g, loss, {x: X, y: Y}, dg.optim.Adam(g, lr=0.01), epochs=40, batch_size=32, log=False)""",
    "history",
    """dg.gradcheck(g, loss=loss, feeds={"x": X[:4], "y": Y[:4]}, wrt=["fc1/W"])""",
    """result = g.backward(loss, {"x": X[:8], "y": Y[:8]})
result""",
    "dg.show(result)",
    "history.plot_grad_norms();",
]


@pytest.fixture(scope="module")
def outputs():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    return [cell.outputs for cell in notebook.cells]


def texts(outputs, name: str) -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == name)


def test_no_cell_fails_or_warns(outputs):
    for cell in outputs:
        assert not [o for o in cell if o.output_type == "error"]
        assert "Warning" not in texts(cell, "stderr")


def test_fit_shows_a_progress_bar_in_a_notebook(outputs):
    fit = outputs[1]
    widget = [o for o in fit if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget or "120/120" in texts(fit, "stderr")  # the text bar when ipywidgets is not installed


def test_history_and_gradcheck_reports_are_short_with_html_tables(outputs):
    history = outputs[2][0].data
    assert history["text/plain"].startswith("<History: 40 epochs") and len(history["text/plain"]) < 300
    assert "<table>" in history["text/html"] and "more epochs" in history["text/html"]
    report = outputs[3][0].data
    assert report["text/plain"].startswith("<GradcheckReport") and "<table>" in report["text/html"]


def test_results_display_as_a_diagram_and_show_gives_the_viewer(outputs):
    assert "image/svg+xml" in outputs[4][0].data
    shown = outputs[5][0].data
    assert shown["text/html"].startswith("<iframe srcdoc=") and "image/svg+xml" in shown  # SVG as the fallback


def test_history_plots_inline(outputs):
    assert any("image/png" in o.get("data", {}) for o in outputs[6])
