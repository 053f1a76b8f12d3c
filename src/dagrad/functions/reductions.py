"""Reductions, statistics and scans along axes: ``dg.sum(x, 0)``, ``dg.var(x, ddof=1)``, ``dg.cumsum(x, 1)``.

numpy's signatures; flags that numpy and PyTorch would read differently in the same position
(``ddof`` or ``unbiased``?) are keyword-only.
"""

from __future__ import annotations

from typing import Any, Optional

from ..tensor import Tensor, apply
from .common import Axis
from .selection import extreme_with_indices

__all__ = [
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax", "prod", "var", "std", "norm", "median",
    "quantile", "cumsum", "cumprod", "logcumsumexp"
]


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
        return extreme_with_indices("max", "argmax", x, axis, keepdims, name)
    return apply("max", x, axis=axis, keepdims=keepdims, name=name)


def min(x: Tensor, axis: Axis = None, keepdims: bool = False, *, return_indices: bool = False,
        name: Optional[str] = None) -> Any:
    """Smallest entry over ``axis``; with ``return_indices``, ``ValuesIndices`` as ``torch.min(x, dim)``."""
    if return_indices:
        return extreme_with_indices("min", "argmin", x, axis, keepdims, name)
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
