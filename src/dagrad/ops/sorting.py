"""Selection: argmax, argmin, any, all, argsort, sort, topk, argtopk, and the permutation op their gradients use.

Integer and boolean results (``argmax``, ``argmin``, ``argsort``,
``argtopk``, ``any``, ``all``) have no gradient: they are constant almost everywhere, and the
engine never differentiates a non-float node.

Sorting is stable everywhere (equal entries keep their order; descending
sorts keep it too), so values and indices agree, and ``topk``'s values are
the first ``k`` entries of a descending ``sort``. Their gradients move the
output gradient back to where each value came from, so they are exact
wherever the order is strict; at ties the sort is continuous but not
differentiable, and each tied entry gets the gradient of the position the
stable order gave it (as PyTorch does).

A function that returns values and indices, such as ``dg.topk``, adds one
node for each (``topk`` and ``argtopk``): an op's output is one array. ``permute_along`` moves entries by
a permutation along an axis; its gradient is the same op with the inverse
permutation (``argsort`` of the permutation), so the gradients of ``sort``
and ``topk`` are differentiable again, to any order.
"""

from __future__ import annotations

import builtins

import numpy as np

from ..opdef import Sample, bool_dtype, first_dtype, op
from ..shapes import dims_agree, format_shape, normalize_axes, reduced_shape
from .adjoints import static_rank, vector_on_axis, zeros_like
from .compare import _specials, _truths
from .layout import concatenate, getitem, index_along
from .presets import reduction_op
from .samples import REDUCTION_CASES, away_from_zero

# ``any`` and ``all`` below shadow the builtins in this module; ``builtins.any`` is the original.

__all__ = ["argmax", "argmin", "any", "all", "argsort", "sort", "topk", "argtopk", "permute_along"]


def _index_dtype(*dtypes, **attrs) -> np.dtype:
    for d in dtypes:
        if np.dtype(d).kind not in "biuf":
            raise TypeError(f"{np.dtype(d)} cannot be ordered")
    return np.dtype(np.int64)


def _distinct(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Distinct values (a shuffled grid) in ±[0.05, ...]: no tie lies within a finite-difference step."""
    size = int(np.prod(shape))
    return np.asarray((rng.permutation(size).reshape(shape) - size / 2 + 0.5) * 0.1, dtype=np.float64)


def _along_numpy(axis: int, item) -> tuple:
    """The numpy index picking ``item`` along ``axis``."""
    return (slice(None),) * axis + (item,)


# ------------------------------------------------------- argmax, argmin ---


def _arg_extreme_shape(shape, *, axis=None, keepdims=False):
    if axis is not None and not isinstance(axis, int):
        raise ValueError(f"argmax and argmin take one axis or None (all entries, as one flat index), not {axis!r}")
    axes = normalize_axes(axis, len(shape))
    if builtins.any(shape[a] == 0 for a in axes):
        raise ValueError(f"there is no largest or smallest entry of an empty axis (input {format_shape(shape)})")
    return reduced_shape(shape, axes, keepdims)


def _arg_extreme_samples(rng):
    cases = [((3, 4), None, False), ((3, 4), 0, False), ((3, 4), -1, True), ((2, 3, 4), 1, False),
             ((1, 5), 1, True), ((0, 3), 1, False), ((), None, False)]
    out = [Sample((_distinct(rng, s),), {"axis": a, "keepdims": k}, f"shape {s}, axis={a}, keepdims={k}")
           for s, a, k in cases]
    out.append(Sample((np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]]),), {"axis": 1, "keepdims": False},
                      "ties: the first"))
    out.append(Sample((np.array([0.5, np.nan, 2.0]),), {"axis": 0, "keepdims": False}, "NaN counts as the extreme"))
    out.append(Sample((rng.integers(-3, 3, size=(2, 5)).astype(np.int16),), {"axis": 1, "keepdims": False}, "int16"))
    return out


@op(shape=_arg_extreme_shape, dtype=_index_dtype, saves=(), samples=_arg_extreme_samples,
    counterparts={"numpy": "numpy.argmax", "torch": "torch.argmax"})
def argmax(x, *, axis=None, keepdims=False):
    """Index (int64) of the largest entry along ``axis``, the first of ties; of the flattened input by default.

    NaN counts as the largest, as in numpy and PyTorch. No gradient.
    """
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int64, copy=False)


@op(shape=_arg_extreme_shape, dtype=_index_dtype, saves=(), samples=_arg_extreme_samples,
    counterparts={"numpy": "numpy.argmin", "torch": "torch.argmin"})
def argmin(x, *, axis=None, keepdims=False):
    """Index (int64) of the smallest entry along ``axis``, the first of ties; of the flattened input by default.

    NaN counts as the smallest, as in numpy and PyTorch. No gradient.
    """
    return np.argmin(x, axis=axis, keepdims=keepdims).astype(np.int64, copy=False)


# -------------------------------------------------------------- any, all ---


def _truth_samples(rng):
    out = [Sample((_truths(rng, s),), {"axis": a, "keepdims": k}, f"shape {s}, axis={a}, keepdims={k}")
           for s, a, k in REDUCTION_CASES]
    out.append(Sample((_specials(rng, (3, 4)),), {"axis": 1, "keepdims": False}, "numbers: nonzero (and NaN) is true"))
    out.append(Sample((np.zeros((2, 3), bool),), {"axis": None, "keepdims": False}, "all false"))
    return out


@reduction_op(dtype=bool_dtype, saves=(), samples=_truth_samples,
              counterparts={"numpy": "numpy.any", "torch": "torch.any"})
def any(x, *, axis=None, keepdims=False):
    """Whether any entry over ``axis`` is true (nonzero, NaN included); False over none. No gradient."""
    return np.any(x, axis=axis, keepdims=keepdims)


@reduction_op(dtype=bool_dtype, saves=(), samples=_truth_samples,
              counterparts={"numpy": "numpy.all", "torch": "torch.all"})
def all(x, *, axis=None, keepdims=False):
    """Whether every entry over ``axis`` is true (nonzero, NaN included); True over none. No gradient."""
    return np.all(x, axis=axis, keepdims=keepdims)


# ------------------------------------------------------- argsort, sort ---


def _stable_argsort(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """The stable sorting permutation; descending keeps equal entries in their order too (NaN first, as PyTorch)."""
    if not descending:
        return np.argsort(x, axis=axis, kind="stable")
    n = x.shape[axis]
    # Sorting the reversed input and reversing the result gives descending order with ties in input order.
    reversed_order = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return n - 1 - np.flip(reversed_order, axis)


def _sort_shape(shape, *rest, axis=-1, **attrs):
    if not shape:
        raise ValueError("a 0-d input has no axis to sort along")
    normalize_axes(axis, len(shape))
    return tuple(shape)


def _sort_samples(make=_distinct, attrs=None):
    def samples(rng):
        cases = [((6,), -1, False), ((3, 4), -1, True), ((3, 4), 0, False), ((2, 3, 4), 1, True), ((1, 5), 0, False),
                 ((0, 3), 1, False), ((2, 0), 1, True)]
        return [Sample((make(rng, s),), {"axis": a, "descending": d, **(attrs or {})},
                       f"shape {s}, axis={a}, descending={d}") for s, a, d in cases]

    return samples


def _argsort_samples(rng):
    out = _sort_samples()(rng)
    out.append(Sample((np.array([2.0, 1.0, 2.0, 1.0, np.nan]),), {"axis": 0, "descending": False},
                      "ties keep their order; NaN last"))
    out.append(Sample((np.array([2.0, 1.0, 2.0, 1.0, np.nan]),), {"axis": 0, "descending": True},
                      "descending: ties keep their order; NaN first"))
    out.append(Sample((np.array([[3, 1, 2], [0, 0, 5]], dtype=np.int8),), {"axis": 1, "descending": True}, "int8"))
    return out


@op(shape=_sort_shape, dtype=_index_dtype, saves=(), samples=_argsort_samples,
    counterparts={"numpy": "numpy.argsort", "torch": "torch.argsort"})
def argsort(x, *, axis=-1, descending=False):
    """Indices (int64) that sort ``x`` along ``axis``; stable: equal entries keep their order. No gradient."""
    return _stable_argsort(x, axis, descending).astype(np.int64, copy=False)


@op(shape=_sort_shape, dtype=first_dtype, saves=(), residuals=True, samples=_sort_samples(),
    counterparts={"numpy": "numpy.sort", "torch": "torch.sort"})
def sort(x, *, axis=-1, descending=False):
    """Entries sorted along ``axis`` (stable); the gradient goes back to where each value came from."""
    order = _stable_argsort(x, axis, descending)
    return np.take_along_axis(x, order, axis=axis), order


@sort.vjp
def _(g, x, res, *, axis, descending):
    grad = np.empty_like(g)
    np.put_along_axis(grad, res, g, axis=axis)
    return (grad,)


@sort.graph_vjp
def _(g, x, *, axis, descending):
    """``g`` moved back by the inverse of the sorting permutation (the argsort of the argsort), to any order."""
    order = argsort(x, axis=axis, descending=descending)
    return (permute_along(g, argsort(order, axis=axis), axis=axis),)


# --------------------------------------------------------------- topk ---


def _topk_shape(shape, *, k=1, axis=-1, largest=True):
    if not shape:
        raise ValueError("a 0-d input has no axis to take the top k along")
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k must be a non-negative integer, not {k!r}")
    (a,) = normalize_axes(axis, len(shape))
    if shape[a] is not None and k > shape[a]:
        raise ValueError(f"k={k} is more than the {shape[a]} entries along axis {a} of {format_shape(shape)}")
    return tuple(shape[:a]) + (k,) + tuple(shape[a + 1:])


def _topk_samples(rng):
    cases = [((6,), 3, -1, True), ((3, 5), 2, -1, False), ((4, 3), 4, 0, True), ((2, 3, 4), 1, 1, True),
             ((1, 5), 0, 1, True), ((0, 3), 2, 1, True), ((3, 2), 2, 1, False)]
    return [Sample((_distinct(rng, s),), {"k": k, "axis": a, "largest": big},
                   f"shape {s}, k={k}, axis={a}, largest={big}") for s, k, a, big in cases]


def _top_order(x: np.ndarray, k: int, axis: int, largest: bool) -> np.ndarray:
    """Indices of the top ``k`` along ``axis``: the first ``k`` of the stable sorting permutation."""
    a = normalize_axes(axis, x.ndim)[0]
    return _stable_argsort(x, a, largest)[_along_numpy(a, slice(0, k))]


@op(shape=_topk_shape, dtype=first_dtype, saves=(), residuals=True, samples=_topk_samples,
    counterparts={"torch": "torch.topk"})
def topk(x, *, k=1, axis=-1, largest=True):
    """The ``k`` largest entries along ``axis`` in descending order (smallest, ascending, with ``largest=False``).

    The first ``k`` of a stable ``sort``: of equal entries, the earlier
    comes first. ``dg.topk`` also returns their indices (an ``argtopk`` node).
    """
    order = _top_order(x, k, axis, largest)
    return np.take_along_axis(x, order, axis=axis), order


@op(shape=_topk_shape, dtype=_index_dtype, saves=(), samples=_topk_samples,
    counterparts={"torch": "torch.topk"})
def argtopk(x, *, k=1, axis=-1, largest=True):
    """Indices (int64) of ``topk``'s values: the first ``k`` of a stable ``argsort``. No gradient."""
    return _top_order(x, k, axis, largest).astype(np.int64, copy=False)


@topk.vjp
def _(g, x, res, *, k, axis, largest):
    grad = np.zeros(x.shape, g.dtype)
    np.put_along_axis(grad, res, g, axis=normalize_axes(axis, x.ndim)[0])
    return (grad,)


@topk.graph_vjp
def _(g, x, *, k, axis, largest):
    """``g`` padded with zeros to the whole axis, then moved back by the inverse of the sorting permutation."""
    a = normalize_axes(axis, static_rank(x, "topk"))[0]
    rest = zeros_like(getitem(x, index=index_along(a, slice(k, None))), g.dtype)
    order = argsort(x, axis=a, descending=largest)
    return (permute_along(concatenate(g, rest, axis=a), argsort(order, axis=a), axis=a),)


# ---------------------------------------------------------- permutation ---


def _permute_shape(x, perm, *, axis=-1):
    if len(x) != len(perm):
        raise ValueError(f"the permutation {format_shape(perm)} must have the shape of the input {format_shape(x)}")
    if not x:
        raise ValueError("a 0-d input has no axis to permute along")
    normalize_axes(axis, len(x))
    out = []
    for a, b in zip(x, perm):
        if not dims_agree(a, b):
            raise ValueError(f"the permutation {format_shape(perm)} must have the shape of the input {format_shape(x)}")
        out.append(a if a is not None else b)
    return tuple(out)


def _permute_dtype(x, perm, *, axis=-1):
    if np.dtype(perm).kind not in "iu":
        raise TypeError(f"permute_along needs an integer permutation, not {np.dtype(perm)}")
    return first_dtype(x)


def _permute_samples(rng):
    out = []
    for shape, axis in [((5,), 0), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((1, 3), 0), ((0, 3), 1), ((2, 0), 1)]:
        perm = np.argsort(rng.random(shape), axis=axis)
        out.append(Sample((away_from_zero(rng, shape), perm), {"axis": axis}, f"shape {shape}, axis={axis}"))
    p = np.argsort(rng.random((2, 4)), axis=1)
    out.append(Sample((p, p), {"axis": 1}, "the same input twice: a permutation composed with itself"))
    return out


@op(shape=_permute_shape, dtype=_permute_dtype, saves=("inputs",), samples=_permute_samples,
    counterparts={"numpy": "numpy.take_along_axis", "torch": "torch.take_along_dim"})
def permute_along(x, perm, *, axis=-1):
    """``x``'s entries reordered along ``axis``: ``out[..., i, ...] = x[..., perm[..., i, ...], ...]``.

    ``perm`` must be a permutation of each line along ``axis`` (as ``argsort``
    gives); anything else is refused, since the gradient (``x`` moved back by
    the inverse permutation) would be wrong.
    """
    if perm.dtype.kind not in "iu":
        raise TypeError(f"permute_along needs an integer permutation, got {perm.dtype}")
    n = x.shape[axis]
    if perm.size and (perm.min() < 0 or perm.max() >= n):
        raise ValueError(f"the permutation has entries outside 0..{n - 1}")
    hit = np.zeros(perm.shape, bool)
    np.put_along_axis(hit, perm, True, axis=axis)
    if not hit.all():
        raise ValueError(f"perm is not a permutation along axis {axis}: some index appears twice, another not at all")
    return np.take_along_axis(x, perm, axis=axis)


def _inverse_permutation(perm: np.ndarray, axis: int) -> np.ndarray:
    inverse = np.empty_like(perm)
    positions = vector_on_axis(np.arange(perm.shape[axis]), axis, perm.ndim)
    np.put_along_axis(inverse, perm, np.broadcast_to(positions, perm.shape), axis=axis)
    return inverse


@permute_along.vjp
def _(g, x, perm, *, axis):
    return np.take_along_axis(g, _inverse_permutation(perm, axis), axis=axis), None


@permute_along.graph_vjp
def _(g, x, perm, *, axis):
    return permute_along(g, argsort(perm, axis=axis), axis=axis), None
