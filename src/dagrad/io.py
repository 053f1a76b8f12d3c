"""Model files: save a graph with its parameters to one ``.dagrad`` zip, and load it back.

A model file is a zip archive with two members:

``graph.json``
    The format name and version, the graph's name, the plugins (with their
    distribution and version) whose ops the graph uses, and every node in
    insertion order: name, op, inputs, attrs, shape, dtype, trainable, and for
    an op node the plugin, distribution and version that provided it.
``params.npz``
    The values of params and consts, by node name.

Loading never unpickles and never runs code from the file: the JSON is plain
data, the arrays are read with ``numpy.load(..., allow_pickle=False)``, and
the graph is rebuilt through the public ``Graph`` API, so every op, arity,
attribute and shape is checked exactly as when the graph was first built.
Anything wrong with a file is a ``FormatError`` that says what is wrong (and,
for a missing plugin, which distribution to install). Saving writes a
temporary file beside the target and renames it, so an interrupted save
leaves the previous file, if any, untouched.

Examples
--------
>>> import os, tempfile, numpy as np, dagrad as dg
>>> g = dg.Graph("tiny")
>>> x = g.input("x", shape=(None, 2))
>>> with g.scope("fc"):
...     y = x @ g.param("W", np.eye(2))
>>> path = os.path.join(tempfile.mkdtemp(), "tiny.dagrad")
>>> dg.save(g, path)
>>> h = dg.load(path)
>>> [n.name for n in h.nodes()]
['x', 'fc/W', 'fc/matmul']
>>> h.value("fc/W")
array([[1., 0.],
       [0., 1.]])
"""

from __future__ import annotations

import io as _io
import json
import os
import zipfile
import zlib
from typing import Any, Union

import networkx as nx
import numpy as np

from ._version import __version__
from .errors import DagradError, FormatError
from .files import atomic_write
from .graph import Graph, Node
from .plugins import registry

__all__ = ["save", "load", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "dagrad-model"
FORMAT_VERSION = 1
_GRAPH = "graph.json"
_PARAMS = "params.npz"
_ZIP_MAGIC = b"PK\x03\x04"

PathLike = Union[str, "os.PathLike[str]"]


# ------------------------------------------------------------------ save --


def save(graph: Graph, path: PathLike) -> None:
    """Write ``graph`` and its param and const values to the model file ``path``.

    The file is written to a temporary file in the same directory and then
    renamed over ``path``, so a save that fails or is interrupted halfway
    leaves any previous file at ``path`` as it was and no temporary file behind.

    Parameters
    ----------
    graph
        The graph to save; its ops must be registered (their plugins are recorded).
    path
        Where to write, conventionally ending in ``.dagrad``.
    """
    document, arrays = _describe(graph)
    with atomic_write(path) as f:
        _write_archive(f, document, arrays)


def _describe(graph: Graph) -> tuple[dict, dict]:
    """The JSON document and the arrays of a graph."""
    reg = registry()
    nodes, arrays, plugins = [], {}, {}
    for node in graph.nodes():
        record: dict[str, Any] = {
            "name": node.name,
            "op": node.op,
            "inputs": list(node.inputs),
            "attrs": node.attrs,
            "shape": None if node.shape is None else list(node.shape),
            "dtype": _dtype_name(node.dtype),
            "trainable": bool(node.trainable),
        }
        if node.origin is not None:
            record["origin"] = node.origin
        if node.kind == "op":
            op = reg.op(node.op)
            info = reg.plugins.get(op.plugin)
            provider = {
                "plugin": op.plugin,
                "distribution": info.distribution if info else None,
                "version": info.version if info else None,
            }
            record.update(provider)
            plugins.setdefault(op.plugin, {"name": op.plugin, **{k: provider[k] for k in ("distribution", "version")}})
        elif node.kind in ("param", "const"):
            arrays[node.name] = graph.value(node.name)
        nodes.append(record)
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "dagrad_version": __version__,
        "graph": graph.name,
        "plugins": list(plugins.values()),
        "nodes": nodes,
    }
    return document, arrays


def _dtype_name(dtype: np.dtype) -> str:
    """``"float32"`` where that names the dtype exactly, else numpy's full spelling (``"<U5"``)."""
    try:
        if np.dtype(dtype.name) == dtype:
            return dtype.name
    except TypeError:
        pass
    return dtype.str


def _write_archive(f, document: dict, arrays: dict) -> None:
    params = _io.BytesIO()
    np.savez(params, **arrays)
    with zipfile.ZipFile(f, "w") as zf:
        zf.writestr(_GRAPH, json.dumps(document, indent=1), compress_type=zipfile.ZIP_DEFLATED)
        # Parameters hardly compress; storing them keeps saving and loading fast.
        zf.writestr(_PARAMS, params.getvalue(), compress_type=zipfile.ZIP_STORED)


# ------------------------------------------------------------------ load --


def load(path: PathLike) -> Graph:
    """Read a model file written by :func:`save` and rebuild its graph.

    Parameters
    ----------
    path
        The ``.dagrad`` file.

    Returns
    -------
    Graph
        A new graph with the saved nodes (same names, ops, attrs, inputs) and
        parameter values, rebuilt and checked through the public ``Graph`` API.

    Raises
    ------
    FormatError
        The file cannot be read, is not a zip or is truncated, is not a dagrad
        model, was written by a newer format version, needs an op whose plugin
        is not installed (naming the distribution to install), has a cycle, or
        holds arrays that are missing, pickled, or of the wrong shape or dtype.
    """
    path = os.fspath(path)
    graph_bytes, params_bytes = _read_members(path)
    document = _parse(path, graph_bytes)
    records = _records(path, document)
    _check_ops_installed(path, records)
    order = _build_order(path, records)
    arrays = _read_arrays(path, params_bytes, records)
    return _rebuild(path, document, records, order, arrays)


def _read_members(path: str) -> tuple[bytes, bytes]:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise FormatError(f"cannot read model file {path!r}: {exc.strerror or exc}") from exc
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if _GRAPH not in names:
                listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "") or "nothing"
                raise FormatError(
                    f"{path!r} is a zip archive but not a dagrad model file: it has no {_GRAPH} "
                    f"(it holds {listed})"
                )
            if _PARAMS not in names:
                raise FormatError(f"model file {path!r} is damaged: it has {_GRAPH} but no {_PARAMS}")
            return zf.read(_GRAPH), zf.read(_PARAMS)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        if head == _ZIP_MAGIC:
            raise FormatError(f"model file {path!r} is a truncated or damaged zip archive: {exc}") from exc
        raise FormatError(f"{path!r} is not a dagrad model file: it is not a zip archive") from exc


def _parse(path: str, graph_bytes: bytes) -> dict:
    try:
        document = json.loads(graph_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"model file {path!r}: {_GRAPH} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise FormatError(
            f"{path!r} is not a dagrad model file: {_GRAPH} names format {found!r}, expected {FORMAT_NAME!r}"
        )
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FormatError(f"model file {path!r}: format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"model file {path!r} has format version {version} (written by dagrad "
            f"{document.get('dagrad_version', '?')}); this dagrad ({__version__}) reads "
            f"format version {FORMAT_VERSION} and older: upgrade dagrad to load it"
        )
    return document


_FIELDS = {"name": str, "op": str, "inputs": list, "trainable": bool}


def _records(path: str, document: dict) -> list[dict]:
    """The node records, checked to be the right kind of JSON data."""
    nodes = document.get("nodes")
    if not isinstance(nodes, list):
        raise FormatError(f"model file {path!r}: {_GRAPH} has no list of nodes")
    seen: set = set()
    for i, rec in enumerate(nodes):
        where = f"model file {path!r}: node #{i}"
        if not isinstance(rec, dict):
            raise FormatError(f"{where} is not a JSON object")
        for key, kind in _FIELDS.items():
            if not isinstance(rec.get(key), kind):
                raise FormatError(f"{where} ({rec.get('name')!r}): field {key!r} should be a {kind.__name__}, "
                                  f"got {rec.get(key)!r}")
        name = rec["name"]
        if name in seen:
            raise FormatError(f"model file {path!r}: node name {name!r} appears twice")
        seen.add(name)
        if not all(isinstance(n, str) for n in rec["inputs"]):
            raise FormatError(f"{where} ({name!r}): inputs must be node names, got {rec['inputs']!r}")
        if not isinstance(rec.get("origin", ""), str):
            raise FormatError(f"{where} ({name!r}): origin must be a node name, got {rec['origin']!r}")
        if not isinstance(rec.get("attrs", {}), dict):
            raise FormatError(f"{where} ({name!r}): attrs must be a JSON object")
        shape = rec.get("shape")
        if shape is not None and not (
            isinstance(shape, list) and all(d is None or (type(d) is int and d >= 0) for d in shape)
        ):
            raise FormatError(f"{where} ({name!r}): shape {shape!r} is not a list of sizes")
        try:
            dtype = np.dtype(rec.get("dtype"))
        except TypeError as exc:
            raise FormatError(f"{where} ({name!r}): dtype {rec.get('dtype')!r} is not a numpy dtype") from exc
        if dtype.hasobject:
            raise FormatError(f"{where} ({name!r}): object dtypes are refused (they would need pickle)")
    return nodes


def _check_ops_installed(path: str, records: list[dict]) -> None:
    """Every op must be registered; otherwise name the op, its plugin and what to pip install."""
    ops = registry().ops
    missing: dict = {}
    for rec in records:
        if rec["op"] in ("input", "param", "const") or rec["op"] in ops:
            continue
        key = (rec.get("plugin"), rec.get("distribution"), rec.get("version"))
        missing.setdefault(key, []).append(rec)
    if not missing:
        return
    lines = []
    for (plugin, dist, version), recs in missing.items():
        op_names = sorted({r["op"] for r in recs})
        used_by = ", ".join(repr(r["name"]) for r in recs[:3]) + (", ..." if len(recs) > 3 else "")
        if dist:
            saved_with = f" (the file was saved with version {version})" if version else ""
            fix = f"install it with `pip install {dist}`{saved_with}"
        else:
            fix = "the file does not say which distribution provides it"
        lines.append(
            f"op(s) {', '.join(map(repr, op_names))} (used by {used_by}) come from plugin {plugin!r} "
            f"of distribution {dist!r}, which is not installed: {fix}"
        )
    raise FormatError(f"model file {path!r} needs plugins that are not loaded: " + "; ".join(lines))


def _build_order(path: str, records: list[dict]) -> list[dict]:
    """Records in an order where every input comes before its consumers (file order when possible)."""
    index = {rec["name"]: i for i, rec in enumerate(records)}
    dag = nx.DiGraph()
    dag.add_nodes_from(index)
    for rec in records:
        if rec["op"] in ("input", "param", "const") and rec["inputs"]:
            raise FormatError(f"model file {path!r}: {rec['op']} node {rec['name']!r} cannot have inputs")
        for src in rec["inputs"]:
            if src not in index:
                raise FormatError(
                    f"model file {path!r}: node {rec['name']!r} reads from {src!r}, which is not in the file"
                )
            dag.add_edge(src, rec["name"])
    try:
        edges = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return [records[index[n]] for n in nx.lexicographical_topological_sort(dag, key=index.__getitem__)]
    cycle = [u for u, _ in edges] + [edges[0][0]]
    raise FormatError(f"model file {path!r} is damaged: its graph has a cycle: " + " -> ".join(cycle))


def _read_arrays(path: str, params_bytes: bytes, records: list[dict]) -> dict:
    """The param and const arrays, read without pickle and checked against their nodes."""
    try:
        loaded = np.load(_io.BytesIO(params_bytes), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise FormatError(f"model file {path!r}: {_PARAMS} is a single array, not an .npz archive")
        with loaded as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FormatError:
        raise
    except ValueError as exc:
        # numpy refuses object arrays and pickled data when allow_pickle=False.
        raise FormatError(
            f"model file {path!r}: {_PARAMS} holds pickled or object data, which dagrad never loads ({exc})"
        ) from exc
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, KeyError) as exc:
        raise FormatError(f"model file {path!r}: {_PARAMS} is damaged: {exc}") from exc
    stored = [rec for rec in records if rec["op"] in ("param", "const")]
    for rec in stored:
        name = rec["name"]
        if name not in arrays:
            raise FormatError(f"model file {path!r}: {_PARAMS} has no array for {rec['op']} {name!r}")
        array = arrays[name]
        expected_dtype = np.dtype(rec["dtype"])
        if array.dtype != expected_dtype:
            raise FormatError(
                f"model file {path!r}: {rec['op']} {name!r} is {expected_dtype} in {_GRAPH} "
                f"but its array in {_PARAMS} is {array.dtype}"
            )
        if rec.get("shape") is None or list(array.shape) != rec["shape"]:
            raise FormatError(
                f"model file {path!r}: {rec['op']} {name!r} has shape {rec.get('shape')} in {_GRAPH} "
                f"but its array in {_PARAMS} has shape {list(array.shape)}"
            )
    extra = sorted(set(arrays) - {rec["name"] for rec in stored})
    if extra:
        raise FormatError(f"model file {path!r}: {_PARAMS} holds arrays for no param or const: {extra}")
    return arrays


def _rebuild(path: str, document: dict, records: list[dict], order: list[dict], arrays: dict) -> Graph:
    name = document.get("graph")
    graph = Graph(name if isinstance(name, str) else "graph")
    for rec in order:
        node_name, op_name = rec["name"], rec["op"]
        dtype = np.dtype(rec["dtype"])
        try:
            if op_name == "input":
                graph.input(node_name, shape=rec.get("shape"), dtype=dtype)
            elif op_name == "param":
                graph.param(node_name, arrays[node_name], trainable=rec["trainable"])
            elif op_name == "const":
                graph.const(arrays[node_name], name=node_name, dtype=dtype)
            else:
                # JSON gives lists; Graph.apply stores attrs in their canonical tuple form.
                graph.apply(op_name, rec["inputs"], rec.get("attrs", {}), name=node_name)
        except DagradError as exc:
            raise FormatError(f"model file {path!r}: node {node_name!r} (op {op_name!r}) cannot be rebuilt: {exc}") from exc
        _check_node(path, graph.node(node_name), rec, dtype)
        graph.node(node_name).origin = rec.get("origin")
    return graph


def _check_node(path: str, node: Node, rec: dict, dtype: np.dtype) -> None:
    """The rebuilt node must have the shape and dtype the file recorded."""
    shape = rec.get("shape")
    recorded = None if shape is None else tuple(shape)
    if node.dtype != dtype or (recorded is not None and node.shape is not None and node.shape != recorded):
        raise FormatError(
            f"model file {path!r}: node {node.name!r} (op {node.op!r}) is recorded as {dtype} with shape "
            f"{recorded}, but rebuilding it gives {node.dtype} with shape {node.shape}"
        )
