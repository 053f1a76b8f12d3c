"""``interpolate``: resize batched images by nearest-neighbour or (bi/tri)linear interpolation, as PyTorch.

Interpolation is separable: each output along an axis is a weighted sum of
one (nearest) or two (linear) input entries, so the op runs one axis at a
time on the tap tables of ``windows.py``, and its gradient,
``interpolate_transpose``, spreads each output's gradient back onto those
entries with the same weights. ``interpolate_transpose``'s own gradient is
``interpolate`` again, so derivatives of every order stay in this pair.

The arithmetic is PyTorch's, including its float32 source index for
``"nearest"`` and the use of a given ``scale_factor`` (rather than the ratio
of the sizes) unless ``recompute_scale_factor=True``, so the same call picks
the same pixels.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from dagrad.extend import Sample, first_dtype, float_dtype, op, shapes_agree

from .windows import DIMS, AxisTaps, spread_taps, sum_taps

LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}
MODES = ("nearest", "nearest-exact") + tuple(LINEAR)


@dataclass(frozen=True)
class Resize:
    """How ``interpolate`` maps each spatial axis: target sizes or scale factors, mode, corner alignment."""

    n: int
    size: Optional[tuple]
    scale: Optional[tuple]
    mode: str
    align_corners: bool
    recompute: bool

    @classmethod
    def of(cls, rank: int, size=None, scale_factor=None, mode="nearest", align_corners=None,
           recompute_scale_factor=None) -> "Resize":
        n = rank - 2
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
        if n not in DIMS:
            raise ValueError(f"interpolate takes a batched image (N, C, ...) with 1, 2 or 3 spatial axes, "
                             f"got rank {rank}")
        if mode in LINEAR and LINEAR[mode] != n:
            raise ValueError(f"mode {mode!r} takes {LINEAR[mode] + 2}-d input, got {rank}-d "
                             f"(use {next(m for m, k in LINEAR.items() if k == n)!r})")
        if align_corners is not None and mode not in LINEAR:
            raise ValueError("align_corners can only be set with the interpolating modes linear, bilinear and "
                             "trilinear (as in PyTorch)")
        if (size is None) == (scale_factor is None):
            raise ValueError("give exactly one of size and scale_factor")
        sizes = scales = None
        if size is not None:
            sizes = _per_axis(size, n, "size", int)
            if any(s < 1 for s in sizes):
                raise ValueError(f"size must be >= 1, not {size!r}")
        else:
            scales = _per_axis(scale_factor, n, "scale_factor", (int, float))
            if any(not s > 0 or not math.isfinite(s) for s in scales):
                raise ValueError(f"scale_factor must be positive and finite, not {scale_factor!r}")
            scales = tuple(float(s) for s in scales)
        return cls(n, sizes, scales, mode, bool(align_corners), bool(recompute_scale_factor))

    def out(self, sizes: tuple) -> tuple:
        """Output sizes for input ``sizes`` (``None`` stays unknown)."""
        if any(s == 0 for s in sizes):
            raise ValueError(f"interpolate needs non-empty spatial axes, got sizes {tuple(sizes)}")
        if self.size is not None:
            return self.size
        out = tuple(None if s is None else math.floor(s * f) for s, f in zip(sizes, self.scale))
        if any(o is not None and o < 1 for o in out):
            raise ValueError(f"scale_factor {self.scale} makes an empty output from sizes {tuple(sizes)}")
        return out

    def taps(self, sizes: tuple) -> list:
        """The tap table of each spatial axis for input ``sizes`` (cached: a training loop asks for the same)."""
        return _taps(self, tuple(sizes))

    def _taps(self, sizes: tuple) -> list:
        out = self.out(sizes)
        scales = self.scale if self.scale is not None and not self.recompute else (None,) * self.n
        return [self._axis(size, o, scale) for size, o, scale in zip(sizes, out, scales)]

    def _axis(self, size: int, out: int, scale: Optional[float]) -> AxisTaps:
        o = np.arange(out)
        if self.mode in ("nearest", "nearest-exact"):
            # float32 arithmetic, as PyTorch's kernels: the same call picks the same pixels.
            ratio = np.float32(1.0 / scale) if scale is not None else np.float32(size) / np.float32(out)
            if self.mode == "nearest-exact":
                source = np.floor(((o + 0.5) * np.float64(ratio)).astype(np.float32)).astype(np.int64)
            elif out == size:
                source = o
            elif out == 2 * size:
                source = o >> 1
            else:
                source = np.floor(o.astype(np.float32) * ratio).astype(np.int64)
            positions = np.minimum(source, size - 1)[:, None]
            return AxisTaps(size, positions, np.ones(positions.shape, bool), np.ones(out, np.int64))
        if out == size:
            low, high, weight = o, o, np.zeros(out)
        else:
            if self.align_corners:
                ratio = (size - 1) / (out - 1) if out > 1 else 0.0
                source = ratio * o
            else:
                ratio = 1.0 / scale if scale is not None else size / out
                source = np.maximum(ratio * (o + 0.5) - 0.5, 0.0)
            low = np.minimum(np.floor(source).astype(np.int64), size - 1)
            weight = np.clip(source - low, 0.0, 1.0)
            high = low + (low < size - 1)
        positions = np.stack([low, high], axis=1)
        weights = np.stack([1.0 - weight, weight], axis=1)
        return AxisTaps(size, positions, np.ones(positions.shape, bool), np.ones(out, np.int64), weights)

    def attrs(self) -> dict:
        return {"size": self.size, "scale_factor": self.scale, "mode": self.mode,
                "align_corners": self.align_corners if self.mode in LINEAR else None,
                "recompute_scale_factor": self.recompute}


@functools.lru_cache(maxsize=256)
def _taps(resize: Resize, sizes: tuple) -> list:
    return resize._taps(sizes)


def _per_axis(value, n: int, what: str, kinds) -> tuple:
    if isinstance(value, kinds) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, (list, tuple)) and len(value) == n and all(
            isinstance(v, kinds) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise ValueError(f"{what} must be a number or {n} numbers (one per spatial axis), not {value!r}")


def resample(x: np.ndarray, resize: Resize) -> np.ndarray:
    if resize.mode in LINEAR and x.dtype.kind not in "fc":
        x = x.astype(np.float64)
    for a, t in enumerate(resize.taps(x.shape[2:])):
        x = sum_taps(x, t, 2 + a)
    return x


def unresample(g: np.ndarray, shape: tuple, resize: Resize) -> np.ndarray:
    """The adjoint of :func:`resample`: ``g`` spread back onto an image of ``shape``."""
    taps = resize.taps(shape[2:])
    for a in reversed(range(len(taps))):
        g = spread_taps(g, taps[a], 2 + a)
    return g


# ---------------------------------------------------------------- rules --


def _interpolate_rule(x, **attrs):
    return tuple(x[:2]) + Resize.of(len(x), **attrs).out(x[2:])


def _interpolate_dtype(dtype, **attrs):
    return float_dtype(dtype) if attrs.get("mode") in LINEAR else first_dtype(dtype)


def _transpose_rule(g, like, **attrs):
    want = tuple(like[:2]) + Resize.of(len(like), **attrs).out(like[2:])
    if not shapes_agree(g, want):
        raise ValueError(f"the gradient's shape {tuple(g)} is not the interpolated shape {want} of `like`")
    return tuple(like)


# -------------------------------------------------------------- samples --


def _interpolate_cases():
    return [
        ((2, 2, 3, 4), {"scale_factor": 2}, "nearest, twice as large"),
        ((1, 2, 5, 4), {"size": (3, 7)}, "nearest, to a given size"),
        ((1, 2, 5), {"scale_factor": 1.7, "mode": "nearest-exact"}, "nearest-exact, 1-d"),
        ((1, 1, 2, 3, 2), {"size": (3, 2, 4)}, "nearest, 3-d"),
        ((2, 2, 3, 4), {"size": (5, 7), "mode": "bilinear"}, "bilinear"),
        ((1, 2, 4, 3), {"scale_factor": (1.5, 2.5), "mode": "bilinear", "align_corners": True},
         "bilinear, align_corners"),
        ((1, 2, 7, 6), {"scale_factor": 0.6, "mode": "bilinear", "recompute_scale_factor": True},
         "bilinear, smaller, recomputed scale"),
        ((1, 2, 5), {"size": 9, "mode": "linear"}, "linear, 1-d"),
        ((1, 1, 2, 3, 2), {"scale_factor": 2, "mode": "trilinear"}, "trilinear"),
        ((2, 1, 1, 1), {"size": (3, 2), "mode": "bilinear", "align_corners": True}, "size-1 image"),
        ((0, 2, 3, 3), {"scale_factor": 2, "mode": "bilinear"}, "batch of 0"),
        ((1, 2, 3, 4), {"size": (3, 4), "mode": "bilinear"}, "the same size: a copy"),
    ]


def _interpolate_samples(rng):
    return [Sample((rng.standard_normal(shape),), attrs, label) for shape, attrs, label in _interpolate_cases()]


def _transpose_samples(rng):
    out = []
    for shape, attrs, label in _interpolate_cases():
        resize = Resize.of(len(shape), **attrs)
        out_shape = shape[:2] + resize.out(shape[2:])
        out.append(Sample((rng.standard_normal(out_shape), rng.standard_normal(shape)), resize.attrs(), label))
    x = rng.standard_normal((2, 2, 3, 3))
    out.append(Sample((x, x), Resize.of(4, size=(3, 3), mode="bilinear").attrs(), "the same array as g and like"))
    return out


# ------------------------------------------------------------------ ops --


@op(shape=_interpolate_rule, dtype=_interpolate_dtype, saves=(), samples=_interpolate_samples,
    counterparts={"torch": "torch.nn.functional.interpolate"})
def interpolate(x, *, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
    """Resize a batched image (N, C, ...) to ``size``, or by ``scale_factor``, along its 1 to 3 spatial axes.

    ``mode`` is ``"nearest"`` (PyTorch's default: the pixel at
    ``floor(o * in / out)``), ``"nearest-exact"`` (the pixel whose centre is
    nearest), or ``"linear"``, ``"bilinear"``, ``"trilinear"`` for 1, 2 and 3
    spatial axes, with ``align_corners`` (corner pixels' centres map to each
    other; default False). ``size`` and ``scale_factor`` are one number or one
    per spatial axis; with ``scale_factor`` the output has ``floor(in * scale)``
    entries, and the given scale (not the ratio of sizes) places the samples
    unless ``recompute_scale_factor=True``. As ``torch.nn.functional.interpolate``
    (the deprecated ``upsample`` functions are this op too).
    """
    return resample(x, Resize.of(x.ndim, size, scale_factor, mode, align_corners, recompute_scale_factor))


@interpolate.vjp
def _(g, x, *, size, scale_factor, mode, align_corners, recompute_scale_factor):
    resize = Resize.of(x.ndim, size, scale_factor, mode, align_corners, recompute_scale_factor)
    return (unresample(g, x.shape, resize),)


@interpolate.graph_vjp
def _(g, x, *, size, scale_factor, mode, align_corners, recompute_scale_factor):
    return (interpolate_transpose(g, x, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                                  recompute_scale_factor=recompute_scale_factor),)


@op(shape=_transpose_rule, dtype=first_dtype, saves=(), samples=_transpose_samples)
def interpolate_transpose(g, like, *, size=None, scale_factor=None, mode="nearest", align_corners=None,
                          recompute_scale_factor=None):
    """Each output's ``g`` spread back onto the input entries ``interpolate`` read it from, with their weights.

    The result has ``like``'s shape (``like`` is the image that was
    interpolated; its values are not read): ``interpolate``'s input gradient.
    """
    resize = Resize.of(like.ndim, size, scale_factor, mode, align_corners, recompute_scale_factor)
    return unresample(g, like.shape, resize)


@interpolate_transpose.vjp
def _(h, g, like, *, size, scale_factor, mode, align_corners, recompute_scale_factor):
    resize = Resize.of(like.ndim, size, scale_factor, mode, align_corners, recompute_scale_factor)
    return resample(h, resize), None


@interpolate_transpose.graph_vjp
def _(h, g, like, *, size, scale_factor, mode, align_corners, recompute_scale_factor):
    return interpolate(h, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                       recompute_scale_factor=recompute_scale_factor), None
