"""The Graphviz diagram of a Result or a Graph: boxes, labels, colours, edge widths, clusters and legend.

Every Graphviz id is synthetic (``n0``, ``n1``, ``cluster_0``); user strings
appear only inside HTML-like labels and tooltips, escaped and shortened by
``escape``. Colours and pen widths use log scales shared by the whole
diagram, so two boxes can be compared at a glance wherever they are.

The layout is compact by default: a source node (parameter, input,
constant) used by one box sits beside it on the same rank instead of a rank
above, so a layer's clusters stack along the flow instead of forming a
staircase, and a node's title is its name inside its cluster (``W`` in the
cluster ``fc1``; the full name is in the tooltip).

How a box looks is looked up by its *kind* in ``LOOKS``, and ``kind_of``
decides a node's kind. To draw a new kind of node distinguishably, add a
``Look`` to ``LOOKS`` and a rule to ``kind_of``; clusters are styled the same
way through ``CLUSTER_LOOKS`` and ``cluster_kind``.

The nodes ``dagrad.grad`` adds are the first such kind: *backward* nodes
(``Node.origin`` is set) are purple, their scopes are purple clusters, and a
dotted purple link joins each forward node to the cluster (or box) holding
the nodes of its backward step, so the picture shows which gradient
computation belongs to which forward node, and that layer L-1's gradient
takes layer L's as an input. Links and the edges that carry forward values
into the backward part have weight 0, so the backward part stays together
below the forward part instead of being pulled apart across it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

import graphviz
import numpy as np

from ..errors import RenderError
from ..graph import Graph, Node
from ..node import SOURCE_KINDS
from ..plugins import BUILTINS, registry
from ..result import Result
from ..shapes import format_shape
from .escape import html, shorten, tooltip
from .layout import DEFAULT_DETAIL_NODES, Box, Layout, plan_layout, scope_chain
from .summary import SMALL, Stats, bad_text, brief, describe, dtype_name, number

__all__ = [
    "build", "Look", "LOOKS", "CLUSTER_LOOKS", "kind_of", "cluster_kind", "PALETTE", "NAN_FILL", "ZERO_FILL",
    "NONE_FILL", "BADGE_FILL", "BACKWARD_FILL", "BACKWARD_LINE", "BACKWARD_CLUSTER", "LINK_ATTRS", "step_scope",
    "SHOW", "ARROWS",
]

# Gradient magnitude, smallest to largest (ColorBrewer "Blues"); text turns white from DARK on.
PALETTE = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c")
DARK = 5
NAN_FILL, NAN_LINE = "#e41a1c", "#67000d"
ZERO_FILL, ZERO_LINE = "#ffe66d", "#a65f00"
NONE_FILL, NONE_LINE = "#ffffff", "#9e9e9e"
PLAIN_FILL = "#f5f5f5"  # a diagram without gradients
BADGE_FILL = "#d94801"  # the #k badge: orange stands out on every blue of the palette and on white
# Backward nodes (added by dagrad.grad): ColorBrewer "Purples", apart from the blues of gradient magnitude.
BACKWARD_FILL, BACKWARD_LINE, BACKWARD_CLUSTER = "#e7e1f2", "#6a51a3", "#f8f6fc"
SHOW = ("value", "grad", "attrs")
RANKDIRS = ("TB", "LR", "BT", "RL")
ARROWS = ("forward", "backward")
MIN_PEN, MAX_PEN = 1.0, 6.0
FONT = "Helvetica"
PLUGIN_ROWS = 8  # rows one node takes from plugins; more are counted, not drawn


@dataclass(frozen=True)
class Look:
    """How one kind of box is drawn: its Graphviz shape and style, other attributes, and words for the legend."""

    shape: str
    style: str = "filled"
    legend: str = ""
    attrs: tuple = ()  # more Graphviz attributes, as (name, value) pairs


LOOKS = {
    "op": Look("box", "rounded,filled"),
    # A double border, not a cylinder: a cylinder's caps make every parameter's rank taller.
    "param": Look("box", "filled", "double border: parameter", (("peripheries", "2"),)),
    "input": Look("box", "filled,diagonals", "cut corners: input"),
    "const": Look("note", "filled", "folded corner: constant"),
    "scope": Look("box3d", "filled", "3-D box: collapsed scope"),
    "segment": Look("folder", "filled", "folder: run of boxes"),
    # Backward nodes keep their shape and take the purple fill and border (a gradient colour replaces the fill).
    "backward": Look("box", "rounded,filled", "", (("fillcolor", BACKWARD_FILL), ("color", BACKWARD_LINE),
                                                    ("penwidth", "1.5"))),
    "backward const": Look("note", "filled", "", (("fillcolor", BACKWARD_FILL), ("color", BACKWARD_LINE))),
    "backward scope": Look("box3d", "filled", "", (("fillcolor", BACKWARD_FILL), ("color", BACKWARD_LINE))),
}
CLUSTER_LOOKS = {
    "scope": {"style": "rounded,dashed", "color": "#8c8c8c"},
    "backward": {"style": "rounded,filled", "color": BACKWARD_LINE, "fillcolor": BACKWARD_CLUSTER},
}
# The dotted link from a forward node to the nodes of its backward step. For the layout it is an edge like the
# others, pointing the way values flow (a node is always added after its origin), so dot's constraints stay
# acyclic; weight 0, as for the forward values the backward part reads, lets the backward part keep together
# below the forward part. (Edges made constraint=false, or reversed to lay the backward part out upward, make
# dot 2.43 fail with "lost edge" or "triangulation failed" on graphs of second derivatives.)
LINK_ATTRS = {"style": "dotted", "color": BACKWARD_LINE, "penwidth": "1.5", "dir": "none", "weight": "0"}


def kind_of(node: Node) -> str:
    """The key in ``LOOKS`` a node is drawn with: its kind (``op``, ``param``, ``input``, ``const``).

    A node ``dagrad.grad`` added (its ``origin`` is set) is ``backward``, or
    ``backward const`` for a constant; the SVG class ``box backward const``
    lets a page select both.
    """
    if node.origin is not None:
        return "backward const" if node.kind == "const" else "backward"
    return node.kind


def cluster_kind(scope: str, nums: Optional["Numbers"] = None) -> str:
    """The key in ``CLUSTER_LOOKS`` an open scope is drawn with: ``backward`` when it holds only backward nodes."""
    return "backward" if nums is not None and nums.backward_only else "scope"


@dataclass
class Numbers:
    """What the diagram knows about the nodes of one box."""

    value: Stats = field(default_factory=Stats)
    grad: Stats = field(default_factory=Stats)
    with_grad: int = 0
    without_grad: int = 0
    zero: int = 0
    bad_nodes: int = 0
    ranks: list = field(default_factory=list)
    nodes: int = 0
    backward: int = 0  # nodes dagrad.grad added

    @property
    def backward_only(self) -> bool:
        return self.nodes > 0 and self.backward == self.nodes

    @property
    def bad(self) -> int:
        return self.value.bad + self.grad.bad

    @property
    def norm(self) -> float:
        return self.grad.norm if self.with_grad else math.nan

    def ranks_text(self) -> str:
        if not self.ranks:
            return ""
        low, high = min(self.ranks), max(self.ranks)
        return f"#{low}" if low == high else f"#{low}\u2013#{high}"


class Source:
    """Values, gradients and backward ranks, from a Result or (values of params/consts only) a Graph."""

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


def check_options(rankdir: str, show: Sequence[str], grad_range: Optional[tuple], arrows: str) -> tuple:
    """Validated ``show`` (as a tuple); ``RenderError`` naming the first bad option."""
    if grad_range is not None:
        low, high = grad_range
        if not (0 < low <= high and math.isfinite(high)):
            raise RenderError(f"grad_range must be two positive norms, low <= high; got {grad_range!r}")
    if rankdir not in RANKDIRS:
        raise RenderError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    if arrows not in ARROWS:
        raise RenderError(f"arrows must be 'forward' (the way values flow) or 'backward' (the way gradients "
                          f"flow), not {arrows!r}")
    if isinstance(show, str):
        show = (show,)
    unknown = [s for s in show if s not in SHOW]
    if unknown:
        raise RenderError(f"show= takes items of {SHOW}; got unknown {unknown}")
    return tuple(show)


def build(
    obj: Any,
    *,
    rankdir: str = "TB",
    max_nodes: Optional[int] = DEFAULT_DETAIL_NODES,
    collapse: Optional[Iterable[str]] = None,
    expand: Optional[Iterable[str]] = None,
    show: Sequence[str] = ("value", "grad"),
    edge_labels: bool = False,
    grad_range: Optional[tuple] = None,
    arrows: str = "forward",
    compact: bool = True,
) -> graphviz.Digraph:
    """The diagram as a ``graphviz.Digraph`` (see ``dagrad.render.render`` for the parameters)."""
    show = check_options(rankdir, show, grad_range, arrows)
    source = Source(obj)
    order = source.graph.topological_order()
    layout = plan_layout(order, max_nodes, collapse, expand)
    per_node, per_box, scope_nums = numbers(source, order, layout.boxes, layout.box_of, layout.clusters)

    dot = graphviz.Digraph(name="dagrad", graph_attr=graph_attrs(rankdir, compact),
                           node_attr=NODE_ATTRS, edge_attr=EDGE_ATTRS)
    scale = LogScale(grad_range if grad_range is not None
                     else (b.norm for b in per_box if b.with_grad and not b.bad and b.norm > 0))
    dot.attr(label=title(source, order, layout) if not source.grads
             else title(source, order, layout, legend(scale, layout.boxes)))
    subs = {s: graphviz.Digraph(name=f"cluster_{k}") for k, s in enumerate(layout.clusters)}
    for s, sub in subs.items():
        sub.attr(**cluster_attrs(source, s, scope_nums.get(s)))
    for i, (box, nums) in enumerate(zip(layout.boxes, per_box)):
        target = subs.get(box.cluster, dot)
        target.node(f"n{i}", **box_attrs(source, box, nums, per_node, show, scale, f"n{i}"))
    for s in reversed(layout.clusters):
        subs.get(s.rpartition("/")[0], dot).subgraph(subs[s])
    flows = edge_flows(source, layout.box_of)
    edge_scale = LogScale(math.sqrt(sq) for sq, seen, bad in flows.values() if seen and not bad)
    backward = [nums.backward_only for nums in per_box]
    for (a, b), flow in flows.items():
        attrs = edge_attrs(flow, edge_scale, edge_labels, arrows, layout.boxes[a].title, layout.boxes[b].title)
        if backward[b] and not backward[a]:
            attrs["weight"] = "0"  # a forward value the backward part reads: it does not pull the reader up
        dot.edge(f"n{a}", f"n{b}", **attrs)
    links = origin_links(order, layout)
    if any(cluster for _, _, cluster, _ in links):
        dot.graph_attr["compound"] = "true"  # an edge may end at a cluster's border (lhead)
    cluster_ids = {s: f"cluster_{k}" for k, s in enumerate(layout.clusters)}
    for a, b, cluster, origin in links:
        head = {"lhead": cluster_ids[cluster]} if cluster else {}
        dot.edge(f"n{a}", f"n{b}", **LINK_ATTRS, **head, **{"class": "origin"}, tooltip=tooltip(link_tip(origin)))
    if compact:
        for group in beside(source, layout.boxes, layout.box_of):
            dot.body.append("\t{rank=same; " + "; ".join(f"n{i}" for i in group) + "}\n")
    return dot


NODE_ATTRS = {"fontname": FONT, "fontsize": "10", "margin": "0.03,0.01"}
EDGE_ATTRS = {"fontname": FONT, "fontsize": "9", "arrowsize": "0.7"}


def graph_attrs(rankdir: str, compact: bool) -> dict:
    return {"rankdir": rankdir, "fontname": FONT, "labelloc": "t", "newrank": "true",
            "nodesep": "0.15" if compact else "0.25", "ranksep": "0.16" if compact else "0.35"}


def measured(source: Source, order: list):
    """``(node, (value, grad, value stats, grad stats), rank)`` for each node: one pass over its arrays."""
    for node in order:
        value, grad = source.value(node), source.grad(node)
        vs, gs = Stats(), Stats()
        if value is not None:
            vs.add(value)
        if grad is not None:
            gs.add(grad)
        yield node, (value, grad, vs, gs), source.rank(node)


def numbers(source: Source, order: list, boxes: list, box_of: dict, clusters: Iterable[str]):
    """Per-node statistics, per-box statistics, and the statistics of each scope in ``clusters``."""
    per_node: dict[str, tuple] = {}
    per_box = [Numbers() for _ in boxes]
    open_scopes = set(clusters)
    per_scope: dict[str, Numbers] = {s: Numbers() for s in open_scopes}
    for node, data, rank in measured(source, order):
        targets = [per_box[box_of[node.name]]] + [per_scope[s] for s in scope_chain(node.scope) if s in open_scopes]
        for nums in targets:
            count(nums, data, source.grads, rank, node.origin is not None)
        per_node[node.name] = data
    return per_node, per_box, per_scope


def count(nums: Numbers, data: tuple, grads: bool, rank: Optional[int], backward: bool = False) -> None:
    """Add one node's statistics (``data`` from ``measured``) to a box's or scope's; ``backward``: dg.grad added it."""
    nums.nodes += 1
    nums.backward += backward
    value, grad, vs, gs = data
    if value is not None:
        nums.value.merge(vs)
    if grad is not None:
        nums.grad.merge(gs)
        nums.with_grad += 1
        if gs.bad == 0 and gs.squares == 0.0:
            nums.zero += 1
    elif grads:
        nums.without_grad += 1
    if vs.bad or gs.bad:
        nums.bad_nodes += 1
    if rank is not None:
        nums.ranks.append(rank)


class LogScale:
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
        return min(1.0, max(0.0, (math.log10(value) - self.low) / (self.high - self.low)))

    def edges(self) -> list[float]:
        """The ``bins + 1`` boundaries, smallest first."""
        if self.low is None:
            return []
        span = self.high - self.low
        return [10 ** (self.low + span * k / self.bins) for k in range(self.bins + 1)]


def colours(kind: str, nums: Numbers, grads: bool, scale: LogScale) -> dict:
    """Shape (by kind), fill, border and font colour of a box."""
    look = LOOKS[kind]
    style = look.style
    attrs = {"shape": look.shape, "style": style, "fillcolor": PLAIN_FILL, "color": "#4d4d4d", **dict(look.attrs)}
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


def box_attrs(source: Source, box: Box, nums: Numbers, per_node: dict, show: Sequence[str],
              scale: LogScale, ident: str) -> dict:
    """Every Graphviz attribute of one box: label, tooltip, look, and the SVG id and class."""
    if box.kind == "node":
        node = source.graph.node(box.members[0])
        kind = kind_of(node)
        label = node_label(source, node, per_node[node.name], show, relative(node.name, box.cluster))
        tip = node_tooltip(source, node)
    else:
        kind = "backward scope" if box.kind == "scope" and nums.backward_only else box.kind
        label = group_label(source, box, nums, show)
        tip = f"{box.kind} {box.title}: {len(box.members)} nodes {nums.ranks_text()}".rstrip()
    return {"label": f"<{label}>", "tooltip": tooltip(tip), "id": ident, "class": f"box {kind}",
            **colours(kind, nums, source.grads, scale)}


def relative(name: str, cluster: str) -> str:
    """``name`` as seen inside the cluster ``cluster`` (``fc1/W`` in ``fc1`` is ``W``)."""
    return name[len(cluster) + 1:] if cluster and name.startswith(cluster + "/") else name


def cluster_attrs(source: Source, scope: str, nums: Optional[Numbers]) -> dict:
    tail = ""
    if source.grads and nums is not None:
        tail = html(f"  |grad| {number(math.sqrt(nums.grad.squares))}")
        if nums.ranks:
            tail += f'  <FONT COLOR="{BADGE_FILL}"><B>{html(nums.ranks_text())}</B></FONT>'
    name = html(shorten(scope.rpartition("/")[2]))
    kind = cluster_kind(scope, nums)
    tip = f"scope {scope}" + ("\nbackward nodes, added by dagrad.grad" if kind == "backward" else "")
    return {"label": f"<<B>{name}</B>{tail}>", "labeljust": "l", "fontsize": "10",
            "tooltip": tooltip(tip), **CLUSTER_LOOKS[kind]}


def origin_links(order: Sequence[Node], layout: Layout) -> list[tuple]:
    """Where to draw a forward node's link to its backward step: ``(origin box, box, cluster, origin name)``.

    The nodes of one backward step live in a scope named after their origin
    (``grad/fc1/tanh`` for ``fc1/tanh``); when that scope is an open cluster
    the link ends at its border (``cluster`` is the scope), else at the box
    the node is drawn in. One link per pair, none inside one box. Inside a
    cluster the link aims at an op of the step, not at one of its constants:
    the op is where the step's gradient flows, and links ending at constants
    made dot 2.43 lose edges ("lost edge") in graphs of second derivatives.
    """
    open_scopes = set(layout.clusters)
    links: dict[tuple, tuple] = {}
    for node in order:
        origin = node.origin
        if origin is None or origin not in layout.box_of:
            continue
        a, b = layout.box_of[origin], layout.box_of[node.name]
        scope = step_scope(node)
        cluster = scope if layout.boxes[b].kind == "node" and scope in open_scopes else None
        key = (a, cluster if cluster else b)
        if a == b:
            continue
        if key not in links or (cluster and links[key][4] and node.kind == "op"):
            links[key] = (a, b, cluster, origin, node.kind != "op")
    return [link[:4] for link in links.values()]


def step_scope(node: Node) -> Optional[str]:
    """The scope that holds the backward step ``node`` belongs to, named after its origin; None if there is none.

    ``dagrad.grad`` adds the nodes of ``fc1/tanh``'s step in ``grad/fc1/tanh``
    (``hvp/grad_1/fc1/tanh`` in a later call inside ``hvp``).
    """
    if node.origin is not None and node.scope.endswith("/" + node.origin):
        return node.scope
    return None


def link_tip(origin: str) -> str:
    return f"the backward step of {origin} (added by dagrad.grad)"


# ----------------------------------------------------------------- labels --

def _styled(text: str, style: str = "", limit: int = 0) -> str:
    """Escaped (and, with ``limit``, shortened) ``text`` in our own markup; Graphviz refuses an empty <B></B>."""
    body = html(shorten(text, limit) if limit else text)
    return f"<{style}>{body}</{style}>" if style and body else body


_LINE = 36  # characters of a name shown in a title; rows may take twice as many


def _row(label: str, text: str, *, style: str = "") -> str:
    """One ``label: text`` row, escaped and shortened, as a single text span (Graphviz 2.x misaligns mixed fonts)."""
    line = f"{label}: {text}" if label else text
    return f'<FONT POINT-SIZE="9">{_styled(line, style, 2 * _LINE)}</FONT>'


def _table(title: str, badge: str, rows: list[str]) -> str:
    """A box's label: the ``#k`` badge as an orange strip down the left side, the bold title, then the rows.

    The badge spans every row, so it never widens the box, and reads first.
    """
    cells = [f'<TD ALIGN="LEFT">{_styled(title, "B", _LINE)}</TD>'] + [f'<TD ALIGN="LEFT">{r}</TD>' for r in rows]
    if badge:
        cells[0] = (f'<TD ROWSPAN="{len(cells)}" BGCOLOR="{BADGE_FILL}" VALIGN="TOP"><FONT COLOR="#ffffff" '
                    f'POINT-SIZE="12"><B>{html(badge)}</B></FONT></TD>' + cells[0])
    return ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            + "".join(f"<TR>{c}</TR>" for c in cells) + "</TABLE>")


def op_text(node: Node) -> str:
    """What the node computes: the op (and the plugin that brought it), or the kind of source."""
    if node.kind == "param":
        return "param" if node.trainable else "frozen param"
    if node.kind != "op":
        return node.kind
    info = registry().plugin_of(node.op)
    if info is None or info.name == BUILTINS:
        return node.op
    return f"{node.op}  [plugin {info.name}]"


def node_tooltip(source: Source, node: Node) -> str:
    rank = source.rank(node)
    shape = "?" if node.shape is None else format_shape(node.shape)
    lines = [node.name, f"{op_text(node)}  {shape} {dtype_name(node.dtype)}"]
    if node.origin is not None:
        lines.append(link_tip(node.origin))
    if rank is not None:
        lines.append(f"backward #{rank}: the {_ordinal(rank)} gradient finished")
    return "\n".join(lines)


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _entries(array: np.ndarray) -> str:
    return "[" + ", ".join(brief(v) if isinstance(v, float) else str(v) for v in np.ravel(array).tolist()) + "]"


def node_label(source: Source, node: Node, data: tuple, show: Sequence[str], title: str) -> str:
    """The HTML-like label of one node: title and ``#k`` badge, op, then one labelled row per fact."""
    value, grad, vs, gs = data
    rank = source.rank(node)
    rows = []
    what = op_text(node)
    if node.kind == "op" and what != title or what == "frozen param":
        rows.append(_row("", what, style="I"))
    if "value" in show:
        rows += _value_rows(source, node, value, vs)
    if "grad" in show and source.grads:
        rows += _grad_rows(node, grad, gs, rank, with_shape="value" not in show)
    if "attrs" in show and node.attrs:
        rows.append(_row("attrs", ", ".join(f"{k}={v!r}" for k, v in node.attrs.items())))
    rows += [_row(shorten(label, 16), text) for label, text in _plugin_rows(node, value, grad)]
    return _table(title, f"#{rank}" if rank else "", rows)


def _value_rows(source: Source, node: Node, value, vs: Stats) -> list[str]:
    if value is None:
        shape = "?" if node.shape is None else format_shape(node.shape)
        return [_row("value", f"{shape} {dtype_name(node.dtype)}" + ("" if source.result is None else "  (not kept)"))]
    head, body = describe(value)
    a = np.asarray(value)
    if vs.bad:
        return [_row("value", f"{head}  {bad_text(vs.nan, vs.inf)}", style="B")]
    if a.size <= SMALL and body:
        return [_row("value", f"{body if a.ndim else number(a.item())}  {head}")]
    return [_row("value", f"{head}  {body}".rstrip())]


def _grad_rows(node: Node, grad, gs: Stats, rank, with_shape: bool) -> list[str]:
    if grad is None:
        kept = rank is not None
        return [_row("grad", "not kept (keep='wrt')" if kept else "no gradient", style="I")]
    head, body = describe(grad)
    shape = f"  {head}" if with_shape else ""
    if gs.bad:
        return [_row("grad", f"{bad_text(gs.nan, gs.inf)}{shape}", style="B")]
    if gs.squares == 0.0:
        return [_row("grad", f"zero{shape}", style="B")]
    a = np.asarray(grad)
    if a.size <= SMALL:
        return [_row("grad", f"|g| {number(gs.norm)} = {_entries(a) if a.ndim else number(a.item())}{shape}")]
    return [_row("grad", f"|g| {number(gs.norm)}{shape}  {body}")]


def group_label(source: Source, box: Box, nums: Numbers, show: Sequence[str]) -> str:
    """The label of a collapsed scope or a segment: what it holds, and statistics over all its nodes."""
    what = "scope" if box.kind == "scope" else f"segment of {box.parts} boxes"
    rows = [_row("", f"{what}, {len(box.members)} nodes collapsed", style="I")]
    if "value" in show and nums.value.arrays:
        rows.append(_row("values", f"{nums.value.count} entries in {nums.value.arrays} arrays"))
        if nums.value.count:
            rows.append(_row("values", nums.value.finite().text()))
    if "grad" in show and source.grads:
        if not nums.with_grad:
            rows.append(_row("grad", "no gradient", style="I"))
        elif nums.zero == nums.with_grad and not nums.grad.bad:
            rows.append(_row("grad", f"zero in all {nums.with_grad} nodes", style="B"))
        else:
            rows.append(_row("grad", f"|g| {number(nums.norm)} over {nums.with_grad} nodes"))
            if nums.grad.count:
                rows.append(_row("grads", nums.grad.finite().text()))
            if nums.zero:
                rows.append(_row("zero", f"{nums.zero} nodes", style="B"))
        if nums.without_grad:
            rows.append(_row("no grad", f"{nums.without_grad} nodes"))
    if nums.bad:
        rows.append(_row("NaN/Inf", f"{bad_text(nums.value.nan + nums.grad.nan, nums.value.inf + nums.grad.inf)} "
                                    f"in {nums.bad_nodes} nodes", style="B"))
    return _table(relative(box.title, box.cluster), nums.ranks_text(), rows)


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
    if len(rows) > PLUGIN_ROWS:  # a label holds at most 16 kB: a plugin cannot make it unreadable or break dot
        rows = rows[: PLUGIN_ROWS - 1] + [("", f"\u2026 {len(rows) - PLUGIN_ROWS + 1} more rows")]
    return rows


def title(source: Source, order: Sequence[Node], layout: Layout, legend_table: str = "") -> str:
    """The graph label: the graph's name, the loss, the size (how much of it is backward), and the legend under them."""
    parts = [f"<B>{_styled(source.graph.name, limit=2 * _LINE)}</B>"]
    res = source.result
    if res is not None and res.loss is not None:
        loss = res.values.get(res.loss)
        shown = f" = {number(np.asarray(loss).item())}" if loss is not None and np.size(loss) == 1 else ""
        parts.append(html(f": loss {shorten(repr(res.loss), _LINE)}{shown}"))
    collapsed = sum(1 for b in layout.boxes if b.kind != "node")
    size = f"{len(order)} nodes"
    backward = sum(1 for node in order if node.origin is not None)
    if backward:
        size += f", {backward} of them backward (purple: added by dagrad.grad)"
    if collapsed:
        size += f" in {len(layout.boxes)} boxes ({collapsed} collapsed)"
    parts.append(f'<BR/><FONT POINT-SIZE="9">{html(size)}</FONT>')
    if not legend_table:
        return "<" + "".join(parts) + ">"
    return f'<<TABLE BORDER="0" CELLSPACING="0"><TR><TD>{"".join(parts)}</TD></TR><TR><TD>{legend_table}</TD></TR></TABLE>>'


# ------------------------------------------------------------------ edges --


def edge_flows(source: Source, box_of: dict) -> dict:
    """``{(box a, box b): [sum of squared norms, any gradient seen, any NaN/Inf]}`` over the graph's edges."""
    flows: dict[tuple, list] = {}
    norms = source.result.edge_norms if source.result is not None else {}
    for u, v in source.graph.nx.edges():
        a, b = box_of[u], box_of[v]
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
    return flows


def edge_attrs(flow: list, scale: LogScale, labels: bool, arrows: str, tail: str, head: str) -> dict:
    """Colour, width, direction, label and tooltip of the edge from box ``tail`` to box ``head``."""
    sq, seen, bad = flow
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
    if arrows == "backward":
        attrs["dir"] = "back"
    if labels and text:
        attrs["label"] = f'<<FONT POINT-SIZE="8">{html(text)}</FONT>>'
    tip = f"{tail} \u2192 {head}" + (f"\ngradient |g| {text} flows back from {head} to {tail}" if text else "")
    attrs["tooltip"] = tooltip(tip)
    return attrs


def beside(source: Source, boxes: list, box_of: dict) -> list[list[int]]:
    """Groups of boxes to draw on one rank: each box, with the source nodes that only it uses.

    A parameter drawn a rank above the op that uses it pushes every layer one
    rank down and one box to the side; beside its op, the layers stack straight.
    Constants of the backward part stay where dot puts them: it loses such
    same-rank edges ("lost edge") once links cross into their clusters.
    """
    groups: dict[int, list[int]] = {}
    G = source.graph.nx
    for i, box in enumerate(boxes):
        if box.kind != "node":
            continue
        node = source.graph.node(box.members[0])
        if node.kind not in SOURCE_KINDS or node.origin is not None:
            continue
        users = {box_of[c] for c in G.successors(node.name)}
        if len(users) == 1:
            (user,) = users
            if boxes[user].cluster == box.cluster:  # across a cluster's border it would cross other boxes
                groups.setdefault(user, [user]).append(i)
    return list(groups.values())


def legend(scale: LogScale, boxes: list) -> str:
    """A compact legend: the colour scale and the special fills on one row, badges, edges and shapes on the next."""
    cells = []
    edges = scale.edges()
    if edges:
        cells.append(f"<TD>{html(number(edges[0]))}</TD>")
        cells += [f'<TD BGCOLOR="{c}" WIDTH="14"> </TD>' for c in PALETTE]
        cells.append(f"<TD>{html(number(edges[-1]))}</TD>")
    for fill, text in ((ZERO_FILL, "zero (e.g. dead ReLU)"), (NONE_FILL, "no gradient"), (NAN_FILL, "NaN / Inf")):
        cells.append(f'<TD BGCOLOR="{fill}" BORDER="1" WIDTH="12"> </TD><TD ALIGN="LEFT">{html(text)}</TD>')
    kinds = sorted({b.kind for b in boxes} - {"node"})
    shapes = ", ".join(LOOKS[k].legend for k in ("param", "input", "const", *kinds) if LOOKS[k].legend)
    return (
        '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="1">'
        f'<TR><TD><FONT POINT-SIZE="9"><TABLE BORDER="0" CELLSPACING="1" CELLPADDING="1"><TR>'
        f'<TD>|gradient| (L2, log scale)</TD>{"".join(cells)}</TR></TABLE></FONT></TD></TR>'
        f'<TR><TD><FONT POINT-SIZE="9"><FONT COLOR="{BADGE_FILL}"><B>#k</B></FONT>: k-th gradient finished '
        f'(#1 = loss); edge width: log |gradient| flowing back; {html(shapes)}</FONT></TD></TR></TABLE>'
    )
