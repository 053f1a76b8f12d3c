"""The activations plugin: smooth and leaky activation functions with their VJPs."""

from __future__ import annotations

import math
import sys

import numpy as np

from dagrad.extend import elementwise_samples, float_unary_op, hookimpl, ops_in, unary_op

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


@float_unary_op(saves=("inputs",))
def gelu(x):
    """Gaussian error linear unit, tanh approximation (as in GPT-2 and BERT)."""
    inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
    return 0.5 * x * (1 + np.tanh(inner))


@gelu.vjp
def _(g, x):
    inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
    t = np.tanh(inner)
    d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x**2)
    return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner),)


@float_unary_op(saves=("inputs",))
def silu(x):
    """Sigmoid-weighted linear unit ``x * sigmoid(x)`` (also called swish)."""
    return x * _sigmoid(x)


@silu.vjp
def _(g, x):
    s = _sigmoid(x)
    return (g * (s + x * s * (1 - s)),)


@float_unary_op(saves=("inputs",))
def softplus(x):
    """``log(1 + exp(x))``, computed without overflow."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


@softplus.vjp
def _(g, x):
    return (g * _sigmoid(x),)


@float_unary_op(samples=elementwise_samples(1, attrs={"alpha": 1.0}))
def elu(x, *, alpha=1.0):
    """Exponential linear unit: ``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


@elu.vjp
def _(g, x, out, *, alpha):
    return (g * np.where(x > 0, 1, out + alpha),)


@unary_op(saves=("inputs",), samples=elementwise_samples(1, attrs={"slope": 0.01}))
def leaky_relu(x, *, slope=0.01):
    """``x`` for x > 0, ``slope * x`` otherwise."""
    return np.where(x > 0, x, slope * x).astype(x.dtype, copy=False)


@leaky_relu.vjp
def _(g, x, *, slope):
    return (g * np.where(x > 0, 1, slope).astype(g.dtype, copy=False),)


@hookimpl
def dagrad_ops():
    return ops_in(sys.modules[__name__])
