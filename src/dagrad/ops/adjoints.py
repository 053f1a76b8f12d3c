"""Ops that gradient graphs are built from: the transposes of broadcasting, reshaping, indexing and joining.

A graph VJP often needs a size that is known only when the graph runs (a batch
of ``None`` rows): how far to sum a broadcast gradient back, how to reshape
it, where to scatter it. Each op here takes those sizes from an input ``like``
whose values it never reads (``saves=()``), so a gradient built from them is
an ordinary node for any feed. They come in transposed pairs (``sum_to`` and
``broadcast_like``, ``add_at`` and ``getitem``, ``index_add`` and ``take``,
``split_like`` and ``concatenate``), so each one's graph VJP is its partner,
to any order.

The functions at the end (``zeros_like``, ``expand_reduced``, ``is_positive``
...) build small Tensor expressions that graph VJPs share; ``vector_on_axis``
serves numpy forwards and graph VJPs alike.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np

from ..errors import GradientError
from ..index import decode_index, encode_index
from .presets import sum_dtype
from ..opdef import Sample, first_dtype, op
from ..shapes import Shape, broadcast_shapes, broadcasts_to, format_shape, normalize_axes
from ..tensor import Tensor, apply
from .samples import away_from_zero

__all__ = [
    "sum_to_shape", "sum_to", "broadcast_like", "reshape_like", "add_at", "index_add", "split_like",
    "zeros_like", "ones_like", "expand_reduced", "reduced_count", "broadcast_count", "reshape_as",
    "is_positive", "is_nonzero", "static_rank", "vector_on_axis",
]


def sum_to_shape(g: np.ndarray, shape: tuple) -> Optional[np.ndarray]:
    """Sum a broadcast gradient back to ``shape``; None if it cannot have come from it.

    ``np.add.reduce`` is called directly: ``ndarray.sum`` goes through a Python
    wrapper, which is most of the cost for the small arrays of a bias gradient.
    """
    lead = g.ndim - len(shape)
    if lead < 0:
        return None
    inner = []
    for i, d in enumerate(shape):
        gd = g.shape[lead + i]
        if d == gd:
            continue
        if d != 1:
            return None
        inner.append(lead + i)
    if not inner:
        return np.add.reduce(g, axis=tuple(range(lead))) if lead else g
    return np.add.reduce(g, axis=tuple(range(lead)) + tuple(inner), keepdims=True).reshape(shape)


def _pairs(rng, cases) -> list:
    out = [Sample((away_from_zero(rng, s), away_from_zero(rng, t)), {}, f"{s} and {t}") for s, t in cases]
    x = away_from_zero(rng, (2, 3))
    out.append(Sample((x, x), {}, "the same input twice"))
    return out


# ------------------------------------------------------ broadcasting ---


def _sum_to_rule(g: Shape, like: Shape) -> Shape:
    if not broadcasts_to(like, g):
        raise ValueError(f"{format_shape(g)} cannot be summed to {format_shape(like)}")
    return tuple(like)


def _broadcast_like_rule(x: Shape, like: Shape) -> Shape:
    if not broadcasts_to(x, like):
        raise ValueError(f"{format_shape(x)} does not broadcast to {format_shape(like)}")
    return tuple(like)


@op(shape=_sum_to_rule, dtype=sum_dtype, saves=(),
    samples=lambda rng: _pairs(rng, [((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((0, 3), (1, 3)), ((2, 1), (2, 1))]), counterparts={"torch": "torch.Tensor.sum_to_size"})
def sum_to(g, like):
    """``g`` summed over its broadcast axes back to the shape of ``like`` (whose values are not read)."""
    out = sum_to_shape(g, like.shape)
    if out is None:
        raise ValueError(f"an array of shape {g.shape} cannot be summed to shape {like.shape}")
    return out


@sum_to.vjp
def _(h, g, like):
    return np.broadcast_to(h, g.shape), None


@sum_to.graph_vjp
def _(h, g, like):
    return broadcast_like(h, g), None


@op(shape=_broadcast_like_rule, dtype=first_dtype, saves=(),
    samples=lambda rng: _pairs(rng, [((4,), (3, 4)), ((3, 1), (2, 3, 4)), ((1, 3), (0, 3)), ((), (2, 2))]),
    counterparts={"torch": "torch.Tensor.expand_as"})
def broadcast_like(x, like):
    """``x`` repeated along size-1 and new leading axes to the shape of ``like`` (whose values are not read)."""
    return np.broadcast_to(x, like.shape)


@broadcast_like.vjp
def _(h, x, like):
    return sum_to_shape(h, x.shape), None


@broadcast_like.graph_vjp
def _(h, x, like):
    return sum_to(h, x), None


# --------------------------------------------------------- reshaping ---


def _reshape_like_rule(x: Shape, like: Shape) -> Shape:
    if None not in x and None not in like and math.prod(x) != math.prod(like):
        raise ValueError(f"cannot reshape {format_shape(x)} into {format_shape(like)}")
    return tuple(like)


@op(shape=_reshape_like_rule, dtype=first_dtype, saves=(),
    samples=lambda rng: _pairs(rng, [((3, 4), (4, 3)), ((2, 3), (6,)), ((0, 3), (3, 0)), ((1,), ())]),
    counterparts={"torch": "torch.Tensor.reshape_as"})
def reshape_like(x, like):
    """The entries of ``x`` in the shape of ``like`` (whose values are not read)."""
    return np.reshape(x, like.shape)


@reshape_like.vjp
def _(h, x, like):
    return h.reshape(x.shape), None


@reshape_like.graph_vjp
def _(h, x, like):
    return reshape_like(h, x), None


# ---------------------------------------------------------- indexing ---


def _like_rule(g: Shape, like: Shape, *rest: Shape, **attrs) -> Shape:
    return tuple(like)


def _add_at_samples(rng) -> list:
    x = away_from_zero(rng, (2, 3))
    cases = [
        ((2, 3), (4, 5), (slice(1, 3), slice(None, None, 2))),
        ((4, 5), (4, 5), (np.array([0, 2, 2, 3]),)),          # a repeated row accumulates
        ((0,), (0, 3), (slice(None), 1)),
        ((), (1, 4), (0, -1)),
    ]
    out = [Sample((away_from_zero(rng, s), away_from_zero(rng, t)), {"index": encode_index(i)}, f"{t}[{i!r}]")
           for s, t, i in cases]
    out.append(Sample((x, x), {"index": ()}, "the same input twice, whole-array index"))
    return out


@op(shape=_like_rule, dtype=first_dtype, saves=(), samples=_add_at_samples, counterparts={"numpy": "numpy.add.at"})
def add_at(g, like, *, index=()):
    """Zeros shaped like ``like`` with ``g`` added at ``[index]`` (repeated indices add up): getitem's transpose."""
    out = np.zeros(like.shape, g.dtype)
    decoded = decode_index(index)
    if any(item[0] == "array" for item in index):
        np.add.at(out, decoded, g)
    else:
        out[decoded] = g
    return out


@add_at.vjp
def _(h, g, like, *, index):
    return h[decode_index(index)], None


@add_at.graph_vjp
def _(h, g, like, *, index):
    return apply("getitem", h, index=index), None


def _index_add_samples(rng) -> list:
    x = away_from_zero(rng, (3, 3))
    cases = [
        ((4, 3), (5, 3), np.array([0, 3, 3, 1]), 0),
        ((5, 2, 2), (5, 3), np.array([[1, 2], [0, 0]]), 1),
        ((0, 3), (5, 3), np.zeros((0,), dtype=np.int64), 0),
        ((1,), (1, 4), np.array(2), -1),
    ]
    out = [Sample((away_from_zero(rng, s), away_from_zero(rng, t), i), {"axis": a}, f"{t} at {i.tolist()}, axis {a}")
           for s, t, i, a in cases]
    out.append(Sample((x, x, np.arange(3)), {"axis": 0}, "the same input twice"))
    return out


@op(shape=_like_rule, dtype=first_dtype, saves=("inputs",), samples=_index_add_samples,
    counterparts={"torch": "torch.index_add"})
def index_add(g, like, indices, *, axis=0):
    """Zeros shaped like ``like`` with ``g`` added at integer ``indices`` along ``axis``: take's transpose."""
    if indices.dtype.kind not in "iu":
        raise TypeError(f"index_add needs integer indices, got {indices.dtype}")
    a = normalize_axes(axis, like.ndim)[0]
    out = np.zeros(like.shape, g.dtype)
    np.add.at(out, (slice(None),) * a + (indices,), g)
    return out


@index_add.vjp
def _(h, g, like, indices, *, axis):
    return np.take(h, indices, axis=normalize_axes(axis, h.ndim)[0]), None, None


@index_add.graph_vjp
def _(h, g, like, indices, *, axis):
    return apply("take", h, indices, axis=axis), None, None


# ------------------------------------------------------------ joining ---


def _split_like_rule(g: Shape, *like: Shape, axis=0, part=0) -> Shape:
    if not 0 <= part < len(like):
        raise ValueError(f"part {part} is not one of the {len(like)} pieces")
    (a,) = normalize_axes(axis, len(g))
    if len(like[part]) != len(g):
        raise ValueError(f"piece {format_shape(like[part])} does not have the {len(g)} axes of {format_shape(g)}")
    return tuple(g[:a]) + (like[part][a],) + tuple(g[a + 1:])


def _split_like_samples(rng) -> list:
    x = away_from_zero(rng, (2, 3))
    return [
        Sample(tuple(away_from_zero(rng, s) for s in [(5, 3), (2, 3), (3, 3)]), {"axis": 0, "part": 1}, "second of two"),
        Sample(tuple(away_from_zero(rng, s) for s in [(2, 7), (2, 1), (2, 4), (2, 2)]), {"axis": -1, "part": 2},
               "last of three along the last axis"),
        Sample(tuple(away_from_zero(rng, s) for s in [(2, 3), (0, 3), (2, 3)]), {"axis": 0, "part": 0}, "an empty piece"),
        Sample((x, x), {"axis": 1, "part": 0}, "the same input twice: the whole"),
    ]


@op(shape=_split_like_rule, dtype=first_dtype, saves=(), samples=_split_like_samples)
def split_like(g, *like, axis=0, part=0):
    """Piece ``part`` of ``g`` cut along ``axis`` into pieces as long as the ``like`` inputs: concatenate's transpose."""
    a = normalize_axes(axis, g.ndim)[0]
    start = sum(piece.shape[a] for piece in like[:part])
    return g[(slice(None),) * a + (slice(start, start + like[part].shape[a]),)]


@split_like.vjp
def _(h, g, *like, axis, part):
    a = normalize_axes(axis, h.ndim)[0]
    pieces = [h if i == part else np.zeros(h.shape[:a] + (piece.shape[a],) + h.shape[a + 1:], h.dtype)
              for i, piece in enumerate(like)]
    return (np.concatenate(pieces, axis=a),) + (None,) * len(like)


@split_like.graph_vjp
def _(h, g, *like, axis, part):
    pieces = [h if i == part else zeros_like(piece, h.dtype) for i, piece in enumerate(like)]
    return (apply("concatenate", *pieces, axis=axis),) + (None,) * len(like)


# -------------------------------------------- helpers for graph VJPs ---


def zeros_like(x: Tensor, dtype=None) -> Tensor:
    """Zeros of ``x``'s run-time shape (``x``'s values are not read), of ``dtype`` or ``x``'s dtype."""
    return broadcast_like(np.zeros((), dtype or x.dtype), x)


def ones_like(x: Tensor, dtype=None) -> Tensor:
    """Ones of ``x``'s run-time shape (``x``'s values are not read), of ``dtype`` or ``x``'s dtype."""
    return broadcast_like(np.ones((), dtype or x.dtype), x)


def static_rank(x: Tensor, who: str) -> int:
    """``x``'s number of axes; ``GradientError`` naming ``who`` when no shape rule made it known."""
    if x.ndim is None:
        raise GradientError(
            f"{who}: building its gradient needs the number of axes of {x.name!r}, whose shape is unknown "
            "(an op without a shape rule made it); give that op a shape rule"
        )
    return x.ndim


def expand_reduced(g: Tensor, x: Tensor, axis, keepdims: bool) -> Tensor:
    """``g``, the gradient of a reduction of ``x`` over ``axis``, with the reduced axes put back as size 1."""
    if keepdims or axis is None:
        return g  # kept axes, or a scalar: either broadcasts against x already
    return apply("expand_dims", g, axis=normalize_axes(axis, static_rank(x, "a reduction")))


def reduced_count(x: Tensor, axis=None, dtype=None) -> Union[int, Tensor]:
    """How many entries of ``x`` a reduction over ``axis`` combines, at least 1.

    A Python int when those sizes are static; otherwise a node (shaped like the
    reduction with ``keepdims=True``, of ``dtype`` or ``x``'s dtype) that
    counts them at run time.
    """
    shape = x.shape
    if shape is not None:
        sizes = [shape[a] for a in normalize_axes(axis, len(shape))]
        if None not in sizes:
            return max(math.prod(sizes), 1)
    counted = apply("sum", ones_like(x, dtype), axis=axis, keepdims=True)
    return apply("maximum", counted, 1)


def broadcast_count(*xs: Tensor, dtype=None) -> Union[int, Tensor]:
    """How many entries the broadcast of ``xs`` has, at least 1: what the mean of an elementwise loss divides by.

    A Python int when every size is static; otherwise a scalar node of ``dtype``
    (or the first input's dtype) that counts them at run time.
    """
    shapes = [x.shape for x in xs]
    if all(s is not None and None not in s for s in shapes):
        return max(math.prod(broadcast_shapes(*shapes)), 1)
    dtype = dtype or xs[0].dtype
    ones = ones_like(xs[0], dtype)
    for x in xs[1:]:
        ones = ones * ones_like(x, dtype)
    return apply("maximum", apply("sum", ones), 1)


def reshape_as(g: Tensor, x: Tensor) -> Tensor:
    """``g`` reshaped to ``x``'s shape: a static ``reshape`` when at most one size is unknown, else ``reshape_like``."""
    shape = x.shape
    if shape is not None and sum(d is None for d in shape) <= 1:
        return apply("reshape", g, shape=tuple(-1 if d is None else d for d in shape))
    return reshape_like(g, x)


def vector_on_axis(v, axis: int, ndim: int):
    """A vector of length C (a numpy array or a Tensor) laid along ``axis`` of an ``ndim``-axis array.

    Per-channel weights, class indices or running statistics multiply an
    ``(N, C, H, W)`` input as ``(C, 1, 1)``: numpy broadcasting then lines the
    vector up with axis 1 and repeats it over the others. The leading axes need
    no size-1 padding, so a vector on the last axis is returned unchanged. Both
    ``ndarray.reshape`` and ``Tensor.reshape`` take the shape, so a numpy
    forward and its graph VJP share this one function.

    Examples
    --------
    >>> vector_on_axis(np.arange(3), 1, 4).shape, vector_on_axis(np.arange(3), -1, 4).shape
    ((3, 1, 1), (3,))
    """
    trailing = ndim - 1 - (axis % ndim if axis < 0 else axis)
    return v.reshape((-1,) + (1,) * trailing) if trailing > 0 else v


# Boolean masks: not floating point, so never differentiated. A gradient built with one is
# piecewise constant in the masked input, whose derivative is zero wherever it exists.


def is_nonzero(t: Tensor) -> Tensor:
    """The boolean mask ``t != 0`` (a ``not_equal`` node; NaN counts as nonzero)."""
    return apply("not_equal", t, 0)


def is_positive(t: Tensor) -> Tensor:
    """The boolean mask ``t > 0`` (a ``greater`` node; NaN is not positive)."""
    return apply("greater", t, 0)
