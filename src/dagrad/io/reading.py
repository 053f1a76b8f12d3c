"""Loading: a model file from anyone, checked part by part, rebuilt into a graph (format 2 and 3 here,
format 1 in ``legacy``)."""

from __future__ import annotations

import gc
import os
from typing import Optional

import numpy as np

from ..graph import Graph
from . import container, legacy
from .model import (DEFAULT_MAX_NODES, METADATA_KEY, PROVIDER_POLICIES, ArraySpec, ModelFile, build_order,
                    check_document, check_ops, format_error_for_memory, rebuild)
from .untrusted import Source, parse_json, quote
from .writing import PathLike

__all__ = ["load", "read_model"]


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
