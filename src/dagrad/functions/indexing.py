"""Reading and writing at indices: ``take``, gathers, scatter-adds, masks and ``one_hot``.

The index and mask inputs are integer or bool Tensors (computed or fed) or arrays, and never
receive gradients.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor, apply

__all__ = ["take", "take_along_axis", "scatter_add", "index_add", "masked_fill", "one_hot"]


def take(x: Tensor, indices: Any, axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Entries of ``x`` at integer ``indices`` along ``axis`` (an embedding lookup)."""
    return apply("take", x, indices, axis=axis, name=name)


def take_along_axis(x: Tensor, indices: Any, axis: int = -1, *, name: Optional[str] = None) -> Tensor:
    """The entries of ``x`` at integer ``indices`` along ``axis`` (a gather; ``torch.take_along_dim``).

    ``indices`` has as many axes as ``x``, and the two broadcast on the other
    axes. The gradient adds up at repeated indices.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> scores = g.param("scores", np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]))
    >>> best = dg.take_along_axis(scores, np.array([[1], [0]]), axis=1)
    >>> g.forward(best).value(best)
    array([[0.7],
           [0.5]])
    """
    return apply("take_along_axis", x, indices, axis=axis, name=name)


def scatter_add(x: Tensor, indices: Any, values: Any, axis: int = -1, *, name: Optional[str] = None) -> Tensor:
    """``x`` with ``values`` added where ``take_along_axis(x, indices, axis)`` reads; repeats add up (``torch.scatter_add``)."""
    return apply("scatter_add", x, indices, values, axis=axis, name=name)


def index_add(x: Tensor, indices: Any, values: Any, axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """``x`` with ``values[..., i, ...]`` added at ``x[..., indices[i], ...]`` along ``axis``; repeats add up.

    ``torch.index_add(x, axis, indices, values)``. The ``index_add`` *op*
    (``dg.ops.index_add``) adds to zeros instead (it is ``take``'s gradient);
    this is ``x`` plus that op, so ``x`` and ``values`` both get gradients.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.zeros(3))
    >>> y = dg.index_add(x, np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]))
    >>> g.forward(y).value(y)
    array([4., 0., 2.])
    """
    return apply("add", x, apply("index_add", values, x, indices, axis=axis), name=name)


def masked_fill(x: Tensor, mask: Any, value: Any, *, name: Optional[str] = None) -> Tensor:
    """``x`` with ``value`` where the bool ``mask`` holds (broadcasting); filled entries get no gradient.

    ``value`` is a number (``-np.inf`` for attention scores is fine), or a
    Tensor or array that broadcasts against ``x``: then this is a ``where``
    node, and a Tensor value gets the gradient of the entries it fills.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> scores = g.param("scores", np.ones((2, 2)))
    >>> causal = dg.masked_fill(scores, np.triu(np.ones((2, 2), bool), k=1), -np.inf)
    >>> g.forward(causal).value(causal)
    array([[  1., -inf],
           [  1.,   1.]])
    """
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return apply("masked_fill", x, mask, value=float(value), name=name)
    kind = (mask.dtype if isinstance(mask, Tensor) else np.asarray(mask).dtype).kind
    if kind != "b":  # where() would take nonzero as true; masked_fill takes bool masks only, as its op does
        raise ShapeError(f"masked_fill of {x.name!r} needs a bool mask, not {kind!r} numbers; compare first (x > 0)")
    return apply("where", mask, value, x, name=name)


def one_hot(indices: Any, num_classes: int, dtype: Any = "float64", *, name: Optional[str] = None) -> Tensor:
    """A new last axis of ``num_classes`` entries: 1 at each integer index, 0 elsewhere, of ``dtype``."""
    return apply("one_hot", indices, num_classes=num_classes, dtype=np.dtype(dtype).name, name=name)
