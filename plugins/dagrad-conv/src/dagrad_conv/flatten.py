"""``flatten``: merge a run of axes into one, the bridge from images to dense layers."""

from __future__ import annotations

import math

from dagrad.extend import Sample, op, reshape_as

from .renamed import renamed


def _span(rank: int, start_dim: int, end_dim: int, start=None, warn: bool = False) -> tuple:
    """The first and last axis merged, normalised; ``start`` is the deprecated name of ``start_dim``."""
    start_dim = renamed(start_dim, start, default=1, name="start_dim", old_name="start", who="flatten", warn=warn)
    axes = max(rank, 1)                       # a 0-d input flattens to one entry, as in PyTorch
    first, last = start_dim + axes * (start_dim < 0), end_dim + axes * (end_dim < 0)
    if not 0 <= first < axes or not 0 <= last < axes:
        raise ValueError(f"start_dim={start_dim}, end_dim={end_dim} are not axes of a rank-{rank} input")
    if first > last:
        raise ValueError(f"start_dim={start_dim} comes after end_dim={end_dim}")
    return first, last


def _flatten_rule(x, *, start_dim=1, end_dim=-1, start=None):
    first, last = _span(len(x), start_dim, end_dim, start, warn=True)
    merged = x[first:last + 1]
    size = None if any(d is None for d in merged) else math.prod(merged)
    return tuple(x[:first]) + (size,) + tuple(x[last + 1:])


def _samples(rng):
    return [
        Sample((rng.standard_normal((2, 3, 2, 2)),), {}, "NCHW to (N, C*H*W)"),
        Sample((rng.standard_normal((2, 3, 4, 2)),), {"start_dim": 1, "end_dim": 2}, "the middle axes"),
        Sample((rng.standard_normal((2, 3, 4)),), {"start_dim": -1}, "one axis (a no-op reshape)"),
        Sample((rng.standard_normal((1, 1, 1)),), {"start_dim": 0}, "size-1 axes, start_dim=0"),
        Sample((rng.standard_normal(()),), {"start_dim": 0}, "0-d to one entry"),
        Sample((rng.standard_normal((0, 3, 2)),), {}, "batch of 0"),
    ]


@op(shape=_flatten_rule, saves=(), samples=_samples, counterparts={"torch": "torch.flatten"})
def flatten(x, *, start_dim=1, end_dim=-1, start=None):
    """Merge the axes ``start_dim`` to ``end_dim`` (inclusive) into one: ``(N, C, H, W) -> (N, C*H*W)``.

    As ``torch.flatten`` (and ``torch.nn.Flatten``, whose ``start_dim=1`` is
    the default here). ``start=`` is the deprecated name of ``start_dim=``.
    """
    first, last = _span(x.ndim, start_dim, end_dim, start)
    return x.reshape(x.shape[:first] + (math.prod(x.shape[first:last + 1]),) + x.shape[last + 1:])


@flatten.vjp
def _(g, x, *, start_dim, end_dim, start):
    return (g.reshape(x.shape),)


@flatten.graph_vjp
def _(g, x, *, start_dim, end_dim, start):
    return (reshape_as(g, x),)
