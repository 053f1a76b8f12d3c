"""Scans along an axis: cumsum, cumprod, logcumsumexp, and the two exponential scans logcumsumexp's gradient is made of.

A scan keeps every partial result: ``cumsum([a, b, c]) == [a, a+b, a+b+c]``.
With ``axis=None`` the input is flattened first, as in numpy.

Each gradient is exact, also where plain formulas divide by zero:

- ``cumsum``'s gradient is the reversed cumulative sum of ``g``.
- ``cumprod``'s gradient at ``x_k`` is ``sum_{i>=k} g_i prod_{j<=i, j!=k} x_j``.
  The numpy VJP computes it in O(n) without dividing by a zero entry (as
  PyTorch does, it treats the entries up to the first zero, the first zero,
  and the rest apart). The graph VJP, which must be differentiable again,
  computes each product of the others outright: O(n²) time and memory per
  scanned row, the price PyTorch also pays for cumprod's double backward.
- ``logcumsumexp``'s gradient at ``x_j`` is ``sum_{i>=j} g_i exp(x_j - y_i)``
  (``y`` its output), which ``expscan_reverse`` computes in the log domain,
  splitting ``g`` by sign, so no ``exp`` overflows. Its derivatives are
  ``expscan`` (the same sum running forwards, its transpose) and
  ``expscan_reverse`` again, so the pair is closed under differentiation and
  every order stays O(n) and stable.
"""

from __future__ import annotations

import math

import numpy as np

from ..opdef import Sample, float_dtype, op
from ..shapes import broadcast_shapes, format_shape, normalize_axes
from .adjoints import ones_like, reshape_as, static_rank
from .compare import greater_equal, not_equal
from .elementwise import where
from .layout import expand_dims, reshape
from .presets import sum_dtype
from .reductions import sum
from .samples import away_from_zero
from .shaping import flip

__all__ = ["cumsum", "cumprod", "logcumsumexp", "expscan", "expscan_reverse"]


# ------------------------------------------------------------- helpers ---


def scan_shape(shape, *rest, axis=None, **attrs):
    """Shape rule of a scan: the input's shape, or its number of entries when ``axis=None`` flattens it."""
    if axis is None:
        return (None if None in shape else math.prod(shape),)
    if not isinstance(axis, int):
        raise ValueError(f"a scan runs along one axis; axis={axis!r} is not an integer (or None to flatten)")
    normalize_axes(axis, len(shape))
    return tuple(shape)


def _scan_samples(make=away_from_zero):
    def samples(rng):
        cases = [((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -2), ((5,), 0), ((1, 4), -1), ((0, 3), 1), ((2, 0), 1),
                 ((2, 3), None), ((), None)]
        return [Sample((make(rng, s),), {"axis": a}, f"shape {s}, axis={a}") for s, a in cases]

    return samples


def _flat(x, axis):
    """``(x, axis)`` with ``x`` flattened when ``axis`` is None, as numpy's scans do; the axis normalised."""
    if axis is None:
        return reshape(x, shape=(-1,)), 0
    return x, normalize_axes(axis, static_rank(x, "a scan"))[0]


def _unflat(grad, x, axis):
    """A gradient computed on the flattened input, in ``x``'s shape."""
    return reshape_as(grad, x) if axis is None else grad


def _reverse_cumsum(g: np.ndarray, axis: int) -> np.ndarray:
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


# -------------------------------------------------------------- cumsum ---


@op(shape=scan_shape, dtype=sum_dtype, saves=(), samples=_scan_samples(),
    counterparts={"numpy": "numpy.cumsum", "torch": "torch.cumsum"})
def cumsum(x, *, axis=None):
    """Cumulative sum along ``axis`` (of the flattened input by default, as numpy)."""
    return np.cumsum(x, axis=axis)


@cumsum.vjp
def _(g, x, *, axis):
    if axis is None:
        return (_reverse_cumsum(g, 0).reshape(x.shape),)
    return (_reverse_cumsum(g, axis),)


@cumsum.graph_vjp
def _(g, x, *, axis):
    a = 0 if axis is None else normalize_axes(axis, static_rank(x, "cumsum"))[0]
    return (_unflat(flip(cumsum(flip(g, axis=a), axis=a), axis=a), x, axis),)


# ------------------------------------------------------------- cumprod ---


def _cumprod_samples(rng):
    out = _scan_samples()(rng)
    out.append(Sample((np.array([[0.5, 0.0, 1.5, -2.0], [1.2, -0.7, 0.9, 0.0]]),), {"axis": 1}, "one zero per row"))
    out.append(Sample((np.array([0.0, 1.3, 0.0, -0.8, 2.0]),), {"axis": 0}, "two zeros, the first one first"))
    out.append(Sample((np.array([[0.0, 0.7], [0.0, 0.0], [1.1, -0.6]]),), {"axis": 0}, "zeros down the columns"))
    return out


def _cumprod_gradient(g: np.ndarray, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``sum_{i>=k} g_i prod_{j<=i, j!=k} x_j`` along the last axis in O(n), exact with any number of zeros.

    Before a row's first zero, ``x_k`` is nonzero and the sum is
    ``reverse_cumsum(g * out)_k / x_k``. At the first zero ``z`` it is
    ``out_{z-1} * sum_{i>=z} g_i prod_{z<j<=i} x_j``. After it, every product
    holds that zero, and the gradient is 0.
    """
    n = x.shape[-1]
    if n == 0:
        return np.zeros_like(g)
    position = np.arange(n)
    zero = x == 0
    first = np.where(zero.any(axis=-1), zero.argmax(axis=-1), n)[..., None]
    before = position < first
    grad = np.where(before, _reverse_cumsum(g * out, -1) / np.where(before, x, 1), 0)
    at_zero = position == first
    if at_zero.any():
        # Products from just after the first zero on, with the entries up to it replaced by 1.
        after = np.cumprod(np.where(position > first, x, 1), axis=-1)
        tail = np.sum(np.where(position >= first, g * after, 0), axis=-1, keepdims=True)
        up_to = np.take_along_axis(out, np.maximum(first - 1, 0), axis=-1)
        lead = np.where(first > 0, up_to, 1)
        grad = np.where(at_zero, lead * tail, grad)
    return grad.astype(g.dtype, copy=False)


@op(shape=scan_shape, dtype=sum_dtype, samples=_cumprod_samples,
    counterparts={"numpy": "numpy.cumprod", "torch": "torch.cumprod"})
def cumprod(x, *, axis=None):
    """Cumulative product along ``axis`` (of the flattened input by default); exact gradients with zeros."""
    return np.cumprod(x, axis=axis)


@cumprod.vjp
def _(g, x, out, *, axis):
    if axis is None:
        return (_cumprod_gradient(g, x.reshape(-1), out).reshape(x.shape),)
    moved = [np.moveaxis(a, axis, -1) for a in (g, x, out)]
    return (np.moveaxis(_cumprod_gradient(*moved), -1, axis),)


@cumprod.graph_vjp
def _(g, x, out, *, axis):
    """Each product of the others built outright (O(n²) per row), so it is exact to any order, zeros included."""
    flat, a = _flat(x, axis)
    position = cumsum(ones_like(flat), axis=a)            # 1..n along a, constant in x
    k, j = expand_dims(position, axis=a + 1), expand_dims(position, axis=a)
    # others[k, i] = prod_{j <= i, j != k} x_j: the k-th entry replaced by 1, then scanned along the new axis.
    others = cumprod(where(not_equal(j, k), expand_dims(flat, axis=a), 1), axis=a + 1)
    terms = where(greater_equal(j, k), expand_dims(g, axis=a) * others, 0)   # only i >= k
    return (_unflat(sum(terms, axis=a + 1), x, axis),)


# ------------------------------------------- logcumsumexp and its scans ---


def _signed_log_scan(w: np.ndarray, inner: np.ndarray, outer: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
    """``exp(outer_k) * sum_m w_m exp(inner_m)`` over ``m <= k`` (``m >= k`` with ``reverse``), without overflow.

    The positive and negative parts of ``w`` are summed apart as
    logarithms (``logaddexp.accumulate``), then exponentiated with ``outer``
    added, so only a result too large for a float overflows. Where
    ``outer`` is -inf the term is 0 (an entry at -inf has no weight).
    """
    w, inner, outer = np.broadcast_arrays(w, inner, outer)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        magnitude = np.log(np.abs(w)) + inner
        total = np.zeros(w.shape, np.result_type(w, inner, outer))
        for part, sign in ((w > 0, 1), (w < 0, -1)):
            logs = np.where(part, magnitude, -np.inf)
            if reverse:
                scanned = np.flip(np.logaddexp.accumulate(np.flip(logs, axis), axis=axis), axis)
            else:
                scanned = np.logaddexp.accumulate(logs, axis=axis)
            total += sign * np.exp(scanned + outer)
        return np.where(outer == -np.inf, 0, total)


def _lse_samples(rng):
    out = _scan_samples()(rng)
    out.append(Sample((np.array([[-40.0, 0.3, 35.0, -2.0], [800.0, 799.0, -800.0, 801.5]]),), {"axis": 1},
                      "entries far apart, and beyond exp's range"))
    return out


@op(shape=scan_shape, dtype=float_dtype, float_inputs=True, samples=_lse_samples,
    counterparts={"torch": "torch.logcumsumexp"})
def logcumsumexp(x, *, axis=None):
    """``log(cumsum(exp(x)))`` along ``axis`` (of the flattened input by default), stable for any entries."""
    if axis is None:
        x, axis = x.reshape(-1), 0
    return np.logaddexp.accumulate(x, axis=axis)


@logcumsumexp.vjp
def _(g, x, out, *, axis):
    if axis is None:
        return (_signed_log_scan(g, -out, x.reshape(-1), 0, reverse=True).reshape(x.shape),)
    return (_signed_log_scan(g, -out, x, axis, reverse=True),)


@logcumsumexp.graph_vjp
def _(g, x, out, *, axis):
    flat, a = _flat(x, axis)
    return (_unflat(expscan_reverse(g, flat, out, axis=a), x, axis),)


def _exp_scan_rule(w, x, y, *, axis=-1):
    shape = broadcast_shapes(w, x, y)
    if not shape:
        raise ValueError(f"a scan needs at least one axis; the inputs {format_shape(w)}, {format_shape(x)}, "
                         f"{format_shape(y)} broadcast to a scalar")
    normalize_axes(axis, len(shape))
    return shape


def _exp_scan_samples(rng):
    cases = [((3, 4), (3, 4), (3, 4), -1), ((3, 4), (3, 4), (3, 4), 0), ((2, 1, 4), (3, 4), (2, 3, 4), 2),
             ((0, 3), (0, 3), (0, 3), 1), ((1,), (5,), (5,), 0)]
    out = [Sample(tuple(away_from_zero(rng, s) for s in shapes), {"axis": a}, f"shapes {shapes}, axis={a}")
           for *shapes, a in cases]
    x = away_from_zero(rng, (2, 3))
    out.append(Sample((x, x, x), {"axis": 1}, "the same input three times"))
    return out


@op(shape=_exp_scan_rule, dtype=float_dtype, float_inputs=True, samples=_exp_scan_samples)
def expscan(h, x, y, *, axis=-1):
    """``out_i = sum_{j<=i} h_j exp(x_j - y_i)`` along ``axis``, in the log domain: ``expscan_reverse``'s transpose."""
    return _signed_log_scan(h, x, -y, axis, reverse=False)


@expscan.vjp
def _(k, h, x, y, out, *, axis, needs):
    back = _signed_log_scan(k, -y, x, axis, reverse=True)       # sum_{i>=j} k_i exp(x_j - y_i)
    return (back if needs[0] else None), (h * back if needs[1] else None), (-k * out if needs[2] else None)


@expscan.graph_vjp
def _(k, h, x, y, out, *, axis, needs):
    back = expscan_reverse(k, x, y, axis=axis)
    return (back if needs[0] else None), (h * back if needs[1] else None), (-k * out if needs[2] else None)


@op(shape=_exp_scan_rule, dtype=float_dtype, float_inputs=True, samples=_exp_scan_samples)
def expscan_reverse(g, x, y, *, axis=-1):
    """``out_j = sum_{i>=j} g_i exp(x_j - y_i)`` along ``axis``, in the log domain: logcumsumexp's gradient."""
    return _signed_log_scan(g, -y, x, axis, reverse=True)


@expscan_reverse.vjp
def _(h, g, x, y, out, *, axis, needs):
    ahead = _signed_log_scan(h, x, -y, axis, reverse=False)     # sum_{j<=i} h_j exp(x_j - y_i)
    return (ahead if needs[0] else None), (h * out if needs[1] else None), (-g * ahead if needs[2] else None)


@expscan_reverse.graph_vjp
def _(h, g, x, y, out, *, axis, needs):
    ahead = expscan(h, x, y, axis=axis)
    return (ahead if needs[0] else None), (h * out if needs[1] else None), (-g * ahead if needs[2] else None)
