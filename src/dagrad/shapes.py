"""Static shape algebra: shapes known when a node is added, with ``None`` for unknown sizes.

Shape rules are written with these helpers so that a mismatch is reported the
moment a node is added, naming the node, instead of deep inside numpy later.
A dimension of ``None`` (a batch size given at feed time) matches anything.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple, Union

Dim = Optional[int]
Shape = Tuple[Dim, ...]
Axis = Union[None, int, Sequence[int]]

__all__ = [
    "Dim",
    "Shape",
    "broadcast_shapes",
    "elementwise",
    "same_as_first",
    "normalize_axes",
    "reduced_shape",
    "matmul_shape",
    "fits",
    "format_shape",
]


def format_shape(shape: Shape) -> str:
    """Render a shape with ``?`` for unknown sizes: ``(?, 3)``."""
    inner = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _broadcast_dim(a: Dim, b: Dim) -> Dim:
    if a == 1:
        return b
    if b == 1:
        return a
    if a is None:
        return b
    if b is None or a == b:
        return a
    raise ValueError


def broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy's broadcasting rule over shapes that may contain ``None``."""
    ndim = max((len(s) for s in shapes), default=0)
    result: list[Dim] = [1] * ndim
    for shape in shapes:
        padded = (1,) * (ndim - len(shape)) + tuple(shape)
        for i, d in enumerate(padded):
            try:
                result[i] = _broadcast_dim(result[i], d)
            except ValueError:
                listed = " and ".join(format_shape(s) for s in shapes)
                raise ValueError(f"shapes {listed} do not broadcast") from None
    return tuple(result)


def elementwise(*shapes: Shape, **attrs) -> Shape:
    """Shape rule of an elementwise op: the broadcast of its inputs."""
    return broadcast_shapes(*shapes)


def same_as_first(shape: Shape, *rest: Shape, **attrs) -> Shape:
    """Shape rule of an op whose output has its first input's shape."""
    return tuple(shape)


def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """Turn ``axis`` (None, int or sequence, negatives allowed) into sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis {axis} repeats an axis")
    return tuple(sorted(out))


def reduced_shape(shape: Shape, axis: Axis = None, keepdims: bool = False) -> Shape:
    """Shape after reducing ``axis`` away (or to size 1 with ``keepdims``)."""
    axes = normalize_axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _same_dim(a: Dim, b: Dim) -> bool:
    return a is None or b is None or a == b


def matmul_shape(a: Shape, b: Shape) -> Shape:
    """numpy's ``matmul`` shape rule, 1-D operands included."""
    if len(a) == 0 or len(b) == 0:
        raise ValueError("matmul needs at least 1-D operands, not scalars")
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if not _same_dim(a2[-1], b2[-2]):
        raise ValueError(
            f"contracted sizes differ: {format_shape(a)} @ {format_shape(b)} "
            f"({a2[-1]} versus {b2[-2]})"
        )
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(b) == 1:
        out = out[:-1]
    if len(a) == 1:
        out = out[:-2] + out[-1:] if len(b) != 1 else out[:-1]
    return out


def fits(actual: Iterable[int], declared: Shape) -> bool:
    """Whether a concrete shape matches a declared one (``None`` matches any size)."""
    actual = tuple(actual)
    return len(actual) == len(declared) and all(
        d is None or d == a for a, d in zip(actual, declared)
    )
