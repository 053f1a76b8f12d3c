"""Reductions beyond sums: prod, var, std, norm, median, quantile.

Conventions where a gradient is not defined, each chosen so that training
never meets a NaN the data did not bring:

- ``prod``: none needed; the gradient at ``x_k`` is the product of the other
  entries, computed without dividing (so one zero, or several, is exact).
- ``std``: at zero variance (all entries equal) the gradient is 0, a
  subgradient of this convex function, as PyTorch gives for ``norm`` at 0;
  ``0/0`` would make it NaN.
- ``norm``: 0 at the zero vector for every order; entries at 0 get 0 from
  ``|x|``'s kink; ties of the ``inf`` norms (and the matrix 1 and inf norms)
  share the gradient evenly, as ``max`` does.
- ``median`` and ``quantile``: the gradient goes to the entries the result
  was interpolated from, with the interpolation weights; entries equal to a
  selected one share its weight evenly (as ``max`` shares ties), so the
  gradient does not depend on the order of the entries.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..opdef import Sample, float_dtype, op
from ..shapes import normalize_axes, reduced_shape
from ..tensor import Tensor
from .adjoints import expand_reduced, is_nonzero, ones_like, reduced_count, static_rank
from .compare import equal
from .elementwise import abs, astype, maximum, pow, where
from .layout import concatenate, expand_dims, getitem, index_along
from .math import floor, round, sign
from .presets import reduction_op, sum_dtype
from .reductions import _expand, max, mean, min, sum
from .samples import REDUCTION_CASES, away_from_zero
from .scans import cumprod
from .shaping import flip

__all__ = ["prod", "var", "std", "norm", "median", "quantile"]


def _axes_samples(make=away_from_zero, attrs=None, cases=REDUCTION_CASES):
    def samples(rng):
        return [Sample((make(rng, s),), {"axis": a, "keepdims": k, **(attrs or {})},
                       f"shape {s}, axis={a}, keepdims={k}") for s, a, k in cases]

    return samples


# ---------------------------------------------------------------- prod ---


def others_product_last(s: np.ndarray) -> np.ndarray:
    """``prod_{j != i} s_j`` along the last axis for each ``i``; no division, so zeros are exact.

    The product of those before (an exclusive cumulative product) times the
    product of those after (the same, from the other end).
    """
    ones = np.ones_like(s[..., :1])
    before = np.concatenate([ones, np.cumprod(s, axis=-1)[..., :-1]], axis=-1)
    after = np.flip(np.concatenate([ones, np.cumprod(np.flip(s, -1), axis=-1)[..., :-1]], axis=-1), -1)
    return before * after


def _others_product(x: np.ndarray, axes: tuple) -> np.ndarray:
    """For every entry, the product of the other entries it is reduced with (the reduced axes moved last, flattened)."""
    if not axes:
        return np.ones_like(x)
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, kept + list(axes))
    rows = moved.reshape(moved.shape[:len(kept)] + (math.prod(x.shape[a] for a in axes),))
    others = others_product_last(rows).reshape(moved.shape)
    return np.transpose(others, np.argsort(kept + list(axes)))


def _exclusive_cumprod(t: Tensor, axis: int) -> Tensor:
    """``prod_{j<k} t_j`` along ``axis`` (1 first), built from ops, so it is differentiable again."""
    first = ones_like(getitem(t, index=index_along(axis, slice(0, 1))))
    return concatenate(first, getitem(cumprod(t, axis=axis), index=index_along(axis, slice(None, -1))), axis=axis)


def _others_product_graph(t: Tensor, axis: int) -> Tensor:
    """For every entry of ``t``, the product of the others along ``axis``: before times after, no division."""
    after = flip(_exclusive_cumprod(flip(t, axis=axis), axis), axis=axis)
    return _exclusive_cumprod(t, axis) * after


def _prod_samples(rng):
    out = _axes_samples()(rng)
    out.append(Sample((np.array([[0.5, 0.0, 1.5], [1.2, -0.7, 0.9]]),), {"axis": 1, "keepdims": False}, "one zero"))
    out.append(Sample((np.array([[0.0, 1.3, 0.0], [0.6, 0.0, -0.8]]),), {"axis": None, "keepdims": False},
                      "several zeros"))
    return out


@reduction_op(dtype=sum_dtype, samples=_prod_samples,
              counterparts={"numpy": "numpy.prod", "torch": "torch.prod"})
def prod(x, *, axis=None, keepdims=False):
    """Product over ``axis`` (all axes by default); exact gradients with zeros among the entries."""
    return np.prod(x, axis=axis, keepdims=keepdims)


@prod.vjp
def _(g, x, out, *, axis, keepdims):
    axes = normalize_axes(axis, x.ndim)
    return ((_expand(g, x.ndim, axis, keepdims) * _others_product(x, axes)).astype(g.dtype, copy=False),)


@prod.graph_vjp
def _(g, x, out, *, axis, keepdims):
    """Axis by axis: the product over several axes is a product over one, then over the next."""
    axes = normalize_axes(axis, static_rank(x, "prod"))
    partial = [x]
    for a in axes[:-1]:
        partial.append(prod(partial[-1], axis=a, keepdims=True))
    grad = expand_reduced(g, x, axis, keepdims)
    for a, t in reversed(list(zip(axes, partial))):
        grad = grad * _others_product_graph(t, a)
    return (grad,)


# ----------------------------------------------------------- var, std ---


def _dof(count, ddof):
    """``count - ddof``, at least 0: fewer entries than ``ddof`` divide by 0 (inf or NaN, as numpy)."""
    if isinstance(count, Tensor):
        return maximum(count - ddof, 0)
    return builtins.max(count - ddof, 0)


def _count(x: np.ndarray, axis) -> int:
    return math.prod(x.shape[a] for a in normalize_axes(axis, x.ndim))


def _centered(x: np.ndarray, axis) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return x - np.sum(x, axis=axis, keepdims=True) / _count(x, axis)


def _variance(x: np.ndarray, axis, ddof, keepdims) -> np.ndarray:
    d = _centered(x, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(d * d, axis=axis, keepdims=keepdims) / _dof(_count(x, axis), ddof)


def _var_samples(rng):
    out = _axes_samples(attrs={"ddof": 0})(rng)
    out.append(Sample((away_from_zero(rng, (4, 3)),), {"axis": 0, "keepdims": False, "ddof": 1}, "ddof=1"))
    return out


@reduction_op(dtype=float_dtype, float_inputs=True, saves=("inputs",), samples=_var_samples,
              counterparts={"numpy": "numpy.var", "torch": "torch.var"})
def var(x, *, axis=None, ddof=0, keepdims=False):
    """Variance over ``axis``, dividing by ``N - ddof`` (numpy's default ``ddof=0``; PyTorch's is 1)."""
    return _variance(x, axis, ddof, keepdims)


@var.vjp
def _(g, x, *, axis, ddof, keepdims):
    with np.errstate(invalid="ignore", divide="ignore"):  # N - ddof = 0: numpy's inf or NaN, never a Python error
        return (_expand(g, x.ndim, axis, keepdims) * 2 / _dof(_count(x, axis), ddof) * _centered(x, axis),)


@var.graph_vjp
def _(g, x, *, axis, ddof, keepdims):
    centered = x - mean(x, axis=axis, keepdims=True)
    return (expand_reduced(g, x, axis, keepdims) * 2 * centered / _dof(reduced_count(x, axis), ddof),)


@reduction_op(dtype=float_dtype, float_inputs=True, samples=_var_samples,
              counterparts={"numpy": "numpy.std", "torch": "torch.std"})
def std(x, *, axis=None, ddof=0, keepdims=False):
    """Standard deviation over ``axis`` (``sqrt`` of ``var``); gradient 0 where the variance is 0.

    All entries equal: the standard deviation is at its minimum, 0, where its
    derivative does not exist; the gradient is 0 there (a subgradient), not
    the NaN of ``0 / 0``.
    """
    return np.sqrt(_variance(x, axis, ddof, keepdims))


@std.vjp
def _(g, x, out, *, axis, ddof, keepdims):
    spread = _expand(out, x.ndim, axis, keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = _expand(g, x.ndim, axis, keepdims) / (_dof(_count(x, axis), ddof) * np.where(spread == 0, 1, spread))
    return (np.where(spread == 0, 0, scale * _centered(x, axis)),)


@std.graph_vjp
def _(g, x, out, *, axis, ddof, keepdims):
    """As the numpy rule; zero variance is masked by a boolean node, so its gradient is 0 to every order."""
    spread = expand_reduced(out, x, axis, keepdims)
    spread_nonzero = is_nonzero(spread)
    centered = x - mean(x, axis=axis, keepdims=True)
    dof = _dof(reduced_count(x, axis), ddof)
    scale = expand_reduced(g, x, axis, keepdims) / (dof * where(spread_nonzero, spread, 1))
    return (where(spread_nonzero, scale * centered, 0),)


# ---------------------------------------------------------------- norm ---

_MATRIX_ONLY = ("fro", "nuc")


def _norm_plan(ndim: int, ord, axis):
    """``("vector", p, axes)`` or ``("matrix", ord, (row, col))``: how ``numpy.linalg.norm`` reads ``ord`` and ``axis``.

    With ``axis=None`` and no ``ord`` every entry counts (the 2-norm of the
    flattened array); with an ``ord`` the input must be 1-D (a vector norm)
    or 2-D (a matrix norm). One axis makes a vector norm, two a matrix norm
    (``'fro'`` is the 2-norm of the entries).
    """
    if axis is None:
        if ord is None:
            return "vector", 2.0, tuple(range(ndim))
        if ndim not in (1, 2):
            raise ValueError(
                f"norm with ord={ord!r} of a {ndim}-D input needs axis=: one axis for a vector norm, two for a "
                "matrix norm (numpy.linalg.norm's rule)"
            )
        axis = tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"ord={ord!r} is a matrix norm; name two axes (axis=(row, column))")
        return "vector", 2.0 if ord is None else float(ord), normalize_axes(axes, ndim)
    if len(axes) != 2:
        raise ValueError(f"norm reduces one axis (a vector norm) or two (a matrix norm), not axis={axis!r}")
    row, col = (normalize_axes(a, ndim)[0] for a in axes)
    if row == col:
        raise ValueError(f"axis={axis!r} names the same axis twice")
    if ord is None or ord == "fro":
        return "vector", 2.0, tuple(sorted((row, col)))
    if ord in (1, -1, math.inf, -math.inf):
        return "matrix", float(ord), (row, col)
    if ord in (2, -2, "nuc"):
        raise ValueError(
            f"the matrix norm ord={ord!r} is a function of the singular values; use the linear-algebra ops "
            "(dg.linalg) for it. norm gives the matrix norms ord=None/'fro', 1, -1, inf and -inf"
        )
    raise ValueError(f"invalid norm order {ord!r} for matrices (None, 'fro', 1, -1, inf, -inf)")


def _norm_shape(shape, *, ord=None, axis=None, keepdims=False):
    _, _, axes = _norm_plan(len(shape), ord, axis)
    return reduced_shape(shape, axes, keepdims)


def _norm_samples(rng):
    cases = [
        ((3, 4), None, None, False), ((2, 3, 4), None, None, True), ((5,), 1, None, False),
        ((5,), math.inf, None, False), ((3, 4), -math.inf, 1, False), ((3, 4), 3, 0, True), ((4,), 0.5, None, False),
        ((3, 4), 1, None, False), ((3, 4), -1, None, True), ((3, 4), math.inf, None, False),
        ((2, 3, 4), -math.inf, (2, 0), False), ((2, 3, 4), "fro", (0, 2), False), ((3, 4), 0, 1, False),
        ((0, 3), None, 1, False), ((1, 1), 2, 1, True), ((), None, None, False),
    ]
    out = []
    for shape, order, axis, keepdims in cases:
        # distinct magnitudes: no tie of the inf norms (or the matrix 1/inf norms) inside a finite-difference step
        size = math.prod(shape)
        values = (rng.permutation(size).reshape(shape) * 0.1 + 0.3) * rng.choice([-1.0, 1.0], size=shape)
        out.append(Sample((np.asarray(values, dtype=np.float64),), {"ord": order, "axis": axis, "keepdims": keepdims},
                          f"shape {shape}, ord={order}, axis={axis}, keepdims={keepdims}"))
    return out


@op(shape=_norm_shape, dtype=float_dtype, float_inputs=True, samples=_norm_samples,
    counterparts={"numpy": "numpy.linalg.norm", "torch": "torch.linalg.norm"})
def norm(x, *, ord=None, axis=None, keepdims=False):
    """Vector or matrix norm, as ``numpy.linalg.norm``: ``ord`` 2, 1, inf, -inf, p, 0; for matrices 'fro', 1, inf.

    One axis (or a 1-D input) gives a vector norm: ``ord`` None or 2 is the
    Euclidean norm, 1 the sum of ``|x|``, ``inf`` / ``-inf`` the largest /
    smallest ``|x|``, 0 the count of nonzero entries (gradient 0), and any
    other p ``sum(|x|**p)**(1/p)``. Two axes (or a 2-D input) give a matrix
    norm: None or ``'fro'`` (Frobenius), 1 / -1 (largest / smallest column
    sum of ``|x|``), ``inf`` / ``-inf`` (largest / smallest row sum). With
    ``axis=None`` and no ``ord``, the 2-norm of all entries. The spectral
    and nuclear norms (``ord=2, -2, 'nuc'`` of a matrix) need singular values
    and are refused here.
    """
    return np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)


def _vector_norm_vjp(g, x, out, p, axes):
    """Numpy gradient of a vector p-norm over ``axes``; ``g`` and ``out`` keep the reduced axes."""
    if p == 0:
        return None
    if p == 1:
        return g * np.sign(x)
    if math.isinf(p):
        magnitude = np.abs(x)
        extreme = np.max(magnitude, axis=axes, keepdims=True) if p > 0 else np.min(magnitude, axis=axes, keepdims=True)
        winners = magnitude == extreme
        return g * np.sign(x) * winners / np.sum(winners, axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        safe_out = np.where(out == 0, 1, out)
        if p == 2:
            return np.where(out == 0, 0, g * x / safe_out)
        ratio = np.where(x == 0, 1, np.abs(x)) / safe_out
        return np.where((out == 0) | (x == 0), 0, g * np.sign(x) * ratio ** (p - 1))


def _matrix_norm_parts(ord: float, rows: int, cols: int):
    """``(inner, outer, largest)``: |x| is summed over ``inner``, then its largest (smallest) over ``outer`` taken."""
    inner, outer = (rows, cols) if ord in (1, -1) else (cols, rows)
    return inner, outer, ord > 0


@norm.vjp
def _(g, x, out, *, ord, axis, keepdims):
    kind, p, axes = _norm_plan(x.ndim, ord, axis)
    reduced = tuple(sorted(axes))
    g_full = _expand(g, x.ndim, reduced, keepdims)
    if kind == "vector":
        grad = _vector_norm_vjp(g_full, x, _expand(out, x.ndim, reduced, keepdims), p, reduced)
        return (None if grad is None else grad.astype(g.dtype, copy=False),)
    inner, outer, largest = _matrix_norm_parts(p, *axes)
    sums = np.sum(np.abs(x), axis=inner, keepdims=True)
    extreme = (np.max if largest else np.min)(sums, axis=outer, keepdims=True)
    winners = sums == extreme
    share = winners / np.sum(winners, axis=outer, keepdims=True)
    return ((g_full * share * np.sign(x)).astype(g.dtype, copy=False),)


def _vector_norm_graph_vjp(g, x, out, p, axes):
    """The graph VJP of a vector p-norm; kinks and ties are boolean masks, so constant to higher orders."""
    if p == 0:
        return None
    if p == 1:
        return g * sign(x)
    if math.isinf(p):
        magnitude = abs(x)
        extreme = (max if p > 0 else min)(magnitude, axis=axes, keepdims=True)
        winners = astype(equal(magnitude, extreme), dtype=x.dtype.name)
        return g * sign(x) * winners / sum(winners, axis=axes, keepdims=True)
    out_nonzero = is_nonzero(out)
    safe_out = where(out_nonzero, out, 1)
    if p == 2:
        return where(out_nonzero, g * x / safe_out, 0)
    x_nonzero = is_nonzero(x)
    ratio = where(x_nonzero, abs(x), 1) / safe_out   # 1 at the masked entries: no 0 ** negative behind the mask
    return where(out_nonzero, where(x_nonzero, g * sign(x) * pow(ratio, p - 1), 0), 0)


@norm.graph_vjp
def _(g, x, out, *, ord, axis, keepdims):
    kind, p, axes = _norm_plan(static_rank(x, "norm"), ord, axis)
    reduced = tuple(sorted(axes))
    g_full = expand_reduced(g, x, reduced, keepdims)
    if kind == "vector":
        return (_vector_norm_graph_vjp(g_full, x, expand_reduced(out, x, reduced, keepdims), p, reduced),)
    inner, outer, largest = _matrix_norm_parts(p, *axes)
    sums = sum(abs(x), axis=inner, keepdims=True)
    extreme = (max if largest else min)(sums, axis=outer, keepdims=True)
    winners = astype(equal(sums, extreme), dtype=x.dtype.name)
    return (g_full * winners / sum(winners, axis=outer, keepdims=True) * sign(x),)


# ----------------------------------------------------- median, quantile ---

QUANTILE_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _check_q(q) -> None:
    values = q if isinstance(q, (tuple, list)) else (q,)
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
            raise ValueError(f"quantiles must be numbers in [0, 1]; got q={q!r}")


def _quantile_shape(shape, *, q=0.5, axis=None, keepdims=False, method="linear"):
    _check_q(q)
    if method not in QUANTILE_METHODS:
        raise ValueError(f"unknown quantile method {method!r} (known: {', '.join(QUANTILE_METHODS)})")
    lead = (len(q),) if isinstance(q, (tuple, list)) else ()
    return lead + reduced_shape(shape, axis, keepdims)


def _upper_weight(h, method: str, rounding, flooring):
    """Weight of the upper of the two order statistics around position ``h = q (n - 1)``; the lower gets the rest.

    The arithmetic works on numbers and on Tensors alike (``rounding`` and
    ``flooring`` are numpy's or dagrad's): ``linear`` interpolates,
    ``nearest`` rounds halves to even (numpy's ``around``), ``midpoint``
    averages the two (when they are one entry, the split does not matter).
    """
    if method == "linear":
        return h - flooring(h)
    if method == "nearest":
        return rounding(h) - flooring(h)
    return {"lower": 0.0, "higher": 1.0, "midpoint": 0.5}[method]


def _q_array(q) -> np.ndarray:
    return np.asarray(q, dtype=np.float64)


def _lead(q) -> int:
    return 1 if isinstance(q, (tuple, list)) else 0


def _quantile_vjp(g, x, q, axis, keepdims, method):
    """``g`` to the two order statistics each quantile lies between, with its weights; ties share evenly."""
    lead = _lead(q)
    reduced = normalize_axes(axis, x.ndim)
    lower = np.quantile(x, q, axis=axis, keepdims=True, method="lower")
    upper = np.quantile(x, q, axis=axis, keepdims=True, method="higher")
    h = _q_array(q).reshape((-1,) * lead + (1,) * x.ndim) * (_count(x, axis) - 1)
    up = _upper_weight(h, method, np.around, np.floor)
    if not keepdims:
        g = np.expand_dims(g, tuple(a + lead for a in reduced))
    grad = g * ((1 - up) * _evenly(x == lower, reduced, lead) + up * _evenly(x == upper, reduced, lead))
    return grad.sum(axis=0) if lead else grad


def _evenly(winners: np.ndarray, reduced: tuple, lead: int) -> np.ndarray:
    """A mask of selected entries as shares: 1 over the number selected along the reduced axes."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return winners / np.sum(winners, axis=tuple(a + lead for a in reduced), keepdims=True)


def _quantile_graph_vjp(g, x, q, axis, keepdims, method):
    """As the numpy rule, with the order statistics as ``quantile`` nodes (lower and higher) and boolean masks."""
    lead = _lead(q)
    ndim = static_rank(x, "quantile")
    reduced = normalize_axes(axis, ndim)
    lower = quantile(x, q=q, axis=axis, keepdims=True, method="lower")
    upper = quantile(x, q=q, axis=axis, keepdims=True, method="higher")
    qs = _q_array(q).reshape((-1,) * lead + (1,) * ndim)
    count = reduced_count(x, axis)
    if isinstance(count, Tensor):
        up = _upper_weight(qs * (count - 1), method, round, floor)
    else:
        up = _upper_weight(qs * (count - 1), method, np.around, np.floor)
    if not keepdims and reduced:
        g = expand_dims(g, axis=tuple(a + lead for a in reduced))
    dtype = x.dtype.name
    summed = tuple(a + lead for a in reduced)

    def evenly(selected):
        share = astype(selected, dtype=dtype)
        return share / sum(share, axis=summed, keepdims=True)

    grad = g * ((1 - up) * evenly(equal(x, lower)) + up * evenly(equal(x, upper)))
    return sum(grad, axis=0) if lead else grad


def _quantile_samples(rng):
    cases = [((7,), 0.3, None, False, "linear"), ((3, 5), (0.1, 0.5, 0.9), 1, False, "linear"),
             ((2, 3, 4), 0.25, (0, 2), True, "linear"), ((4, 3), 0.5, 0, False, "lower"),
             ((4, 3), 0.5, 0, False, "higher"), ((6,), (0.1, 0.5), None, True, "midpoint"),
             ((6,), (0.3, 0.5, 0.7), 0, False, "nearest"), ((0, 3), 0.5, 1, False, "linear"),
             ((1, 4), 1.0, 1, True, "linear"), ((), 0.4, None, False, "linear")]
    out = []
    for shape, q, axis, keepdims, method in cases:
        values = rng.permutation(math.prod(shape)).reshape(shape) * 0.1 - 0.4   # distinct: no ties within a step
        out.append(Sample((np.asarray(values, dtype=np.float64),),
                          {"q": q, "axis": axis, "keepdims": keepdims, "method": method},
                          f"shape {shape}, q={q}, axis={axis}, keepdims={keepdims}, {method}"))
    return out


@op(shape=_quantile_shape, dtype=float_dtype, float_inputs=True, saves=("inputs",), samples=_quantile_samples,
    counterparts={"numpy": "numpy.quantile", "torch": "torch.quantile"})
def quantile(x, *, q=0.5, axis=None, keepdims=False, method="linear"):
    """The ``q``-th quantile(s) over ``axis``, as ``numpy.quantile``; a sequence ``q`` adds a leading axis.

    ``method`` is numpy's (PyTorch's ``interpolation``): ``'linear'``
    (default) interpolates between the two order statistics around
    ``q * (n - 1)``, ``'lower'``, ``'higher'``, ``'midpoint'`` and
    ``'nearest'`` pick or average them. The gradient goes to those entries
    with the interpolation weights; entries tied with one share its weight.
    """
    # numpy computes a float32 input's quantiles at a sequence of q in float64 (q's dtype)
    return np.quantile(x, q, axis=axis, keepdims=keepdims, method=method).astype(x.dtype, copy=False)


@quantile.vjp
def _(g, x, *, q, axis, keepdims, method):
    return (_quantile_vjp(g, x, q, axis, keepdims, method).astype(g.dtype, copy=False),)


@quantile.graph_vjp
def _(g, x, *, q, axis, keepdims, method):
    return (_quantile_graph_vjp(g, x, q, axis, keepdims, method),)


def _median_samples(rng):
    cases = [((7,), None, False), ((6,), None, False), ((3, 4), 1, True), ((2, 3, 4), (0, 2), False),
             ((0, 3), 1, False), ((1, 5), 0, False), ((), None, False)]
    return [Sample((np.asarray(rng.permutation(math.prod(s)).reshape(s) * 0.1 - 0.2, dtype=np.float64),),
                   {"axis": a, "keepdims": k}, f"shape {s}, axis={a}, keepdims={k}") for s, a, k in cases]


@reduction_op(dtype=float_dtype, float_inputs=True, saves=("inputs",), samples=_median_samples,
              counterparts={"numpy": "numpy.median"})
def median(x, *, axis=None, keepdims=False):
    """Median over ``axis``, as ``numpy.median``: the mean of the two middle entries when their number is even.

    ``torch.median`` returns the lower of the two instead; ``torch.quantile(x, 0.5)``
    is this. The gradient goes to the middle entry (half to each of the two
    middle ones); entries tied with one share its part.
    """
    return np.median(x, axis=axis, keepdims=keepdims)


@median.vjp
def _(g, x, *, axis, keepdims):
    return (_quantile_vjp(g, x, 0.5, axis, keepdims, "linear").astype(g.dtype, copy=False),)


@median.graph_vjp
def _(g, x, *, axis, keepdims):
    return (_quantile_graph_vjp(g, x, 0.5, axis, keepdims, "linear"),)
