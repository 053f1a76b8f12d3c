"""``Result``: what one run produced — values, gradients, backward order and timings by node name.

A Result is plain data. The renderer, the optimizers and the file format read
it; nothing in it knows how it was computed.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .errors import GraphError

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph

__all__ = ["Result"]


class Result:
    """Values and gradients of one forward (and backward) pass: a snapshot of that run.

    Nothing in a result changes after the run: values that belonged to params,
    consts or feeds were copied, and no two gradients share memory, so an
    optimizer step (or your own edits) cannot alter a result you kept.

    Attributes
    ----------
    values, grads : dict[str, numpy.ndarray]
        What the run kept, by node name.
    order : list[str]
        Node names in the order their gradients were finished; ``order[0]`` is
        the loss, and every node comes after all of its consumers.
    forward_times, backward_times : dict[str, float]
        Seconds spent in each node's forward and VJP, when run with
        ``profile=True`` (empty otherwise).
    edge_norms : dict[tuple[str, str], float]
        With ``keep="all"``: L2 norm of the gradient that flowed back along
        each edge ``(input, consumer)``, from the consumer's VJP to its input.
    version : int
        The graph version the run computed (``Graph.version``); a graph changed
        since then no longer matches this result's numbers.
    """

    def __init__(
        self,
        graph: "Graph",
        values: dict,
        grads: dict,
        order: list,
        *,
        loss: Optional[str] = None,
        wrt: tuple = (),
        forward_times: Optional[dict] = None,
        backward_times: Optional[dict] = None,
        edge_norms: Optional[dict] = None,
        flows: Optional[dict] = None,
        version: Optional[int] = None,
    ):
        self.graph = graph
        self.values = values
        self.grads = grads
        self.order = order
        self.loss = loss
        self.wrt = wrt
        self.forward_times = forward_times or {}
        self.backward_times = backward_times or {}
        self.version = graph.version if version is None else version
        self._edge_norms = edge_norms
        self._flows = flows or {}
        self._ranks: Optional[dict] = None

    @property
    def edge_norms(self) -> dict:
        """L2 norm of the gradient along each edge ``(input, consumer)``, computed when first asked for."""
        if self._edge_norms is None:
            norms = {}
            for (source, consumer), flow in self._flows.items():
                array = self.grads.get(source) if flow is None else flow
                if array is not None:
                    flat = np.asarray(array, dtype=np.float64).reshape(-1)
                    norms[(source, consumer)] = float(np.sqrt(np.dot(flat, flat)))
            self._edge_norms = norms
        return self._edge_norms

    @property
    def stale(self) -> bool:
        """Whether the graph has changed since this run (its numbers describe the old wiring)."""
        return self.graph.version != self.version

    def _name(self, ref: Any) -> str:
        return self.graph._name(ref)

    def value(self, ref: Any) -> np.ndarray:
        """The value of a node (name or Tensor)."""
        name = self._name(ref)
        try:
            return self.values[name]
        except KeyError:
            raise GraphError(self._missing(name, "value")) from None

    def grad(self, ref: Any) -> np.ndarray:
        """The gradient of the loss with respect to a node; it has the node's shape and dtype."""
        name = self._name(ref)
        try:
            return self.grads[name]
        except KeyError:
            raise GraphError(self._missing(name, "gradient")) from None

    def has_grad(self, ref: Any) -> bool:
        return self._name(ref) in self.grads

    def rank(self, ref: Any) -> Optional[int]:
        """The node's backward rank ``#k``: its 1-based position in ``order`` (1 is the loss), or None."""
        if self._ranks is None:
            self._ranks = {n: i + 1 for i, n in enumerate(self.order)}
        return self._ranks.get(self._name(ref))

    def step(self, ref: Any) -> Optional[int]:
        """Deprecated alias of :meth:`rank` ("step" now means a training step only)."""
        warnings.warn("Result.step is deprecated; use Result.rank", DeprecationWarning, stacklevel=2)
        return self.rank(ref)

    def _missing(self, name: str, what: str) -> str:
        self.graph.node(name)  # raises with suggestions if there is no such node
        if what == "value":
            return f"node {name!r} has no kept value in this result (run with keep='all' or list it in outputs)"
        if self.loss is None:
            return f"node {name!r} has no gradient: this result comes from a forward pass only"
        return (
            f"node {name!r} has no gradient in this result: it does not lie on a path from "
            f"the nodes asked for (wrt) to the loss {self.loss!r}, or keep='wrt' freed it"
        )

    def __repr__(self) -> str:
        return (
            f"<Result of {self.graph.name!r}: {len(self.values)} values, {len(self.grads)} gradients"
            + (f", loss {self.loss!r}" if self.loss else "")
            + ">"
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        # The one sanctioned upward import (with Result's and Graph's twin): a notebook asks the
        # IR to show itself, and the renderer sits two layers up. Lazy, so the IR never needs it.
        from .render import mimebundle

        return mimebundle(self)
