"""Comparison and logical ops: elementwise predicates with bool outputs and no gradient.

``x == 0``, ``x < y``, ``a & b``, ``~m`` on Tensors build these nodes, so a
condition for ``where`` is computed inside the graph. A comparison is constant
almost everywhere, so none of these ops has a VJP: the scheduler never
differentiates a bool node (nor any other non-float node), and a parameter
whose only path to the loss runs through a comparison gets a zero gradient,
as in JAX.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..opdef import Sample, bool_dtype
from .presets import binary_op, unary_op
from .samples import UNARY_SHAPES, elementwise_samples

__all__ = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
           "logical_and", "logical_or", "logical_xor", "logical_not", "isfinite", "isnan", "isinf"]

# ------------------------------------------------------------- samples ---


def _ties(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Small whole numbers as floats, so equal entries (the interesting ones) are common."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


def _truths(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.random(shape) > 0.5


def _specials(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Finite numbers among zeros, NaN and both infinities."""
    return rng.choice(np.array([0.0, -1.5, 2.0, np.nan, np.inf, -np.inf]), size=shape)


def _comparison_samples(rng):
    out = elementwise_samples(2, make=_ties)(rng)
    out.append(Sample((rng.integers(-2, 3, size=(2, 3)), _ties(rng, (3,))), {}, "int64 against float64"))
    out.append(Sample((_specials(rng, (2, 3)), _specials(rng, (2, 3))), {}, "NaN and infinities"))
    out.append(Sample((_truths(rng, (4,)), _truths(rng, (4,))), {}, "bool against bool"))
    return out


def _logical_samples(rng):
    out = elementwise_samples(2, make=_truths)(rng)
    out.append(Sample((_specials(rng, (2, 3)), rng.integers(0, 2, size=(3,))), {}, "numbers: nonzero (and NaN) is true"))
    return out


def _predicate_samples(make):
    def samples(rng):
        out = [Sample((make(rng, s),), {}, f"shape {s}") for s in UNARY_SHAPES]
        out.append(Sample((rng.integers(-3, 3, size=(2, 3)).astype(np.int16),), {}, "int16"))
        out.append(Sample((_specials(rng, (3,)).astype(np.float32),), {}, "float32 with NaN and infinities"))
        return out

    return samples


_comparison = partial(binary_op, dtype=bool_dtype, saves=(), samples=_comparison_samples)
"""An elementwise comparison: broadcasting, any numeric dtypes, a bool output, no VJP."""

_logical = partial(binary_op, dtype=bool_dtype, saves=(), samples=_logical_samples)
"""An elementwise logical connective: nonzero is true, a bool output, no VJP."""

_predicate = partial(unary_op, dtype=bool_dtype, saves=())
"""An elementwise test of one input: a bool output, no VJP."""


# --------------------------------------------------------- comparisons ---


@_comparison(counterparts={"numpy": "numpy.equal", "torch": "torch.eq"})
def equal(x, y):
    """Elementwise ``x == y``, a bool (NaN equals nothing); no gradient."""
    return np.equal(x, y)


@_comparison(counterparts={"numpy": "numpy.not_equal", "torch": "torch.ne"})
def not_equal(x, y):
    """Elementwise ``x != y``, a bool (NaN differs from everything); no gradient."""
    return np.not_equal(x, y)


@_comparison(counterparts={"numpy": "numpy.less", "torch": "torch.lt"})
def less(x, y):
    """Elementwise ``x < y``, a bool; no gradient."""
    return np.less(x, y)


@_comparison(counterparts={"numpy": "numpy.less_equal", "torch": "torch.le"})
def less_equal(x, y):
    """Elementwise ``x <= y``, a bool; no gradient."""
    return np.less_equal(x, y)


@_comparison(counterparts={"numpy": "numpy.greater", "torch": "torch.gt"})
def greater(x, y):
    """Elementwise ``x > y``, a bool; no gradient."""
    return np.greater(x, y)


@_comparison(counterparts={"numpy": "numpy.greater_equal", "torch": "torch.ge"})
def greater_equal(x, y):
    """Elementwise ``x >= y``, a bool; no gradient."""
    return np.greater_equal(x, y)


# ------------------------------------------------------------- logical ---


@_logical(counterparts={"numpy": "numpy.logical_and", "torch": "torch.logical_and"})
def logical_and(x, y):
    """Elementwise ``x and y`` (``&`` on bool Tensors); for numbers, nonzero is true. No gradient."""
    return np.logical_and(x, y)


@_logical(counterparts={"numpy": "numpy.logical_or", "torch": "torch.logical_or"})
def logical_or(x, y):
    """Elementwise ``x or y`` (``|`` on bool Tensors); for numbers, nonzero is true. No gradient."""
    return np.logical_or(x, y)


@_logical(counterparts={"numpy": "numpy.logical_xor", "torch": "torch.logical_xor"})
def logical_xor(x, y):
    """Elementwise exclusive or (``^`` on bool Tensors); for numbers, nonzero is true. No gradient."""
    return np.logical_xor(x, y)


@_predicate(samples=_predicate_samples(_truths),
    counterparts={"numpy": "numpy.logical_not", "torch": "torch.logical_not"})
def logical_not(x):
    """Elementwise ``not x`` (``~`` on a bool Tensor); for numbers, zero is true. No gradient."""
    return np.logical_not(x)


# ---------------------------------------------------------- predicates ---


@_predicate(samples=_predicate_samples(_specials), counterparts={"numpy": "numpy.isfinite", "torch": "torch.isfinite"})
def isfinite(x):
    """Elementwise test for a finite number (not NaN, not infinite); no gradient."""
    return np.isfinite(x)


@_predicate(samples=_predicate_samples(_specials), counterparts={"numpy": "numpy.isnan", "torch": "torch.isnan"})
def isnan(x):
    """Elementwise test for NaN; no gradient."""
    return np.isnan(x)


@_predicate(samples=_predicate_samples(_specials), counterparts={"numpy": "numpy.isinf", "torch": "torch.isinf"})
def isinf(x):
    """Elementwise test for positive or negative infinity; no gradient."""
    return np.isinf(x)
