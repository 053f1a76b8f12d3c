"""The Graphviz diagram of a Result or a Graph: boxes, labels, colours, edge widths, clusters and legend.

Every Graphviz id is synthetic (``n0``, ``n1``, ``cluster_0``); user strings
appear only inside HTML-like labels, escaped by ``escape.html``. Colours and pen
widths use log scales shared by the whole diagram, so two boxes can be compared
at a glance wherever they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

import graphviz
import numpy as np

from ..errors import RenderError
from ..graph import Graph, Node
from ..plugins import BUILTINS, registry
from ..result import Result
from ..shapes import format_shape
from .escape import html
from .layout import Box, Layout, plan_layout, scope_chain
from .summary import Stats, bad_text, describe, number

__all__ = ["build", "PALETTE", "NAN_FILL", "ZERO_FILL", "NONE_FILL", "SHAPES", "SHOW"]

# Gradient magnitude, smallest to largest (ColorBrewer "Blues"); text turns white from DARK on.
PALETTE = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c")
DARK = 5
NAN_FILL, NAN_LINE = "#e41a1c", "#67000d"
ZERO_FILL, ZERO_LINE = "#ffe66d", "#a65f00"
NONE_FILL, NONE_LINE = "#ffffff", "#9e9e9e"
PLAIN_FILL = "#f5f5f5"  # a diagram without gradients
SHAPES = {"op": "box", "param": "cylinder", "input": "box", "const": "note", "scope": "box3d", "segment": "folder"}
STYLES = {"op": "rounded,filled", "input": "filled,diagonals"}  # inputs: a box with cut corners
SHOW = ("value", "grad", "attrs")
RANKDIRS = ("TB", "LR", "BT", "RL")
MIN_PEN, MAX_PEN = 1.0, 6.0
FONT = "Helvetica"


@dataclass
class _Numbers:
    """What the diagram knows about the nodes of one box."""

    value: Stats = field(default_factory=Stats)
    grad: Stats = field(default_factory=Stats)
    with_grad: int = 0
    without_grad: int = 0
    zero: int = 0
    bad_nodes: int = 0
    ranks: list = field(default_factory=list)

    @property
    def bad(self) -> int:
        return self.value.bad + self.grad.bad

    @property
    def norm(self) -> float:
        return self.grad.norm if self.with_grad else math.nan


class _Source:
    """Values, gradients and backward steps, from a Result or (values of params/consts only) a Graph."""

    def __init__(self, obj: Any):
        if isinstance(obj, Result):
            self.graph, self.result = obj.graph, obj
        elif isinstance(obj, Graph):
            self.graph, self.result = obj, None
        else:
            raise RenderError(f"dagrad.render draws a Result or a Graph, not {type(obj).__name__}")
        self.grads = self.result is not None and self.result.loss is not None

    def value(self, node: Node) -> Optional[np.ndarray]:
        if self.result is not None and node.name in self.result.values:
            return self.result.values[node.name]
        if node.kind in ("param", "const"):
            return self.graph.value(node.name)
        return None

    def grad(self, node: Node) -> Optional[np.ndarray]:
        return self.result.grads.get(node.name) if self.grads else None

    def rank(self, node: Node) -> Optional[int]:
        return self.result.rank(node.name) if self.result is not None else None


def build(
    obj: Any,
    *,
    rankdir: str = "TB",
    max_nodes: Optional[int] = 200,
    collapse: Optional[Iterable[str]] = None,
    expand: Optional[Iterable[str]] = None,
    show: Sequence[str] = ("value", "grad"),
    edge_labels: bool = False,
    grad_range: Optional[tuple] = None,
) -> graphviz.Digraph:
    """The diagram as a ``graphviz.Digraph`` (see ``dagrad.render.render`` for the parameters)."""
    if grad_range is not None:
        low, high = grad_range
        if not (0 < low <= high and math.isfinite(high)):
            raise RenderError(f"grad_range must be two positive norms, low <= high; got {grad_range!r}")
    if rankdir not in RANKDIRS:
        raise RenderError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    if isinstance(show, str):
        show = (show,)
    unknown = [s for s in show if s not in SHOW]
    if unknown:
        raise RenderError(f"show= takes items of {SHOW}; got unknown {unknown}")
    source = _Source(obj)
    order = source.graph.topological_order()
    layout = plan_layout(order, max_nodes, collapse, expand)
    per_node, per_box, scope_sq = _numbers(source, order, layout)

    dot = graphviz.Digraph(
        name="dagrad",
        graph_attr={
            "rankdir": rankdir, "fontname": FONT, "labelloc": "t", "newrank": "true",
            "label": _title(source, order, layout), "nodesep": "0.25", "ranksep": "0.35",
        },
        node_attr={"fontname": FONT, "fontsize": "10", "margin": "0.05,0.03"},
        edge_attr={"fontname": FONT, "fontsize": "9", "arrowsize": "0.7"},
    )
    scale = _LogScale(grad_range if grad_range is not None
                      else (b.norm for b in per_box if b.with_grad and not b.bad and b.norm > 0))
    subs = {s: graphviz.Digraph(name=f"cluster_{k}") for k, s in enumerate(layout.clusters)}
    for s, sub in subs.items():
        norm = math.sqrt(scope_sq.get(s, 0.0))
        tail = html(f"  |grad| {number(norm)}") if source.grads else ""
        sub.attr(label=f"<<B>{html(s)}</B>{tail}>", labeljust="l", style="rounded,dashed",
                 color="#8c8c8c", fontsize="10")
    for i, (box, nums) in enumerate(zip(layout.boxes, per_box)):
        target = subs.get(box.cluster, dot)
        if box.kind == "node":
            node = source.graph.node(box.members[0])
            kind, label = node.kind, _node_label(source, node, per_node[box.members[0]], show)
        else:
            kind, label = box.kind, _box_label(source, box, nums, show)
        target.node(f"n{i}", label=f"<{label}>", **_look(kind, nums, source.grads, scale))
    for s in reversed(layout.clusters):
        subs.get(s.rpartition("/")[0], dot).subgraph(subs[s])
    _edges(dot, source, layout, edge_labels)
    if source.grads:
        dot.node("legend", label=f"<{_legend(scale)}>", shape="plaintext")
    return dot


def _numbers(source: _Source, order: list, layout: Layout):
    """Per-node and per-box statistics, and the sum of squared gradient norms of each scope."""
    per_node: dict[str, tuple] = {}
    per_box = [_Numbers() for _ in layout.boxes]
    scope_sq: dict[str, float] = {}
    open_scopes = set(layout.clusters)
    for node in order:
        value, grad = source.value(node), source.grad(node)
        nums = per_box[layout.box_of[node.name]]
        vs, gs = Stats(), Stats()
        if value is not None:
            vs.add(value)
            nums.value.add(value)
        if grad is not None:
            gs.add(grad)
            nums.grad.add(grad)
            nums.with_grad += 1
            if gs.bad == 0 and gs.squares == 0.0:
                nums.zero += 1
            for s in scope_chain(node.scope):
                if s in open_scopes:
                    scope_sq[s] = scope_sq.get(s, 0.0) + gs.squares
        elif source.grads:
            nums.without_grad += 1
        if vs.bad or gs.bad:
            nums.bad_nodes += 1
        rank = source.rank(node)
        if rank is not None:
            nums.ranks.append(rank)
        per_node[node.name] = (value, grad, vs, gs)
    return per_node, per_box, scope_sq


class _LogScale:
    """Maps positive magnitudes onto ``bins`` steps of one log10 scale."""

    def __init__(self, values: Iterable[float], bins: int = len(PALETTE)):
        logs = [math.log10(v) for v in values if v > 0 and math.isfinite(v)]
        self.bins = bins
        self.low = min(logs) if logs else None
        self.high = max(logs) if logs else None

    def bin(self, value: float) -> int:
        if self.low is None or not (value > 0 and math.isfinite(value)):
            return 0
        if self.high == self.low:
            return self.bins - 1
        t = (math.log10(value) - self.low) / (self.high - self.low)
        return min(self.bins - 1, max(0, int(t * self.bins)))

    def fraction(self, value: float) -> float:
        if self.low is None or not (value > 0 and math.isfinite(value)) or self.high == self.low:
            return 1.0 if self.low is not None and value > 0 else 0.0
        return (math.log10(value) - self.low) / (self.high - self.low)

    def edges(self) -> list[float]:
        """The ``bins + 1`` boundaries, smallest first."""
        if self.low is None:
            return []
        span = self.high - self.low
        return [10 ** (self.low + span * k / self.bins) for k in range(self.bins + 1)]


def _look(kind: str, nums: _Numbers, grads: bool, scale: _LogScale) -> dict:
    """Shape (by node kind, or collapsed scope/segment), fill, border and font colour of a box."""
    style = STYLES.get(kind, "filled")
    attrs = {"shape": SHAPES[kind], "style": style, "fillcolor": PLAIN_FILL, "color": "#4d4d4d"}
    if nums.bad:
        attrs.update(fillcolor=NAN_FILL, color=NAN_LINE, fontcolor="white", penwidth="3", style=style + ",bold")
    elif grads and not nums.with_grad:
        attrs.update(fillcolor=NONE_FILL, color=NONE_LINE, fontcolor="#616161", style=style + ",dashed")
    elif grads and nums.zero == nums.with_grad:
        attrs.update(fillcolor=ZERO_FILL, color=ZERO_LINE, penwidth="3", style=style + ",bold")
    elif grads:
        k = scale.bin(nums.norm)
        attrs.update(fillcolor=PALETTE[k])
        if k >= DARK:
            attrs["fontcolor"] = "white"
    return attrs


# ----------------------------------------------------------------- labels --

_TABLE = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'


def _styled(text: str, style: str) -> str:
    """Escaped ``text``, wrapped in our own markup (B, I); Graphviz refuses an empty <B></B>."""
    body = html(text)
    return f"<{style}>{body}</{style}>" if style and body else body


def _row(label: str, text: str, *, style: str = "") -> str:
    """One ``label: text`` row, escaped; a single text span (Graphviz 2.x misaligns cells that mix fonts)."""
    return _wide(f"{label}: {text}" if label else text, style=style)


def _wide(text: str, *, style: str = "") -> str:
    body = _styled(text, style)
    return f'<TR><TD ALIGN="LEFT" COLSPAN="2">{body}</TD></TR>'


def _header(title: str, rank: str) -> str:
    return (f'<TR><TD ALIGN="LEFT">{_styled(title, "B")}</TD>'
            f'<TD ALIGN="RIGHT">{_styled(rank, "B")}</TD></TR>')


def _op_text(node: Node) -> str:
    if node.kind == "param":
        return "param" if node.trainable else "param (frozen)"
    if node.kind != "op":
        return node.kind
    info = registry().plugin_of(node.op)
    if info is None or info.name == BUILTINS:
        return node.op
    return f"{node.op}  [plugin {info.name}]"


def _node_label(source: _Source, node: Node, data: tuple, show: Sequence[str]) -> str:
    value, grad, vs, gs = data
    rank = source.rank(node)
    rows = [_TABLE, _header(node.name, f"#{rank}" if rank else ""), _wide(_op_text(node), style="I")]
    if "value" in show:
        if value is None:
            shape = "?" if node.shape is None else format_shape(node.shape)
            rows.append(_row("value", f"{shape} {node.dtype}" + ("" if source.result is None else "  (not kept)")))
        else:
            head, body = describe(value)
            rows.append(_row("value", head))
            if body:
                rows.append(_wide(body))
    if "grad" in show and source.grads:
        if grad is None:
            kept = rank is not None
            rows.append(_row("grad", "not kept (keep='wrt')" if kept else "no gradient", style="I"))
        else:
            head, body = describe(grad)
            if gs.bad:
                rows.append(_row("grad", f"{bad_text(gs.nan, gs.inf)}  {head}", style="B"))
            elif gs.squares == 0.0:
                rows.append(_row("grad", f"zero  {head}", style="B"))
            else:
                rows.append(_row("grad", f"|g| {number(gs.norm)}  {head}"))
            if body and not (gs.squares == 0.0 and not gs.bad):
                rows.append(_wide(body))
    if vs.bad and "value" in show:
        rows.append(_row("value", bad_text(vs.nan, vs.inf), style="B"))
    if "attrs" in show and node.attrs:
        rows.append(_row("attrs", ", ".join(f"{k}={v!r}" for k, v in node.attrs.items())))
    for label, text in _plugin_rows(node, value, grad):
        rows.append(_row(label, text))
    rows.append("</TABLE>")
    return "".join(rows)


def _box_label(source: _Source, box: Box, nums: _Numbers, show: Sequence[str]) -> str:
    ranks = f"#{min(nums.ranks)}\u2013#{max(nums.ranks)}" if nums.ranks else ""
    what = "scope" if box.kind == "scope" else f"segment of {box.parts} boxes"
    rows = [_TABLE, _header(box.title, ranks), _wide(f"{what}, {len(box.members)} nodes collapsed", style="I")]
    if "value" in show and nums.value.arrays:
        rows.append(_row("values", f"{nums.value.count} entries in {nums.value.arrays} arrays"))
        if nums.value.count:
            rows.append(_wide(Stats.text(_finite_only(nums.value))))
    if "grad" in show and source.grads:
        if not nums.with_grad:
            rows.append(_row("grad", "no gradient", style="I"))
        elif nums.zero == nums.with_grad and not nums.grad.bad:
            rows.append(_row("grad", f"zero in all {nums.with_grad} nodes", style="B"))
        else:
            rows.append(_row("grad", f"|g| {number(nums.norm)} over {nums.with_grad} nodes"))
            if nums.grad.count:
                rows.append(_wide(Stats.text(_finite_only(nums.grad))))
            if nums.zero:
                rows.append(_row("zero", f"{nums.zero} nodes", style="B"))
        if nums.without_grad:
            rows.append(_row("no grad", f"{nums.without_grad} nodes"))
    if nums.bad:
        rows.append(_row("NaN/Inf", f"{bad_text(nums.value.nan + nums.grad.nan, nums.value.inf + nums.grad.inf)} "
                                    f"in {nums.bad_nodes} nodes", style="B"))
    rows.append("</TABLE>")
    return "".join(rows)


def _finite_only(stats: Stats) -> Stats:
    """The same statistics without the NaN/Inf note (a box reports those on a row of their own)."""
    return Stats(stats.arrays, stats.count, stats.total, stats.squares, stats.low, stats.high)


def _plugin_rows(node: Node, value, grad) -> list[tuple[str, str]]:
    """Rows from every plugin's ``dagrad_node_rows``; a failing plugin is named in a RenderError."""
    rows: list[tuple[str, str]] = []
    kwargs = {"node": node, "value": value, "grad": grad}
    for impl in registry().hook.dagrad_node_rows.get_hookimpls():
        try:
            got = impl.function(**{k: kwargs[k] for k in impl.argnames})
            for label, text in got or ():
                rows.append((str(label), str(text)))
        except Exception as exc:  # noqa: BLE001 - any failure is the plugin's
            raise RenderError(
                f"plugin {impl.plugin_name!r}: dagrad_node_rows failed for node {node.name!r} "
                f"(it must return a list of (label, text) pairs): {type(exc).__name__}: {exc}"
            ) from exc
    return rows


def _title(source: _Source, order: list, layout: Layout) -> str:
    parts = [f"<B>{html(source.graph.name)}</B>"]
    res = source.result
    if res is not None and res.loss is not None:
        loss = res.values.get(res.loss)
        shown = f" = {number(np.asarray(loss).item())}" if loss is not None and np.size(loss) == 1 else ""
        parts.append(html(f": loss {res.loss!r}{shown}"))
    collapsed = sum(1 for b in layout.boxes if b.kind != "node")
    size = f"{len(order)} nodes"
    if collapsed:
        size += f" in {len(layout.boxes)} boxes ({collapsed} collapsed)"
    parts.append(f'<BR/><FONT POINT-SIZE="9">{html(size)}</FONT>')
    return "<" + "".join(parts) + ">"


# ------------------------------------------------------------------ edges --


def _edges(dot: graphviz.Digraph, source: _Source, layout: Layout, labels: bool) -> None:
    """Forward edges between boxes, as wide as the log of the gradient flowing back along them."""
    flows: dict[tuple, list] = {}
    norms = source.result.edge_norms if source.result is not None else {}
    for u, v in source.graph.nx.edges():
        a, b = layout.box_of[u], layout.box_of[v]
        if a == b:
            continue
        entry = flows.setdefault((a, b), [0.0, False, False])
        flow = norms.get((u, v))
        if flow is not None:
            entry[1] = True
            if math.isfinite(flow):
                entry[0] += flow * flow
            else:
                entry[2] = True
    scale = _LogScale(math.sqrt(sq) for sq, seen, bad in flows.values() if seen and not bad)
    for (a, b), (sq, seen, bad) in flows.items():
        attrs: dict[str, str] = {}
        norm = math.sqrt(sq)
        if bad:
            attrs.update(color=NAN_FILL, penwidth=str(MAX_PEN), style="bold")
            text = "NaN/Inf"
        elif not seen:
            attrs.update(color="#9e9e9e", penwidth=str(MIN_PEN))
            text = ""
        else:
            width = MIN_PEN + (MAX_PEN - MIN_PEN) * scale.fraction(norm) if norm > 0 else 0.6
            attrs.update(color="#2b2b2b", penwidth=f"{width:.2f}")
            if norm == 0:
                attrs["style"] = "dashed"
            text = number(norm)
        if labels and text:
            attrs["label"] = f'<<FONT POINT-SIZE="8">{html(text)}</FONT>>'
        dot.edge(f"n{a}", f"n{b}", **attrs)


def _legend(scale: _LogScale) -> str:
    rows = ['<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2" COLOR="#8c8c8c">',
            '<TR><TD COLSPAN="2"><B>|gradient| (L2, log scale)</B></TD></TR>']
    edges = scale.edges()
    for k in reversed(range(len(PALETTE)) if edges else ()):
        rows.append(f'<TR><TD BGCOLOR="{PALETTE[k]}" WIDTH="24"> </TD>'
                    f'<TD ALIGN="LEFT">{html(number(edges[k]))} \u2013 {html(number(edges[k + 1]))}</TD></TR>')
    for fill, text in ((ZERO_FILL, "zero (e.g. dead ReLU)"), (NONE_FILL, "no gradient"), (NAN_FILL, "NaN / Inf")):
        rows.append(f'<TR><TD BGCOLOR="{fill}" BORDER="1"> </TD><TD ALIGN="LEFT">{html(text)}</TD></TR>')
    rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT">#k: k-th gradient finished (#1 = loss)</TD></TR>')
    rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT">edge width: log |gradient| flowing back</TD></TR>')
    rows.append("</TABLE>")
    return "".join(rows)
