"""Layout ops: reshape, transpose, broadcast, add/remove axes, join, index.

None of these change values, only where they sit, so each VJP puts the
gradient back where the value came from.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..opdef import Sample, first_dtype, op
from ..shapes import broadcasts_to, format_shape, indexed_shape, normalize_axes
from ..index import decode_index, encode_index
from .adjoints import add_at, index_add, reshape_as, split_like, static_rank
from .samples import away_from_zero

# ------------------------------------------------------------- reshape ---


def _reshape_rule(x, *, shape=()):
    target = tuple(int(d) for d in shape)
    if builtins.sum(d == -1 for d in target) > 1:
        raise ValueError(f"reshape target {target} has more than one -1")
    if any(d < -1 for d in target):
        raise ValueError(f"reshape target {target} has a negative size")
    if any(d is None for d in x):
        return tuple(None if d == -1 else d for d in target)
    size = math.prod(x)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape {format_shape(x)} into {target}")
        return tuple(size // known if d == -1 else d for d in target)
    if known != size:
        raise ValueError(f"cannot reshape {format_shape(x)} ({size} entries) into {target} ({known} entries)")
    return target


def _reshape_samples(rng):
    cases = [((3, 4), (4, 3)), ((3, 4), (-1,)), ((2, 3, 4), (6, -1)), ((1,), ()), ((0, 3), (3, 0)), ((), (1, 1))]
    return [Sample((away_from_zero(rng, s),), {"shape": t}, f"{s} to {t}") for s, t in cases]


@op(shape=_reshape_rule, dtype=first_dtype, saves=(), samples=_reshape_samples,
    counterparts={"numpy": "numpy.reshape", "torch": "torch.reshape"})
def reshape(x, *, shape=()):
    """The same entries in a new shape (one size may be -1)."""
    return np.reshape(x, shape)


@reshape.vjp
def _(g, x, *, shape):
    return (g.reshape(x.shape),)


@reshape.graph_vjp
def _(g, x, *, shape):
    return (reshape_as(g, x),)


# ----------------------------------------------------------- transpose ---


def _transpose_rule(x, *, axes=None):
    if axes is None:
        return tuple(reversed(x))
    if sorted(a % len(x) if -len(x) <= a < len(x) else a for a in axes) != list(range(len(x))):
        raise ValueError(f"axes {tuple(axes)} are not a permutation of {len(x)} axes")
    return tuple(x[a] for a in axes)


def _transpose_samples(rng):
    cases = [((3, 4), None), ((2, 3, 4), (1, 2, 0)), ((2, 3, 4), (-1, 0, 1)), ((1, 5), None), ((0, 2), None), ((), None)]
    return [Sample((away_from_zero(rng, s),), {"axes": a}, f"shape {s}, axes {a}") for s, a in cases]


@op(shape=_transpose_rule, dtype=first_dtype, saves=(), samples=_transpose_samples,
    counterparts={"numpy": "numpy.transpose", "torch": "torch.permute"})
def transpose(x, *, axes=None):
    """Permute axes (reverse them by default)."""
    return np.transpose(x, axes)


@transpose.vjp
def _(g, x, *, axes):
    return (np.transpose(g, None if axes is None else np.argsort([a % x.ndim for a in axes])),)


@transpose.graph_vjp
def _(g, x, *, axes):
    if axes is None:
        return (transpose(g),)
    inverse = np.argsort([a % len(axes) for a in axes])
    return (transpose(g, axes=tuple(int(a) for a in inverse)),)


# ----------------------------------------------------------- broadcast ---


def _broadcast_to_rule(x, *, shape=()):
    target = tuple(shape)
    if None in target:
        raise ValueError(f"shape {format_shape(target)} must give every size; to broadcast to a shape known only "
                         "when the graph runs, use broadcast_like(x, like) from dagrad.extend")
    if not broadcasts_to(x, target):
        raise ValueError(f"{format_shape(x)} does not broadcast to {format_shape(target)}")
    return target


def _broadcast_samples(rng):
    cases = [((3, 1), (3, 4)), ((4,), (2, 3, 4)), ((), (2, 2)), ((0, 1), (3, 0, 4)), ((2, 3), (2, 3))]
    return [Sample((away_from_zero(rng, s),), {"shape": t}, f"{s} to {t}") for s, t in cases]


@op(shape=_broadcast_to_rule, dtype=first_dtype, saves=(), samples=_broadcast_samples,
    counterparts={"numpy": "numpy.broadcast_to", "torch": "torch.broadcast_to"})
def broadcast_to(x, *, shape=()):
    """Repeat ``x`` along size-1 and new leading axes to ``shape``."""
    return np.broadcast_to(x, shape)


@broadcast_to.graph_vjp
@broadcast_to.vjp
def _(g, x, *, shape):
    return (g,)  # the engine (and dagrad.grad) sums it back to x's shape


# -------------------------------------------------------- adding axes ---


def _expand_dims_rule(x, *, axis=0):
    axes = normalize_axes(axis, len(x) + (1 if isinstance(axis, int) else len(axis)))
    out = list(x)
    for a in axes:
        out.insert(a, 1)
    return tuple(out)


def _squeeze_rule(x, *, axis=None):
    if axis is None:
        unknown = [i for i, d in enumerate(x) if d is None]
        if unknown:
            # numpy drops an axis only if it is fed with size 1: the output's rank is not known yet.
            raise ValueError(
                f"squeeze() removes every size-1 axis, and the size of axis {unknown[0]} is known only when "
                f"fed, so the output's rank is unknown; name the axes to remove: squeeze(x, axis=...)"
            )
        return tuple(d for d in x if d != 1)
    axes = normalize_axes(axis, len(x))
    for a in axes:
        if x[a] not in (1, None):
            raise ValueError(f"cannot squeeze axis {a} of size {x[a]}")
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _expand_samples(rng):
    cases = [((3, 4), 0), ((3, 4), -1), ((3,), (0, 2)), ((0, 2), 1), ((), 0)]
    return [Sample((away_from_zero(rng, s),), {"axis": a}, f"shape {s}, axis {a}") for s, a in cases]


def _squeeze_samples(rng):
    cases = [((1, 3, 1), None), ((1, 3, 1), 0), ((3, 1), -1), ((1, 0), 0), ((1,), None)]
    return [Sample((away_from_zero(rng, s),), {"axis": a}, f"shape {s}, axis {a}") for s, a in cases]


@op(shape=_expand_dims_rule, dtype=first_dtype, saves=(), samples=_expand_samples,
    counterparts={"numpy": "numpy.expand_dims", "torch": "torch.unsqueeze"})
def expand_dims(x, *, axis=0):
    """Insert size-1 axes at ``axis``."""
    return np.expand_dims(x, axis)


@expand_dims.vjp
def _(g, x, *, axis):
    return (g.reshape(x.shape),)


@expand_dims.graph_vjp
def _(g, x, *, axis):
    return (squeeze(g, axis=axis),)


@op(shape=_squeeze_rule, dtype=first_dtype, saves=(), samples=_squeeze_samples,
    counterparts={"numpy": "numpy.squeeze", "torch": "torch.squeeze"})
def squeeze(x, *, axis=None):
    """Remove size-1 axes (all of them by default)."""
    return np.squeeze(x, axis)


@squeeze.vjp
def _(g, x, *, axis):
    return (g.reshape(x.shape),)


@squeeze.graph_vjp
def _(g, x, *, axis):
    if axis is None:
        return (reshape_as(g, x),)
    return (expand_dims(g, axis=normalize_axes(axis, static_rank(x, "squeeze"))),)


# ------------------------------------------------------------- joining ---


def _concatenate_rule(*xs, axis=0):
    ndim = len(xs[0])
    if ndim == 0:
        raise ValueError("cannot concatenate scalars; use stack")
    if any(len(s) != ndim for s in xs):
        raise ValueError("inputs have different numbers of dimensions: " + ", ".join(map(format_shape, xs)))
    (a,) = normalize_axes(axis, ndim)
    out = []
    for i in range(ndim):
        dims = [s[i] for s in xs]
        if i == a:
            out.append(None if None in dims else builtins.sum(dims))
            continue
        known = {d for d in dims if d is not None}
        if len(known) > 1:
            raise ValueError(f"sizes along axis {i} differ: " + ", ".join(map(format_shape, xs)))
        out.append(known.pop() if known else None)
    return tuple(out)


def _stack_rule(*xs, axis=0):
    ndim = len(xs[0])
    if any(len(s) != ndim for s in xs):
        raise ValueError("inputs have different shapes: " + ", ".join(map(format_shape, xs)))
    common = []
    for i in range(ndim):
        known = {s[i] for s in xs if s[i] is not None}
        if len(known) > 1:
            raise ValueError("inputs have different shapes: " + ", ".join(map(format_shape, xs)))
        common.append(known.pop() if known else None)
    (a,) = normalize_axes(axis, ndim + 1)
    return tuple(common[:a]) + (len(xs),) + tuple(common[a:])


def _join_dtype(*dtypes, axis=0):
    return np.result_type(*dtypes)


def _concatenate_samples(rng):
    a, b = away_from_zero(rng, (2, 3)), away_from_zero(rng, (4, 3))
    x = away_from_zero(rng, (2, 3))
    return [
        Sample((a, b), {"axis": 0}, "two blocks along axis 0"),
        Sample((away_from_zero(rng, (2, 1)), away_from_zero(rng, (2, 4)), away_from_zero(rng, (2, 2))), {"axis": -1}, "three blocks along the last axis"),
        Sample((away_from_zero(rng, (0, 3)), away_from_zero(rng, (2, 3))), {"axis": 0}, "an empty block"),
        Sample((x, x), {"axis": 1}, "the same input twice"),
        Sample((away_from_zero(rng, (1,)),), {"axis": 0}, "a single input"),
    ]


def _stack_samples(rng):
    x = away_from_zero(rng, (2, 3))
    return [
        Sample((away_from_zero(rng, (2, 3)), away_from_zero(rng, (2, 3))), {"axis": 0}, "two inputs along axis 0"),
        Sample((away_from_zero(rng, (3,)), away_from_zero(rng, (3,)), away_from_zero(rng, (3,))), {"axis": -1}, "three inputs, new last axis"),
        Sample((away_from_zero(rng, (0, 2)), away_from_zero(rng, (0, 2))), {"axis": 1}, "empty inputs"),
        Sample((x, x), {"axis": 2}, "the same input twice"),
        Sample((away_from_zero(rng, ()),), {"axis": 0}, "one scalar"),
    ]


@op(shape=_concatenate_rule, dtype=_join_dtype, saves=(), samples=_concatenate_samples,
    counterparts={"numpy": "numpy.concatenate", "torch": "torch.cat"})
def concatenate(*xs, axis=0):
    """Join arrays along an existing axis."""
    return np.concatenate(xs, axis=axis)


@concatenate.vjp
def _(g, *xs, axis):
    a = normalize_axes(axis, g.ndim)[0]
    cuts = np.cumsum([x.shape[a] for x in xs])[:-1]
    return tuple(np.split(g, cuts, axis=a))


@concatenate.graph_vjp
def _(g, *xs, axis, needs):
    return tuple(split_like(g, *xs, axis=axis, part=i) if need else None for i, need in enumerate(needs))


@op(shape=_stack_rule, dtype=_join_dtype, saves=(), samples=_stack_samples,
    counterparts={"numpy": "numpy.stack", "torch": "torch.stack"})
def stack(*xs, axis=0):
    """Join arrays along a new axis."""
    return np.stack(xs, axis=axis)


@stack.vjp
def _(g, *xs, axis):
    moved = np.moveaxis(g, axis, 0)
    return tuple(moved[i, ...] for i in range(len(xs)))  # "..." keeps a 0-d piece an array, not a numpy scalar


@stack.graph_vjp
def _(g, *xs, axis, needs):
    (a,) = normalize_axes(axis, static_rank(g, "stack"))
    return tuple(getitem(g, index=index_along(a, i)) if need else None
                 for i, need in enumerate(needs))


# ------------------------------------------------------------ indexing ---

def _getitem_rule(x, *, index=()):
    """Shape of ``x[index]`` by numpy's indexing rules, from the sizes alone (nothing is allocated)."""
    return indexed_shape(x, decode_index(index))


def _getitem_samples(rng):
    x = away_from_zero(rng, (4, 5))
    cube = away_from_zero(rng, (2, 3, 4))
    cases = [
        (x, (slice(1, 3), slice(None, None, 2))),
        (x, (-1,)),
        (x, (np.array([0, 2, 2, 3]),)),              # repeated rows accumulate
        (x, (slice(None), np.array([[0, 1], [4, 4]]))),
        (cube, (Ellipsis, None, 1)),
        (x, (np.array([True, False, True, False]),)),
        (x, (slice(2, 2),)),                         # size-0 result
        (away_from_zero(rng, (0, 3)), (slice(None), 1)),  # size-0 input
        (away_from_zero(rng, ()), ()),
    ]
    return [Sample((a,), {"index": encode_index(i)}, f"shape {a.shape}, index {i!r}") for a, i in cases]


@op(shape=_getitem_rule, dtype=first_dtype, saves=(), samples=_getitem_samples,
    counterparts={"numpy": "numpy.ndarray.__getitem__", "torch": "torch.Tensor.__getitem__"})
def getitem(x, *, index=()):
    """``x[index]`` for basic slicing, integers, None, Ellipsis and integer or boolean arrays."""
    return x[decode_index(index)]


@getitem.vjp
def _(g, x, *, index):
    return (add_at.forward(g, x, index=index),)  # repeated indices accumulate


@getitem.graph_vjp
def _(g, x, *, index):
    return (add_at(g, x, index=index),)


def index_along(axis: int, item) -> tuple:
    """The encoded ``getitem`` index of ``item`` (an integer or a slice) along ``axis``: ``x[:, ..., :, item]``."""
    return encode_index((slice(None),) * axis + (item,))


def _take_rule(x, indices, *, axis=0):
    (a,) = normalize_axes(axis, len(x))
    return tuple(x[:a]) + tuple(indices) + tuple(x[a + 1 :])


def _take_samples(rng):
    table = away_from_zero(rng, (5, 3))
    return [
        Sample((table, np.array([0, 3, 3, 1])), {"axis": 0}, "rows, one repeated"),
        Sample((table, np.array([[1, 2], [0, 0]])), {"axis": 1}, "2-D indices along axis 1"),
        Sample((table, np.zeros((0,), dtype=np.int64)), {"axis": 0}, "no indices"),
        Sample((away_from_zero(rng, (1, 4)), np.array(2)), {"axis": -1}, "a scalar index"),
    ]


@op(shape=_take_rule, dtype=first_dtype, saves=("inputs",), samples=_take_samples,
    counterparts={"numpy": "numpy.take", "torch": "torch.index_select"})
def take(x, indices, *, axis=0):
    """Entries of ``x`` at integer ``indices`` (fed or computed) along ``axis``; an embedding lookup."""
    if indices.dtype.kind not in "iu":
        raise TypeError(f"take needs integer indices, got {indices.dtype}")
    return np.take(x, indices, axis=axis)


@take.vjp
def _(g, x, indices, *, axis):
    return index_add.forward(g, x, indices, axis=axis), None


@take.graph_vjp
def _(g, x, indices, *, axis):
    return index_add(g, x, indices, axis=axis), None

