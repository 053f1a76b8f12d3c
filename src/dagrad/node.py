"""``Node``: the record of one graph node, and the deterministic topological order of a set of them.

This is the intermediate representation's bottom layer: the graph (which
builds and edits nodes) and the scheduler (which compiles them into a plan)
both read it, and it knows nothing of either.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional

import networkx as nx
import numpy as np

from .errors import GraphError
from .shapes import Shape

__all__ = ["Attrs", "Node", "SOURCE_KINDS", "topological_order"]

SOURCE_KINDS = ("input", "param", "const")


class Attrs(dict):
    """A node's attributes: a dict that refuses to change.

    Plans read a node's attributes when they are compiled (generated code holds
    them as literals), and the graph's version, which tells a plan to compile
    again, changes only through ``Graph`` methods: an attribute changed in place
    would reach some executors and not others. Values are canonical (tuples,
    numbers, strings), so nothing inside can change either.
    """

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise GraphError(
            "a node's attributes cannot be changed in place: plans compiled from the graph have read them; "
            "add a node with the attributes you want (Graph.apply) and rewire the consumers to it (Graph.rewire)"
        )

    __setitem__ = __delitem__ = __ior__ = update = setdefault = pop = popitem = clear = _refuse

    def __reduce__(self):
        return Attrs, (dict(self),)


NO_ATTRS = Attrs()  # shared by every node without attributes


@dataclass(slots=True, eq=False)
class Node:
    """One node record: what the node computes and from which inputs, in order.

    ``op`` is ``"input"``, ``"param"`` or ``"const"`` for a source node, or the
    name of a registered op. ``shape`` may contain ``None`` (a size known only
    when fed); it is ``None`` altogether when an op has no shape rule.
    ``serial`` numbers a graph's nodes in the order they were added: the
    deterministic tie-break of every ordering. ``origin`` is set on the nodes
    ``dagrad.grad`` adds: the forward node whose backward step each belongs to
    (the nodes of its VJP and the sum of its fan-out gradient), so a diagram
    can draw the backward part apart and link it to the forward part.
    """

    name: str
    op: str
    inputs: tuple
    attrs: Attrs
    shape: Optional[Shape]
    dtype: np.dtype
    serial: int
    trainable: bool = False
    origin: Optional[str] = None

    @property
    def index(self) -> int:
        """Deprecated alias of ``serial`` (the name read as an input position)."""
        warnings.warn("Node.index is deprecated; use Node.serial", DeprecationWarning, stacklevel=2)
        return self.serial

    @property
    def kind(self) -> str:
        """``"input"``, ``"param"``, ``"const"`` or ``"op"``."""
        return self.op if self.op in SOURCE_KINDS else "op"

    @property
    def scope(self) -> str:
        """The name scope the node lives in (``"fc1"`` for ``"fc1/W"``), or ``""``."""
        return self.name.rpartition("/")[0]


def topological_order(G: nx.DiGraph, needed, records: dict, insertion_is_topological: bool = False) -> list:
    """Topological order of the names ``needed`` (which must include every ancestor of
    each of them) with insertion order as the deterministic tie-break.

    Nodes are only ever added after their inputs, so insertion order (which is
    also the order networkx's node dict keeps) is already topological unless
    graph surgery rewired a node to a later one: a graph that knows it was
    never so rewired says ``insertion_is_topological`` and gets its order in one
    pass, with no sort and no check. Otherwise the order is checked, and only a
    broken one pays for networkx's lexicographical sort.
    """
    if insertion_is_topological:
        return list(G._node) if len(needed) == len(G._node) else [n for n in G._node if n in needed]
    order = sorted(needed, key=lambda n: records[n].serial)
    serial = {n: records[n].serial for n in order}
    pred = G._pred
    if all(serial[p] < serial[n] for n in order for p in pred[n]):
        return order
    sub = G.subgraph(needed)
    return list(nx.lexicographical_topological_sort(sub, key=serial.__getitem__))
