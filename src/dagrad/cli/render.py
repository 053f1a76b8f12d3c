"""``dagrad render TARGET -o flow.svg``: draw the gradient flow of a graph built by a Python function or saved model.

TARGET is ``MODULE:FUNCTION`` (``mypkg.models:build``), ``path/to/file.py:FUNCTION``,
or a saved model ``MODEL.dagrad`` (when ``dagrad.io`` is available). The function
is called without arguments and returns a ``Result`` (drawn as is) or a ``Graph``,
which is run on the ``--feed`` arrays: backward from ``--loss`` (or from the only
scalar output, if there is one), else forward only.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def add(sub) -> None:
    p = sub.add_parser("render", help="draw a gradient-flow diagram (SVG, PNG, PDF or DOT)")
    p.add_argument("target", metavar="MODULE:FUNCTION|FILE.py:FUNCTION|MODEL.dagrad")
    p.add_argument("-o", "--output", required=True, help="file to write; the suffix picks the format")
    p.add_argument("--feed", action="append", default=[], metavar="NAME=FILE.npy", help="an input array (repeat)")
    p.add_argument("--loss", help="node to backpropagate from (default: the graph's only scalar output)")
    p.add_argument("--max-nodes", type=int, default=None, help="collapse scopes above this many nodes (default 200)")
    p.add_argument("--expand", action="append", default=[], metavar="SCOPE", help="keep a scope open (repeat)")
    p.add_argument("--collapse", action="append", default=[], metavar="SCOPE", help="collapse a scope (repeat)")
    p.add_argument("--rankdir", default="TB", choices=("TB", "LR", "BT", "RL"))
    p.add_argument("--edge-labels", action="store_true", help="label edges with the gradient norm they carry")
    p.add_argument("--timeout", type=float, default=None, help="seconds Graphviz may run (default 60)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..render import DEFAULT_MAX_NODES, DEFAULT_TIMEOUT, render

    obj = _run(_load(args.target), _feeds(args.feed), args.loss)
    render(
        obj, args.output, rankdir=args.rankdir,
        max_nodes=DEFAULT_MAX_NODES if args.max_nodes is None else args.max_nodes,
        expand=args.expand or None, collapse=args.collapse or None, edge_labels=args.edge_labels,
        timeout=DEFAULT_TIMEOUT if args.timeout is None else args.timeout,
    )
    print(f"wrote {args.output}")
    return 0


def _load(target: str):
    """The Graph or Result that TARGET names."""
    from ..errors import RenderError

    if target.endswith(".dagrad"):
        try:
            from ..io import load
        except ImportError:
            raise RenderError(f"{target!r}: this dagrad cannot read saved models yet (no dagrad.io.load)") from None
        return load(target)
    where, sep, func = target.rpartition(":")
    if not sep or not where or not func:
        raise RenderError(f"{target!r}: expected MODULE:FUNCTION, FILE.py:FUNCTION or MODEL.dagrad")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise RenderError(f"{target!r}: no such file {where!r}")
        spec = importlib.util.spec_from_file_location(f"_dagrad_render_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.pop(0)
    else:
        sys.path.insert(0, ".")
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise RenderError(f"{target!r}: cannot import module {where!r}: {exc}") from None
        finally:
            sys.path.pop(0)
    fn = getattr(module, func, None)
    if not callable(fn):
        raise RenderError(f"{target!r}: {where!r} has no function {func!r}")
    return fn()


def _feeds(items: list) -> dict:
    import numpy as np

    from ..errors import FeedError

    feeds = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            raise FeedError(f"--feed {item!r}: expected NAME=FILE.npy")
        try:
            feeds[name] = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise FeedError(f"--feed {item!r}: cannot read {file!r} as a .npy array: {exc}") from None
    return feeds


def _run(obj, feeds: dict, loss):
    """A Result drawn as is; a Graph run backward from its loss, or forward to its outputs."""
    from ..errors import RenderError
    from ..graph import Graph
    from ..result import Result

    if isinstance(obj, Result):
        if feeds or loss:
            raise RenderError("the function returned a Result: --feed and --loss apply only to a Graph")
        return obj
    if not isinstance(obj, Graph):
        raise RenderError(f"the function must return a dagrad Graph or Result, not {type(obj).__name__}")
    sinks = [n for n in obj.nodes() if not obj.consumers(n.name) and n.kind == "op"]
    if loss is None:
        scalars = [n for n in sinks if n.shape == ()]
        loss = scalars[0].name if len(scalars) == 1 else None
    if loss is not None:
        return obj.backward(loss, feeds=feeds, keep="all")
    if not sinks:
        return obj
    return obj.forward([n.name for n in sinks], feeds)
