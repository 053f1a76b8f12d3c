"""Gradient-flow diagrams: a Result (or a Graph) drawn with Graphviz, every node annotated with its gradient.

``render`` returns a ``graphviz.Digraph`` and, given a path, writes an SVG, PNG,
PDF or DOT file, or the interactive viewer as one HTML file. ``mimebundle`` is
what a ``Result`` or ``Graph`` shows in Jupyter, and ``show`` puts the viewer
in a notebook (``output`` holds ``render`` and ``show``, ``notebook`` ``mimebundle``). The work is split by job: ``layout`` decides which boxes to
draw, ``summary`` computes the numbers, ``escape`` makes user strings safe,
``diagram`` assembles the Digraph, ``viewer`` the HTML page, ``run`` starts
``dot`` with a timeout, and ``plots`` draws a training History with matplotlib.
"""

from __future__ import annotations

from .._compat import renamed_names
from .notebook import mimebundle
from .output import DEFAULT_DETAIL_NODES, DEFAULT_TIMEOUT, render, show
from .viewer import Viewer

__all__ = ["render", "show", "mimebundle", "Viewer", "DEFAULT_DETAIL_NODES", "DEFAULT_TIMEOUT"]

# 0.1's name, which dagrad.io.DEFAULT_MAX_NODES (a load limit of model files) also had
__getattr__ = renamed_names(__name__, {"DEFAULT_MAX_NODES": "DEFAULT_DETAIL_NODES"})
