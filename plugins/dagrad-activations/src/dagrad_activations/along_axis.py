"""Activations along an axis: ``softmin`` and the gated linear unit ``glu``."""

from __future__ import annotations

import numpy as np

import dagrad as dg
from dagrad.extend import Sample, away_from_zero, float_dtype, normalize_axes, op, static_rank

from .special import sigmoid

# -------------------------------------------------------------- softmin --


def _softmin_rule(x, *, axis=-1):
    if len(x):
        normalize_axes(axis, len(x))  # a ValueError names an axis the input does not have
    return tuple(x)


def _softmin_samples(rng):
    cases = [((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((1, 1), -1), ((0, 5), -1), ((5,), 0), ((), -1)]
    return [Sample((away_from_zero(rng, s),), {"axis": a}, f"shape {s}, axis={a}") for s, a in cases]


@op(shape=_softmin_rule, dtype=float_dtype, float_inputs=True, saves=("out",), samples=_softmin_samples,
    counterparts={"torch": "torch.nn.functional.softmin"})
def softmin(x, *, axis=-1):
    """``softmax(-x)`` along ``axis``: weights that favour the smallest entries, stable for large ones."""
    shifted = (np.min(x, axis=axis, keepdims=True) if x.size else 0) - x
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


@softmin.vjp
def _(g, x, out, *, axis):
    return (out * (np.sum(g * out, axis=axis, keepdims=True) - g),)


@softmin.graph_vjp
def _(g, x, out, *, axis):
    along = axis if static_rank(x, "softmin") else None   # a 0-d input: the sum is of the one entry
    return (out * (dg.sum(g * out, along, keepdims=True) - g),)


# ------------------------------------------------------------------ glu --


def _glu_rule(x, *, axis=-1):
    if not len(x):
        raise ValueError("glu needs at least one axis to halve")
    (a,) = normalize_axes(axis, len(x))
    size = x[a]
    if size is None:
        raise ValueError(f"glu halves axis {axis}, whose size must be known when the graph is built")
    if size % 2:
        raise ValueError(f"glu halves axis {axis}, whose size {size} is odd")
    return tuple(x[:a]) + (size // 2,) + tuple(x[a + 1:])


def _glu_samples(rng):
    cases = [((3, 4), -1), ((4, 3), 0), ((2, 2, 3), 1), ((1, 2), -1), ((0, 6), -1), ((3, 0), -1), ((2,), 0)]
    return [Sample((away_from_zero(rng, s),), {"axis": a}, f"shape {s}, axis={a}") for s, a in cases]


@op(shape=_glu_rule, dtype=float_dtype, float_inputs=True, saves=("inputs",), samples=_glu_samples,
    counterparts={"torch": "torch.nn.functional.glu"})
def glu(x, *, axis=-1):
    """Gated linear unit: ``a * sigmoid(b)`` where ``a`` and ``b`` are the halves of ``x`` along ``axis``."""
    a, b = np.split(x, 2, axis=axis)
    return a * sigmoid(b)


@glu.vjp
def _(g, x, *, axis):
    a, b = np.split(x, 2, axis=axis)
    s = sigmoid(b)
    return (np.concatenate([g * s, g * a * s * (1 - s)], axis=axis),)


@glu.graph_vjp
def _(g, x, *, axis):
    ndim = static_rank(x, "glu")
    (k,) = normalize_axes(axis, ndim)
    half = x.shape[k] // 2                       # known: the shape rule requires it
    lead = (slice(None),) * k
    a, b = x[lead + (slice(0, half),)], x[lead + (slice(half, 2 * half),)]
    s = dg.sigmoid(b)
    return (dg.concatenate([g * s, g * a * s * (1 - s)], axis=k),)
