"""Static shape algebra: shapes known when a node is added, with ``None`` for unknown sizes.

Shape rules are written with these helpers so that a mismatch is reported the
moment a node is added, naming the node, instead of deep inside numpy later.
A dimension of ``None`` (a batch size given at feed time) matches anything.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

Dim = Optional[int]
Shape = Tuple[Dim, ...]
Axis = Union[None, int, Sequence[int]]

__all__ = [
    "Dim",
    "Shape",
    "broadcast_shapes",
    "elementwise",
    "same_as_first",
    "normalize_axes",
    "reduced_shape",
    "matmul_shape",
    "indexed_shape",
    "IndexArray",
    "fits",
    "dims_agree",
    "shapes_agree",
    "broadcasts_to",
    "format_shape",
]


def format_shape(shape: Shape) -> str:
    """Render a shape with ``?`` for unknown sizes: ``(?, 3)``."""
    inner = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _broadcast_dim(a: Dim, b: Dim) -> Dim:
    if a == 1:
        return b
    if b == 1:
        return a
    if a is None:
        return b
    if b is None or a == b:
        return a
    raise ValueError


def broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy's broadcasting rule over shapes that may contain ``None``."""
    ndim = max((len(s) for s in shapes), default=0)
    result: list[Dim] = [1] * ndim
    for shape in shapes:
        padded = (1,) * (ndim - len(shape)) + tuple(shape)
        for i, d in enumerate(padded):
            try:
                result[i] = _broadcast_dim(result[i], d)
            except ValueError:
                listed = " and ".join(format_shape(s) for s in shapes)
                raise ValueError(f"shapes {listed} do not broadcast") from None
    return tuple(result)


def elementwise(*shapes: Shape, **attrs) -> Shape:
    """Shape rule of an elementwise op: the broadcast of its inputs."""
    return broadcast_shapes(*shapes)


def same_as_first(shape: Shape, *rest: Shape, **attrs) -> Shape:
    """Shape rule of an op whose output has its first input's shape."""
    return tuple(shape)


def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """Turn ``axis`` (None, int or sequence, negatives allowed) into sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis {axis} repeats an axis")
    return tuple(sorted(out))


def reduced_shape(shape: Shape, axis: Axis = None, keepdims: bool = False) -> Shape:
    """Shape after reducing ``axis`` away (or to size 1 with ``keepdims``)."""
    axes = normalize_axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def dims_agree(a: Dim, b: Dim) -> bool:
    """Whether two sizes may be equal: equal, or either unknown (``None``).

    A shape rule runs when a node is added, before the sizes fed at run time
    are known, so an unknown size cannot be proved wrong yet: it agrees with
    any size here, and the engine checks the real arrays when the graph runs.
    Sizes of 1 get no special treatment; this is equality, not broadcasting.

    Examples
    --------
    >>> dims_agree(3, 3), dims_agree(None, 3), dims_agree(3, 4), dims_agree(1, 4)
    (True, True, False, False)
    """
    return a is None or b is None or a == b


def shapes_agree(a: Shape, b: Shape) -> bool:
    """Whether two shapes may be the same shape: the same rank and every size agreeing (see :func:`dims_agree`).

    Use it where inputs must have equal shapes (a target like its prediction,
    a weight of a declared size); it does not broadcast.

    Examples
    --------
    >>> shapes_agree((None, 3), (8, 3)), shapes_agree((8, 3), (8, 4)), shapes_agree((3,), (1, 3))
    (True, False, False)
    """
    return len(a) == len(b) and all(dims_agree(x, y) for x, y in zip(a, b))


def broadcasts_to(shape: Shape, target: Shape) -> bool:
    """Whether an array of ``shape`` may broadcast to ``target`` without widening it.

    It is the question wherever one array is stretched over another's shape
    and the result must keep that shape: a gradient summed back to its
    input's shape, a mask over attention scores, values scattered into the
    entries an index picks. ``shape`` may have fewer axes than ``target``
    (new axes go in front, as numpy's broadcasting puts them) but not more,
    and each of its sizes must be 1 or agree with ``target``'s (see
    :func:`dims_agree`: an unknown size agrees with any, since only the fed
    arrays can prove it wrong). A size of 1 in ``target`` is no wildcard: it
    takes only a 1, as numpy's ``broadcast_to`` does, and a size of 0 takes
    a 0 or a 1.

    Examples
    --------
    >>> broadcasts_to((3, 1), (2, 3, 4)), broadcasts_to((None, 4), (3, 4)), broadcasts_to((1,), (0,))
    (True, True, True)
    >>> broadcasts_to((3,), (3, 1)), broadcasts_to((2, 3), (3,)), broadcasts_to((0,), (1,))
    (False, False, False)
    """
    lead = len(target) - len(shape)
    return lead >= 0 and all(d == 1 or dims_agree(d, t) for d, t in zip(shape, target[lead:]))


def matmul_shape(a: Shape, b: Shape) -> Shape:
    """numpy's ``matmul`` shape rule, 1-D operands included."""
    if len(a) == 0 or len(b) == 0:
        raise ValueError("matmul needs at least 1-D operands, not scalars")
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if not dims_agree(a2[-1], b2[-2]):
        raise ValueError(
            f"contracted sizes differ: {format_shape(a)} @ {format_shape(b)} "
            f"({a2[-1]} versus {b2[-2]})"
        )
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(b) == 1:
        out = out[:-1]
    if len(a) == 1:
        out = out[:-2] + out[-1:] if len(b) != 1 else out[:-1]
    return out


class IndexArray(NamedTuple):
    """An index array known by its shape and kind only: one computed or fed when the graph runs.

    ``indexed_shape`` treats it as numpy treats an index array of that shape,
    except that it cannot check its values: an ``"int"`` one is not checked
    against the axis it indexes, and a ``"bool"`` one picks an unknown number
    of entries (``None``), since that is its count of true values.
    """

    shape: Shape
    kind: str  # "int" or "bool"


def indexed_shape(shape: Shape, index: tuple) -> Shape:
    """Shape of ``x[index]`` for an ``x`` of ``shape``, from sizes alone: nothing of that size is allocated.

    ``index`` is a numpy index as a tuple of ints, slices, ``None``,
    ``Ellipsis``, integer or boolean arrays, and ``IndexArray`` stand-ins for
    arrays known only when the graph runs, under numpy's rules. With any
    index array present, the arrays and the integers are *advanced* indices:
    they broadcast together, and their dimensions take the place of the first
    of them if they stand together, or go first if a slice, ``None`` or
    ``Ellipsis`` separates them. A size that depends on an unknown (``None``)
    size is unknown (``x[:3]`` of an unknown axis may be shorter than 3); a
    boolean array gives as many entries as it has true ones, whatever the size.

    Raises ``ValueError`` where numpy raises ``IndexError``: an index out of
    range of a known size, a boolean array that does not match a known size,
    index arrays that do not broadcast, too many indices.

    >>> import numpy as np
    >>> indexed_shape((None, 5), (slice(None, 3),))
    (None, 5)
    >>> indexed_shape((4, 5, 6), (np.array([0, 1]), slice(None), 2))   # separated: the array's axis first
    (2, 5)
    >>> indexed_shape((1000000, 4), (np.ones(1000000, bool), 1))
    (1000000,)
    >>> indexed_shape((None, 5), (slice(None), IndexArray((2, 3), "int")))
    (None, 2, 3)
    >>> indexed_shape((4, 5), (IndexArray((4,), "bool"),))               # as many rows as true entries
    (None, 5)
    """
    items = tuple(index)
    if sum(item is Ellipsis for item in items) > 1:
        raise ValueError("an index can only have a single ellipsis ('...')")
    fancy = any(isinstance(item, (np.ndarray, IndexArray)) for item in items)
    consumed = sum(_axes_consumed(item) for item in items)
    if consumed > len(shape):
        raise ValueError(
            f"too many indices: an array of shape {format_shape(shape)} has {len(shape)} dimensions, "
            f"but {consumed} were indexed"
        )
    out: list[Dim] = []
    broadcasting: list[tuple] = []   # shapes of the advanced indices
    bounded: list[tuple] = []        # (index array, axis, size) to check once the broadcast is known
    first = 0                        # where in ``out`` the advanced dimensions go
    run = "none"                     # none -> together -> ended -> separated
    axis = 0
    for item in items:
        if isinstance(item, (np.ndarray, IndexArray)) or (fancy and _is_int(item)):
            if run == "none":
                first, run = len(out), "together"
            elif run == "ended":
                run = "separated"
            if _is_int(item):
                _check_in_range(int(item), shape[axis], axis)
                broadcasting.append(())
                axis += 1
            elif isinstance(item, IndexArray):
                axis = _stand_in_index(item, shape, axis, broadcasting)
            elif item.dtype.kind == "b":
                axis = _boolean_index(item, shape, axis, broadcasting)
            elif item.dtype.kind in "iu":
                if item.ndim:
                    bounded.append((item, axis, shape[axis]))
                else:  # a 0-d array is an integer, always checked
                    _check_in_range(int(item), shape[axis], axis)
                broadcasting.append(item.shape)
                axis += 1
            else:
                raise ValueError(f"index arrays must hold integers or booleans, not {item.dtype}")
            continue
        if run == "together":
            run = "ended"
        if item is None:
            out.append(1)
        elif item is Ellipsis:
            spread = len(shape) - consumed
            out.extend(shape[axis:axis + spread])
            axis += spread
        elif isinstance(item, slice):
            out.append(_slice_length(item, shape[axis]))
            axis += 1
        elif _is_int(item):
            _check_in_range(int(item), shape[axis], axis)
            axis += 1
        else:
            raise ValueError(f"unsupported index item {item!r} (of type {type(item).__name__})")
    out.extend(shape[axis:])
    if not broadcasting:
        return tuple(out)
    try:
        picked = broadcast_shapes(*broadcasting)
    except ValueError:
        listed = " ".join(format_shape(s) for s in broadcasting)
        raise ValueError(f"shape mismatch: indexing arrays could not be broadcast together with shapes {listed}") from None
    if None not in picked and math.prod(picked):  # numpy checks index arrays' range only when they pick something
        for array, at, size in bounded:
            if array.size:
                _check_in_range(int(array.min()), size, at)
                _check_in_range(int(array.max()), size, at)
    if run == "separated":
        return tuple(picked) + tuple(out)
    return tuple(out[:first]) + tuple(picked) + tuple(out[first:])


def _is_int(item: Any) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _axes_consumed(item: Any) -> int:
    if item is None or item is Ellipsis:
        return 0
    if isinstance(item, np.ndarray) and item.dtype.kind == "b":
        return item.ndim
    if isinstance(item, IndexArray) and item.kind == "bool":
        return len(item.shape)
    return 1


def _check_in_range(i: int, size: Dim, axis: int) -> None:
    if size is not None and not -size <= i < size:
        raise ValueError(f"index {i} is out of bounds for axis {axis} with size {size}")


def _slice_length(item: slice, size: Dim) -> Dim:
    if item.step == 0:
        raise ValueError("slice step cannot be zero")
    if size is None:
        return None
    return len(range(*item.indices(size)))


def _boolean_index(mask: np.ndarray, shape: Shape, axis: int, broadcasting: list) -> int:
    """Check a boolean index against the axes it covers; record its picked count; return the next axis."""
    if mask.ndim == 0:  # a 0-d boolean adds an axis of 1 (True) or 0 (False) entries
        broadcasting.append((int(bool(mask)),))
        return axis
    _check_mask_sizes(mask.shape, shape, axis)
    broadcasting.append((int(np.count_nonzero(mask)),))
    return axis + mask.ndim


def _check_mask_sizes(mask_shape: Shape, shape: Shape, axis: int) -> None:
    """A boolean index must match the known sizes of the axes it covers, from ``axis`` on, as numpy requires."""
    for j, (size, length) in enumerate(zip(shape[axis:axis + len(mask_shape)], mask_shape)):
        if size is not None and length and size != length:  # numpy lets a mask of length 0 pass
            raise ValueError(
                f"boolean index did not match indexed array along axis {axis + j}; size of axis is {size} "
                f"but size of corresponding boolean axis is {length}"
            )


def _stand_in_index(item: IndexArray, shape: Shape, axis: int, broadcasting: list) -> int:
    """Record the picked shape of an index array known only by shape and kind; return the next axis."""
    if item.kind == "int":
        broadcasting.append(tuple(item.shape))
        return axis + 1
    if item.kind != "bool":
        raise ValueError(f"index arrays must hold integers or booleans, not {item.kind}")
    _check_mask_sizes(item.shape, shape, axis)
    broadcasting.append((None,))  # as many entries as true values: known when it runs
    return axis + len(item.shape)


def fits(actual: Iterable[int], declared: Shape) -> bool:
    """Whether a concrete shape matches a declared one (``None`` matches any size)."""
    actual = tuple(actual)
    return len(actual) == len(declared) and all(
        d is None or d == a for a, d in zip(actual, declared)
    )
