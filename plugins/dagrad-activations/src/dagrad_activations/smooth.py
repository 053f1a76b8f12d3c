"""Smooth activations: gelu, silu, mish, softplus, logsigmoid, and the exponential units elu, selu, celu.

Each op is a numpy forward (stable for large ``|x|``), a numpy VJP, and a
graph VJP written with dagrad ops, so second derivatives (a gradient penalty,
a Hessian-vector product) go through it. The exponential units are smooth
except at 0, where their derivatives follow PyTorch: ``elu`` and ``selu``
take the left branch there, as PyTorch's kernels do.
"""

from __future__ import annotations

import math

import numpy as np

import dagrad as dg
from dagrad.extend import float_unary_op, is_positive

from .samples import avoiding, settings
from .special import ndtr, normal_cdf, normal_pdf, normal_pdf_tensor, sigmoid

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _same_shape(check):
    """A shape rule: the input's shape, once ``check(**attrs)`` has accepted the attributes."""
    def rule(x, **attrs):
        check(**attrs)
        return tuple(x)

    return rule


# ----------------------------------------------------------------- gelu --


def _check_gelu(approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' (exact, with erf) or 'tanh', not {approximate!r}")


@float_unary_op(shape=_same_shape(_check_gelu), saves=("inputs",),
                samples=settings({"approximate": "none"}, {"approximate": "tanh"}, make=avoiding(low=-5.0, high=5.0)),
                counterparts={"torch": "torch.nn.functional.gelu"})
def gelu(x, *, approximate="none"):
    """Gaussian error linear unit ``x * Φ(x)``; ``approximate="tanh"`` is the tanh form of GPT-2 and BERT.

    ``Φ`` is the standard normal distribution function, computed exactly
    (through ``erfc``); the default is exact, as PyTorch's. The tanh form,
    ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))``, was this op's only form
    before dagrad-activations 0.2.
    """
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3)
        return 0.5 * x * (1 + np.tanh(inner))
    return x * normal_cdf(x)


@gelu.vjp
def _(g, x, *, approximate):
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3))
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x**2)
        return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner),)
    return (g * (normal_cdf(x) + x * normal_pdf(x)),)


@gelu.graph_vjp
def _(g, x, *, approximate):
    if approximate == "tanh":
        t = dg.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3))
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x**2)
        return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner),)
    return (g * (ndtr(x) + x * normal_pdf_tensor(x)),)


# ------------------------------------------------------ silu and mish --


@float_unary_op(saves=("inputs",), counterparts={"torch": "torch.nn.functional.silu"})
def silu(x):
    """Sigmoid-weighted linear unit ``x * sigmoid(x)`` (also called swish)."""
    return x * sigmoid(x)


@silu.vjp
def _(g, x):
    s = sigmoid(x)
    return (g * (s + x * s * (1 - s)),)


@silu.graph_vjp
def _(g, x):
    s = dg.sigmoid(x)
    return (g * (s * (1 + x * (1 - s))),)


@float_unary_op(saves=("inputs",), samples=settings({}, make=avoiding(low=-6.0, high=6.0)),
                counterparts={"torch": "torch.nn.functional.mish"})
def mish(x):
    """Self-regularised activation ``x * tanh(softplus(x))`` (Misra 2019)."""
    return x * np.tanh(_softplus(x))


@mish.vjp
def _(g, x):
    t = np.tanh(_softplus(x))
    return (g * (t + x * (1 - t * t) * sigmoid(x)),)


@mish.graph_vjp
def _(g, x):
    """With ``q = sigmoid(-x)``, ``tanh(softplus(x)) = (1 - q²) / (1 + q²)``: no logarithm, no overflow."""
    q = dg.sigmoid(-x)
    t = (1 - q * q) / (1 + q * q)
    return (g * (t + x * (1 - t * t) * (1 - q)),)


# ------------------------------------------------ softplus, logsigmoid --


def _check_softplus(beta=1.0, threshold=20.0):
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or beta == 0:
        raise ValueError(f"beta must be a nonzero number, not {beta!r}")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise ValueError(f"threshold must be a number, not {threshold!r}")


@float_unary_op(shape=_same_shape(_check_softplus), saves=("inputs",),
                samples=settings({"beta": 1.0, "threshold": 20.0}, {"beta": 2.0, "threshold": 1.5},
                                 {"beta": 0.5, "threshold": 20.0}, make=avoiding(0.75, low=-4.0, high=4.0)),
                counterparts={"torch": "torch.nn.functional.softplus"})
def softplus(x, *, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold`` (as PyTorch).

    Computed without overflow; the linear part is exact, not a rounding of
    the logarithm.
    """
    bx = beta * x
    return np.where(bx > threshold, x, _softplus(bx) / beta)


@softplus.vjp
def _(g, x, *, beta, threshold):
    bx = beta * x
    return (g * np.where(bx > threshold, 1, sigmoid(bx)),)


@softplus.graph_vjp
def _(g, x, *, beta, threshold):
    """``g`` where ``beta * x > threshold`` (a boolean mask: no second derivative), else ``g * sigmoid(beta x)``."""
    bx = beta * x
    return (dg.where(is_positive(bx - threshold), g, g * dg.sigmoid(bx)),)


@float_unary_op(saves=("inputs",), counterparts={"torch": "torch.nn.functional.logsigmoid"})
def logsigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``, without overflow or underflow for large ``|x|``."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


@logsigmoid.vjp
def _(g, x):
    return (g * sigmoid(-x),)


@logsigmoid.graph_vjp
def _(g, x):
    return (g * dg.sigmoid(-x),)


# ---------------------------------------------------- exponential units --


def _check_alpha(alpha=1.0, nonzero=False):
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or (nonzero and alpha == 0):
        raise ValueError(f"alpha must be a {'nonzero ' * nonzero}number, not {alpha!r}")


@float_unary_op(shape=_same_shape(_check_alpha), samples=settings({"alpha": 1.0}, {"alpha": 0.4}),
                counterparts={"torch": "torch.nn.functional.elu"})
def elu(x, *, alpha=1.0):
    """Exponential linear unit: ``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


@elu.vjp
def _(g, x, out, *, alpha):
    return (g * np.where(x > 0, 1, out + alpha),)


@elu.graph_vjp
def _(g, x, out, *, alpha):
    """``out + alpha`` is ``alpha * exp(x)`` on the left branch; the branch is a boolean mask."""
    return (dg.where(is_positive(x), g, g * (out + alpha)),)


@float_unary_op(counterparts={"torch": "torch.nn.functional.selu"})
def selu(x):
    """Scaled exponential linear unit ``scale * elu(x, alpha)`` with the self-normalising constants.

    ``alpha = 1.6732632...`` and ``scale = 1.0507009...`` (Klambauer et al. 2017).
    """
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))


@selu.vjp
def _(g, x, out):
    return (g * np.where(x > 0, SELU_SCALE, out + SELU_SCALE * SELU_ALPHA),)


@selu.graph_vjp
def _(g, x, out):
    return (dg.where(is_positive(x), g * SELU_SCALE, g * (out + SELU_SCALE * SELU_ALPHA)),)


def _check_celu(alpha=1.0):
    _check_alpha(alpha, nonzero=True)


@float_unary_op(shape=_same_shape(_check_celu), samples=settings({"alpha": 1.0}, {"alpha": 2.5}),
                counterparts={"torch": "torch.nn.functional.celu"})
def celu(x, *, alpha=1.0):
    """Continuously differentiable exponential unit: ``x`` for x > 0, ``alpha * (exp(x / alpha) - 1)`` otherwise."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0) / alpha))


@celu.vjp
def _(g, x, out, *, alpha):
    return (g * np.where(x > 0, 1, out / alpha + 1),)


@celu.graph_vjp
def _(g, x, out, *, alpha):
    """``out / alpha + 1`` is ``exp(x / alpha)`` on the left branch; the branch is a boolean mask."""
    return (dg.where(is_positive(x), g, g * (out / alpha + 1)),)
