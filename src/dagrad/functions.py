"""numpy-style functions over Tensors, for ops whose attributes numpy passes positionally.

``dagrad.ops.NAME`` is the op itself (inputs positional, attributes by
keyword); these wrappers give the familiar signatures: ``dg.sum(x, 0)``,
``dg.reshape(x, (2, 3))``, ``dg.concatenate([a, b])``, ``dg.einsum("ij,jk", a, b)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence

from .tensor import Tensor, apply

__all__ = [
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax",
    "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze",
    "concatenate", "stack", "einsum", "take", "clip", "softmax_cross_entropy",
    "binary_cross_entropy_with_logits", "mse",
    # ops-math
    "ValuesIndices", "round", "prod", "var", "std", "norm", "median", "quantile", "cumsum", "cumprod",
    "logcumsumexp", "argmax", "argmin", "any", "all", "argsort", "sort", "topk",
]

Axis = Optional[Any]


def sum(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Sum over ``axis`` (all axes by default)."""
    return apply("sum", x, axis=axis, keepdims=keepdims, name=name)


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Mean over ``axis`` (all axes by default)."""
    return apply("mean", x, axis=axis, keepdims=keepdims, name=name)


def max(x: Tensor, axis: Axis = None, keepdims: bool = False, *, return_indices: bool = False,
        name: Optional[str] = None) -> Any:
    """Largest entry over ``axis``; with ``return_indices``, ``ValuesIndices`` as ``torch.max(x, dim)``."""
    if return_indices:
        return _extreme_with_indices("max", "argmax", x, axis, keepdims, name)
    return apply("max", x, axis=axis, keepdims=keepdims, name=name)


def min(x: Tensor, axis: Axis = None, keepdims: bool = False, *, return_indices: bool = False,
        name: Optional[str] = None) -> Any:
    """Smallest entry over ``axis``; with ``return_indices``, ``ValuesIndices`` as ``torch.min(x, dim)``."""
    if return_indices:
        return _extreme_with_indices("min", "argmin", x, axis, keepdims, name)
    return apply("min", x, axis=axis, keepdims=keepdims, name=name)


def logsumexp(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """``log(sum(exp(x)))`` over ``axis``, computed stably."""
    return apply("logsumexp", x, axis=axis, keepdims=keepdims, name=name)


def softmax(x: Tensor, axis: int = -1, *, name: Optional[str] = None) -> Tensor:
    """Softmax along ``axis``."""
    return apply("softmax", x, axis=axis, name=name)


def log_softmax(x: Tensor, axis: int = -1, *, name: Optional[str] = None) -> Tensor:
    """Log-softmax along ``axis``."""
    return apply("log_softmax", x, axis=axis, name=name)


def reshape(x: Tensor, shape: Sequence[int], *, name: Optional[str] = None) -> Tensor:
    """The same entries in ``shape`` (one size may be -1)."""
    return apply("reshape", x, shape=tuple(shape), name=name)


def transpose(x: Tensor, axes: Optional[Sequence[int]] = None, *, name: Optional[str] = None) -> Tensor:
    """Permute axes (reverse them by default)."""
    return apply("transpose", x, axes=None if axes is None else tuple(axes), name=name)


def broadcast_to(x: Tensor, shape: Sequence[int], *, name: Optional[str] = None) -> Tensor:
    """Repeat ``x`` along size-1 and new leading axes to ``shape``."""
    return apply("broadcast_to", x, shape=tuple(shape), name=name)


def expand_dims(x: Tensor, axis: Any, *, name: Optional[str] = None) -> Tensor:
    """Insert size-1 axes at ``axis``."""
    return apply("expand_dims", x, axis=axis, name=name)


def squeeze(x: Tensor, axis: Axis = None, *, name: Optional[str] = None) -> Tensor:
    """Remove size-1 axes."""
    return apply("squeeze", x, axis=axis, name=name)


def concatenate(xs: Sequence[Tensor], axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Join along an existing axis."""
    return apply("concatenate", *xs, axis=axis, name=name)


def stack(xs: Sequence[Tensor], axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Join along a new axis."""
    return apply("stack", *xs, axis=axis, name=name)


def einsum(subscripts: str, *xs: Tensor, name: Optional[str] = None) -> Tensor:
    """Einstein summation, as ``numpy.einsum``."""
    return apply("einsum", *xs, subscripts=subscripts, name=name)


def take(x: Tensor, indices: Any, axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Entries of ``x`` at integer ``indices`` along ``axis`` (an embedding lookup)."""
    return apply("take", x, indices, axis=axis, name=name)


def clip(x: Tensor, low: Optional[float] = None, high: Optional[float] = None, *, name: Optional[str] = None) -> Tensor:
    """Limit entries to ``[low, high]``."""
    return apply("clip", x, low=low, high=high, name=name)


def softmax_cross_entropy(logits: Tensor, labels: Any, reduction: str = "mean", *, name: Optional[str] = None) -> Tensor:
    """Cross-entropy of integer ``labels`` under ``softmax(logits)``, fused and stable."""
    return apply("softmax_cross_entropy", logits, labels, reduction=reduction, name=name)


def binary_cross_entropy_with_logits(logits: Tensor, targets: Any, reduction: str = "mean", *, name: Optional[str] = None) -> Tensor:
    """Binary cross-entropy of ``targets`` under ``sigmoid(logits)``, stable."""
    return apply("binary_cross_entropy_with_logits", logits, targets, reduction=reduction, name=name)


def mse(prediction: Tensor, target: Any, reduction: str = "mean", *, name: Optional[str] = None) -> Tensor:
    """Squared error, reduced."""
    return apply("mse", prediction, target, reduction=reduction, name=name)


# ------------------------------------------- math, statistics, scans, selection (ops-math) ---
# numpy's signatures where numpy has the function, PyTorch's where only PyTorch does (topk); flags that
# numpy and PyTorch would read differently in the same position (ddof or unbiased?) are keyword-only.


class ValuesIndices(NamedTuple):
    """Values and their indices, two nodes (as ``torch.max(x, dim)`` and ``torch.topk`` return them).

    Unpack it (``values, indices = dg.topk(x, 3)``) or read ``.values`` and
    ``.indices``. The indices are int64 and have no gradient; the values'
    gradient flows back to the entries they came from.
    """

    values: Tensor
    indices: Tensor


def _suffixed(name: Optional[str], suffix: str) -> Optional[str]:
    return None if name is None else f"{name}_{suffix}"


def round(x: Tensor, decimals: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Round to ``decimals`` places, halves to even; gradient 0."""
    return apply("round", x, decimals=decimals, name=name)


def prod(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Product over ``axis`` (all axes by default); exact gradients with zeros."""
    return apply("prod", x, axis=axis, keepdims=keepdims, name=name)


def var(x: Tensor, axis: Axis = None, *, ddof: int = 0, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Variance over ``axis``, dividing by ``N - ddof`` (numpy's ``ddof=0`` by default; ``ddof=1`` is PyTorch's)."""
    return apply("var", x, axis=axis, ddof=ddof, keepdims=keepdims, name=name)


def std(x: Tensor, axis: Axis = None, *, ddof: int = 0, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Standard deviation over ``axis``, dividing by ``N - ddof``; gradient 0 where all entries are equal."""
    return apply("std", x, axis=axis, ddof=ddof, keepdims=keepdims, name=name)


def norm(x: Tensor, ord: Any = None, axis: Axis = None, keepdims: bool = False, *,
         name: Optional[str] = None) -> Tensor:
    """Vector or matrix norm, as ``numpy.linalg.norm`` (``ord`` 2, 1, inf, -inf, p, 0; matrices 'fro', 1, inf)."""
    return apply("norm", x, ord=ord, axis=axis, keepdims=keepdims, name=name)


def median(x: Tensor, axis: Axis = None, *, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Median over ``axis``, as ``numpy.median`` (the mean of the two middle entries for an even count)."""
    return apply("median", x, axis=axis, keepdims=keepdims, name=name)


def quantile(x: Tensor, q: Any, axis: Axis = None, *, keepdims: bool = False, method: str = "linear",
             name: Optional[str] = None) -> Tensor:
    """The ``q``-th quantile(s) over ``axis``, as ``numpy.quantile``; a sequence ``q`` adds a leading axis."""
    q = tuple(float(v) for v in q) if isinstance(q, (list, tuple)) or getattr(q, "ndim", 0) else float(q)
    return apply("quantile", x, q=q, axis=axis, keepdims=keepdims, method=method, name=name)


def cumsum(x: Tensor, axis: Optional[int] = None, *, name: Optional[str] = None) -> Tensor:
    """Cumulative sum along ``axis`` (of the flattened input by default)."""
    return apply("cumsum", x, axis=axis, name=name)


def cumprod(x: Tensor, axis: Optional[int] = None, *, name: Optional[str] = None) -> Tensor:
    """Cumulative product along ``axis`` (of the flattened input by default); exact gradients with zeros."""
    return apply("cumprod", x, axis=axis, name=name)


def logcumsumexp(x: Tensor, axis: Optional[int] = None, *, name: Optional[str] = None) -> Tensor:
    """``log(cumsum(exp(x)))`` along ``axis`` (of the flattened input by default), stable."""
    return apply("logcumsumexp", x, axis=axis, name=name)


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
    return ValuesIndices(values, argsort(x, axis, descending=descending, name=_suffixed(name, "indices")))


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
    return ValuesIndices(values, apply("argtopk", x, k=k, axis=axis, largest=largest, name=_suffixed(name, "indices")))


def _extreme_with_indices(op_name: str, arg_name: str, x: Tensor, axis: Axis, keepdims: bool,
                          name: Optional[str]) -> ValuesIndices:
    values = apply(op_name, x, axis=axis, keepdims=keepdims, name=name)
    return ValuesIndices(values, apply(arg_name, x, axis=axis, keepdims=keepdims, name=_suffixed(name, "indices")))
