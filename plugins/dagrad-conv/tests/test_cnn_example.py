"""examples/cnn_digits.py runs end to end (small), learns, and its diagram labels the conv pack's ops."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cnn_digits.py"


def load_example():
    spec = importlib.util.spec_from_file_location("cnn_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_small_cnn_learns_the_digits_and_its_diagram_names_the_conv_plugin(tmp_path):
    pytest.importorskip("sklearn")
    cnn = load_example()
    run = cnn.main(epochs=2, channels=(8, 16), limit=800, lr=1e-2, out=str(tmp_path), progress=False,
                   render=shutil.which("dot") is not None)
    assert run["accuracy"] > 0.7                       # chance is 0.1
    ops = {n.op for n in run["graph"].nodes()}
    assert {"conv2d", "max_pool2d", "flatten"} <= ops
    if run["diagram"] is not None:
        svg = Path(run["diagram"]).read_text()
        assert "conv2d &#160;[plugin conv]" in svg
