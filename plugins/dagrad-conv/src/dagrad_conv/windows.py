"""Sliding windows over NCHW images as strided views, and their adjoint (scatter-add back).

Every op in this pack is written on top of two functions: :func:`windows`
turns a (padded) image into a view of shape ``(N, C, OH, OW, KH, KW)`` without
copying, and :func:`fold` adds window-shaped gradients back into an image. The
only Python loops are over the ``KH * KW`` kernel taps (and, in conv2d, the
groups), never over pixels.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

Pair = tuple[int, int]
PairLike = Union[int, Sequence[int]]


def pair(value: PairLike, what: str) -> Pair:
    """``3 -> (3, 3)``; ``(2, 1)`` stays; anything else is a ``ValueError`` naming ``what``."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    items = tuple(value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) for v in items):
        raise ValueError(f"{what} must be an int or a pair of ints, not {value!r}")
    return int(items[0]), int(items[1])


def out_size(size: Optional[int], kernel: int, stride: int, padding: int, dilation: int, axis: str) -> Optional[int]:
    """Output length along one spatial axis; ``None`` when ``size`` is unknown."""
    if stride < 1 or dilation < 1 or padding < 0 or kernel < 1:
        raise ValueError(f"stride, dilation and kernel must be >= 1 and padding >= 0 (axis {axis})")
    if size is None:
        return None
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(
            f"the {axis} of the input ({size}, padded to {size + 2 * padding}) is smaller than the "
            f"kernel's span {span} (kernel {kernel}, dilation {dilation})"
        )
    return (size + 2 * padding - span) // stride + 1


def pad(x: np.ndarray, padding: Pair, value: float = 0.0) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """A read-only view ``(N, C, OH, OW, KH, KW)`` of every window of the padded image ``xp``."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def fold(cols: np.ndarray, padded_shape: tuple, padding: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """Adjoint of :func:`windows` then padding: add ``cols (N, C, OH, OW, KH, KW)`` into an image.

    Overlapping windows add up, and the padding border is cut off again.
    """
    n, c, oh, ow, kh, kw = cols.shape
    (sh, sw), (dh, dw), (ph, pw) = stride, dilation, padding
    image = np.zeros(padded_shape, cols.dtype)
    for i in range(kh):          # one strided slice per kernel tap, not per pixel
        for j in range(kw):
            image[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw] += cols[..., i, j]
    h, w = padded_shape[2] - 2 * ph, padded_shape[3] - 2 * pw
    return image[:, :, ph: ph + h, pw: pw + w]
