"""Piecewise-linear activations: relu6, hardtanh, hardsigmoid, hardswish, leaky_relu and prelu (a learned slope).

Their derivatives are piecewise constant, so the graph VJPs build each
piece's mask as a boolean node (never differentiated: the second derivative
is zero wherever it exists). At a kink the derivative is PyTorch's: the flat
side for ``hardtanh``, ``relu6`` and ``hardsigmoid``, the slope for
``leaky_relu`` and ``prelu`` at 0, and for ``hardswish`` 0 at -3 and 1 at 3.
"""

from __future__ import annotations

import warnings

import numpy as np

import dagrad as dg
from dagrad.extend import (Sample, away_from_zero, dims_agree, float_unary_op, is_positive, op, reshape_as, static_rank,
                           unary_op, vector_on_axis)

from .samples import avoiding, settings


def _number(value, what: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not {value!r}")


def _inside(g, x, low, high):
    """``g`` where ``low < x < high``, else 0 (boolean masks)."""
    return dg.where(is_positive(x - low), dg.where(is_positive(high - x), g, 0), 0)


# ------------------------------------------------------------- clamps --


def _hardtanh_rule(x, *, min_val=-1.0, max_val=1.0):
    _number(min_val, "min_val")
    _number(max_val, "max_val")
    if min_val > max_val:
        raise ValueError(f"min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return tuple(x)


@float_unary_op(shape=_hardtanh_rule, saves=("inputs",),
                samples=settings({"min_val": -1.0, "max_val": 1.0}, {"min_val": -0.5, "max_val": 2.0},
                                 make=avoiding(-1.0, 1.0, -0.5, 2.0, low=-3.0, high=3.0)),
                counterparts={"torch": "torch.nn.functional.hardtanh"})
def hardtanh(x, *, min_val=-1.0, max_val=1.0):
    """``x`` clamped to ``[min_val, max_val]``; the gradient is 1 strictly inside, 0 elsewhere."""
    return np.clip(x, min_val, max_val)


@hardtanh.vjp
def _(g, x, *, min_val, max_val):
    return (g * ((x > min_val) & (x < max_val)),)


@hardtanh.graph_vjp
def _(g, x, *, min_val, max_val):
    return (_inside(g, x, min_val, max_val),)


@float_unary_op(saves=("inputs",), samples=settings({}, make=avoiding(0.0, 6.0, low=-2.0, high=8.0)),
                counterparts={"torch": "torch.nn.functional.relu6"})
def relu6(x):
    """``min(max(x, 0), 6)``: ``hardtanh(x, 0, 6)``, the activation of MobileNets."""
    return np.clip(x, 0, 6)


@relu6.vjp
def _(g, x):
    return (g * ((x > 0) & (x < 6)),)


@relu6.graph_vjp
def _(g, x):
    return (_inside(g, x, 0, 6),)


@float_unary_op(saves=("inputs",), samples=settings({}, make=avoiding(-3.0, 3.0, low=-5.0, high=5.0)),
                counterparts={"torch": "torch.nn.functional.hardsigmoid"})
def hardsigmoid(x):
    """``relu6(x + 3) / 6``: 0 below -3, 1 above 3, linear between."""
    return np.minimum(np.maximum(x + 3, 0), 6) / 6


@hardsigmoid.vjp
def _(g, x):
    return (g * ((x > -3) & (x < 3)) / 6,)


@hardsigmoid.graph_vjp
def _(g, x):
    return (_inside(g / 6, x, -3, 3),)


@float_unary_op(saves=("inputs",), samples=settings({}, make=avoiding(-3.0, 3.0, low=-5.0, high=5.0)),
                counterparts={"torch": "torch.nn.functional.hardswish"})
def hardswish(x):
    """``x * relu6(x + 3) / 6``, the activation of MobileNetV3."""
    return x * np.minimum(np.maximum(x + 3, 0), 6) / 6


@hardswish.vjp
def _(g, x):
    return (np.where(x <= -3, 0, np.where(x < 3, g * (x / 3 + 0.5), g)),)


@hardswish.graph_vjp
def _(g, x):
    """``x / 3 + 1/2`` between the kinks (its derivative, ``1/3``, is the second one), the pieces by boolean masks."""
    return (dg.where(is_positive(x + 3), dg.where(is_positive(3 - x), g * (x / 3 + 0.5), g), 0),)


# -------------------------------------------------------- leaky slopes --


def _slope(negative_slope, slope, warn: bool = False) -> float:
    """The negative slope; ``slope`` is its deprecated name (dagrad-activations 0.1)."""
    if slope is None:
        return negative_slope
    if warn:
        warnings.warn("leaky_relu's attribute slope= is deprecated; use negative_slope= (PyTorch's name)",
                      DeprecationWarning, stacklevel=3)
    if negative_slope not in (0.01, slope):
        raise ValueError(f"give negative_slope= only (slope= is its deprecated name), not both "
                         f"({negative_slope!r} and {slope!r})")
    return slope


def _leaky_rule(x, *, negative_slope=0.01, slope=None):
    _number(_slope(negative_slope, slope, warn=True), "negative_slope")
    return tuple(x)


@unary_op(shape=_leaky_rule, saves=("inputs",),
          samples=settings({"negative_slope": 0.01}, {"negative_slope": -0.3}),
          counterparts={"torch": "torch.nn.functional.leaky_relu"})
def leaky_relu(x, *, negative_slope=0.01, slope=None):
    """``x`` for x > 0, ``negative_slope * x`` otherwise; ``slope=`` is the deprecated name of ``negative_slope=``."""
    s = _slope(negative_slope, slope)
    return np.where(x > 0, x, s * x).astype(x.dtype, copy=False)


@leaky_relu.vjp
def _(g, x, *, negative_slope, slope):
    return (g * np.where(x > 0, 1, _slope(negative_slope, slope)).astype(g.dtype, copy=False),)


@leaky_relu.graph_vjp
def _(g, x, *, negative_slope, slope):
    return (dg.where(is_positive(x), g, _slope(negative_slope, slope) * g),)


# ---------------------------------------------------------------- prelu --


def _prelu_rule(x, weight):
    if len(weight) > 1:
        raise ValueError(f"the weight must be a number or a vector (one slope, or one per channel), "
                         f"not of rank {len(weight)}")
    channels = x[1] if len(x) >= 2 else 1
    count = weight[0] if weight else 1
    if count != 1 and not dims_agree(count, channels):
        raise ValueError(f"the weight has {count} slopes but the input has {channels} channels (axis 1); "
                         "give one slope or one per channel")
    return tuple(x)


def _prelu_samples(rng):
    def case(xs, ws, label):
        return Sample((away_from_zero(rng, xs), rng.uniform(0.05, 0.5, size=ws)), {}, label)

    same = away_from_zero(rng, (1,))
    return [
        case((2, 3, 4), (3,), "a slope per channel"),
        case((2, 3, 2, 2), (3,), "a slope per channel of an image"),
        case((2, 3), (1,), "one slope"),
        case((2, 3, 2), (), "one slope as a 0-d weight"),
        case((4,), (1,), "1-d input: no channel axis"),
        case((), (1,), "0-d input"),
        case((0, 3, 2), (3,), "batch of 0"),
        Sample((same, same), {}, "the same array as input and weight"),
    ]


def _per_channel(w, ndim: int):
    """The slopes (an array or a Tensor) shaped to broadcast along axis 1 of an input of ``ndim`` axes.

    An input of rank below 2 has no channel axis: its one slope becomes a scalar.
    """
    return vector_on_axis(w, 1, ndim) if ndim >= 2 else w.reshape(())


@op(shape=_prelu_rule, saves=("inputs",), samples=_prelu_samples,
    counterparts={"torch": "torch.nn.functional.prelu"})
def prelu(x, weight):
    """``x`` for x > 0, ``weight * x`` otherwise, with learned slopes: one, or one per channel (axis 1).

    As PyTorch's ``prelu`` (``torch.nn.PReLU(num_parameters=C)``): ``weight``
    holds 1 or C slopes; an input of rank below 2 has no channel axis and
    takes one slope. The slopes' gradient sums over every other axis.
    """
    return np.where(x > 0, x, _per_channel(weight, x.ndim) * x)


@prelu.vjp
def _(g, x, weight, *, needs):
    positive = x > 0
    gx = np.where(positive, g, g * _per_channel(weight, x.ndim)) if needs[0] else None
    gw = None
    if needs[1]:
        gw = np.where(positive, 0, g * x)
        if x.ndim >= 2:
            gw = gw.sum(axis=(0,) + tuple(range(2, x.ndim)))      # one per channel; the engine sums to one slope
        else:
            gw = gw.sum().reshape(weight.shape)                   # no channel axis: one slope
    return gx, gw


@prelu.graph_vjp
def _(g, x, weight, *, needs):
    """The sign of ``x`` is a boolean mask, so the slopes' gradient is linear in ``x``, ``g``."""
    ndim = static_rank(x, "prelu")
    positive = is_positive(x)
    gx = gw = None
    if needs[0]:
        gx = dg.where(positive, g, g * _per_channel(weight, ndim))
    if needs[1]:
        gw = dg.where(positive, 0, g * x)
        gw = dg.sum(gw, axis=(0,) + tuple(range(2, ndim))) if ndim >= 2 else reshape_as(dg.sum(gw), weight)
    return gx, gw
