"""Where entries go: reshaping, joining, cutting, padding, flipping, repeating, triangles and diagonals.

Layout ops copy entries to new places; their gradients add the copies back up.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence


from ..errors import GraphError, ShapeError
from ..shapes import normalize_axes
from ..tensor import Tensor, apply
from .common import Axis

__all__ = [
    "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze", "concatenate", "stack", "pad", "flip",
    "roll", "tile", "repeat", "split", "chunk", "tril", "triu", "diagonal", "trace"
]


def reshape(x: Tensor, shape: Sequence[int], *, name: Optional[str] = None) -> Tensor:
    """The same entries in ``shape`` (one size may be -1)."""
    return apply("reshape", x, shape=tuple(shape), name=name)


def transpose(x: Tensor, axes: Optional[Sequence[int]] = None, *, name: Optional[str] = None) -> Tensor:
    """Permute axes (reverse them by default)."""
    return apply("transpose", x, axes=None if axes is None else tuple(axes), name=name)


def broadcast_to(x: Tensor, shape: Sequence[int], *, name: Optional[str] = None) -> Tensor:
    """Repeat ``x`` along size-1 and new leading axes to ``shape``."""
    return apply("broadcast_to", x, shape=tuple(shape), name=name)


def expand_dims(x: Tensor, axis: Any, *, name: Optional[str] = None) -> Tensor:
    """Insert size-1 axes at ``axis``."""
    return apply("expand_dims", x, axis=axis, name=name)


def squeeze(x: Tensor, axis: Axis = None, *, name: Optional[str] = None) -> Tensor:
    """Remove size-1 axes."""
    return apply("squeeze", x, axis=axis, name=name)


def concatenate(xs: Sequence[Tensor], axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Join along an existing axis."""
    return apply("concatenate", *xs, axis=axis, name=name)


def stack(xs: Sequence[Tensor], axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Join along a new axis."""
    return apply("stack", *xs, axis=axis, name=name)


def pad(x: Tensor, pad_width: Any, mode: str = "constant", constant_values: float = 0.0, *,
        name: Optional[str] = None) -> Tensor:
    """``x`` padded as ``numpy.pad``: modes ``constant``, ``reflect``, ``symmetric``, ``edge`` and ``wrap``.

    ``pad_width`` is an int, a ``(before, after)`` pair for every axis, or one
    pair per axis, *first axis first*; ``torch.nn.functional.pad`` lists the
    last axis first and calls ``edge`` "replicate" and ``wrap`` "circular".

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.array([[1.0, 2.0, 3.0]]))
    >>> y = dg.pad(x, ((0, 0), (2, 1)), mode="reflect")
    >>> g.forward(y).value(y)
    array([[3., 2., 1., 2., 3., 2.]])
    >>> g.backward(dg.sum(y)).grad(x)            # each entry, plus the copies of it
    array([[1., 3., 2.]])
    """
    return apply("pad", x, pad_width=pad_width, mode=mode, constant_values=constant_values, name=name)


def flip(x: Tensor, axis: Axis = None, *, name: Optional[str] = None) -> Tensor:
    """The entries of ``x`` in reverse order along ``axis`` (all axes by default)."""
    return apply("flip", x, axis=axis, name=name)


def roll(x: Tensor, shift: Any, axis: Axis = None, *, name: Optional[str] = None) -> Tensor:
    """``x`` shifted cyclically by ``shift`` along ``axis`` (of the flattened ``x`` by default)."""
    return apply("roll", x, shift=shift, axis=axis, name=name)


def tile(x: Tensor, reps: Any, *, name: Optional[str] = None) -> Tensor:
    """``x`` repeated as a whole ``reps`` times along each axis, as ``numpy.tile``."""
    return apply("tile", x, reps=reps, name=name)


def repeat(x: Tensor, repeats: Any, axis: Optional[int] = None, *, name: Optional[str] = None) -> Tensor:
    """Each entry of ``x`` repeated ``repeats`` times along ``axis``, as ``numpy.repeat`` (``torch.repeat_interleave``).

    ``repeats`` is one count or one count per entry, known when the node is
    added (they decide the output's size).
    """
    if isinstance(repeats, Tensor):
        raise GraphError(
            f"repeat of {x.name!r}: repeats must be counts known when the node is added (an int or a list), "
            f"not Tensor {repeats.name!r}, since they decide the output's size"
        )
    return apply("repeat", x, repeats=repeats, axis=axis, name=name)


def split(x: Tensor, indices_or_sections: Any, axis: int = 0, *, name: Optional[str] = None) -> list:
    """``x`` cut along ``axis`` as ``numpy.split`` cuts it: a list of Tensors, one ``split`` node per piece.

    ``indices_or_sections`` is a number of equal pieces (which must divide the
    axis, or is checked when the graph runs if its size is unknown), or the
    indices to cut at. Each piece is a node of its own, so pieces can go
    different ways; the gradient of ``x`` gathers what comes back from each.
    Pieces are named ``name_0``, ``name_1``, ... when ``name`` is given.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.arange(6.0))
    >>> a, b, c = dg.split(x, [1, 4])
    >>> [t.shape for t in (a, b, c)]
    [(1,), (3,), (2,)]
    >>> g.backward(dg.sum(a) + 2 * dg.sum(c)).grad(x)     # b is not used: zeros there
    array([1., 0., 0., 0., 2., 2.])
    """
    sections = indices_or_sections
    if isinstance(sections, int) and sections <= 0:
        raise ShapeError(f"split of {x.name!r}: cannot cut an axis into {sections} pieces")
    if not isinstance(sections, int):
        sections = tuple(int(i) for i in sections)
    count = sections if isinstance(sections, int) else len(sections) + 1
    return [apply("split", x, sections=sections, axis=axis, part=i, name=None if name is None else f"{name}_{i}")
            for i in range(count)]


def chunk(x: Tensor, chunks: int, axis: int = 0, *, name: Optional[str] = None) -> list:
    """``x`` cut along ``axis`` into pieces of ``ceil(size / chunks)`` entries, as ``torch.chunk``.

    The last piece may be shorter, and there may be fewer than ``chunks``
    pieces (6 entries in 4 chunks are 3 pieces of 2), so the axis's size must
    be known; ``split(x, n)`` cuts an axis of unknown size into ``n`` equal pieces.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 5))
    >>> [t.shape for t in dg.chunk(x, 2, axis=1)]
    [(None, 3), (None, 2)]
    """
    shape = x.shape
    if shape is None or not isinstance(chunks, int) or chunks <= 0:
        raise ShapeError(f"chunk of {x.name!r}: chunks must be an int > 0 and x's shape known, got chunks={chunks!r}")
    (a,) = normalize_axes(axis, len(shape))
    size = shape[a]
    if size is None:
        raise ShapeError(
            f"chunk of {x.name!r}: axis {axis} has a size known only when fed, and the number of pieces depends "
            f"on it; split(x, {chunks}, axis={axis}) cuts it into {chunks} equal pieces instead"
        )
    if size == 0:
        return split(x, chunks, axis=axis, name=name)  # as torch: that many empty pieces
    step = -(-size // chunks)
    return split(x, list(range(step, size, step)), axis=axis, name=name)


def tril(x: Tensor, k: int = 0, *, name: Optional[str] = None) -> Tensor:
    """The lower triangle of the last two axes (on and below diagonal ``k``), zeros above."""
    return apply("tril", x, k=k, name=name)


def triu(x: Tensor, k: int = 0, *, name: Optional[str] = None) -> Tensor:
    """The upper triangle of the last two axes (on and above diagonal ``k``), zeros below."""
    return apply("triu", x, k=k, name=name)


def diagonal(x: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1, *, name: Optional[str] = None) -> Tensor:
    """Diagonal ``offset`` of the planes of ``axis1`` and ``axis2``, as a new last axis (``numpy.diagonal``)."""
    return apply("diagonal", x, offset=offset, axis1=axis1, axis2=axis2, name=name)


def trace(x: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1, *, name: Optional[str] = None) -> Tensor:
    """The sum of diagonal ``offset`` of the planes of ``axis1`` and ``axis2`` (``numpy.trace``)."""
    return apply("trace", x, offset=offset, axis1=axis1, axis2=axis2, name=name)
