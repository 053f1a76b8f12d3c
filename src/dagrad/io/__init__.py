"""Model files: save a graph with its parameters to one ``.dagrad`` file, and load it back safely.

A model file is a safetensors file: the parameter and constant arrays, and in
its header's ``__metadata__["dagrad"]`` a JSON document describing the graph
(see ``docs/files.md`` for the format, its limits, and what loading an
untrusted file guarantees). Loading never unpickles and never runs code from
the file, reads only regular files, checks every size the file declares
before allocating anything, so memory stays bounded by the file's size, and
reports anything wrong as one ``FormatError`` naming the file and the part.
Saving is atomic: an interrupted save leaves the previous file as it was.

Files written by dagrad 0.1 (format 1: a zip of ``graph.json`` and
``params.npz``) are still read, with the same guarantees.

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

import gc
import os
from typing import Optional, Union

import numpy as np

from ..errors import FormatError
from ..files import atomic_write
from ..graph import Graph
from . import container, legacy
from .model import (DEFAULT_MAX_NODES, FORMAT_NAME, FORMAT_VERSION, PROVIDER_POLICIES, ArraySpec, ModelFile,
                    ProviderWarning, build_order, check_document, check_ops, describe, dtype_name, encode,
                    format_error_for_memory, rebuild)
from .untrusted import Source, parse_json, quote

__all__ = [
    "save", "load", "FORMAT_NAME", "FORMAT_VERSION", "DEFAULT_MAX_NODES", "MAX_HEADER_BYTES", "ProviderWarning",
    "ModelFile", "write_model", "read_model",
]

MAX_HEADER_BYTES = container.MAX_HEADER_BYTES
METADATA_KEY = "dagrad"

PathLike = Union[str, "os.PathLike[str]"]


# ------------------------------------------------------------------ save --


def save(graph: Graph, path: PathLike) -> None:
    """Write ``graph`` and its param and const values to the model file ``path``.

    The file is written to a temporary file in the same directory and then
    renamed over ``path``, so a save that fails or is interrupted halfway
    leaves any previous file at ``path`` as it was and no temporary file behind.
    Re-saving keeps the file's permissions; a symbolic link is followed.

    Parameters
    ----------
    graph
        The graph to save; its ops must be registered (their providers are recorded).
    path
        Where to write, conventionally ending in ``.dagrad``.

    Raises
    ------
    FormatError
        The graph's description is larger than the format's header limit
        (``MAX_HEADER_BYTES``, about half a million nodes).
    """
    write_model(path, graph)


def write_model(path: PathLike, graph: Graph, *, extra: Optional[dict] = None,
                arrays: Optional[dict[str, np.ndarray]] = None) -> None:
    """Save ``graph`` with more document sections (``extra``) and arrays outside the graph (checkpoints use it).

    ``arrays`` keys must not start with ``values/`` (the graph's own); each is
    declared in the document's ``"arrays"`` with its dtype and shape.
    """
    document, values = describe(graph)
    arrays = dict(arrays or {})
    clash = [key for key in arrays if key in values or key.startswith("values/")]
    if clash:
        raise ValueError(f"array keys {clash} are reserved for the graph's values")
    document.update(extra or {})
    if arrays:
        document["arrays"] = {key: {"dtype": dtype_name(a.dtype), "shape": list(a.shape)} for key, a in arrays.items()}
    metadata = {METADATA_KEY: encode(document)}
    try:
        with atomic_write(path) as f:
            container.write(f, metadata, {**values, **arrays})
    except ValueError as exc:
        raise FormatError(f"cannot save graph {graph.name!r} with {len(graph):,} nodes to {os.fspath(path)!r}: {exc}; "
                          "the format's header limit is that of safetensors", path=os.fspath(path)) from None


# ------------------------------------------------------------------ load --


def load(path: PathLike, *, max_nodes: Optional[int] = DEFAULT_MAX_NODES, on_provider_change: str = "warn") -> Graph:
    """Read a model file written by :func:`save` and rebuild its graph; safe on files from anyone.

    Parameters
    ----------
    path
        The ``.dagrad`` file (a regular file; devices, pipes and directories are refused).
    max_nodes
        Refuse files with more nodes than this (``None``: no limit). Loading
        costs about 20 µs and 2 KB per node; the default
        (``DEFAULT_MAX_NODES``, 100,000) bounds that to a few seconds and
        about 200 MB (measured in docs/files.md).
    on_provider_change
        When an op now comes from a different plugin than when the file was
        saved (say a plugin overriding ``tanh`` is installed): ``"warn"``
        (a ``ProviderWarning``), ``"error"`` (a ``FormatError``) or ``"ignore"``.

    Returns
    -------
    Graph
        A new graph with the saved nodes (same names, ops, attrs, inputs) and
        parameter values, rebuilt and checked through the public ``Graph`` API.

    Raises
    ------
    FormatError
        For every kind of bad file (unreadable, not a regular file, foreign,
        damaged, truncated, hostile, too new, too many nodes, an op that is
        not available, with the reason), naming the file and the part that is
        wrong. Text from the file is quoted with control characters escaped.
    """
    return read_model(path, max_nodes=max_nodes, on_provider_change=on_provider_change).graph


def read_model(path: PathLike, *, max_nodes: Optional[int] = DEFAULT_MAX_NODES, on_provider_change: str = "warn",
               kind: str = "model file") -> ModelFile:
    """Load a file completely: the graph, the whole document and the arrays outside the graph."""
    if on_provider_change not in PROVIDER_POLICIES:
        raise ValueError(f"on_provider_change must be one of {PROVIDER_POLICIES}, not {on_provider_change!r}")
    if max_nodes is not None and (not isinstance(max_nodes, int) or max_nodes < 0):
        raise ValueError(f"max_nodes must be a non-negative int or None, not {max_nodes!r}")
    source = Source(os.fspath(path), kind)
    f, size = container.open_regular(source.path, source)
    collecting = gc.isenabled()
    gc.disable()  # parsing and rebuilding make many objects and no garbage cycles: the collector would only rescan them
    try:
        with f:
            reader = legacy.Reader(f, size, source) if f.read(4) == legacy.ZIP_MAGIC else _Reader(f, size, source)
            document = reader.document()
            records, specs = check_document(document, source, max_nodes)
            check_ops(records, document, source, on_provider_change)
            order = build_order(records, source)
            arrays = reader.arrays(specs)
            graph = rebuild(document, order, arrays, source)
            return ModelFile(graph, document, arrays)
    except MemoryError:
        raise format_error_for_memory(source) from None
    finally:
        if collecting:
            gc.enable()


class _Reader:
    """Format 2: the safetensors layout, with the document in the header's metadata."""

    def __init__(self, f, size: int, source: Source):
        f.seek(0)
        self.f, self.source = f, source
        self.metadata, self.entries, self.data_start = container.read_table(f, size, source)

    def document(self) -> dict:
        text = self.metadata.get(METADATA_KEY)
        if text is None:
            raise self.source.error("header", "has no dagrad document: it is a safetensors file but not a dagrad "
                                              "model (read its arrays with the safetensors package)")
        return parse_json(text, self.source, "document")

    def arrays(self, specs: dict[str, ArraySpec]) -> dict[str, np.ndarray]:
        """Every array the document declares, once the table matches the declarations exactly."""
        unknown = sorted(set(self.entries) - set(specs))
        if unknown:
            raise self.source.error("header", f"holds arrays the document does not declare: {quote(unknown)}")
        for key, spec in specs.items():
            entry = self.entries.get(key)
            if entry is None:
                raise self.source.error(spec.part, f"has no array {key!r} in the file")
            if not container.matches(entry, spec.dtype, spec.shape):
                raise self.source.error(spec.part, f"is {spec.dtype} of shape {list(spec.shape)} in the document, but "
                                                   f"its array {key!r} is stored as {entry.code} {list(entry.shape)}")
        return {key: container.read_array(self.f, self.entries[key], self.data_start, spec.dtype, spec.shape,
                                          self.source, spec.part)
                for key, spec in specs.items()}


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
