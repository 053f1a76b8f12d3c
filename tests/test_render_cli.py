"""``dagrad render``: a graph from MODULE:FUNCTION or FILE.py:FUNCTION, run on --feed arrays, drawn to a file."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from dagrad.cli import main

ROOT = Path(__file__).resolve().parents[1]

MODEL = textwrap.dedent('''
    import numpy as np
    import dagrad as dg

    def build():
        g = dg.Graph("cli")
        x = g.input("x", shape=(None, 3))
        with g.scope("fc1"):
            h = dg.tanh(x @ g.param("W", np.full((3, 2), 0.5)))
        dg.mean(h * h, name="loss")
        return g

    def result():
        g = build()
        return g.backward("loss", feeds={"x": np.ones((2, 3))})

    def not_a_graph():
        return 3
''')


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    np.save(tmp_path / "x.npy", np.ones((4, 3)))
    return path


def texts(svg: Path) -> str:
    return "\n".join(t.text or "" for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text"))


def test_graph_from_a_file_is_run_backward_from_its_scalar_output(model, tmp_path, capsys):
    out = tmp_path / "flow.svg"
    assert main(["render", f"{model}:build", "--feed", f"x={tmp_path / 'x.npy'}", "-o", str(out)]) == 0
    shown = texts(out)
    assert "#1" in shown and "fc1" in shown and "W" in shown.split("\n") and "|g|" in shown
    assert "wrote" in capsys.readouterr().out


def test_module_function_returning_a_result(model, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "flow.dot"
    assert main(["render", "model:result", "-o", str(out), "--edge-labels", "--rankdir", "LR"]) == 0
    assert "rankdir=LR" in out.read_text()
    sys.modules.pop("model", None)


def test_explicit_loss_and_missing_feed_errors(model, tmp_path, capsys):
    out = tmp_path / "flow.svg"
    assert main(["render", f"{model}:build", "-o", str(out), "--loss", "loss"]) == 2
    assert "x" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("target, message", [
    ("nocolon", "MODULE:FUNCTION"),
    ("missing_file.py:build", "no such file"),
    ("{model}:nothing", "no function 'nothing'"),
    ("{model}:not_a_graph", "Graph or Result, not int"),
])
def test_bad_targets_are_reported(model, tmp_path, capsys, target, message):
    assert main(["render", target.format(model=model), "-o", str(tmp_path / "f.svg")]) == 2
    assert message in capsys.readouterr().err


def test_saved_model_is_rendered(model, tmp_path):
    if importlib.util.find_spec("dagrad.io") is None:
        pytest.skip("dagrad.io is not there yet")
    import dagrad.io

    spec = importlib.util.spec_from_file_location("cli_model", model)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dagrad.io.save(module.build(), tmp_path / "m.dagrad")
    out = tmp_path / "flow.svg"
    assert main(["render", str(tmp_path / "m.dagrad"), "--feed", f"x={tmp_path / 'x.npy'}", "-o", str(out)]) == 0
    assert "fc1" in texts(out)


def test_docs_pictures_build(tmp_path):
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    browser = shutil.which("chromium") is not None and importlib.util.find_spec("playwright") is not None
    written = build.build(tmp_path, screenshots=browser)
    expected = {p for page in build.PAGES for p in build.pictures(ROOT / "docs" / page)}
    assert {p.name for p in written} == expected - (set() if browser else {"viewer.png"}) and len(expected) >= 10
    for path in written:
        if path.suffix == ".svg":
            ET.parse(path)
        else:
            assert path.read_bytes().startswith(b"\x89PNG")
        assert (ROOT / "docs" / "img" / path.name).exists(), f"docs/img/{path.name} is not committed"
    assert "| mlp.svg | 1,857 x 1,440 |" in build.diagram_sizes()  # the before pictures are kept


EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_has_a_build_function_the_cli_draws(example, tmp_path):
    if example.stem in ("cnn_digits", "digits_mlp"):
        pytest.importorskip("sklearn")
    if example.stem == "cnn_digits":
        pytest.importorskip("dagrad_conv")
    out = tmp_path / f"{example.stem}.svg"
    assert main(["render", f"{example}:build", "-o", str(out)]) == 0
    assert "#1" in texts(out) or example.stem == "mlp"  # mlp.py:build is a bare graph: structure only


def saved_digits(tmp_path):
    import dagrad as dg

    spec = importlib.util.spec_from_file_location("mlp_example", ROOT / "examples" / "mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dg.save(module.build(), tmp_path / "mlp.dagrad")
    return tmp_path / "mlp.dagrad"


def test_a_saved_model_without_feeds_draws_its_structure(tmp_path, monkeypatch):
    model = saved_digits(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(model)]) == 0  # default output: mlp.svg here
    shown = texts(tmp_path / "mlp.svg")
    assert "layer1" in shown and "(3, 4) float64" in shown and "grad" not in shown


def test_npz_feeds_add_values_and_gradients_and_format_html_writes_the_viewer(tmp_path, capsys):
    model = saved_digits(tmp_path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "batch.npz", x=rng.normal(size=(5, 3)), y=rng.integers(0, 2, size=5))
    out = tmp_path / "flow.svg"
    assert main(["render", str(model), "--feed", str(tmp_path / "batch.npz"), "-o", str(out), "--arrows", "backward"]) == 0
    assert "#1" in texts(out) and "|g|" in texts(out)
    html = tmp_path / "flow.html"
    assert main(["render", str(model), "--feed", f"x={tmp_path / 'batch.npz'}", "--feed", f"y={tmp_path / 'batch.npz'}",
                 "--format", "html", "-o", str(html)]) == 0
    assert "dagrad-data" in html.read_text()


def test_bad_feeds_are_reported(tmp_path, capsys):
    model = saved_digits(tmp_path)
    np.save(tmp_path / "x.npy", np.ones((2, 3)))
    assert main(["render", str(model), "--feed", str(tmp_path / "x.npy"), "-o", str(tmp_path / "f.svg")]) == 2
    assert "name its input" in capsys.readouterr().err
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    assert main(["render", str(model), "--feed", f"x={tmp_path / 'two.npz'}", "-o", str(tmp_path / "f.svg")]) == 2
    assert "has no array 'x'" in capsys.readouterr().err


def test_open_hands_the_file_to_the_browser(model, tmp_path, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    out = tmp_path / "flow.html"
    assert main(["render", f"{model}:result", "-o", str(out), "--open"]) == 0
    assert opened == [out.resolve().as_uri()]
