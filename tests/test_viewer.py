"""The interactive viewer: one HTML file, opened from disk in headless Chromium, that plays backpropagation.

The browser tests need Chromium (``make setup`` installs Debian's package) and
Playwright's Python package (in the ``dev`` extra); without either they skip,
saying which is missing. One browser serves the whole module.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import dagrad as dg
from dagrad.render import viewer
from dagrad.render.viewer import VENDORED, model, page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As root on a machine without network, Chromium needs these to start quietly (no sandbox, no phoning home).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
STATIC = Path(viewer.__file__).parent / "static"


def mlp(layers: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = dg.Graph("viewer mlp")
    x = g.input("x", shape=(None, 3))
    y = g.input("y", shape=(None,), dtype="int64")
    h = dg.nn.mlp(x, [4] * (layers - 1) + [2], "tanh", rng=seed)
    loss = dg.nn.cross_entropy(h, y)
    return g.backward(loss, feeds={"x": rng.normal(size=(8, 3)), "y": rng.integers(0, 2, size=8)})


def deep():
    """40 scopes of 5 nodes: more than max_nodes=60, so most scopes start collapsed."""
    g = dg.Graph("deep")
    h = g.input("x", shape=(None, 2))
    rng = np.random.default_rng(1)
    for i in range(40):
        with g.scope(f"block{i}"):
            h = dg.tanh(h @ g.param("W", rng.normal(size=(2, 2))) + g.param("b", np.zeros(2)))
    return g.backward(dg.mean(h * h, name="loss"), feeds={"x": rng.normal(size=(3, 2))})


# ------------------------------------------------------------ no browser ---


def test_the_page_is_one_file_that_asks_the_network_for_nothing(tmp_path):
    html = page(mlp())
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html, re.I)
    assert "default-src 'none'" in html  # the page's own policy forbids every request, should a library try
    for name in VENDORED:
        assert (STATIC / name).read_text()[:200] in html


def test_vendored_libraries_match_their_recorded_versions_and_checksums():
    import hashlib

    record = json.loads((STATIC / "vendor.json").read_text())
    assert {entry["file"] for entry in record["files"]} == set(VENDORED)
    for entry in record["files"]:
        assert hashlib.sha256((STATIC / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
        assert (STATIC / "licenses" / entry["licence"]).is_file()


def test_model_carries_every_node_with_its_rank_and_the_open_scopes():
    res = mlp()
    data = model(res)
    assert [n["name"] for n in data["nodes"]] == [n.name for n in res.graph.topological_order()]
    assert {n["name"]: n["rank"] for n in data["nodes"] if n["rank"]} == {n: res.rank(n) for n in res.order}
    assert data["steps"] == len(res.order)
    assert {g["title"] for g in data["groups"] if g["open"]} == {"fc1", "fc2", "fc3"}
    json.dumps(data, allow_nan=False)


def test_html_suffix_writes_the_viewer_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no dot: the browser lays the page out itself
    dg.render(mlp(), tmp_path / "flow.html")
    text = (tmp_path / "flow.html").read_text()
    assert text.startswith("<!DOCTYPE html>") and "dagrad-data" in text


def test_a_name_cannot_close_the_script_that_carries_the_data(tmp_path):
    g = dg.Graph("</script><script>alert(1)</script>")
    w = g.param("</script>", np.array([1.0]))
    html = page(g.backward(dg.sum(w * w)))
    assert html.count("</script>") == html.count("<script")


# --------------------------------------------------------------- browser ---


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make setup installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)  # a fresh profile
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        yield context
        context.close()
        browser.close()


@pytest.fixture
def open_page(browser, tmp_path):
    """Write the viewer of a result to disk, open it, and watch the console and the network."""
    pages = []

    def _open(result, **options):
        path = tmp_path / "flow.html"
        dg.render(result, path, **options)
        tab = browser.new_page()
        tab.problems, tab.requests = [], []
        tab.on("console", lambda m: tab.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        tab.on("pageerror", lambda e: tab.problems.append(f"page error: {e}"))
        tab.on("request", lambda r: tab.requests.append(r.url))
        tab.goto(path.as_uri())
        tab.wait_for_function("window.dagradViewer && window.dagradViewer.layouts > 0", timeout=30000)
        tab.url_of_file = path.as_uri()
        pages.append(tab)
        return tab

    yield _open
    for tab in pages:
        assert tab.problems == []
        assert tab.requests == [tab.url_of_file]  # the file itself, nothing else
        tab.close()


def test_play_lights_the_nodes_in_backward_order(open_page):
    res = mlp()
    tab = open_page(res)
    steps = len(res.order)
    tab.evaluate("dagradViewer.setSpeed(15)")
    tab.click("#play")
    tab.wait_for_function(f"dagradViewer.step >= {steps // 2}")
    midway = tab.evaluate("""() => { const k = dagradViewer.step;
        return [k, [...document.querySelectorAll('g.node.lit')].map(e => e.id)]; }""")
    tab.wait_for_function(f"dagradViewer.step === {steps}")
    ids = {n["name"]: n["id"] for n in model(res)["nodes"]}
    assert tab.evaluate("dagradViewer.litLog") == [ids[name] for name in res.order]
    k, lit = midway
    assert set(lit) >= {ids[name] for name in res.order[:k - 1]}  # everything finished so far is lit...
    assert not set(lit) & {ids[name] for name in res.order[k + 1:]}  # ...and nothing that comes later
    shown = tab.evaluate("""() => Object.fromEntries([...document.querySelectorAll('g.node[data-lit-step]')]
                                .map(e => [e.id, Number(e.dataset.litStep)]))""")
    assert shown == {ids[name]: res.rank(name) for name in res.order}


def test_stepping_animates_the_edges_that_carry_the_gradient_back(open_page):
    res = mlp()
    tab = open_page(res)
    tab.click("#forward")
    assert tab.inner_text("#step").startswith("#1 /")
    assert tab.locator("g.edge.flow").count() >= 1  # from the loss back into its inputs
    tab.click("#forward")
    tab.click("#back")
    assert tab.evaluate("dagradViewer.step") == 1
    tab.fill("#slider", str(len(res.order)))
    assert tab.evaluate("dagradViewer.step") == len(res.order)


def test_clicking_a_node_shows_its_statistics_and_histograms(open_page):
    res = mlp()
    tab = open_page(res)
    ident = next(n["id"] for n in model(res)["nodes"] if n["name"] == "fc1/W")
    tab.click(f"#{ident}")
    text = tab.inner_text("#panel")
    assert "fc1/W" in text and f"#{res.rank('fc1/W')}" in text
    assert "mean" in text and f"{np.abs(res.grad('fc1/W')).max():.3}"[:4] in text.replace("-", "")
    assert tab.locator("#panel svg.hist").count() == 2  # value and gradient


def test_search_reveals_a_node_inside_a_collapsed_scope(open_page):
    tab = open_page(deep(), max_nodes=60)
    assert tab.locator("g.node").count() <= 60
    tab.fill("#search", "block3/W")
    tab.press("#search", "Enter")
    tab.wait_for_function("document.querySelector('#panel').dataset.node === 'block3/W'")
    assert tab.locator("g.node.found").count() == 1


def test_scopes_open_and_close(open_page):
    tab = open_page(deep(), max_nodes=60)
    data = tab.evaluate("dagradViewer.data")
    closed = next(g for g in data["groups"] if g["kind"] == "scope" and not g["open"]
                  and tab.locator(f"#{g['id']}").count())
    before = tab.evaluate("dagradViewer.layouts")
    tab.click(f"#{closed['id']}")
    tab.wait_for_function(f"dagradViewer.layouts > {before} && !!document.getElementById('c_{closed['id']}')")
    inside = next(n for n in data["nodes"] if n["chain"] and n["chain"][-1] == closed["id"])
    assert tab.locator(f"#{inside['id']}").count() == 1
    tab.evaluate(f"dagradViewer.closeGroup('{closed['id']}')")
    tab.wait_for_function(f"!document.getElementById('{inside['id']}')")


def test_screenshot_mid_playback_is_not_blank(open_page, tmp_path):
    image = pytest.importorskip("PIL.Image")
    res = mlp()
    tab = open_page(res)
    tab.evaluate(f"dagradViewer.setStep({len(res.order) // 2})")
    shot = tab.screenshot(path=str(tmp_path / "viewer.png"))
    picture = image.open(io.BytesIO(shot)).convert("RGB")
    colours = picture.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50  # text, fills, the orange badges: not a blank page
    white = max(count for count, rgb in colours if rgb == (255, 255, 255)) if any(
        rgb == (255, 255, 255) for _, rgb in colours) else 0
    assert white < 0.9 * picture.width * picture.height


def test_notebook_iframe_runs_the_viewer_sandboxed(browser, tmp_path):
    res = mlp()
    path = tmp_path / "cell.html"
    path.write_text(f"<!DOCTYPE html><html><body>{dg.show(res)._repr_html_()}</body></html>")
    tab = browser.new_page()
    problems = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.goto(path.as_uri())
    frame = tab.frames[1]
    frame.wait_for_function("window.dagradViewer && window.dagradViewer.layouts > 0", timeout=30000)
    assert frame.locator("g.node").count() == len(res.graph)
    assert problems == []
    tab.close()


# ------------------------------------------------- backward nodes (dg.grad) ---

from test_render import layers_and_their_gradients, second_derivatives  # noqa: E402

from dagrad.render.diagram import BACKWARD_CLUSTER  # noqa: E402
from dagrad.render.layout import scope_chain  # noqa: E402


def test_the_model_marks_backward_nodes_and_links_each_to_its_origin():
    res = layers_and_their_gradients()
    data = model(res)
    names = [n["name"] for n in data["nodes"]]
    backward = {n.name for n in res.graph if n.origin is not None}
    assert {n["name"] for n in data["nodes"] if n["backward"]} == backward
    assert {(names[u], names[v]) for u, v, _ in data["links"]} == {(res.graph.node(b).origin, b) for b in backward}
    assert data["graph"]["compound"] == "true"


def test_backward_nodes_are_drawn_purple_in_their_clusters_and_linked_to_their_origins(open_page):
    res = layers_and_their_gradients()
    tab = open_page(res)
    backward = [n for n in res.graph if n.origin is not None]
    assert tab.locator("g.node.backward").count() == len(backward)
    assert tab.locator("g.edge.origin").count() == len({n.origin for n in backward})  # one per backward step
    fills = tab.evaluate("""() => [...document.querySelectorAll('g.cluster')].map(c =>
        [c.querySelector('title').textContent, c.querySelector('path, polygon').getAttribute('fill')])""")
    scopes = {s for n in backward for s in scope_chain(n.scope)}          # grad, grad/layer1, grad/layer1/tanh...
    assert sum(fill == BACKWARD_CLUSTER for _, fill in fills) == len(scopes)
    assert "lhead=" in tab.evaluate("dagradViewer.toDot()")
    ident = next(n["id"] for n in model(res)["nodes"] if n["name"] == "grad/layer2/tanh/mul")
    tab.click(f"#{ident}")
    assert "the backward step of layer2/tanh" in tab.inner_text("#panel")


def test_the_viewer_draws_graphs_of_second_derivatives(open_page):
    # As the static diagram: the first link of each backward step is to an op, backward sources are never held
    # beside their op, and the page lays the graph out (dot fails on such graphs when these are not so).
    res = second_derivatives()
    data = model(res)
    nodes = data["nodes"]
    first_link = {}
    for origin, node, cluster in data["links"]:
        first_link.setdefault((origin, cluster or node), node)
    assert all(nodes[node]["kind"] == "op" for node in first_link.values())
    assert data["beside"] and not any(nodes[source]["backward"] for _, source in data["beside"])
    tab = open_page(res)
    assert tab.locator("g.node.backward").count() == sum(n.origin is not None for n in res.graph)
