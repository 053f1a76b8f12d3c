"""Indexing with computed indices: gather and scatter-add along an axis, masked fill, one-hot, and ``x[idx]``.

The indices here are inputs (fed, or computed by the graph), not attributes,
so they can change from one run to the next; they are integer or bool and
never receive a gradient. The gathers and their scatters come in transposed
pairs (``take_along_axis`` and ``scatter_add``, ``index`` and
``add_at_index``), each one's graph VJP being its partner, as ``getitem`` and
``add_at`` are in ``adjoints.py``; repeated indices add up.
"""

from __future__ import annotations

import numpy as np

from ..index import decode_index, slot_kinds, tensor_slot
from ..opdef import Sample, first_dtype, op, result_dtype
from ..shapes import IndexArray, Shape, broadcast_shapes, broadcasts_to, format_shape, indexed_shape, normalize_axes
from ..tensor import apply
from .adjoints import zeros_like
from .samples import away_from_zero

__all__ = ["take_along_axis", "scatter_add", "masked_fill", "one_hot", "index", "add_at_index"]


def _integer_indices(dtype, who: str) -> None:
    if np.dtype(dtype).kind not in "iu":
        raise TypeError(f"{who} needs integer indices, not {np.dtype(dtype)}")


# ----------------------------------------------------- gather, scatter ---


def _along_axis_shape(x: Shape, indices: Shape, axis: int) -> Shape:
    """Shape of ``take_along_axis(x, indices, axis)``: the indices' size along ``axis``, the broadcast elsewhere."""
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise ValueError(f"axis must be an int, not {axis!r}")
    if len(indices) != len(x):
        raise ValueError(
            f"indices {format_shape(indices)} must have as many axes as the array {format_shape(x)}; "
            f"add size-1 axes to broadcast"
        )
    (a,) = normalize_axes(axis, len(x))
    out = []
    for i, (d, e) in enumerate(zip(x, indices)):
        if i == a:
            out.append(e)
            continue
        try:
            out.extend(broadcast_shapes((d,), (e,)))
        except ValueError:
            raise ValueError(f"indices {format_shape(indices)} do not broadcast with {format_shape(x)} along axis {i}") from None
    return tuple(out)


def _along_axis_index(indices: np.ndarray, shape: tuple, axis: int) -> tuple:
    """The numpy index that picks ``take_along_axis``'s entries of an array of ``shape`` (numpy's own construction)."""
    a = normalize_axes(axis, len(shape))[0]
    out = []
    for i, size in enumerate(shape):
        if i == a:
            out.append(indices)
            continue
        at = [1] * len(shape)
        at[i] = size
        out.append(np.arange(size).reshape(at))
    return tuple(out)


def _take_along_samples(rng):
    x = away_from_zero(rng, (3, 4))
    cases = [
        (x, np.array([[0, 3], [1, 1], [2, 0]]), 1, "two per row, one repeated"),
        (x, np.array([[2, 0, 1, 2]]), 0, "one row of indices broadcast over columns"),
        (away_from_zero(rng, (3, 1)), np.array([[0, 0, 0]]).T.repeat(2, axis=1), 1, "a size-1 axis broadcast"),
        (away_from_zero(rng, (2, 3, 4)), rng.integers(-4, 4, size=(2, 3, 5)), -1, "negative indices, 3-D"),
        (away_from_zero(rng, (0, 3)), np.zeros((0, 2), np.int64), 1, "no rows"),
        (x, np.zeros((3, 0), np.int64), 1, "no indices"),
        (away_from_zero(rng, (5,)), np.array([4, 4, 0]), 0, "1-D"),
    ]
    return [Sample((a, i), {"axis": ax}, label) for a, i, ax, label in cases]


def _take_along_rule(x, indices, *, axis=-1):
    return _along_axis_shape(x, indices, axis)


def _take_along_dtype(dtype, indices, *, axis=-1):
    _integer_indices(indices, "take_along_axis")
    return first_dtype(dtype)


@op(shape=_take_along_rule, dtype=_take_along_dtype, saves=("inputs",), samples=_take_along_samples,
    counterparts={"numpy": "numpy.take_along_axis", "torch": "torch.take_along_dim"})
def take_along_axis(x, indices, *, axis=-1):
    """The entries of ``x`` at integer ``indices`` along ``axis``, matched entry by entry elsewhere (a gather).

    ``indices`` has as many axes as ``x``; along ``axis`` it picks entries
    (negative ones count from the end, repeated ones repeat), and on the
    other axes the two broadcast. ``torch.gather`` is this without the
    broadcasting.
    """
    return x[_along_axis_index(indices, x.shape, axis)]


@take_along_axis.vjp
def _(g, x, indices, *, axis):
    out = np.zeros(x.shape, g.dtype)
    np.add.at(out, _along_axis_index(indices, x.shape, axis), g)  # repeated indices accumulate
    return out, None


@take_along_axis.graph_vjp
def _(g, x, indices, *, axis):
    return scatter_add(zeros_like(x), indices, g, axis=axis), None


def _scatter_add_rule(x, indices, values, *, axis=-1):
    picked = _along_axis_shape(x, indices, axis)
    if not broadcasts_to(values, picked):
        raise ValueError(f"values {format_shape(values)} do not broadcast to the {format_shape(picked)} entries the indices pick")
    return tuple(x)


def _scatter_add_dtype(dtype, indices, values, *, axis=-1):
    _integer_indices(indices, "scatter_add")
    return result_dtype(dtype, values)


def _scatter_add_samples(rng):
    x = away_from_zero(rng, (3, 3))
    cases = [
        (away_from_zero(rng, (3, 4)), np.array([[0, 3], [1, 1], [2, 0]]), away_from_zero(rng, (3, 2)), 1,
         "two per row, one repeated"),
        (away_from_zero(rng, (3, 4)), np.array([[2, 2, 0, 1]]), away_from_zero(rng, (1, 1)), 0, "values broadcast"),
        (away_from_zero(rng, (3, 1)), np.zeros((3, 2), np.int64), away_from_zero(rng, (3, 2)), 1,
         "indices wider than a size-1 axis: both land on it"),
        (away_from_zero(rng, (0, 3)), np.zeros((0, 2), np.int64), away_from_zero(rng, (0, 2)), 1, "no rows"),
        (away_from_zero(rng, (4,)), np.array([-1, 0, -1]), away_from_zero(rng, ()), 0, "1-D, a scalar value"),
        (x, np.array([[2, 0, 1], [0, 0, 1], [1, 2, 2]]), x, 0, "the same input twice"),
    ]
    return [Sample((a, i, v), {"axis": ax}, label) for a, i, v, ax, label in cases]


@op(shape=_scatter_add_rule, dtype=_scatter_add_dtype, saves=("inputs",), samples=_scatter_add_samples,
    counterparts={"numpy": "numpy.add.at", "torch": "torch.scatter_add"})
def scatter_add(x, indices, values, *, axis=-1):
    """``x`` with ``values`` added at the entries ``take_along_axis(x, indices, axis)`` picks; repeats add up.

    ``values`` broadcasts to the shape of those entries. This is
    ``torch.scatter_add`` (``x.scatter_add(axis, indices, values)``) and the
    accumulating form of ``numpy.put_along_axis``; it is ``take_along_axis``'s
    transpose, so each is the other's gradient.
    """
    out = x.astype(np.result_type(x, values), copy=True)
    picked = _along_axis_index(indices, x.shape, axis)
    np.add.at(out, picked, np.broadcast_to(values, np.broadcast_shapes(*[p.shape for p in picked])))
    return out


@scatter_add.vjp
def _(g, x, indices, values, *, axis, needs):
    return g, None, (g[_along_axis_index(indices, g.shape, axis)] if needs[2] else None)


@scatter_add.graph_vjp
def _(g, x, indices, values, *, axis, needs):
    return g, None, (take_along_axis(g, indices, axis=axis) if needs[2] else None)


# --------------------------------------------------------- masked fill ---


def _masked_fill_dtype(dtype, mask, *, value=0.0):
    if np.dtype(mask).kind != "b":
        raise TypeError(f"masked_fill needs a bool mask, not {np.dtype(mask)}; compare first (x > 0)")
    dtype = first_dtype(dtype)
    if dtype.kind in "biu" and (not np.isfinite(value) or value != int(value)):
        raise TypeError(f"value {value!r} cannot be stored in {dtype} entries")
    return dtype


def _masked_fill_samples(rng):
    def mask(shape):
        return rng.random(shape) > 0.5

    cases = [((3, 4), (3, 4), -1.5), ((3, 4), (4,), 0.0), ((3, 1), (1, 4), 2.0), ((2, 3), (), -1e4),
             ((0, 3), (1, 3), 1.0), ((), (), 0.5), ((1,), (2, 1), 0.0)]
    return [Sample((away_from_zero(rng, s), mask(m)), {"value": v}, f"shape {s}, mask {m}, value {v}")
            for s, m, v in cases]


def _masked_fill_rule(x, mask, *, value=0.0):
    return broadcast_shapes(x, mask)


@op(shape=_masked_fill_rule, dtype=_masked_fill_dtype, saves=("inputs",),
    samples=_masked_fill_samples, counterparts={"numpy": "numpy.where", "torch": "torch.Tensor.masked_fill"})
def masked_fill(x, mask, *, value=0.0):
    """``x`` with ``value`` where the bool ``mask`` is true (the two broadcast); no gradient reaches filled entries."""
    return np.where(mask, np.asarray(value).astype(x.dtype), x)


@masked_fill.vjp
def _(g, x, mask, *, value):
    return np.where(mask, np.zeros((), g.dtype), g), None


@masked_fill.graph_vjp
def _(g, x, mask, *, value):
    return masked_fill(g, mask, value=0.0), None


# ------------------------------------------------------------- one-hot ---


def _one_hot_rule(indices, *, num_classes=None, dtype="float64"):
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
        raise ValueError(
            f"num_classes must be a count (an int >= 0), not {num_classes!r}: it is the size of the output's last "
            "axis, which must be known when the node is added (PyTorch's -1, the largest index plus one, would "
            "depend on the values)"
        )
    return tuple(indices) + (num_classes,)


def _one_hot_dtype(indices, *, num_classes=None, dtype="float64"):
    _integer_indices(indices, "one_hot")
    return np.dtype(dtype)


def _one_hot_samples(rng):
    cases = [((5,), 3), ((2, 3), 4), ((), 2), ((0,), 3), ((1, 2), 1)]
    out = [Sample((rng.integers(0, n, size=s),), {"num_classes": n}, f"shape {s}, {n} classes") for s, n in cases]
    out.append(Sample((np.zeros((0, 2), np.int64),), {"num_classes": 0, "dtype": "float32"}, "no classes, float32"))
    out.append(Sample((rng.integers(0, 3, size=(4,)).astype(np.uint8),), {"num_classes": 3, "dtype": "int64"},
                      "uint8 indices, int64 output"))
    return out


@op(shape=_one_hot_rule, dtype=_one_hot_dtype, saves=(), samples=_one_hot_samples,
    counterparts={"torch": "torch.nn.functional.one_hot"})
def one_hot(indices, *, num_classes=None, dtype="float64"):
    """A new last axis of ``num_classes`` entries, 1 at each integer index and 0 elsewhere, of ``dtype``.

    Indices must lie in ``[0, num_classes)``. No gradient: the input is integer.
    """
    if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
        bad = indices.min() if indices.min() < 0 else indices.max()
        raise ValueError(f"index {bad} is not a class: the indices must lie in [0, {num_classes})")
    return (indices[..., None] == np.arange(num_classes)).astype(dtype)


# ----------------------------------------------------- x[idx], computed ---


def _index_rule(x, *indices, index=()):
    kinds = slot_kinds(index)
    if len(kinds) != len(indices):
        raise ValueError(f"the index has {len(kinds)} Tensor slot(s) for {len(indices)} index input(s)")
    return indexed_shape(x, decode_index(index, [IndexArray(tuple(s), k) for s, k in zip(indices, kinds)]))


def _index_dtype(dtype, *indices, index=()):
    for position, (got, kind) in enumerate(zip(indices, slot_kinds(index))):
        if np.dtype(got).kind not in ("b" if kind == "bool" else "iu"):
            raise TypeError(f"index input {position} is {np.dtype(got)}, but its slot holds {kind} indices")
    return first_dtype(dtype)


def _index_samples(rng):
    # No bool index here: the size it picks depends on its values, so the shape rule says None for it,
    # which check_op (comparing the rule with the forward on concrete inputs) cannot tell from a lazy rule.
    # tests/test_indexing.py checks bool indices' values and gradients.
    x = away_from_zero(rng, (4, 5))
    rows = np.array([0, 2, 2, 3])                                     # a repeated row accumulates
    cases = [
        (x, [rows], [tensor_slot("int")], "x[idx]"),
        (x, [np.array([[4, 0], [-1, 4]])], [("slice", None, None, None), tensor_slot("int")], "x[:, idx], 2-D and negative"),
        (x, [np.array([1, 3])], [tensor_slot("int"), ("slice", 1, None, None)], "x[idx, 1:]"),
        (x, [np.array([0, 3, 3]), np.array([[1], [4]])], [tensor_slot("int"), tensor_slot("int")], "x[i, j], broadcast"),
        (x, [rows, rows], [tensor_slot("int"), tensor_slot("int")], "x[i, i]: the same index input twice"),
        (x, [np.array([3, 1])], [tensor_slot("int"), ("newaxis",), ("int", 2)], "separated: x[idx, None, 2]"),
        (x, [np.zeros((0,), np.int64)], [tensor_slot("int")], "no indices"),
        (away_from_zero(rng, (0, 3)), [np.array([2, 0])], [("slice", None, None, None), tensor_slot("int")], "no rows"),
        (away_from_zero(rng, (3,)), [np.array(1)], [tensor_slot("int")], "a 0-d index"),
    ]
    return [Sample((a, *idx), {"index": tuple(enc)}, label) for a, idx, enc, label in cases]


@op(shape=_index_rule, dtype=_index_dtype, saves=("inputs",), samples=_index_samples,
    counterparts={"numpy": "numpy.ndarray.__getitem__", "torch": "torch.Tensor.__getitem__"})
def index(x, *indices, index=()):
    """``x[index]`` where some index items are inputs: integer or bool arrays computed or fed when the graph runs.

    ``index`` encodes the static items as ``getitem``'s does, and each input's
    place as ``("tensor", "int")`` or ``("tensor", "bool")``; ``x[idx]`` on a
    Tensor ``x`` with a Tensor ``idx`` builds this node. A bool index picks
    as many entries as it has true values, so that size is unknown until the
    graph runs.
    """
    return x[decode_index(index, indices)]


def _add_at(g: np.ndarray, shape: tuple, index: tuple, indices) -> np.ndarray:
    out = np.zeros(shape, g.dtype)
    np.add.at(out, decode_index(index, indices), g)  # repeated indices accumulate
    return out


@index.vjp
def _(g, x, *indices, index):
    return (_add_at(g, x.shape, index, indices),) + (None,) * len(indices)


@index.graph_vjp
def _(g, x, *indices, index):
    return (add_at_index(g, x, *indices, index=index),) + (None,) * len(indices)


def _add_at_index_rule(g, like, *indices, index=()):
    picked = _index_rule(like, *indices, index=index)
    if len(g) != len(picked) or any(None not in (a, b) and a != b for a, b in zip(g, picked)):
        raise ValueError(f"{format_shape(g)} is not the shape {format_shape(picked)} of the entries the index picks")
    return tuple(like)


def _add_at_index_dtype(dtype, like, *indices, index=()):
    first_dtype(like)
    return _index_dtype(dtype, *indices, index=index)


def _add_at_index_samples(rng):
    out = []
    for s in _index_samples(rng):
        x, *indices = s.args
        picked = x[decode_index(s.attrs["index"], indices)]
        out.append(Sample((away_from_zero(rng, picked.shape), x, *indices), s.attrs, s.label))
    x = away_from_zero(rng, (3, 3))
    out.append(Sample((x, x, np.array([2, 0, 1])), {"index": (tensor_slot("int"),)}, "the same input twice"))
    return out


@op(shape=_add_at_index_rule, dtype=_add_at_index_dtype, saves=("inputs",), samples=_add_at_index_samples)
def add_at_index(g, like, *indices, index=()):
    """index's transpose: zeros shaped like ``like`` (whose values are not read) with ``g`` added at the entries picked."""
    return _add_at(g, like.shape, index, indices)


@add_at_index.vjp
def _(h, g, like, *indices, index):
    return (h[decode_index(index, indices)], None) + (None,) * len(indices)


@add_at_index.graph_vjp
def _(h, g, like, *indices, index):
    return (apply("index", h, *indices, index=index), None) + (None,) * len(indices)  # the op, not the attribute
