"""What to draw: which nodes appear one by one, which scopes collapse into one box, which stay open as clusters.

Pure bookkeeping over node names and scopes; no numbers and no Graphviz. Every
walk here is a loop over lists (scope paths are split, never recursed into),
so a graph of any depth or size is laid out in linear time.

The rule, for a graph above ``max_nodes``: start with every top-level scope
collapsed, then open scopes (shallow and small first) while the number of boxes
stays within ``max_nodes``. Scopes the user names in ``expand`` are opened
first, scopes named in ``collapse`` never are. If the boxes still exceed the
budget (thousands of unscoped nodes, or thousands of top-level scopes), runs of
consecutive boxes in forward order are merged into segments.
"""

from __future__ import annotations

import difflib
import heapq
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

from ..errors import RenderError

__all__ = ["DEFAULT_DETAIL_NODES", "Box", "Layout", "plan_layout", "scope_chain"]

DEFAULT_DETAIL_NODES = 200  # past ~200 detailed boxes a diagram is no longer readable, and dot slows down


@dataclass
class Box:
    """One drawn box: a single node, a collapsed scope, or a segment of consecutive boxes."""

    kind: str  # "node" | "scope" | "segment"
    title: str  # node name, scope path, or "first … last"
    members: list = field(default_factory=list)  # node names, in forward order
    cluster: str = ""  # the open scope it is drawn in ("" = top level)
    parts: int = 1  # boxes merged into a segment


@dataclass
class Layout:
    boxes: list  # list[Box]; box i is drawn with the Graphviz id f"n{i}"
    box_of: dict  # node name -> box index
    clusters: list  # open scopes that hold boxes, parents before children


def scope_chain(scope: str) -> list[str]:
    """``"a/b/c"`` -> ``["a", "a/b", "a/b/c"]``; ``""`` -> ``[]``."""
    if not scope:
        return []
    parts = scope.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _parent(scope: str) -> str:
    return scope.rpartition("/")[0]


def _check_scopes(names: Optional[Iterable[str]], known: set, what: str) -> set:
    chosen = set()
    for s in names or ():
        if not isinstance(s, str):
            raise RenderError(f"{what}: scope names are strings, got {s!r}")
        s = s.strip("/")
        if s not in known:
            close = difflib.get_close_matches(s, sorted(known), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise RenderError(f"{what}: the graph has no scope named {s!r}{hint}")
        chosen.add(s)
    return chosen


def plan_layout(
    order: Sequence,
    max_nodes: Optional[int],
    collapse: Optional[Iterable[str]] = None,
    expand: Optional[Iterable[str]] = None,
) -> Layout:
    """Decide the boxes and clusters for nodes given in forward (topological) order.

    ``order`` holds node records with ``name`` and ``scope``.
    """
    if max_nodes is not None and (not isinstance(max_nodes, int) or max_nodes < 1):
        raise RenderError(f"max_nodes must be a positive integer or None, not {max_nodes!r}")
    size: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, node in enumerate(order):
        for s in scope_chain(node.scope):
            size[s] = size.get(s, 0) + 1
            first.setdefault(s, i)
    known = set(size)
    closed = _check_scopes(collapse, known, "collapse")
    forced = set()
    for s in _check_scopes(expand, known, "expand"):
        forced.update(scope_chain(s))
    if closed & forced:
        raise RenderError(f"scope(s) {sorted(closed & forced)} are both expanded and collapsed")

    direct: dict[str, int] = {"": 0}  # boxes an open scope shows: its own nodes + its child scopes
    children: dict[str, list] = {"": []}
    for s in sorted(known, key=first.__getitem__):
        children.setdefault(_parent(s), []).append(s)
        children.setdefault(s, [])
    for node in order:
        direct[node.scope] = direct.get(node.scope, 0) + 1
    for s in known:
        direct[s] = direct.get(s, 0) + len(children[s])
    direct[""] += len(children[""])

    def openable(s: str) -> bool:
        return s not in closed and not any(c in closed for c in scope_chain(s))

    if max_nodes is None or len(order) <= max_nodes:
        opened = {s for s in known if openable(s)}
    else:
        opened = set()
        boxes = direct[""]
        for s in sorted(forced, key=lambda s: s.count("/")):
            opened.add(s)
            boxes += direct[s] - 1
        heap = [(0, size[s], first[s], s) for s in children[""] if s not in opened]
        for s in opened:
            heap.extend((s.count("/") + 1, size[c], first[c], c) for c in children[s] if c not in opened)
        heapq.heapify(heap)
        while heap:
            depth, _, _, s = heapq.heappop(heap)
            if not openable(s) or boxes - 1 + direct[s] > max_nodes:
                continue
            opened.add(s)
            boxes += direct[s] - 1
            for c in children[s]:
                heapq.heappush(heap, (depth + 1, size[c], first[c], c))

    boxes: list[Box] = []
    by_key: dict[str, int] = {}
    box_of: dict[str, int] = {}
    for node in order:
        chain = scope_chain(node.scope)
        top = next((s for s in chain if s not in opened), None)
        if top is None:
            key, box = node.name, Box("node", node.name, cluster=node.scope)
        else:
            key, box = "scope:" + top, Box("scope", top, cluster=_parent(top))
        i = by_key.get(key)
        if i is None:
            i = by_key[key] = len(boxes)
            boxes.append(box)
        boxes[i].members.append(node.name)
        box_of[node.name] = i

    if max_nodes is not None and len(boxes) > max_nodes:
        boxes, box_of = _segments(boxes, max_nodes)
    used = set()
    for b in boxes:
        used.update(scope_chain(b.cluster))
    clusters = sorted(used, key=lambda s: (s.count("/"), first[s]))
    return Layout(boxes, box_of, clusters)


def _segments(boxes: list, max_nodes: int) -> tuple[list, dict]:
    """Merge runs of consecutive boxes in the most crowded clusters until about ``max_nodes`` remain.

    The cluster with the most boxes is thinned first, and only as much as needed,
    so a few crowded scopes do not blur the rest of the diagram.
    """
    groups: dict[str, list] = {}
    for b in boxes:
        groups.setdefault(b.cluster, []).append(b)
    total = len(boxes)
    for cluster in sorted(groups, key=lambda c: -len(groups[c])):
        if total <= max_nodes:
            break
        group = groups[cluster]
        target = max(1, len(group) - (total - max_nodes))
        cuts = [len(group) * k // target for k in range(target + 1)]  # `target` runs of near-equal length
        merged = []
        for start, stop in zip(cuts, cuts[1:]):
            run = group[start:stop]
            if len(run) == 1:
                merged.append(run[0])
                continue
            title = run[0].title if run[0].title == run[-1].title else f"{run[0].title} \u2026 {run[-1].title}"
            members = [m for b in run for m in b.members]
            merged.append(Box("segment", title, members, cluster, parts=sum(b.parts for b in run)))
        total += len(merged) - len(group)
        groups[cluster] = merged
    result = [b for group in groups.values() for b in group]
    box_of = {m: i for i, b in enumerate(result) for m in b.members}
    return result, box_of
