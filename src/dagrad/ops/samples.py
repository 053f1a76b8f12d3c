"""Sample inputs for checking ops against finite differences.

Every op's samples cover the shapes that break gradient code: plain shapes,
broadcasting, scalars, size-1 and size-0 dimensions, and (for ops of two or
more inputs) the same node passed twice, as in ``x * x``. Plugin authors use
these helpers for their own ops.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..opdef import Sample

__all__ = [
    "Sample",
    "uniform",
    "away_from_zero",
    "positive",
    "UNARY_SHAPES",
    "BINARY_SHAPES",
    "elementwise_samples",
    "reduction_samples",
]

Maker = Callable[[np.random.Generator, tuple], np.ndarray]


def uniform(rng: np.random.Generator, shape: tuple, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return np.asarray(rng.uniform(low, high, size=shape))


def away_from_zero(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values in ±[0.2, 1.5]: no kinks (relu, abs) or ties land inside a finite-difference step."""
    return np.asarray(rng.uniform(0.2, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape))


def positive(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values in [0.5, 2]: inside the domain of log, sqrt and fractional powers."""
    return np.asarray(rng.uniform(0.5, 2.0, size=shape))


UNARY_SHAPES = [(3, 4), (), (1,), (0, 3), (2, 1, 3)]
BINARY_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 1), (4,)),      # both sides broadcast
    ((), (2, 3)),        # scalar against array
    ((0, 3), (1, 3)),    # size-0 dimension
    ((1, 1), (2, 1, 4)), # size-1 dimensions and a new leading axis
]


def elementwise_samples(arity: int, make: Maker = away_from_zero, attrs: dict | None = None):
    """A ``samples`` function for an elementwise op of ``arity`` 1 or 2."""

    def samples(rng: np.random.Generator) -> list:
        a = dict(attrs or {})
        if arity == 1:
            return [Sample((make(rng, s),), a, f"shape {s}") for s in UNARY_SHAPES]
        out = [Sample((make(rng, s), make(rng, t)), a, f"shapes {s} and {t}") for s, t in BINARY_SHAPES]
        x = make(rng, (2, 3))
        out.append(Sample((x, x), a, "the same input twice"))
        return out

    return samples


REDUCTION_CASES = [
    ((3, 4), None, False),
    ((3, 4), 0, False),
    ((3, 4), -1, True),
    ((2, 3, 4), (0, 2), False),
    ((1, 5), 1, True),
    ((0, 3), 1, False),
    ((), None, False),
]


def reduction_samples(rng: np.random.Generator, make: Maker = away_from_zero) -> list:
    """Samples of a reduction with ``axis`` and ``keepdims``: all axes, one, several, size-0 and 0-d inputs."""
    return [Sample((make(rng, s),), {"axis": a, "keepdims": k}, f"shape {s}, axis={a}, keepdims={k}")
            for s, a, k in REDUCTION_CASES]
