"""Gradient-flow diagrams: the SVG/DOT that dg.render writes carries every annotation the issue asks for."""

from __future__ import annotations

import math
import os
import re
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import dagrad as dg
from dagrad.render import mimebundle
from dagrad.render.diagram import NAN_FILL, NONE_FILL, PALETTE, ZERO_FILL
from dagrad.render.summary import number

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<b>"x"&{|}</b>'


XLINK = "{http://www.w3.org/1999/xlink}"


def svg_nodes(path) -> dict:
    """Graphviz id -> {"text": all text of the node joined by newlines, "fill": its shape's fill colour, "tip": tooltip}."""
    root = ET.parse(path).getroot()
    nodes = {}
    for g in root.iter(f"{SVG}g"):
        if "node" not in (g.get("class") or "").split():
            continue
        title = g.find(f"{SVG}title").text
        texts = [t.text or "" for t in g.iter(f"{SVG}text")]
        shape = next(e for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path", f"{SVG}ellipse"))
        link = next(g.iter(f"{SVG}a"), None)
        nodes[title] = {"text": "\n".join(texts), "fill": shape.get("fill"),
                        "tip": link.get(f"{XLINK}title", "") if link is not None else ""}
    return nodes


def by_name(nodes: dict) -> dict:
    """Detailed nodes keyed by the full node name (the first line of their tooltip)."""
    return {n["tip"].split("\n")[0]: n for n in nodes.values()}


def mlp(seed=0, dead=False):
    rng = np.random.default_rng(seed)
    g = dg.Graph("mlp")
    x = g.input("x", shape=(None, 3))
    y = g.input("y", shape=(None,), dtype="int64")
    with g.scope("fc1"):
        b = np.full(4, -100.0) if dead else np.zeros(4)
        h = dg.relu(x @ g.param("W", rng.normal(size=(3, 4))) + g.param("b", b))
    with g.scope("fc2"):
        logits = h @ g.param("W", rng.normal(size=(4, 2))) + g.param("b", np.zeros(2))
    loss = dg.softmax_cross_entropy(logits, y, name="loss")
    feeds = {"x": rng.normal(size=(8, 3)), "y": rng.integers(0, 2, size=8)}
    return g, loss, feeds


@pytest.fixture
def mlp_result():
    g, loss, feeds = mlp()
    return g.backward(loss, feeds=feeds)


def test_every_node_shows_its_gradient_norm_and_backward_step(mlp_result, tmp_path):
    res = mlp_result
    dg.render(res, tmp_path / "flow.svg")
    nodes = by_name(svg_nodes(tmp_path / "flow.svg"))
    assert set(nodes) == {n.name for n in res.graph.nodes()}
    for name in res.order:
        text = nodes[name]["text"]
        assert f"#{res.rank(name)}" in text
        assert f"|g| {number(np.linalg.norm(res.grad(name)))}" in text


def test_gradient_of_lower_layer_is_finished_after_upper_layer(mlp_result, tmp_path):
    dg.render(mlp_result, tmp_path / "flow.svg")
    nodes = by_name(svg_nodes(tmp_path / "flow.svg"))
    step = {name: int(re.search(r"^#(\d+)$", n["text"], re.M).group(1)) for name, n in nodes.items()
            if re.search(r"^#\d+$", n["text"], re.M)}
    assert step["loss"] == 1
    assert step["fc2/W"] < step["fc1/relu"] < step["fc1/W"]


def test_shown_gradients_agree_with_finite_differences():
    g, loss, feeds = mlp()
    report = dg.gradcheck(g, loss=loss, feeds=feeds, wrt=["fc1/W", "fc2/W"])
    assert report, str(report)
    res = g.backward(loss, feeds=feeds)
    source = dg.render(res).source
    assert number(np.linalg.norm(res.grad("fc1/W"))) in source


def test_fill_colour_grows_with_gradient_magnitude(tmp_path):
    # A chain of sigmoids: the gradient shrinks by at least 4x per layer on the way back (vanishing).
    g = dg.Graph("deep")
    h = g.param("w", np.array([0.3, -0.2]))
    for i in range(8):
        h = dg.sigmoid(h * 3.0)
    loss = dg.sum(h, name="loss")
    res = g.backward(loss)
    dg.render(res, tmp_path / "deep.svg")
    nodes = by_name(svg_nodes(tmp_path / "deep.svg"))
    pairs = sorted((float(np.linalg.norm(res.grad(n))), PALETTE.index(nodes[n]["fill"])) for n in res.order)
    bins = [b for _, b in pairs]
    assert bins == sorted(bins) and bins[0] == 0 and bins[-1] == len(PALETTE) - 1


def test_legend_explains_the_colour_scale_badges_and_shapes(mlp_result):
    source = dg.render(mlp_result).source
    assert "log scale" in source and "NaN / Inf" in source and "k-th gradient finished" in source
    assert "double border: parameter" in source


def test_input_without_gradient_is_marked_no_gradient(mlp_result, tmp_path):
    dg.render(mlp_result, tmp_path / "flow.svg")
    nodes = by_name(svg_nodes(tmp_path / "flow.svg"))
    assert "grad: no gradient" in nodes["x"]["text"] and nodes["x"]["fill"] == NONE_FILL


def test_dead_relu_gradient_is_marked_zero(tmp_path):
    g, loss, feeds = mlp(dead=True)
    res = g.backward(loss, feeds=feeds)
    assert not res.grad("fc1/W").any()
    dg.render(res, tmp_path / "dead.svg")
    nodes = by_name(svg_nodes(tmp_path / "dead.svg"))
    for name in ("fc1/W", "fc1/b", "fc1/add", "fc1/matmul"):  # relu passes no gradient back
        assert "grad: zero" in nodes[name]["text"] and nodes[name]["fill"] == ZERO_FILL
    assert nodes["fc2/add"]["fill"] in PALETTE


def test_nan_is_red_with_the_count_of_bad_entries(tmp_path):
    g = dg.Graph("nan")
    w = g.param("w", np.array([4.0, -1.0, -9.0, 1.0]))
    loss = dg.sum(dg.sqrt(w), name="loss")
    with np.errstate(invalid="ignore"):
        res = g.backward(loss)
    dg.render(res, tmp_path / "nan.svg")
    nodes = by_name(svg_nodes(tmp_path / "nan.svg"))
    assert nodes["sqrt"]["fill"] == NAN_FILL and "2 NaN" in nodes["sqrt"]["text"]
    assert nodes["w"]["fill"] == NAN_FILL and "grad: 2 NaN" in nodes["w"]["text"]


@pytest.mark.parametrize("name", [HOSTILE, "port:like:name", "quote\"back\\slash", "\\N", "\\G", "x\\E\\L\\T",
                                  "ends with \\", "\\\\N"])
def test_hostile_names_render_literally(name, tmp_path):
    g = dg.Graph(name)
    scope = name.replace("/", "")
    with g.scope(scope):
        w = g.param(name, np.array([1.0, 2.0]))
    loss = dg.sum(w * w, name="loss")
    res = g.backward(loss)
    digraph = dg.render(res, tmp_path / "hostile.svg")
    ids = re.findall(r"^\s*(\S+) \[", digraph.source, re.M)
    assert ids and all(re.fullmatch(r"n\d+|graph|node|edge", i) for i in ids)
    assert HOSTILE not in digraph.source
    nodes = svg_nodes(tmp_path / "hostile.svg")  # parses: no markup got in
    full = f"{scope}/{name}"
    box = by_name(nodes)[full]  # the tooltip has the whole name, backslashes and all
    assert box["text"].split("\n")[1] == full.rpartition("/")[2]  # the title: the name inside its cluster
    root = ET.parse(tmp_path / "hostile.svg").getroot()
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[0] == name and scope in texts  # the graph's name in the title, the scope on its cluster


@pytest.mark.parametrize("char", ["n", "&", "\\"])
def test_longest_names_are_cut_with_an_ellipsis_and_kept_whole_in_the_tooltip(char, tmp_path):
    g = dg.Graph(char * 20000)  # graph names are not limited
    scope, name = char * 500, char * 523  # node names are: at most 1024 characters, scope included
    with g.scope(scope):
        w = g.param(name, np.array([1.0, 2.0]))
    res = g.backward(dg.sum(w * w, name="loss"))
    dg.render(res, tmp_path / "long.svg")
    nodes = svg_nodes(tmp_path / "long.svg")
    box = by_name(nodes)[f"{scope}/{name}"]
    title = box["text"].split("\n")[1]
    assert "\u2026" in title and len(title) < 60 and title.startswith(name[:10])
    for text in ET.parse(tmp_path / "long.svg").getroot().iter(f"{SVG}text"):
        assert char * 100 not in (text.text or "")


def test_plugin_rows_are_capped_so_a_label_stays_under_dots_limit(tmp_path):
    class Chatty:
        @dg.hookimpl
        def dagrad_node_rows(self, node):
            return [("row", "&" * 5000)] * 500

    dg.register(Chatty(), "render-test-chatty")
    try:
        g = dg.Graph()
        w = g.param("w", np.array([1.0, 2.0]))
        dg.render(g.backward(dg.sum(w * w)), tmp_path / "chatty.svg")
    finally:
        dg.load_plugins()
    for box in svg_nodes(tmp_path / "chatty.svg").values():
        assert "more rows" in box["text"] and box["text"].count("row: ") < 10


def test_backward_arrows_point_the_way_gradients_flow(mlp_result, tmp_path):
    forward = dg.render(mlp_result).source
    backward = dg.render(mlp_result, arrows="backward").source
    assert "dir=back" not in forward and backward.count("dir=back") == forward.count(" -> ")
    with pytest.raises(dg.RenderError, match="arrows"):
        dg.render(mlp_result, arrows="up")


def test_compact_layout_puts_a_parameter_beside_the_op_that_uses_it(mlp_result, tmp_path):
    dg.render(mlp_result, tmp_path / "compact.svg")
    dg.render(mlp_result, tmp_path / "tall.svg", compact=False)

    def size(path):
        root = ET.parse(path).getroot()
        return float(root.get("width")[:-2]), float(root.get("height")[:-2])

    assert size(tmp_path / "compact.svg")[1] < 0.95 * size(tmp_path / "tall.svg")[1]
    assert "{rank=same;" in dg.render(mlp_result).source


def test_every_row_of_a_box_is_labelled(mlp_result, tmp_path):
    dg.render(mlp_result, tmp_path / "flow.svg", show=("value", "grad", "attrs"))
    for name, box in by_name(svg_nodes(tmp_path / "flow.svg")).items():
        rows = box["text"].split("\n")
        start = 2 if rows[0].startswith("#") else 1  # badge, title
        if rows[start] == name.rpartition("/")[2] or not rows[start].split(":")[0].isalpha():
            start += 1  # the op, in italics
        for row in rows[start:]:
            assert re.match(r"(value|grad|attrs): ", row), (name, row)


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "bell\a", "lone \ud800 surrogate"])
def test_names_with_control_characters_are_refused_before_they_reach_a_diagram(name):
    g = dg.Graph()
    with pytest.raises(dg.GraphError, match="unprintable"):
        g.param(name, np.array([1.0]))
    with pytest.raises(dg.GraphError, match="unprintable"):
        with g.scope(name):
            pass
    assert len(g) == 0


def test_plugin_rows_and_plugin_ops_are_shown_escaped():
    @dg.op(shape=dg.shapes.same_as_first, saves=("inputs",))
    def cube_for_render(x):
        """x cubed."""
        return x**3

    @cube_for_render.vjp
    def _(g, x, out):
        return (3 * g * x**2,)

    class Rows:
        @dg.hookimpl
        def dagrad_node_rows(self, node, grad):
            return [("kind<", f"{node.kind} {HOSTILE}")] if grad is not None else []

    dg.register_ops(cube_for_render, plugin="render-test-ops")
    dg.register(Rows(), "render-test-rows")
    try:
        g = dg.Graph()
        w = g.param("w", np.array([1.0, 2.0]))
        res = g.backward(dg.sum(dg.ops.cube_for_render(w)))
        source = dg.render(res).source
    finally:
        dg.load_plugins()
    assert "cube_for_render  [plugin render-test-ops]" in source
    assert "kind&lt;: param &lt;b&gt;&quot;x&quot;&amp;&#123;&#124;&#125;&lt;/b&gt;" in source
    assert HOSTILE not in source


def test_edges_are_wider_where_more_gradient_flows_back(mlp_result):
    res = mlp_result
    source = dg.render(res, edge_labels=True).source
    widths = [(float(label), float(w)) for label, w in
              re.findall(r'POINT-SIZE="8">([\d.e+-]+)</FONT>>[^\]]* penwidth=([\d.]+)', source)]
    assert len(widths) >= 8
    ordered = [w for _, w in sorted(widths)]
    assert ordered == sorted(ordered) and ordered[-1] > ordered[0]
    assert set(res.edge_norms.values()) and max(res.edge_norms.values()) == pytest.approx(max(n for n, _ in widths),
                                                                                          rel=1e-3)


def test_scopes_are_clusters_labelled_with_their_gradient_norm(mlp_result):
    res = mlp_result
    source = dg.render(res).source
    norm = math.sqrt(sum(float(np.sum(res.grad(n) ** 2)) for n in res.grads if n.startswith("fc1/")))
    assert re.search(rf"subgraph cluster_\d+ \{{\s*[^\n]*<B>fc1</B>  &#124;grad&#124; {re.escape(number(norm))}", source)


def layered(blocks: int, layers: int, width: int = 3) -> tuple:
    """blocks x layers x 5 nodes: each layer is W, b, matmul, add, tanh inside scope block{i}/layer{j}."""
    rng = np.random.default_rng(1)
    g = dg.Graph("layered")
    h = g.input("x", shape=(None, width))
    for i in range(blocks):
        with g.scope(f"block{i}"):
            for j in range(layers):
                with g.scope(f"layer{j}"):
                    h = dg.tanh(h @ g.param("W", rng.normal(size=(width, width))) + g.param("b", np.zeros(width)))
    loss = dg.mean(h * h, name="loss")
    return g, loss, {"x": rng.normal(size=(2, width))}


def test_large_graph_collapses_scopes_into_boxes_with_aggregated_statistics(tmp_path):
    g, loss, feeds = layered(20, 20)
    assert len(g) > 2000
    res = g.backward(loss, feeds=feeds)
    start = time.perf_counter()
    dg.render(res, tmp_path / "big.svg", max_nodes=200)
    assert time.perf_counter() - start < 20
    nodes = svg_nodes(tmp_path / "big.svg")
    assert 20 <= len(nodes) - 1 <= 200
    collapsed = [n for n in nodes.values() if "nodes collapsed" in n["text"]]
    assert collapsed
    # block19 is the last block: its aggregated gradient norm is the norm over all its nodes' gradients.
    box = next(n for n in nodes.values() if n["tip"].startswith("scope block19:"))
    norm = math.sqrt(sum(float(np.sum(res.grad(n) ** 2)) for n in res.grads if n.startswith("block19/")))
    assert f"|g| {number(norm)} over 100 nodes" in box["text"]
    assert re.search(r"values: \d+ entries in 100 arrays", box["text"])


def test_expand_keeps_a_scope_open_and_collapse_closes_one():
    g, loss, feeds = layered(4, 30)
    res = g.backward(loss, feeds=feeds)
    source = dg.render(res, max_nodes=50, expand=["block2/layer7"]).source
    assert "block2/layer7/W" in source and "block0/layer0/W" not in source
    small = dg.render(res, max_nodes=None, collapse=["block1"]).source
    assert "block1/layer0/W" not in small and "block0/layer0/W" in small
    with pytest.raises(dg.RenderError, match="no scope named 'blok1'.*block1"):
        dg.render(res, collapse=["blok1"])


def test_many_top_level_scopes_merge_into_segments():
    g, loss, feeds = layered(1, 1)
    g2 = dg.Graph("flat")
    h = g2.input("x", shape=(None, 2))
    for i in range(500):
        with g2.scope(f"s{i}"):
            h = dg.tanh(h * g2.param("w", np.ones(2)))
    res = g2.backward(dg.sum(h, name="loss"), feeds={"x": np.ones((1, 2))})
    source = dg.render(res, max_nodes=100).source
    boxes = re.findall(r"^\s*n\d+ \[", source, re.M)
    assert len(boxes) <= 110 and "segment of" in source


def test_missing_dot_raises_render_error_but_dot_source_still_works(mlp_result, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(dg.RenderError, match="install Graphviz|Install Graphviz"):
        dg.render(mlp_result, tmp_path / "flow.svg")
    assert not (tmp_path / "flow.svg").exists()
    digraph = dg.render(mlp_result, tmp_path / "flow.dot")
    assert (tmp_path / "flow.dot").read_text() == digraph.source and "digraph" in digraph.source
    bundle = mimebundle(mlp_result)
    assert set(bundle) == {"text/plain"} and "Graphviz" in bundle["text/plain"]


def fake_dot(tmp_path, script: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dot = bin_dir / "dot"
    dot.write_text("#!/bin/sh\n" + script + "\n")
    dot.chmod(0o755)
    return str(bin_dir)


def test_dot_that_hangs_is_stopped_by_the_timeout(mlp_result, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_dot(tmp_path, "exec sleep 30") + os.pathsep + os.environ["PATH"])
    start = time.perf_counter()
    with pytest.raises(dg.RenderError, match="did not finish.*within 0.5 s"):
        dg.render(mlp_result, tmp_path / "flow.svg", timeout=0.5)
    assert time.perf_counter() - start < 10
    assert list(tmp_path.glob("*flow.svg*")) == []


def test_failing_dot_leaves_no_half_written_file(mlp_result, tmp_path, monkeypatch):
    (tmp_path / "flow.svg").write_text("old picture")
    monkeypatch.setenv("PATH", fake_dot(tmp_path, "echo broken >&2; exit 3") + os.pathsep + os.environ["PATH"])
    with pytest.raises(dg.RenderError, match="exit 3.*broken"):
        dg.render(mlp_result, tmp_path / "flow.svg")
    assert (tmp_path / "flow.svg").read_text() == "old picture"
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["flow.svg"]


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml"),
                                           (".gv", b"digraph")])
def test_format_is_taken_from_the_suffix(mlp_result, tmp_path, suffix, magic):
    dg.render(mlp_result, tmp_path / f"flow{suffix}")
    assert (tmp_path / f"flow{suffix}").read_bytes().startswith(magic)


def test_unknown_suffix_or_option_is_a_render_error(mlp_result, tmp_path):
    with pytest.raises(dg.RenderError, match="flow.jpeg"):
        dg.render(mlp_result, tmp_path / "flow.jpeg")
    with pytest.raises(dg.RenderError, match="rankdir"):
        dg.render(mlp_result, rankdir="up")
    with pytest.raises(dg.RenderError, match="show"):
        dg.render(mlp_result, show=("values",))
    with pytest.raises(dg.RenderError, match="Result or a Graph"):
        dg.render(42)


def test_graph_without_result_shows_structure_and_displays_in_notebooks(mlp_result):
    g = mlp_result.graph
    source = dg.render(g).source
    assert "fc1/W" in source and "(3, 4) float64" in source and "grad:" not in source
    bundle = g._repr_mimebundle_()
    ET.fromstring(bundle["image/svg+xml"])
    assert "image/svg+xml" in mlp_result._repr_mimebundle_()


def test_show_attrs_lists_escaped_attribute_values(mlp_result):
    source = dg.render(mlp_result, show=("value", "grad", "attrs")).source
    assert "attrs: reduction=&#39;mean&#39;" in source


def test_forward_only_result_has_no_gradient_rows():
    g, loss, feeds = mlp()
    res = g.forward([loss], feeds)
    source = dg.render(res).source
    assert "grad:" not in source and "log scale" not in source and "() float64" in source


def test_grad_range_fixes_the_colour_scale_so_two_diagrams_compare():
    g = dg.Graph("scale")
    w = g.param("w", np.array([1.0, 2.0]))
    loss = dg.sum(w * w)
    res = g.backward(loss)
    own = dg.render(res).source
    shared = dg.render(res, grad_range=(1e-3, 1e3)).source
    assert own != shared  # the same norms get other colours on a wider scale
    assert "0.001" in shared and "1000" in shared  # the legend shows the fixed ends
    with pytest.raises(dg.RenderError, match="grad_range"):
        dg.render(res, grad_range=(0, 1))


# ------------------------------------------------- backward nodes (dg.grad) ---

from dagrad.render.diagram import BACKWARD_CLUSTER, BACKWARD_FILL  # noqa: E402


def layers_and_their_gradients(layers: int = 3):
    """A chain of ``layers`` tanh layers (scopes layer1, ...) and ``dg.grad`` of the loss for every W, run forward."""
    rng = np.random.default_rng(0)
    g = dg.Graph("gradients as nodes")
    h = g.input("x", shape=(None, 3))
    for i in range(1, layers + 1):
        with g.scope(f"layer{i}"):
            h = dg.tanh(h @ g.param("W", rng.normal(size=(3, 3))))
    loss = dg.sum(h, name="loss")
    grads = dg.grad(loss, [g[f"layer{i}/W"] for i in range(1, layers + 1)])
    return g.forward(grads, {"x": rng.normal(size=(4, 3))})


def dot_structure(source: str) -> tuple:
    """The DOT source read back: boxes ``{id: {name, class, fill, clusters}}``, clusters, edges ``[(tail, head, attrs)]``."""
    attr = lambda text, key: (re.search(rf'\b{key}=("(?:[^"\\]|\\.)*"|[\w#.-]+)', text) or [None, None])[1]  # noqa: E731
    unquote = lambda v: v.strip('"') if v else v  # noqa: E731
    boxes, clusters, edges, stack = {}, {}, [], []
    for line in source.splitlines():
        line = line.strip()
        if m := re.match(r"subgraph (cluster_\d+) \{", line):
            stack.append(m[1])
            clusters[m[1]] = {"parents": list(stack[:-1])}
        elif line == "}":
            if stack:
                stack.pop()
        elif stack and line.startswith("color=") and "tooltip=" in line:  # the cluster's own attributes
            clusters[stack[-1]].update(scope=unquote(attr(line, "tooltip")).split("&#10;")[0].removeprefix("scope "),
                                       fill=unquote(attr(line, "fillcolor")))
        elif m := re.match(r"(n\d+) -> (n\d+) \[(.*)\]$", line):
            edges.append((m[1], m[2], {k: unquote(attr(m[3], k)) for k in ("class", "dir", "lhead", "weight")}))
        elif m := re.match(r"(n\d+) \[(.*)\]$", line):
            boxes[m[1]] = {"name": unquote(attr(m[2], "tooltip")).split("&#10;")[0], "class": unquote(attr(m[2], "class")),
                           "fill": unquote(attr(m[2], "fillcolor")), "clusters": list(stack)}
    return boxes, clusters, edges


@pytest.mark.parametrize("arrows", ["forward", "backward"])
def test_backward_nodes_are_purple_in_purple_clusters_linked_to_the_forward_node_they_belong_to(arrows):
    res = layers_and_their_gradients()
    g = res.graph
    boxes, clusters, edges = dot_structure(dg.render(res, arrows=arrows).source)
    ident = {box["name"]: i for i, box in boxes.items()}
    assert set(ident) == {n.name for n in g}                        # small: one box per node
    backward = {n.name for n in g if n.origin is not None}
    assert backward and all(name.startswith("grad/") for name in backward)
    for name, i in ident.items():
        box, is_backward = boxes[i], name in backward
        assert ("backward" in box["class"].split()) == is_backward, name
        assert (box["fill"] == BACKWARD_FILL) == is_backward, name
        around = [clusters[c]["fill"] == BACKWARD_CLUSTER for c in box["clusters"]]
        assert all(around) if is_backward else not any(around), name  # purple clusters hold backward nodes only
    # Every backward node is linked to its origin: to its own box, or to a cluster around it (lhead).
    links = [(t, h, a["lhead"]) for t, h, a in edges if a["class"] == "origin"]
    for name in backward:
        origin, i = g.node(name).origin, ident[name]
        assert any(t == ident[origin] and (h == i or lhead in boxes[i]["clusters"]) for t, h, lhead in links), name
    # Every data edge is drawn once; its arrow points the way values flow (or gradients, for arrows="backward").
    drawn = {((h, t) if a["dir"] == "back" else (t, h)) for t, h, a in edges if a["class"] != "origin"}
    flows = {(ident[u], ident[v]) for u, v in g.nx.edges()}
    assert drawn == (flows if arrows == "forward" else {(v, u) for u, v in flows})
    # Layer L-1's gradient takes layer L's gradient as an input.
    names = {(boxes[u]["name"], boxes[v]["name"]) for u, v in flows}
    for upper in (3, 2):
        assert any(u.startswith(f"grad/layer{upper}/") and v.startswith(f"grad/layer{upper - 1}/") for u, v in names)
    # Every edge is written the way values flow, so dot's constraints are those of the graph: acyclic. Forward
    # values read by the backward part, and the links, have weight 0: they do not pull it up among the forward part.
    for t, h, a in edges:
        assert (a["weight"] == "0") == (boxes[h]["name"] in backward and boxes[t]["name"] not in backward), (t, h)


def test_a_collapsed_backward_scope_is_a_purple_box_and_the_title_counts_backward_nodes():
    res = layers_and_their_gradients()
    source = dg.render(res, collapse=["grad"]).source
    boxes, clusters, edges = dot_structure(source)
    (grad_box,) = [b for b in boxes.values() if b["name"].startswith("scope grad")]
    assert grad_box["class"] == "box backward scope" and grad_box["fill"] == BACKWARD_FILL
    assert not any(c["fill"] == BACKWARD_CLUSTER for c in clusters.values())
    backward = sum(n.origin is not None for n in res.graph)
    assert f"{len(res.graph.nodes())} nodes, {backward} of them backward" in source
    # one link per forward node whose backward step is inside the collapsed box
    origins = {n.origin for n in res.graph if n.origin is not None}
    assert len([e for e in edges if e[2]["class"] == "origin"]) == len(origins)


def test_a_backward_node_tooltip_names_its_origin_and_a_loss_holding_gradients_renders_with_gradients(tmp_path):
    res = layers_and_their_gradients()
    g = res.graph
    penalty = dg.sum(g["grad/layer1/matmul/matmul"] ** 2, name="penalty")
    trained = g.backward(penalty, {"x": np.ones((4, 3))})
    dg.render(trained, tmp_path / "flow.svg")
    nodes = by_name(svg_nodes(tmp_path / "flow.svg"))
    assert "the backward step of layer1/tanh" in nodes["grad/layer1/tanh/mul"]["tip"]
    assert nodes["grad/layer1/tanh/mul"]["fill"] in PALETTE  # with gradients, the fill is the gradient's colour


def second_derivatives():
    """dg.grad of a dg.grad and an hvp: nested backward scopes, backward nodes whose origin is a backward node,
    and forward nodes that consume gradients."""
    g = dg.Graph("second order")
    x = g.input("x", shape=(None, 3))
    W = g.param("W", np.random.default_rng(0).normal(size=(3, 2)))
    b = g.param("b", np.zeros(2))           # used by one op: drawn beside it, as no backward source is
    loss = dg.mean(dg.tanh(x @ W + b) ** 2)
    ggx = dg.grad(dg.sum(dg.grad(loss, x) ** 2), x)
    Hv = dg.hvp(loss, W, np.ones((3, 2)))
    return g.backward(dg.sum(ggx) + dg.sum(Hv), {"x": np.ones((4, 3))})


def test_graphs_of_second_derivatives_render(tmp_path):
    # Layouts that fought the graph's own direction, links ending at constants and backward constants held on one
    # rank with their op made dot fail ("lost edge", "triangulation failed") on this graph.
    res = second_derivatives()
    g = res.graph
    for max_nodes in (None, 30):
        dg.render(res, tmp_path / "flow.svg", max_nodes=max_nodes)
        source = dg.render(res, max_nodes=max_nodes).source
        boxes, clusters, edges = dot_structure(source)
        links = [(h, a["lhead"]) for t, h, a in edges if a["class"] == "origin"]
        assert links
        names = {n.name for n in g}
        into_clusters = [boxes[h]["name"] for h, lhead in links if lhead and boxes[h]["name"] in names]
        assert into_clusters and all(g.node(name).kind == "op" for name in into_clusters), "links end at ops"
        same_rank = {i for line in source.splitlines() if "{rank=same;" in line for i in re.findall(r"n\d+", line)}
        assert "b" in {boxes[i]["name"] for i in same_rank if i in boxes}
        assert not any(g.node(boxes[i]["name"]).origin for i in same_rank if boxes.get(i, {}).get("name") in names)
    origins = {n.origin for n in g if n.origin is not None}
    assert any(g.node(o).origin is not None for o in origins)   # a backward step of a backward node
