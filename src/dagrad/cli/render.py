"""``dagrad render TARGET``: draw the gradient flow of a saved model or of a graph built by a Python function.

TARGET is a saved model ``MODEL.dagrad``, ``path/to/file.py:FUNCTION`` or
``MODULE:FUNCTION``. The function is called without arguments and returns a
``Result`` (drawn as it is) or a ``Graph``. A Graph (or a saved model) without
``--feed`` is drawn as structure: shapes and parameter values. With feeds it is
run backward from ``--loss`` (or from its only scalar output), else forward.
Every example in ``examples/`` has a ``build`` function for this.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

FORMATS = ("svg", "png", "pdf", "html", "dot")


def add(sub) -> None:
    p = sub.add_parser("render", help="draw a gradient-flow diagram (SVG, PNG, PDF, DOT, or the interactive HTML viewer)")
    p.add_argument("target", metavar="MODEL.dagrad|FILE.py:FUNCTION|MODULE:FUNCTION",
                   help="a saved model, or a function returning a Graph or a Result")
    p.add_argument("-o", "--output", help="file to write; its suffix picks the format "
                                          "(default: the target's name with the --format suffix)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from -o's suffix, else svg)")
    p.add_argument("--feed", action="append", default=[], metavar="NAME=FILE.npy|FILE.npz",
                   help="input arrays: NAME=FILE.npy, NAME=FILE.npz (its array NAME, or its only one), "
                        "or FILE.npz (every array, by its name); repeat for more")
    p.add_argument("--loss", help="node to backpropagate from (default: the graph's only scalar output)")
    p.add_argument("--max-nodes", type=int, default=None, help="collapse scopes above this many nodes (default 200)")
    p.add_argument("--expand", action="append", default=[], metavar="SCOPE", help="keep a scope open (repeat)")
    p.add_argument("--collapse", action="append", default=[], metavar="SCOPE", help="collapse a scope (repeat)")
    p.add_argument("--rankdir", default="TB", choices=("TB", "LR", "BT", "RL"),
                   help="direction of the forward pass on the page (default TB: top to bottom)")
    p.add_argument("--arrows", default="forward", choices=("forward", "backward"),
                   help="point edges the way values flow, or the way the gradient flows back")
    p.add_argument("--edge-labels", action="store_true", help="label edges with the gradient norm they carry")
    p.add_argument("--timeout", type=float, default=None, help="seconds Graphviz may run (default 60)")
    p.add_argument("--open", action="store_true", help="open the file in the default viewer or browser")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..render import DEFAULT_DETAIL_NODES, DEFAULT_TIMEOUT, render

    output = _output(args.target, args.output, args.format)
    obj = _run(_load(args.target), _feeds(args.feed), args.loss)
    render(
        obj, output, format=args.format, rankdir=args.rankdir, arrows=args.arrows,
        max_nodes=DEFAULT_DETAIL_NODES if args.max_nodes is None else args.max_nodes,
        expand=args.expand or None, collapse=args.collapse or None, edge_labels=args.edge_labels,
        timeout=DEFAULT_TIMEOUT if args.timeout is None else args.timeout,
    )
    print(f"wrote {output}")
    if args.open:
        import webbrowser

        webbrowser.open(Path(output).resolve().as_uri())
    return 0


def _output(target: str, output, fmt) -> str:
    """``-o`` as given, or the target's name (``digits.dagrad`` -> ``digits.svg``) in the current directory."""
    if output:
        return output
    where, _, func = target.rpartition(":") if not target.endswith(".dagrad") else (target, "", "")
    stem = Path(where).stem if target.endswith(".dagrad") or where.endswith(".py") else where.rpartition(".")[2]
    return f"{stem}{'-' + func if func and func != 'build' else ''}.{fmt or 'svg'}"


def _load(target: str):
    """The Graph or Result that TARGET names."""
    from ..errors import RenderError

    if target.endswith(".dagrad"):
        from ..io import load

        return load(target)
    where, sep, func = target.rpartition(":")
    if not sep or not where or not func:
        raise RenderError(f"{target!r}: expected MODEL.dagrad, FILE.py:FUNCTION or MODULE:FUNCTION")
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
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                        and getattr(v, "__module__", None) == module.__name__)
        raise RenderError(f"{target!r}: {where!r} has no function {func!r}"
                          + (f" (it has {', '.join(public)})" if public else ""))
    return fn()


def _feeds(items: list) -> dict:
    import numpy as np

    from ..errors import FeedError

    feeds = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep:
            name, file = "", item
        if not file or (sep and not name):
            raise FeedError(f"--feed {item!r}: expected NAME=FILE.npy, NAME=FILE.npz or FILE.npz")
        try:
            loaded = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise FeedError(f"--feed {item!r}: cannot read {file!r} as a .npy or .npz array file: {exc}") from None
        if isinstance(loaded, np.ndarray):
            if not name:
                raise FeedError(f"--feed {item!r}: a .npy file holds one array; name its input: NAME={file}")
            feeds[name] = loaded
            continue
        with loaded:
            arrays = {key: loaded[key] for key in loaded.files}
        if not name:
            feeds.update(arrays)
        elif name in arrays:
            feeds[name] = arrays[name]
        elif len(arrays) == 1:
            feeds[name] = next(iter(arrays.values()))
        else:
            raise FeedError(f"--feed {item!r}: {file!r} has no array {name!r} (it has {', '.join(arrays)})")
    return feeds


def _run(obj, feeds: dict, loss):
    """A Result drawn as is; a Graph without feeds drawn as structure, with feeds run backward (or forward)."""
    from ..errors import RenderError
    from ..graph import Graph
    from ..result import Result

    if isinstance(obj, Result):
        if feeds or loss:
            raise RenderError("the function returned a Result: --feed and --loss apply only to a Graph")
        return obj
    if not isinstance(obj, Graph):
        raise RenderError(f"the function must return a dagrad Graph or Result, not {type(obj).__name__}")
    inputs = obj.inputs
    if not feeds and inputs:  # nothing to run it on: draw the structure
        if loss is not None:
            raise RenderError(f"--loss {loss!r}: the graph needs its inputs {', '.join(inputs)} fed to run "
                              f"(--feed NAME=FILE.npy or --feed FILE.npz)")
        return obj
    sinks = [n for n in obj.nodes() if not obj.consumers(n.name) and n.kind == "op"]
    if loss is None:
        scalars = [n for n in sinks if n.shape == ()]
        loss = scalars[0].name if len(scalars) == 1 else None
    if loss is not None:
        return obj.backward(loss, feeds=feeds, keep="all")
    if not sinks:
        return obj
    return obj.forward([n.name for n in sinks], feeds)
