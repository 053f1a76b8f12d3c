"""``max_pool2d`` and ``avg_pool2d`` over NCHW images, as reductions of a strided window view."""

from __future__ import annotations

import numpy as np

from dagrad.extend import Sample, float_dtype, op

from .windows import fold, out_size, pad, pair, windows


def _pool_rule(x, *, kernel=2, stride=None, padding=0):
    if len(x) != 4:
        raise ValueError(f"pooling takes an NCHW image, got rank {len(x)}")
    (kh, kw), (ph, pw) = pair(kernel, "kernel"), pair(padding, "padding")
    sh, sw = pair(kernel if stride is None else stride, "stride")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"padding {padding} must be at most half the kernel {kernel}")
    n, c, h, w = x
    return (n, c, out_size(h, kh, sh, ph, 1, "height"), out_size(w, kw, sw, pw, 1, "width"))


def _geometry(kernel, stride, padding):
    k = pair(kernel, "kernel")
    return k, pair(kernel if stride is None else stride, "stride"), pair(padding, "padding")


def _distinct(rng, shape):
    """Values at least 0.05 apart, so no tie between window entries sits inside a finite-difference step."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.05 - size * 0.025).reshape(shape)


def _samples(rng):
    def case(shape, label, **attrs):
        return Sample((_distinct(rng, shape),), attrs, label)

    return [
        case((2, 3, 4, 4), "2x2 windows"),
        case((1, 2, 5, 5), "3x3 kernel, stride 2, padding 1", kernel=3, stride=2, padding=1),
        case((1, 1, 5, 6), "overlapping (3, 2) windows with stride 1", kernel=(3, 2), stride=1),
        case((2, 1, 1, 1), "size-1 image", kernel=1),
        case((0, 2, 4, 4), "batch of 0"),
    ]


# ------------------------------------------------------------- max pool --


def _max_dtype(dtype, **attrs):
    """The input's dtype; bool has no order to pool by (and no -inf to pad with)."""
    if dtype.kind not in "iuf":
        raise TypeError(f"max pooling needs integer or floating-point values, not {dtype}")
    return dtype


@op(shape=_pool_rule, dtype=_max_dtype, saves=(), residuals=True, samples=_samples)
def max_pool2d(x, *, kernel=2, stride=None, padding=0):
    """Maximum over each ``kernel`` window (stride defaults to the kernel); padding never wins.

    The gradient goes to the (first) largest entry of each window.
    """
    k, s, p = _geometry(kernel, stride, padding)
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    cols = windows(pad(x, p, fill), k, s, (1, 1))
    n, c, oh, ow, kh, kw = cols.shape
    flat = cols.reshape(n, c, oh, ow, kh * kw)
    winner = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, winner[..., None], axis=-1)[..., 0]
    return out, winner           # the VJP routes gradients with the argmax, not by recomputing it


@max_pool2d.vjp
def _(g, x, res, *, kernel, stride, padding):
    k, s, p = _geometry(kernel, stride, padding)
    n, c, h, w = x.shape
    taps = np.arange(k[0] * k[1]).reshape(k)
    cols = np.where(res[..., None, None] == taps, g[..., None, None], 0).astype(g.dtype, copy=False)
    return (fold(cols, (n, c, h + 2 * p[0], w + 2 * p[1]), p, s, (1, 1)),)


# ------------------------------------------------------------- avg pool --


@op(shape=_pool_rule, dtype=float_dtype, saves=(), samples=_samples)
def avg_pool2d(x, *, kernel=2, stride=None, padding=0):
    """Mean over each ``kernel`` window (stride defaults to the kernel); zero padding counts in the mean."""
    k, s, p = _geometry(kernel, stride, padding)
    return windows(pad(x, p), k, s, (1, 1)).mean(axis=(-2, -1))


@avg_pool2d.vjp
def _(g, x, *, kernel, stride, padding):
    k, s, p = _geometry(kernel, stride, padding)
    n, c, h, w = x.shape
    share = (g / (k[0] * k[1])).astype(g.dtype, copy=False)
    cols = np.broadcast_to(share[..., None, None], share.shape + k)
    return (fold(cols, (n, c, h + 2 * p[0], w + 2 * p[1]), p, s, (1, 1)),)
