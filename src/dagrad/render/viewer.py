"""The interactive viewer: one self-contained HTML file that lays a diagram out in the browser and plays backpropagation.

Python computes everything that is ours to decide, once: every node's and
every scope's label, colours and tooltip (the same as in the static diagram),
statistics and histograms for the side panel, which scopes start open, and
the backward rank of each node. The page (``static/viewer.js``) only puts the
pieces together for the scopes the reader has open, lays them out with
Graphviz compiled to WebAssembly (``@viz-js/viz``), and lets the reader pan
and zoom (``svg-pan-zoom``), search, open and close scopes, inspect a node,
and step through the backward pass in ``#k`` order.

Both libraries are vendored into ``static/`` with their licences, so the file
works offline, from disk, and makes no network request; ``static/vendor.json``
records their versions and checksums, and ``make vendor-js`` updates them.
"""

from __future__ import annotations

import html
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from ..node import SOURCE_KINDS
from .diagram import (
    BADGE_FILL, EDGE_ATTRS, LINK_ATTRS, MAX_PEN, MIN_PEN, NAN_FILL, NODE_ATTRS, Box, LogScale, Numbers, Source,
    box_attrs, check_options, cluster_attrs, count, graph_attrs, legend, link_tip, measured, op_text, step_scope,
    title,
)
from .layout import DEFAULT_DETAIL_NODES, plan_layout, scope_chain
from .notebook import mimebundle
from .run import write
from .summary import Stats, dtype_name, histogram

__all__ = ["page", "write_page", "model", "Viewer", "VENDORED"]

VENDORED = ("viz-global.js", "svg-pan-zoom.min.js")  # from npm, see static/vendor.json
OURS = ("viewer.js", "viewer.css")


def model(
    obj: Any,
    *,
    max_nodes: Optional[int] = DEFAULT_DETAIL_NODES,
    collapse: Optional[Iterable[str]] = None,
    expand: Optional[Iterable[str]] = None,
    show: Sequence[str] = ("value", "grad"),
    grad_range: Optional[tuple] = None,
    arrows: str = "forward",
    rankdir: str = "TB",
) -> dict:
    """Everything the page needs, as plain JSON-ready data (see ``static/viewer.js`` for its use)."""
    show = check_options(rankdir, show, grad_range, arrows)
    source = Source(obj)
    order = source.graph.topological_order()
    layout = plan_layout(order, max_nodes, collapse, expand)
    opened = set(layout.clusters)
    index = {node.name: i for i, node in enumerate(order)}

    # Groups: every scope of the graph, and the segments the layout merged runs of boxes into.
    scopes = sorted({s for node in order for s in scope_chain(node.scope)}, key=lambda s: (s.count("/"), s))
    groups: dict[str, Box] = {f"scope:{s}": Box("scope", s, cluster=s.rpartition("/")[0]) for s in scopes}
    segment_of: dict[str, str] = {}  # node name -> the segment holding its box
    for k, box in enumerate(b for b in layout.boxes if b.kind == "segment"):
        key = f"segment:{k}"
        groups[key] = Box("segment", box.title, cluster=box.cluster, parts=box.parts)
        segment_of.update((m, key) for m in box.members)

    chains: dict[str, list[str]] = {}
    for node in order:
        chain = [f"scope:{s}" for s in scope_chain(node.scope)]
        if node.name in segment_of:  # the segment sits between its cluster and what it merged
            depth = len(scope_chain(groups[segment_of[node.name]].cluster))
            chain.insert(depth, segment_of[node.name])
        chains[node.name] = chain
        for key in chain:
            groups[key].members.append(node.name)

    per_node: dict[str, tuple] = {}
    node_nums: dict[str, Numbers] = {}
    group_nums = {key: Numbers() for key in groups}
    for node, data, rank in measured(source, order):
        per_node[node.name] = data
        node_nums[node.name] = Numbers()
        for nums in [node_nums[node.name]] + [group_nums[key] for key in chains[node.name]]:
            count(nums, data, source.grads, rank, node.origin is not None)

    everything = list(node_nums.values()) + list(group_nums.values())
    scale = LogScale(grad_range if grad_range is not None
                     else (n.norm for n in everything if n.with_grad and not n.bad and n.norm > 0))
    key_ids = {key: f"g{i}" for i, key in enumerate(groups)}

    nodes = []
    for node in order:
        box = Box("node", node.name, [node.name], cluster=node.scope)
        ident = f"n{index[node.name]}"
        nodes.append({
            "id": ident, "name": node.name, "rank": source.rank(node), "kind": node.kind,
            "backward": node.origin is not None,
            "chain": [key_ids[k] for k in chains[node.name]],
            "attrs": box_attrs(source, box, node_nums[node.name], per_node, show, scale, ident),
            "info": _info(source, node, per_node[node.name]),
        })
    group_list = []
    for key, box in groups.items():
        nums = group_nums[key]
        parent = _parent(key, box, chains)
        ident = key_ids[key]
        group_list.append({
            "id": ident, "kind": box.kind, "title": box.title, "parent": key_ids.get(parent),
            "open": box.kind == "scope" and box.title in opened,
            "attrs": box_attrs(source, box, nums, per_node, show, scale, ident),
            "cluster": cluster_attrs(source, box.title, nums) if box.kind == "scope" else None,
            "ranks": [min(nums.ranks), max(nums.ranks)] if nums.ranks else None, "backward": nums.backward_only,
            "size": len(box.members),
        })
    G = source.graph.nx
    norms = source.result.edge_norms if source.result is not None else {}
    edges = []
    for u, v in G.edges():
        flow = norms.get((u, v))
        edges.append([index[u], index[v], None if flow is None or not math.isfinite(flow) else flow,
                      flow is not None and not math.isfinite(flow)])
    links = []  # [origin, backward node, the group of its backward step or None]: the page draws one per drawn pair
    for node in order:
        if node.origin is not None and node.origin in index:
            scope = step_scope(node)
            links.append([index[node.origin], index[node.name], key_ids[f"scope:{scope}"] if scope else None])
    links.sort(key=lambda link: order[link[1]].kind != "op")  # the page links to the first: an op, not a constant
    beside = []
    for node in order:
        users = list(G.successors(node.name))
        if (node.kind in SOURCE_KINDS and node.origin is None and len(users) == 1  # as diagram.beside
                and source.graph.node(users[0]).scope == node.scope):
            beside.append([index[users[0]], index[node.name]])
    return {
        "title": title(source, order, layout, legend(scale, layout.boxes) if source.grads else ""),
        "graph": {**graph_attrs(rankdir, True), **({"compound": "true"} if links else {})},
        "node": NODE_ATTRS, "edge": EDGE_ATTRS,
        "links": links, "link": {**LINK_ATTRS, "class": "origin"},
        "arrows": arrows, "pen": [MIN_PEN, MAX_PEN], "nanColor": NAN_FILL, "badge": BADGE_FILL,
        "nodes": nodes, "groups": group_list, "edges": edges, "beside": beside,
        "steps": len(source.result.order) if source.grads else 0, "loss": source.result.loss if source.grads else None,
    }


def _parent(key: str, box: Box, chains: dict) -> Optional[str]:
    """The group directly around ``key``: the one before it in any member's chain."""
    chain = chains[box.members[0]]
    at = chain.index(key)
    return chain[at - 1] if at else None


def _info(source: Source, node, data: tuple) -> dict:
    """What the side panel shows about one node."""
    value, grad, vs, gs = data
    shape = "?" if node.shape is None else str(tuple(node.shape))
    out = {"op": op_text(node), "shape": shape, "dtype": dtype_name(node.dtype), "inputs": list(node.inputs),
           "value": _array_info(value, vs), "grad": None,
           "origin": link_tip(node.origin) if node.origin is not None else None}
    if source.grads:
        if grad is None:
            out["grad"] = {"note": "not kept (keep='wrt')" if source.rank(node) else "no gradient"}
        else:
            out["grad"] = _array_info(grad, gs)
    return out


def _array_info(array, stats: Stats) -> Optional[dict]:
    if array is None:
        return {"note": "not kept"}
    a = np.asarray(array)
    info = {"shape": str(tuple(a.shape)), "dtype": dtype_name(a.dtype), "count": stats.count, "nan": stats.nan,
            "inf": stats.inf, "hist": histogram(a)}
    if stats.count:
        info.update(mean=stats.mean, std=stats.std, min=stats.low, max=stats.high, norm=stats.norm)
    if a.size <= 6 and a.dtype.kind in "fiub":
        info["entries"] = [float(x) for x in a.ravel()]
    return info


def _static(name: str) -> str:
    return resources.files("dagrad.render").joinpath("static", name).read_text(encoding="utf-8")


def _script(text: str) -> str:
    """``text`` safe inside a <script> element: it can never close the element early."""
    return text.replace("</", "<\\/")


def page(obj: Any, **options: Any) -> str:
    """The viewer of a Result or Graph as one HTML document (see ``dagrad.render.render`` for the options)."""
    data = model(obj, **options)
    name = Source(obj).graph.name
    body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    scripts = "\n".join(f"<script>{_script(_static(n))}</script>" for n in VENDORED + ("viewer.js",))
    return (_static("viewer.html")
            .replace("{{TITLE}}", html.escape(f"{name} \u2013 dagrad gradient flow", quote=False))
            .replace("{{CSS}}", _static("viewer.css"))
            .replace("{{BADGE}}", BADGE_FILL)
            .replace("{{DATA}}", _script(body))
            .replace("{{SCRIPTS}}", scripts))


def write_page(obj: Any, path: Union[str, os.PathLike], **options: Any) -> Path:
    """Write the viewer to ``path`` (through a temporary file, then a rename)."""
    return write(page(obj, **options).encode("utf-8"), path)



class Viewer:
    """The viewer of one Result or Graph, for a notebook: ``dg.show(result)`` displays it inline.

    Jupyter shows ``text/html``: the page in a sandboxed ``<iframe>`` (scripts
    run, nothing else: no network, no access to the notebook). Front ends that
    do not run HTML (nbconvert to PDF, some previews) fall back to the static
    SVG diagram, or to text.
    """

    def __init__(self, obj: Any, height: int = 640, **options: Any):
        self.obj, self.height, self.options = obj, int(height), options

    def html(self) -> str:
        """The ``<iframe>`` holding the page."""
        escaped = html.escape(page(self.obj, **self.options))  # the page as the value of a quoted attribute
        return (f'<iframe srcdoc="{escaped}" sandbox="allow-scripts" title="dagrad gradient flow" '
                f'style="width: 100%; height: {self.height}px; border: 1px solid #ccc"></iframe>')

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = mimebundle(self.obj)  # the static diagram and text, which never raise
        try:
            bundle["text/html"] = self.html()
        except Exception as exc:  # noqa: BLE001 - display falls back to the SVG whatever went wrong
            bundle["text/plain"] += f"\n(no interactive viewer: {exc})"
        return bundle

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the page itself (not the iframe) to ``path``."""
        return write_page(self.obj, path, **self.options)
