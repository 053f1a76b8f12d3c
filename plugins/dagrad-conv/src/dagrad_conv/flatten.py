"""``flatten``: collapse every axis from ``start`` on into one, the bridge from images to dense layers."""

from __future__ import annotations

import math

from dagrad.extend import Sample, op


def _flatten_rule(x, *, start=1):
    if not 0 <= start < max(len(x), 1):
        raise ValueError(f"start={start} is not an axis of a rank-{len(x)} input")
    rest = x[start:]
    size = None if any(d is None for d in rest) else math.prod(rest)
    return tuple(x[:start]) + (size,)


def _samples(rng):
    return [
        Sample((rng.standard_normal((2, 3, 2, 2)),), {}, "NCHW to (N, C*H*W)"),
        Sample((rng.standard_normal((2, 3, 4)),), {"start": 2}, "start=2 (a no-op reshape)"),
        Sample((rng.standard_normal((1, 1, 1)),), {"start": 0}, "size-1 axes, start=0"),
        Sample((rng.standard_normal((0, 3, 2)),), {}, "batch of 0"),
    ]


@op(shape=_flatten_rule, saves=(), samples=_samples)
def flatten(x, *, start=1):
    """Merge the axes ``start, start+1, ...`` into one: ``(N, C, H, W) -> (N, C*H*W)``."""
    return x.reshape(x.shape[:start] + (math.prod(x.shape[start:]),))


@flatten.vjp
def _(g, x, *, start):
    return (g.reshape(x.shape),)
