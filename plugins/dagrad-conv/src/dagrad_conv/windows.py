"""Windows over batched images of any number of spatial axes, ``(N, C, *spatial)``: the pack's one engine.

Every op of the pack, in 1, 2 or 3 spatial dimensions, is written on top of
this module; nothing here knows how many spatial axes there are.

* **Geometry.** :func:`ntuple`, :func:`out_size` and the padding rules turn
  attributes into per-axis numbers, with PyTorch's output-size arithmetic
  (``ceil_mode`` included) and its error conditions as ``ValueError``.
* **Strided windows** for convolutions: :func:`windows` is a copy-free view
  ``(N, C, *out, *kernel)`` of a padded image (im2col is one reshape of it),
  and :func:`fold`, its adjoint, adds window-shaped values back into an
  image. The only Python loop is over the kernel's taps, never over pixels.
* **Tap tables** for pooling and resampling: an :class:`AxisTaps` says, for
  one spatial axis, which input position the ``k``-th tap of output ``o``
  reads and whether it is inside the input. Regular windows (kernel, stride,
  padding, dilation, ``ceil_mode``), adaptive windows (PyTorch's
  ``adaptive_*_pool``) and interpolation stencils are all tap tables.
  Sums and weighted sums over windows are separable, so they run axis by axis
  (:func:`sum_taps` and its adjoint :func:`spread_taps`); a maximum needs the
  whole window (:func:`gather_windows`), and its gradient is put back with
  :func:`scatter_to`.

Taps outside the input are never multiplied by a zero weight: they are
masked out, so an ``inf`` or ``NaN`` pixel reaches exactly the outputs whose
windows contain it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

IntOrInts = Union[int, Sequence[int]]
Pads = tuple  # ((lo, hi), ...) per spatial axis

SPATIAL_NAMES = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
DIMS = tuple(SPATIAL_NAMES)  # the numbers of spatial axes the pack's ops take


# ------------------------------------------------------------- geometry --


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def ntuple(value: IntOrInts, n: int, what: str) -> tuple:
    """``3 -> (3,) * n``; a sequence of ``n`` ints stays; anything else is a ``ValueError`` naming ``what``."""
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, (list, tuple)) and len(value) == n and all(_is_int(v) for v in value):
        return tuple(int(v) for v in value)
    raise ValueError(f"{what} must be an int or {n} int{'s' * (n != 1)}, not {value!r}")


def positive(values: tuple, what: str) -> tuple:
    if any(v < 1 for v in values):
        raise ValueError(f"{what} must be >= 1, not {values if len(values) > 1 else values[0]}")
    return values


def image_rank(shape: tuple, n: int, who: str, what: str = "input") -> None:
    """``ValueError`` unless ``shape`` is a batched image with ``n`` spatial axes."""
    if len(shape) != n + 2:
        raise ValueError(
            f"{who} takes a batched {what} {SPATIAL_NAMES.get(n, f'with {n} spatial axes')}, got rank {len(shape)}"
            + (" (add a batch axis with expand_dims)" if len(shape) == n + 1 else "")
        )


def spatial_rank(shape: tuple, who: str) -> int:
    """The number of spatial axes of a batched image shape ``(N, C, *spatial)``; ``ValueError`` unless in DIMS."""
    n = len(shape) - 2
    if n not in DIMS:
        raise ValueError(f"{who} takes batched images with 1, 2 or 3 spatial axes, got rank {len(shape)}")
    return n


def out_size(size: Optional[int], kernel: int, stride: int, pads: tuple, dilation: int, axis: str,
             ceil_mode: bool = False) -> Optional[int]:
    """Output length along one spatial axis (PyTorch's arithmetic); ``None`` when ``size`` is unknown.

    With ``ceil_mode`` the last window may run past the padded end, as long as
    it starts inside the input or the left padding.
    """
    if size is None:
        return None
    lo, hi = pads
    span = dilation * (kernel - 1) + 1
    room = size + lo + hi - span
    if room < 0:
        raise ValueError(
            f"the {axis} of the input ({size}, padded to {size + lo + hi}) is smaller than the "
            f"kernel's span {span} (kernel {kernel}, dilation {dilation})"
        )
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    if (out - 1) * stride >= size + lo:
        out -= 1
    return out


def axis_names(n: int) -> tuple:
    return {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}.get(
        n, tuple(f"axis {2 + a}" for a in range(n)))


def symmetric(padding: IntOrInts, n: int) -> Pads:
    """``padding`` (an int or ``n`` ints, each >= 0) as ``((p, p), ...)``."""
    p = ntuple(padding, n, "padding")
    if any(v < 0 for v in p):
        raise ValueError(f"padding must be >= 0, not {padding!r}")
    return tuple((v, v) for v in p)


def conv_pads(padding, kernel: tuple, stride: tuple, dilation: tuple) -> Pads:
    """A convolution's padding per axis: an int, ``n`` ints, ``"valid"`` (none) or ``"same"`` (PyTorch's).

    ``"same"`` pads ``dilation * (kernel - 1)`` in all, the odd one on the
    right, so the output has the input's size; like PyTorch it needs stride 1.
    """
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding='same' needs stride 1 (as in PyTorch), not stride={stride}")
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(f"padding must be an int, {n} ints, 'same' or 'valid', not {padding!r}")
    return symmetric(padding, n)


# ------------------------------------------------------ strided windows --


def pad(x: np.ndarray, pads: Pads, value=0) -> np.ndarray:
    """``x`` with its spatial axes padded by ``pads`` (``((lo, hi), ...)``) with ``value``.

    (A slice assignment into a filled array: ``np.pad`` costs more than the
    convolution itself for the small images of a CNN.)
    """
    if not any(lo or hi for lo, hi in pads):
        return x
    out = np.full(x.shape[:2] + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads)), value, x.dtype)
    out[(slice(None), slice(None)) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], pads))] = x
    return out


def windows(xp: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple, out: Optional[tuple] = None) -> np.ndarray:
    """A read-only view ``(N, C, *out, *kernel)`` of the windows of the padded image ``xp``.

    ``out`` keeps only the first windows along each axis (all that fit by default).
    """
    fit = tuple((s - d * (k - 1) - 1) // st + 1 for s, k, st, d in zip(xp.shape[2:], kernel, stride, dilation))
    if out is None:
        out = fit
    elif any(o > f for o, f in zip(out, fit)):   # as_strided would read past the array
        raise ValueError(f"{tuple(out)} windows do not fit in an image of spatial size {xp.shape[2:]}")
    steps = xp.strides[2:]
    return np.lib.stride_tricks.as_strided(
        xp, xp.shape[:2] + tuple(out) + tuple(kernel),
        xp.strides[:2] + tuple(t * st for t, st in zip(steps, stride)) + tuple(t * d for t, d in zip(steps, dilation)),
        writeable=False)


def fold(cols: np.ndarray, padded_shape: tuple, pads: Pads, stride: tuple, dilation: tuple) -> np.ndarray:
    """Adjoint of :func:`windows` after :func:`pad`: add ``cols (N, C, *out, *kernel)`` into an image.

    Overlapping windows add up, and the padding border is cut off again.
    """
    n = len(stride)
    out, kernel = cols.shape[2:2 + n], cols.shape[2 + n:]
    image = np.zeros(padded_shape, cols.dtype)
    if all(out):
        for tap in itertools.product(*map(range, kernel)):   # one strided slice per kernel tap, not per pixel
            where = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, dilation, stride, out))
            image[(slice(None), slice(None)) + where] += cols[(Ellipsis,) + tap]
    inner = tuple(slice(lo, size - hi) for (lo, hi), size in zip(pads, padded_shape[2:]))
    return image[(slice(None), slice(None)) + inner]


# ------------------------------------------------------------ tap tables --


@dataclass(frozen=True)
class AxisTaps:
    """The windows along one spatial axis of length ``size``.

    ``positions[o, k]`` is the input position the ``k``-th tap of output ``o``
    reads (possibly outside ``[0, size)``); ``inside`` says which taps read the
    input; ``counted[o]`` is the number a mean over window ``o`` divides by;
    ``weights`` (for interpolation) weigh the taps, ``None`` for plain windows.
    """

    size: int
    positions: np.ndarray
    inside: np.ndarray
    counted: np.ndarray
    weights: Optional[np.ndarray] = None

    @property
    def out(self) -> int:
        return self.positions.shape[0]

    def clipped(self) -> np.ndarray:
        """Positions moved into ``[0, size)``: safe to index with; masked by ``inside`` wherever it matters."""
        return np.clip(self.positions, 0, max(self.size - 1, 0))


def regular_taps(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool,
                 count_include_pad: bool, axis: str) -> AxisTaps:
    """Windows of ``kernel`` taps, ``dilation`` apart, every ``stride``, over the input padded by ``padding``.

    A mean divides by the taps inside the padded input (``count_include_pad``)
    or inside the input itself; taps past the padded end (``ceil_mode``) never count.
    """
    out = out_size(size, kernel, stride, (padding, padding), dilation, axis, ceil_mode)
    positions = np.arange(out)[:, None] * stride - padding + np.arange(kernel)[None, :] * dilation
    inside = (positions >= 0) & (positions < size)
    counted = ((positions >= -padding) & (positions < size + padding)) if count_include_pad else inside
    return AxisTaps(size, positions, inside, counted.sum(axis=1))


def adaptive_taps(size: int, out: int) -> AxisTaps:
    """PyTorch's adaptive windows: output ``o`` covers ``[floor(o*size/out), ceil((o+1)*size/out))``."""
    o = np.arange(out)
    start, stop = (o * size) // out, -((-(o + 1) * size) // out)
    width = int((stop - start).max()) if out else 0
    positions = start[:, None] + np.arange(width)[None, :]
    inside = positions < stop[:, None]
    return AxisTaps(size, positions, inside, inside.sum(axis=1))


def _along(table: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A per-output table ``(out, ...)`` shaped to broadcast against an array whose ``axis`` has the outputs."""
    return table.reshape((1,) * axis + table.shape[:1] + (1,) * (ndim - axis - 1) + table.shape[1:])


def sum_taps(x: np.ndarray, taps: AxisTaps, axis: int) -> np.ndarray:
    """Along ``axis``: for each output, the (weighted) sum of its taps inside the input."""
    if taps.weights is None and taps.positions.shape[1] == 1 and taps.inside.all():
        return np.take(x, taps.positions[:, 0], axis=axis)           # one tap each (nearest): a plain take
    picked = np.take(x, taps.clipped(), axis=axis)                   # (..., out, K, ...)
    picked = np.moveaxis(picked, axis + 1, -1)                       # (..., out, ..., K)
    inside = _along(taps.inside, axis, x.ndim)
    if taps.weights is not None:
        picked = picked * _along(taps.weights.astype(x.dtype, copy=False), axis, x.ndim)
    return np.where(inside, picked, np.zeros((), picked.dtype)).sum(axis=-1)


def spread_taps(g: np.ndarray, taps: AxisTaps, axis: int) -> np.ndarray:
    """Adjoint of :func:`sum_taps`: each output's value added to (weighted by) its taps inside the input."""
    moved = np.moveaxis(g, axis, -1)                                  # (..., out)
    rows = int(np.prod(moved.shape[:-1], dtype=np.int64))
    values = moved[..., None] * (taps.inside if taps.weights is None else np.where(taps.inside, taps.weights, 0))
    slots = np.where(taps.inside, taps.positions, taps.size)          # outside taps go to a spare slot, dropped
    index = np.arange(rows).reshape(moved.shape[:-1] + (1, 1)) * (taps.size + 1) + slots
    total = np.bincount(index.ravel(), weights=values.ravel().astype(np.float64), minlength=rows * (taps.size + 1))
    spread = total.reshape(moved.shape[:-1] + (taps.size + 1,))[..., :taps.size]
    return np.moveaxis(spread, -1, axis).astype(g.dtype, copy=False)


def gather_windows(x: np.ndarray, taps: Sequence[AxisTaps], fill) -> tuple:
    """Every window whole: ``(N, C, *out, prod(K))`` with ``fill`` outside the input, and each tap's flat position.

    The positions ``(*out, prod(K))`` index ``x``'s flattened spatial axes.
    """
    n = len(taps)
    index, inside, flat = [], True, 0
    strides = [int(np.prod([t.size for t in taps[a + 1:]], dtype=np.int64)) for a in range(n)]
    for a, t in enumerate(taps):
        shape = [1] * (2 * n)
        shape[a], shape[n + a] = t.out, t.positions.shape[1]
        index.append(t.clipped().reshape(shape))
        inside = inside & t.inside.reshape(shape)
        flat = flat + index[-1] * strides[a]
    picked = x[(slice(None), slice(None)) + tuple(index)]              # (N, C, *out, *K)
    picked = np.where(inside, picked, np.asarray(fill, x.dtype))
    outs = tuple(t.out for t in taps)
    k = math.prod(t.positions.shape[1] for t in taps)
    flat = np.broadcast_to(flat, outs + tuple(t.positions.shape[1] for t in taps)).reshape(outs + (k,))
    return picked.reshape(x.shape[:2] + outs + (k,)), flat


def scatter_to(values: np.ndarray, positions: np.ndarray, shape: tuple) -> np.ndarray:
    """An array of ``shape`` (N, C, *spatial) with ``values (N, C, *out)`` added at flat spatial ``positions``."""
    n_c = shape[0] * shape[1]
    size = math.prod(shape[2:])
    rows = np.arange(n_c).reshape(shape[:2] + (1,) * (values.ndim - 2)) * size
    total = np.bincount((rows + positions).ravel(), weights=values.ravel().astype(np.float64), minlength=n_c * size)
    return total.reshape(shape).astype(values.dtype, copy=False)


def lowest(dtype: np.dtype):
    """The value that never wins a maximum: ``-inf``, or the smallest integer (``False`` for bool)."""
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min
