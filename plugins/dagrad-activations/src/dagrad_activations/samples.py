"""Sample inputs for the pack's ops: values kept off each function's kinks, and several attribute settings."""

from __future__ import annotations

import numpy as np

from dagrad.extend import Sample, away_from_zero, elementwise_samples

GAP = 0.05  # far beyond a finite-difference step (1e-6): no sample sits on a kink


def avoiding(*kinks: float, low: float = -4.0, high: float = 4.0):
    """A value maker: uniform in ``[low, high]`` and at least ``GAP`` from each of ``kinks``."""
    def make(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        x = rng.uniform(low, high, size=shape)
        for k in kinks:
            x = np.where(np.abs(x - k) < GAP, k + np.where(x >= k, GAP, -GAP), x)
        return np.asarray(x)

    return make


def settings(*attrs: dict, make=away_from_zero):
    """Samples of an elementwise op: every shape for the first attributes, two shapes for each other setting."""
    def samples(rng: np.random.Generator) -> list:
        out = elementwise_samples(1, make=make, attrs=attrs[0])(rng)
        for more in attrs[1:]:
            label = ", ".join(f"{k}={v!r}" for k, v in more.items())
            out += [Sample((make(rng, s),), dict(more), f"shape {s}, {label}") for s in [(3, 4), (2, 1, 3)]]
        return out

    return samples
