"""Static indices as attributes: ``x[1:, None, [0, 2]]`` encoded as JSON-shaped tuples, and decoded back.

A ``getitem`` node stores its index as an attribute, and attributes must be
JSON-serialisable; this module is the one place that knows the encoding. An
``index`` node (``x[idx]`` with a Tensor ``idx``) stores the static items the
same way and a *slot*, ``("tensor", "int")`` or ``("tensor", "bool")``, in the
place of each Tensor, whose array arrives as an input when the graph runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import GraphError

__all__ = ["encode_index", "decode_index", "tensor_slot", "slot_kinds"]

TENSOR_SLOT = "tensor"


def tensor_slot(kind: str) -> tuple:
    """The encoded item standing for an index array that is an input: ``kind`` is ``"int"`` or ``"bool"``."""
    if kind not in ("int", "bool"):
        raise ValueError(f"an index slot holds int or bool arrays, not {kind!r}")
    return (TENSOR_SLOT, kind)


def slot_kinds(encoded: tuple) -> list:
    """The kind of each Tensor slot of an encoded index, in order."""
    return [item[1] for item in encoded if item[0] == TENSOR_SLOT]


def encode_index(index: Any, where: str = "tensor") -> tuple:
    """Turn a numpy index into JSON-shaped attrs (ints, slices, None, Ellipsis, int/bool arrays)."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for item in index:
        if item is None:
            out.append(("newaxis",))
        elif item is Ellipsis:
            out.append(("ellipsis",))
        elif isinstance(item, slice):
            out.append(("slice", item.start, item.stop, item.step))
        elif isinstance(item, (bool, np.bool_)):
            raise GraphError(f"indexing {where!r} with a bare boolean is not supported")
        elif isinstance(item, (int, np.integer)):
            out.append(("int", int(item)))
        else:
            array = np.asarray(item)
            if array.dtype.kind not in "iub":
                raise GraphError(f"indexing {where!r}: index arrays must hold integers or booleans, not {array.dtype}")
            entry = ("array", array.dtype.kind == "b", array.tolist())
            if array.size == 0 and array.ndim > 1:
                entry += (list(array.shape),)  # nested lists cannot say (0, 3) from (0,): keep the shape
            out.append(entry)
    return tuple(out)


def decode_index(encoded: tuple, arrays: Any = ()) -> tuple:
    """The numpy index that ``encode_index`` encoded, its Tensor slots filled from ``arrays`` in order."""
    out = []
    arrays = iter(arrays)
    for item in encoded:
        kind = item[0]
        if kind == TENSOR_SLOT:
            array = next(arrays, None)
            if array is None:
                raise ValueError("the index has more Tensor slots than index inputs")
            out.append(array)
        elif kind == "newaxis":
            out.append(None)
        elif kind == "ellipsis":
            out.append(Ellipsis)
        elif kind == "slice":
            out.append(slice(item[1], item[2], item[3]))
        elif kind == "int":
            out.append(item[1])
        else:
            array = np.asarray(item[2], dtype=bool if item[1] else np.intp)
            out.append(array.reshape(item[3]) if len(item) > 3 else array)
    return tuple(out)
