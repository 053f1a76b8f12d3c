"""A graph as a document and arrays, and back: what a model file says, checked before it is believed.

The document (JSON, in the file's ``__metadata__["dagrad"]``) records the
graph's name, the provider of every op it uses, and every node in insertion
order. Each param and const names the array that holds its value by a key
dagrad chose (``"values/0"``...), never by its node name, so no name can
collide with another or with the container's own keys. Loading checks the
whole document (types, sizes, limits, ops, providers, cycles) before it reads
any array, then rebuilds the graph through the public ``Graph`` API, so every
op, arity, attribute and shape is checked exactly as when it was first built.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any, Optional

import networkx as nx
import numpy as np

from .._version import __version__
from ..errors import DagradError, FormatError
from ..graph import MAX_NAME_LENGTH, Graph, Node
from ..node import SOURCE_KINDS
from ..plugins import BUILTINS, registry
from .untrusted import Source, depth, is_distribution_name, quote

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "METADATA_KEY", "DEFAULT_MAX_NODES", "MAX_ATTR_DEPTH", "ProviderWarning", "PROVIDER_POLICIES",
    "ModelFile", "ArraySpec", "describe", "dtype_name", "encode", "check_document", "check_ops", "build_order",
    "rebuild", "format_error_for_memory",
]

FORMAT_NAME = "dagrad-model"
METADATA_KEY = "dagrad"
"""The key of the document in the safetensors header's ``__metadata__``."""
FORMAT_VERSION = 3
"""The newest format this dagrad reads. It writes 3 only for a graph with state updates, 2 otherwise."""
DEFAULT_MAX_NODES = 100_000
"""Nodes ``dg.load`` accepts unless told otherwise; see docs/files.md for the measured cost per node."""
MAX_ATTR_DEPTH = 16  # op attributes nest a few levels (an index of slices); deeper is hostile
PROVIDER_POLICIES = ("warn", "error", "ignore")


class ProviderWarning(UserWarning):
    """An op of a loaded model now comes from a different plugin than when the file was saved."""


@dataclass(frozen=True)
class ArraySpec:
    """What the document says an array is: its dtype and shape, and who uses it (for messages)."""

    dtype: np.dtype
    shape: tuple
    part: str


@dataclass
class ModelFile:
    """A loaded file: the rebuilt graph, the whole document, and the arrays outside the graph (checkpoints)."""

    graph: Graph
    document: dict
    arrays: dict = field(default_factory=dict)


# ------------------------------------------------------------------ save --


def describe(graph: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    """The document and the arrays (by dagrad's keys) of a graph."""
    reg = registry()
    nodes, arrays, providers = [], {}, {}
    for node in graph.nodes():
        record: dict[str, Any] = {
            "name": node.name,
            "op": node.op,
            "inputs": list(node.inputs),
            "attrs": node.attrs,
            "shape": None if node.shape is None else list(node.shape),
            "dtype": dtype_name(node.dtype),
            "trainable": bool(node.trainable),
        }
        if node.origin is not None:
            record["origin"] = node.origin  # the forward node a dg.grad node belongs to
        if node.kind == "op" and node.op not in providers:
            op = reg.op(node.op)
            info = reg.plugins.get(op.plugin)
            providers[node.op] = {
                "plugin": op.plugin,
                "distribution": info.distribution if info else None,
                "version": info.version if info else None,
            }
        elif node.kind in ("param", "const"):
            key = f"values/{len(arrays)}"
            record["array"] = key
            arrays[key] = graph.value(node.name)
        nodes.append(record)
    updates = graph.updates
    document = {
        "format": FORMAT_NAME,
        # State updates (running statistics) are new in format 3: a reader of format 2 would drop them silently.
        "format_version": 3 if updates else 2,
        "dagrad_version": __version__,
        "graph": graph.name,
        "ops": providers,
        "nodes": nodes,
    }
    if updates:
        document["updates"] = updates
    return document, arrays


def dtype_name(dtype: np.dtype) -> str:
    """``"float32"`` where that names the dtype exactly, else numpy's full spelling (``">f4"``)."""
    try:
        if np.dtype(dtype.name) == dtype:
            return dtype.name
    except TypeError:
        pass
    return dtype.str


def encode(document: dict) -> str:
    # Attrs hold only JSON data (Graph.apply checks it); inf and nan stay numbers, as Python's json writes them.
    return json.dumps(document, separators=(",", ":"))


# --------------------------------------------------------------- check ---


def check_document(document: Any, source: Source, max_nodes: Optional[int]) -> tuple[list[dict], dict[str, ArraySpec]]:
    """Check the document's format, size and every node record: ``(records, {array key: ArraySpec})``."""
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise source.error("document", f"names format {quote(found)}, not {FORMAT_NAME!r}: it is not a dagrad model")
    version = document.get("format_version")
    if type(version) is not int or version < 1:
        raise source.error("document", f"format_version {quote(version)} is not a positive integer")
    if version > FORMAT_VERSION:
        raise source.error(
            "document", f"has format version {version} (written by dagrad {quote(document.get('dagrad_version'))}); "
                        f"this dagrad ({__version__}) reads format versions 1 to {FORMAT_VERSION}: upgrade dagrad"
        )
    nodes = document.get("nodes")
    if not isinstance(nodes, list):
        raise source.error("document", "has no list of nodes")
    if max_nodes is not None and len(nodes) > max_nodes:
        raise source.error("document", f"has {len(nodes):,} nodes, more than max_nodes={max_nodes:,}; "
                                       "if you trust the file, load it with a larger max_nodes (or None)")
    if not isinstance(document.get("graph", ""), str):
        raise source.error("document", f"graph name {quote(document.get('graph'))} is not a string")
    ops = document.get("ops", {})
    if not isinstance(ops, dict) or not all(isinstance(v, dict) for v in ops.values()):
        raise source.error("document", "ops must map op names to their providers")
    specs: dict[str, ArraySpec] = {}
    names: set = set()
    for i, rec in enumerate(nodes):
        _check_record(i, rec, names, specs, source)
        if rec["op"] not in SOURCE_KINDS and rec["op"] not in ops:
            raise source.error(f"node {quote(rec['name'])}", f"uses op {quote(rec['op'])}, whose provider is not recorded")
    updates = document.get("updates", {})
    if not isinstance(updates, dict) or not all(isinstance(v, str) for v in updates.values()):
        raise source.error("document", "updates must map param names to node names")
    unknown = [name for pair in updates.items() for name in pair if name not in names]
    if unknown:
        raise source.error("updates", f"refer to {quote(unknown[0])}, which is not a node of the file")
    extra = document.get("arrays", {})
    if not isinstance(extra, dict):
        raise source.error("document", "arrays must map keys to dtype and shape")
    for key, spec in extra.items():
        part = f"array {quote(key)}"
        if not isinstance(spec, dict) or key in specs:
            raise source.error(part, "is declared twice or is not an object of dtype and shape")
        dtype = _dtype(spec.get("dtype"), source, part)
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise source.error(part, f"has shape {quote(shape)}, not a list of sizes")
        specs[key] = ArraySpec(dtype, tuple(shape), part)
    return nodes, specs


_FIELDS = {"name": str, "op": str, "inputs": list, "attrs": dict, "dtype": str, "trainable": bool}


def _check_record(i: int, rec: Any, names: set, specs: dict, source: Source) -> None:
    if not isinstance(rec, dict):
        raise source.error(f"node #{i}", "is not a JSON object")
    part = _RecordPart(i, rec)
    for key, kind in _FIELDS.items():
        if not isinstance(rec.get(key), kind):
            raise source.error(str(part), f"field {key!r} should be a {kind.__name__}, got {quote(rec.get(key))}")
    name = rec["name"]
    if name in names:
        raise source.error(part, "has a name that appears twice")
    names.add(name)
    if not all(isinstance(n, str) for n in rec["inputs"]):
        raise source.error(part, f"inputs must be node names, got {quote(rec['inputs'])}")
    origin = rec.get("origin")
    if origin is not None and not (isinstance(origin, str) and 0 < len(origin) <= MAX_NAME_LENGTH and origin.isprintable()):
        raise source.error(part, f"origin must be a node name, got {quote(origin)}")
    if rec["attrs"] and depth(rec["attrs"], MAX_ATTR_DEPTH) > MAX_ATTR_DEPTH:
        raise source.error(part, f"attrs nest more than {MAX_ATTR_DEPTH} levels deep")
    shape = rec.get("shape")
    if shape is not None and not (isinstance(shape, list) and all(d is None or (type(d) is int and d >= 0) for d in shape)):
        raise source.error(part, f"shape {quote(shape)} is not a list of sizes")
    dtype = _dtype(rec["dtype"], source, part)
    stored = rec["op"] in ("param", "const")
    key = rec.get("array")
    if stored != (key is not None):
        raise source.error(part, f"a {quote(rec['op'])} node {'needs' if stored else 'cannot have'} an array")
    if stored:
        if not isinstance(key, str) or key in specs:
            raise source.error(part, f"array key {quote(key)} is not a string, or is used twice")
        if shape is None or None in shape:
            raise source.error(part, f"a {rec['op']} needs a complete shape, not {quote(shape)}")
        specs[key] = ArraySpec(dtype, tuple(shape), str(part))


class _RecordPart:
    """``node #3 ('fc1/W')``, made only when a message needs it (most records are fine)."""

    __slots__ = ("i", "rec")

    def __init__(self, i: int, rec: dict):
        self.i, self.rec = i, rec

    def __str__(self) -> str:
        return f"node #{self.i} ({quote(self.rec.get('name'))})"


def _dtype(spelling: Any, source: Source, part: Any) -> np.dtype:
    """A numeric dtype written as dagrad writes it; anything else (objects, records, subarrays) is refused."""
    dtype = _numeric_dtype(spelling) if isinstance(spelling, str) and len(spelling) <= 16 else None
    if dtype is None:
        raise source.error(part, f"dtype {quote(spelling)} is refused: dagrad stores bool, integer, float and "
                                 "complex numbers only")
    return dtype


@functools.lru_cache(maxsize=64)  # a file spells the same few dtypes on every node
def _numeric_dtype(spelling: str) -> Optional[np.dtype]:
    try:
        dtype = np.dtype(spelling)
    except (TypeError, ValueError, SyntaxError):
        return None
    if dtype.kind not in "biufc" or dtype.fields is not None or dtype.shape != () or dtype_name(dtype) != spelling:
        return None
    return dtype


# ------------------------------------------------------------ providers --


def check_ops(records: list[dict], document: dict, source: Source, on_provider_change: str) -> None:
    """Every op must be available, or the error says why not; a changed provider warns (or raises)."""
    reg = registry()
    recorded = document.get("ops", {})
    missing: dict[str, list[str]] = {}
    for rec in records:
        if rec["op"] not in SOURCE_KINDS and rec["op"] not in reg.ops:
            missing.setdefault(rec["op"], []).append(rec["name"])
    if missing:
        reasons = [_why_missing(op_name, users, recorded.get(op_name, {}), document) for op_name, users in missing.items()]
        raise source.error("ops", "cannot be rebuilt: " + "; ".join(reasons))
    changes = []
    for op_name, was in recorded.items():
        op = reg.ops.get(op_name)
        if op is None:
            continue
        info = reg.plugins.get(op.plugin)
        now = (op.plugin, info.distribution if info else None)
        if (was.get("plugin"), was.get("distribution")) != now:
            changes.append(f"op {quote(op_name)} came from {_provider(was)} when the file was saved, and now comes "
                           f"from {_provider({'plugin': now[0], 'distribution': now[1], 'version': info and info.version})}")
    if changes and on_provider_change != "ignore":
        message = ("; ".join(changes) + ": the model may compute differently than when it was saved "
                   "(on_provider_change='ignore' accepts this, 'error' refuses it)")
        if on_provider_change == "error":
            raise source.error("ops", message)
        warnings.warn(f"model file {source.path!r}: {message}", ProviderWarning, stacklevel=4)


def _provider(entry: dict) -> str:
    plugin, dist, version = entry.get("plugin"), entry.get("distribution"), entry.get("version")
    if dist is None:
        return f"plugin {quote(plugin)} (registered from Python)"
    return f"plugin {quote(plugin)} (distribution {quote(dist)}, version {quote(version)})"


def _why_missing(op_name: str, users: list[str], provider: dict, document: dict) -> str:
    """One sentence: op, its users, and the real reason it is not available, with the fix."""
    reg = registry()
    plugin, dist, version = provider.get("plugin"), provider.get("distribution"), provider.get("version")
    used = ", ".join(map(quote, users[:3])) + (", ..." if len(users) > 3 else "")
    head = f"op {quote(op_name)} (used by {used})"
    if op_name in reg.conflicts:
        return f"{head} is defined by two installed plugins that conflict ({reg.conflicts[op_name]})"
    if plugin == BUILTINS or dist == "dagrad":
        return (f"{head} is not a built-in op of this dagrad ({__version__}); the file was written by dagrad "
                f"{quote(document.get('dagrad_version'))}: install that version")
    for info in reg.plugins.values():
        same = (plugin is not None and info.name.split("@")[0] == plugin) or (dist is not None and info.distribution == dist)
        if not same:
            continue
        if info.status == "disabled":
            return (f"{head} comes from plugin {quote(info.name)} ({quote(info.distribution)}), which is installed but "
                    "disabled (by DAGRAD_PLUGINS, DAGRAD_DISABLE_PLUGINS or load_plugins(only=/exclude=)): enable it")
        if info.status == "broken":
            return f"{head} comes from plugin {quote(info.name)}, which is installed but failed to load: {info.error}"
        if info.status == "conflict":
            return f"{head} comes from plugin {quote(info.name)}, which is installed but was not loaded: {info.error}"
        if info.status == "loaded":
            return (f"{head} is not defined by plugin {quote(info.name)} as installed (version {quote(info.version)}; "
                    f"the file was saved with version {quote(version)}): install that version")
    if not is_distribution_name(dist):
        return f"{head} comes from plugin {quote(plugin)}, and the file names no valid distribution for it ({quote(dist)})"
    try:
        importlib_metadata.distribution(dist)
    except importlib_metadata.PackageNotFoundError:
        saved = f" (the file was saved with version {quote(version)})" if version is not None else ""
        return f"{head} comes from plugin {quote(plugin)} of distribution {dist}, which is not installed: pip install {dist}{saved}"
    return (f"{head} comes from plugin {quote(plugin)} of distribution {dist}, which is installed but registers no "
            "such dagrad plugin (see `dagrad plugins`)")


# -------------------------------------------------------------- rebuild --


def build_order(records: list[dict], source: Source) -> list[dict]:
    """Records in an order where every input comes before its consumers (file order when possible)."""
    index = {rec["name"]: i for i, rec in enumerate(records)}
    if all(index.get(src, len(records)) < i for i, rec in enumerate(records) for src in rec["inputs"]) and \
            not any(rec["inputs"] for rec in records if rec["op"] in SOURCE_KINDS):
        return records  # the usual case: saved in insertion order, which is topological unless a rewire changed it
    dag = nx.DiGraph()
    dag.add_nodes_from(index)
    for rec in records:
        if rec["op"] in SOURCE_KINDS and rec["inputs"]:
            raise source.error(f"node {quote(rec['name'])}", f"is a {rec['op']} and cannot have inputs")
        for src in rec["inputs"]:
            if src not in index:
                raise source.error(f"node {quote(rec['name'])}", f"reads from {quote(src)}, which is not in the file")
            dag.add_edge(src, rec["name"])
    try:
        edges = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return [records[index[n]] for n in nx.lexicographical_topological_sort(dag, key=index.__getitem__)]
    cycle = [u for u, _ in edges] + [edges[0][0]]
    raise source.error("nodes", "form a cycle: " + " -> ".join(map(quote, cycle)))


def rebuild(document: dict, order: list[dict], arrays: dict[str, np.ndarray], source: Source) -> Graph:
    """The graph, node by node through the public API; the arrays are consumed (the graph keeps copies)."""
    graph = Graph(document.get("graph") or "graph")
    for rec in order:
        node_name, op_name = rec["name"], rec["op"]
        dtype = np.dtype(rec["dtype"])
        try:
            if op_name == "input":
                graph.input(node_name, shape=rec.get("shape"), dtype=dtype)
            elif op_name == "param":
                graph.param(node_name, arrays.pop(rec["array"]), trainable=rec["trainable"])
            elif op_name == "const":
                graph.const(arrays.pop(rec["array"]), name=node_name, dtype=dtype)
            else:
                # JSON gives lists; Graph.apply stores attrs in their canonical tuple form.
                graph.apply(op_name, rec["inputs"], rec["attrs"], name=node_name)
        except DagradError as exc:
            raise source.error(f"node {quote(node_name)} (op {quote(op_name)})", f"cannot be rebuilt: {exc}") from None
        node = graph.node(node_name)
        _check_node(node, rec, dtype, source)
        node.origin = rec.get("origin")
    for param, value in document.get("updates", {}).items():
        try:
            graph.add_update(param, value)
        except DagradError as exc:
            raise source.error(f"update of {quote(param)}", f"cannot be rebuilt: {exc}") from None
    return graph


def _check_node(node: Node, rec: dict, dtype: np.dtype, source: Source) -> None:
    """The rebuilt node must have the shape and dtype the file recorded."""
    shape = rec.get("shape")
    recorded = None if shape is None else tuple(shape)
    if node.dtype != dtype or (recorded is not None and node.shape is not None and node.shape != recorded):
        raise source.error(
            f"node {quote(node.name)} (op {quote(node.op)})",
            f"is recorded as {dtype} with shape {recorded}, but rebuilding it gives {node.dtype} with shape {node.shape}",
        )


def format_error_for_memory(source: Source) -> FormatError:
    return source.error(None, "needs more memory than this machine has")
