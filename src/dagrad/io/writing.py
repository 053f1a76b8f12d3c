"""Saving: a graph and its values (and, for checkpoints, more sections and arrays) to one model file, atomically."""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from ..errors import FormatError
from ..files import atomic_write
from ..graph import Graph
from . import container
from .model import METADATA_KEY, describe, dtype_name, encode

__all__ = ["PathLike", "save", "write_model"]

PathLike = Union[str, "os.PathLike[str]"]


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
