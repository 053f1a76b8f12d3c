"""Reductions and normalisations over axes: sum, mean, max, min, logsumexp, softmax, log_softmax.

The ops here are named after the Python builtins they shadow (``sum``, ``max``,
``min``); use ``builtins.max`` and friends for the originals.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..opdef import Sample, float_dtype, op
from ..shapes import normalize_axes, same_as_first
from ..tensor import apply
from .adjoints import broadcast_like, expand_reduced, is_nonzero, reduced_count, static_rank
from .presets import reduction_op, sum_dtype
from .samples import away_from_zero


def _spread(g, shape):
    """``g`` (reduced, with its axes reinserted) repeated over ``shape``: a reduction's gradient.

    A small result is filled into a fresh array, ``np.broadcast_to``'s Python
    machinery costing more than the copy; a large one is a read-only broadcast
    view, which costs no memory.
    """
    if math.prod(shape) > 65536:
        return np.broadcast_to(g, shape)
    out = np.empty(shape, g.dtype)
    out[...] = g
    return out


def _expand(g, x_ndim, axis, keepdims):
    """Reinsert reduced axes into ``g`` so it broadcasts against the input.

    A reshape, not ``np.expand_dims``, whose argument checking costs more
    than the rest of a small reduction's VJP.
    """
    if keepdims or g.ndim == x_ndim or g.ndim == 0:  # a 0-d gradient broadcasts against anything as it is
        return g
    shape = list(g.shape)
    for a in normalize_axes(axis, x_ndim):
        shape.insert(a, 1)
    return g.reshape(shape)


def _max_samples(rng):
    # Distinct values (a permutation) so no tie sits inside a finite-difference step; size-0 reductions are undefined.
    cases = [((3, 4), None, False), ((3, 4), 0, False), ((3, 4), -1, True), ((2, 3, 4), (0, 2), False), ((1, 5), 1, True), ((), None, False)]
    out = []
    for s, a, k in cases:
        size = int(np.prod(s))
        values = (rng.permutation(size).reshape(s) * 0.1 + 0.05).astype(np.float64)
        out.append(Sample((values,), {"axis": a, "keepdims": k}, f"shape {s}, axis={a}, keepdims={k}"))
    return out


# ------------------------------------------------------------------ sums ---


@reduction_op(dtype=sum_dtype, saves=(), counterparts={"numpy": "numpy.sum", "torch": "torch.sum"})
def sum(x, *, axis=None, keepdims=False):
    """Sum over ``axis`` (all axes by default)."""
    return np.add.reduce(x, axis=axis, keepdims=keepdims)  # np.sum's own reduction, without its Python wrapper


@sum.vjp
def _(g, x, *, axis, keepdims):
    return (_spread(_expand(g, x.ndim, axis, keepdims), x.shape),)


@sum.graph_vjp
def _(g, x, *, axis, keepdims):
    return (broadcast_like(expand_reduced(g, x, axis, keepdims), x),)


@reduction_op(dtype=float_dtype, saves=(), counterparts={"numpy": "numpy.mean", "torch": "torch.mean"})
def mean(x, *, axis=None, keepdims=False):
    """Mean over ``axis`` (all axes by default)."""
    return np.mean(x, axis=axis, keepdims=keepdims)


@mean.vjp
def _(g, x, *, axis, keepdims):
    count = math.prod(x.shape[a] for a in normalize_axes(axis, x.ndim))
    return (_spread(_expand(g, x.ndim, axis, keepdims) / builtins.max(count, 1), x.shape),)


@mean.graph_vjp
def _(g, x, *, axis, keepdims):
    return (broadcast_like(expand_reduced(g, x, axis, keepdims) / reduced_count(x, axis), x),)


# ------------------------------------------------------------- extremes ---


def _extreme_vjp(g, x, out, axis, keepdims):
    """Gradient of max/min: to the winning entries, split evenly between ties."""
    winners = x == _expand(out, x.ndim, axis, keepdims)
    counts = winners.sum(axis=axis, keepdims=True)
    return (_expand(g, x.ndim, axis, keepdims) * winners / counts).astype(g.dtype, copy=False)


def _extreme_graph_vjp(g, x, out, axis, keepdims):
    """As the numpy rule; the winners are a boolean mask, so the split is constant to higher orders."""
    losers = is_nonzero(x - expand_reduced(out, x, axis, keepdims))
    winners = 1 - losers.astype(x.dtype)
    counts = sum(winners, axis=axis, keepdims=True)
    return (expand_reduced(g, x, axis, keepdims) * winners / counts,)


@reduction_op(samples=_max_samples, counterparts={"numpy": "numpy.max", "torch": "torch.amax"})
def max(x, *, axis=None, keepdims=False):
    """Largest entry over ``axis``; ties share the gradient evenly."""
    return np.max(x, axis=axis, keepdims=keepdims)


@max.vjp
def _(g, x, out, *, axis, keepdims):
    return (_extreme_vjp(g, x, out, axis, keepdims),)


@max.graph_vjp
def _(g, x, out, *, axis, keepdims):
    return _extreme_graph_vjp(g, x, out, axis, keepdims)


@reduction_op(samples=_max_samples, counterparts={"numpy": "numpy.min", "torch": "torch.amin"})
def min(x, *, axis=None, keepdims=False):
    """Smallest entry over ``axis``; ties share the gradient evenly."""
    return np.min(x, axis=axis, keepdims=keepdims)


@min.vjp
def _(g, x, out, *, axis, keepdims):
    return (_extreme_vjp(g, x, out, axis, keepdims),)


@min.graph_vjp
def _(g, x, out, *, axis, keepdims):
    return _extreme_graph_vjp(g, x, out, axis, keepdims)


# ------------------------------------------------------------ softmaxes ---


def _softmax_samples(rng):
    cases = [((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((1, 1), -1), ((0, 5), -1), ((5,), 0)]
    return [Sample((away_from_zero(rng, s),), {"axis": a}, f"shape {s}, axis={a}") for s, a in cases]


def _lse_samples(rng):
    cases = [((3, 4), -1, False), ((3, 4), 0, True), ((2, 3, 4), (0, 2), False), ((1, 1), None, False), ((0, 5), -1, False)]
    return [Sample((away_from_zero(rng, s),), {"axis": a, "keepdims": k}, f"shape {s}, axis={a}") for s, a, k in cases]


@reduction_op(dtype=float_dtype, float_inputs=True, samples=_lse_samples,
    counterparts={"scipy": "scipy.special.logsumexp", "torch": "torch.logsumexp"})
def logsumexp(x, *, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over ``axis``, stable for large entries."""
    if x.size == 0:
        return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)
    total = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return total if keepdims else np.squeeze(total, axis=normalize_axes(axis, x.ndim))


@logsumexp.vjp
def _(g, x, out, *, axis, keepdims):
    return (_expand(g, x.ndim, axis, keepdims) * np.exp(x - _expand(out, x.ndim, axis, keepdims)),)


@logsumexp.graph_vjp
def _(g, x, out, *, axis, keepdims):
    return (expand_reduced(g, x, axis, keepdims) * apply("exp", x - expand_reduced(out, x, axis, keepdims)),)


@op(shape=same_as_first, dtype=float_dtype, float_inputs=True, saves=("out",), samples=_softmax_samples,
    counterparts={"scipy": "scipy.special.softmax", "torch": "torch.nn.functional.softmax"})
def softmax(x, *, axis=-1):
    """Softmax along ``axis``, stable for large entries."""
    shifted = x - (np.max(x, axis=axis, keepdims=True) if x.size else 0)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


@softmax.vjp
def _(g, x, out, *, axis):
    return (out * (g - np.sum(g * out, axis=axis, keepdims=True)),)


def _along(x, axis):
    """The axis a softmax's sum runs along; none for a 0-d input, which numpy's reductions allow an axis."""
    return axis if static_rank(x, "a softmax") else None


@softmax.graph_vjp
def _(g, x, out, *, axis):
    return (out * (g - sum(g * out, axis=_along(x, axis), keepdims=True)),)


@op(shape=same_as_first, dtype=float_dtype, float_inputs=True, saves=("out",), samples=_softmax_samples,
    counterparts={"scipy": "scipy.special.log_softmax", "torch": "torch.nn.functional.log_softmax"})
def log_softmax(x, *, axis=-1):
    """Logarithm of the softmax along ``axis``, stable for large entries."""
    shifted = x - (np.max(x, axis=axis, keepdims=True) if x.size else 0)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@log_softmax.vjp
def _(g, x, out, *, axis):
    return (g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),)


@log_softmax.graph_vjp
def _(g, x, out, *, axis):
    return (g - apply("exp", out) * sum(g, axis=_along(x, axis), keepdims=True),)

