"""numpy-style functions over Tensors, for ops whose attributes numpy passes positionally.

``dagrad.ops.NAME`` is the op itself (inputs positional, attributes by
keyword); these wrappers give the familiar signatures: ``dg.sum(x, 0)``,
``dg.reshape(x, (2, 3))``, ``dg.concatenate([a, b])``, ``dg.einsum("ij,jk", a, b)``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from .tensor import Tensor, apply

__all__ = [
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax",
    "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze",
    "concatenate", "stack", "einsum", "take", "clip", "softmax_cross_entropy",
    "binary_cross_entropy_with_logits", "mse",
]

Axis = Optional[Any]


def sum(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Sum over ``axis`` (all axes by default)."""
    return apply("sum", x, axis=axis, keepdims=keepdims, name=name)


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Mean over ``axis`` (all axes by default)."""
    return apply("mean", x, axis=axis, keepdims=keepdims, name=name)


def max(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Largest entry over ``axis``."""
    return apply("max", x, axis=axis, keepdims=keepdims, name=name)


def min(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Smallest entry over ``axis``."""
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
