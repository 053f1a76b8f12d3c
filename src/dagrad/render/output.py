"""What a user asks the renderer for: ``render`` (a Digraph, or a file of any format) and ``show`` (the
viewer in a notebook)."""

from __future__ import annotations

import os
from typing import Any, Iterable, Optional, Sequence, Union

import graphviz

from ..errors import RenderError
from .diagram import build
from .layout import DEFAULT_DETAIL_NODES
from .run import format_for, run_dot, write
from .viewer import Viewer, write_page

__all__ = ["DEFAULT_DETAIL_NODES", "DEFAULT_TIMEOUT", "render", "show"]

DEFAULT_TIMEOUT = 60.0  # seconds; dot is stopped after this and a RenderError says what to do


def render(
    result_or_graph: Any,
    path: Union[str, os.PathLike, None] = None,
    *,
    format: Optional[str] = None,
    rankdir: str = "TB",
    max_nodes: Optional[int] = DEFAULT_DETAIL_NODES,
    collapse: Optional[Iterable[str]] = None,
    expand: Optional[Iterable[str]] = None,
    show: Sequence[str] = ("value", "grad"),
    edge_labels: bool = False,
    grad_range: Optional[tuple] = None,
    arrows: str = "forward",
    compact: bool = True,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
) -> graphviz.Digraph:
    """Draw a Result's gradient flow (or a Graph's structure) with Graphviz.

    Each node shows its name, op (and plugin), backward step ``#k`` (``#1`` is
    the loss), value and gradient: a scalar's number, up to six entries, or
    mean/std/min/max, and the gradient's L2 norm. Fill colour is the gradient
    norm on a log scale shared by the diagram (legend included); a gradient that
    is exactly zero is yellow, a node without gradient is white and dashed,
    NaN/Inf is red with the count of bad entries. Edges point forward and are as
    wide as the log of the gradient norm that flowed back along them. Name scopes
    are clusters; above ``max_nodes`` nodes, scopes collapse into one box each.

    Parameters
    ----------
    result_or_graph : Result or Graph
        A Result from ``Graph.backward(..., keep="all")`` shows everything; a
        Graph shows structure, shapes and parameter values.
    path : str or os.PathLike, optional
        Write the diagram there (through a temporary file, then a rename).
    format : {"svg", "png", "pdf", "dot", "html"}, optional
        Output format; by default taken from the suffix of ``path``
        (``.svg``, ``.png``, ``.pdf``, ``.dot``/``.gv``, ``.html``). ``html``
        writes the interactive viewer: one self-contained file (pan and zoom,
        search, statistics and histograms per node, scopes to open and close,
        and a player that lights the nodes in ``#k`` order); it needs no
        Graphviz on this machine and no network where it is opened.
    rankdir : {"TB", "LR", "BT", "RL"}
        Direction of the forward pass on the page.
    max_nodes : int or None
        Above this many nodes, scopes collapse into one box each (and, if
        needed, runs of boxes merge into segments) so about ``max_nodes`` boxes
        remain. ``None`` draws every node. The default, ``DEFAULT_DETAIL_NODES``
        (200), is about what stays readable on a screen.
    collapse, expand : iterable of str, optional
        Scopes to always collapse, and scopes to keep open whatever the size.
    show : sequence of {"value", "grad", "attrs"}
        Which rows each node shows.
    edge_labels : bool
        Label each edge with the norm of the gradient that flowed back along it.
    grad_range : (float, float), optional
        The gradient norms at the two ends of the colour scale, instead of the
        smallest and largest in this diagram: give two diagrams the same range
        (say, the first and last training step) and their colours compare.
    arrows : {"forward", "backward"}
        Point the arrows the way values flow (forward), or the way the
        gradient flows back from the loss (backward); the layout is the same.
    compact : bool
        Draw a parameter, input or constant used by a single op beside it
        rather than a rank above, so layers stack along the flow.
    timeout : float or None
        Seconds ``dot`` may run before it is stopped.

    Returns
    -------
    graphviz.Digraph
        Its ``source`` is the DOT text (available without Graphviz installed).

    Raises
    ------
    RenderError
        Graphviz is not installed (for formats other than DOT), ``dot`` failed
        or timed out, the path cannot be written, or an argument is invalid.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph("tiny")
    >>> x = g.input("x", shape=(2,))
    >>> w = g.param("w", np.array([0.5, -1.0]))
    >>> loss = dg.sum(dg.tanh(x * w))
    >>> res = g.backward(loss, feeds={"x": np.array([1.0, 2.0])})
    >>> digraph = dg.render(res)
    >>> "#1" in digraph.source and "no gradient" in digraph.source   # x is an input: no gradient
    True
    """
    options = dict(rankdir=rankdir, max_nodes=max_nodes, collapse=collapse, expand=expand, show=show,
                   grad_range=grad_range, arrows=arrows)
    if path is not None and format_for(path, format) == "html":
        write_page(result_or_graph, path, **options)
    digraph = build(result_or_graph, edge_labels=edge_labels, compact=compact, **options)
    if path is None:
        if format is not None:
            fmt = format_for("", format)
            if fmt == "html":
                raise RenderError("format='html' writes a file: give a path, or use dg.show(result) in a notebook")
            digraph.format = fmt
        return digraph
    fmt = format_for(path, format)
    if fmt == "html":
        return digraph
    boxes = sum(1 for line in digraph.body if line.lstrip().startswith("n") and "->" not in line)
    write(run_dot(digraph.source, fmt, timeout, nodes=boxes), path)
    if fmt != "dot":
        digraph.format = fmt
    return digraph


def show(result_or_graph: Any, *, height: int = 640, **options: Any) -> Viewer:
    """The interactive viewer, to display in a notebook: ``dg.show(result)`` as a cell's last line.

    Takes ``render``'s options (``max_nodes``, ``expand``, ``arrows``...).
    Returns a ``Viewer``; ``Viewer.save(path)`` writes the page to a file.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph("tiny")
    >>> w = g.param("w", np.array([0.5, -1.0]))
    >>> viewer = dg.show(g.backward(dg.sum(dg.tanh(w))))
    >>> viewer._repr_html_().startswith("<iframe srcdoc=")
    True
    """
    return Viewer(result_or_graph, height=height, **options)
