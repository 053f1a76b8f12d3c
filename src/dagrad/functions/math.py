"""``einsum``, ``clip`` and ``round``: elementwise and contraction ops whose attributes numpy passes positionally."""

from __future__ import annotations

from typing import Optional

from ..tensor import Tensor, apply

__all__ = ["einsum", "clip", "round"]


def einsum(subscripts: str, *xs: Tensor, name: Optional[str] = None) -> Tensor:
    """Einstein summation, as ``numpy.einsum``."""
    return apply("einsum", *xs, subscripts=subscripts, name=name)


def clip(x: Tensor, low: Optional[float] = None, high: Optional[float] = None, *, name: Optional[str] = None) -> Tensor:
    """Limit entries to ``[low, high]``."""
    return apply("clip", x, low=low, high=high, name=name)


def round(x: Tensor, decimals: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Round to ``decimals`` places, halves to even; gradient 0."""
    return apply("round", x, decimals=decimals, name=name)
