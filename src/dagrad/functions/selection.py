"""Choosing entries: arg-extremes, ``any``/``all``, sorting and ``topk``, and ``ValuesIndices``.

numpy's signatures where numpy has the function, PyTorch's where only PyTorch does (``topk``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional


from ..tensor import Tensor, apply
from .common import Axis, suffixed

__all__ = ["ValuesIndices", "argmax", "argmin", "any", "all", "argsort", "sort", "topk", "extreme_with_indices"]


class ValuesIndices(NamedTuple):
    """Values and their indices, two nodes (as ``torch.max(x, dim)`` and ``torch.topk`` return them).

    Unpack it (``values, indices = dg.topk(x, 3)``) or read ``.values`` and
    ``.indices``. The indices are int64 and have no gradient; the values'
    gradient flows back to the entries they came from.
    """

    values: Tensor
    indices: Tensor


def argmax(x: Tensor, axis: Optional[int] = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Index (int64) of the largest entry along ``axis``, the first of ties; a flat index by default."""
    return apply("argmax", x, axis=axis, keepdims=keepdims, name=name)


def argmin(x: Tensor, axis: Optional[int] = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Index (int64) of the smallest entry along ``axis``, the first of ties; a flat index by default."""
    return apply("argmin", x, axis=axis, keepdims=keepdims, name=name)


def any(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Whether any entry over ``axis`` is true (nonzero)."""
    return apply("any", x, axis=axis, keepdims=keepdims, name=name)


def all(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Whether every entry over ``axis`` is true (nonzero)."""
    return apply("all", x, axis=axis, keepdims=keepdims, name=name)


def argsort(x: Tensor, axis: int = -1, *, descending: bool = False, name: Optional[str] = None) -> Tensor:
    """Indices (int64) that sort ``x`` along ``axis``; stable."""
    return apply("argsort", x, axis=axis, descending=descending, name=name)


def sort(x: Tensor, axis: int = -1, *, descending: bool = False, return_indices: bool = False,
         name: Optional[str] = None) -> Any:
    """Entries sorted along ``axis`` (stable); with ``return_indices``, ``ValuesIndices`` as ``torch.sort``."""
    values = apply("sort", x, axis=axis, descending=descending, name=name)
    if not return_indices:
        return values
    return ValuesIndices(values, argsort(x, axis, descending=descending, name=suffixed(name, "indices")))


def topk(x: Tensor, k: int, axis: int = -1, largest: bool = True, *, name: Optional[str] = None) -> ValuesIndices:
    """The ``k`` largest entries along ``axis`` (smallest with ``largest=False``) and their indices, as ``torch.topk``.

    Two nodes: a ``topk`` node (the values, sorted, differentiable) and an
    ``argtopk`` node (their indices, int64). Of equal entries the earlier
    comes first.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.array([[0.5, 2.0, -1.0, 2.0]]))
    >>> values, indices = dg.topk(x, 2)
    >>> res = g.forward([values, indices])
    >>> res.value(values), res.value(indices)
    (array([[2., 2.]]), array([[1, 3]]))
    >>> g.backward(values.sum()).grad(x)
    array([[0., 1., 0., 1.]])
    """
    values = apply("topk", x, k=k, axis=axis, largest=largest, name=name)
    return ValuesIndices(values, apply("argtopk", x, k=k, axis=axis, largest=largest, name=suffixed(name, "indices")))


def extreme_with_indices(op_name: str, arg_name: str, x: Tensor, axis: Axis, keepdims: bool,
                          name: Optional[str]) -> ValuesIndices:
    values = apply(op_name, x, axis=axis, keepdims=keepdims, name=name)
    return ValuesIndices(values, apply(arg_name, x, axis=axis, keepdims=keepdims, name=suffixed(name, "indices")))
