"""``Tensor``: a symbolic handle on one graph node, with Python operators that add nodes.

A Tensor computes nothing; ``x * y`` adds a ``mul`` node to ``x``'s graph and
returns a handle on it. Python numbers and numpy arrays mixed into an
expression become constants; a Python number takes the dtype of the Tensor it
meets, so a float32 graph stays float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .errors import GraphError
from .index import encode_index
from .shapes import format_shape

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph, Node

__all__ = ["Tensor", "apply"]


class Tensor:
    """A handle ``(graph, name)`` on a node."""

    __slots__ = ("graph", "name")
    __array_ufunc__ = None  # numpy defers to our reflected operators: array * tensor works

    def __init__(self, graph: "Graph", name: str):
        self.graph = graph
        self.name = name

    # ------------------------------------------------------------ static --

    @property
    def node(self) -> "Node":
        return self.graph.node(self.name)

    @property
    def shape(self):
        """Static shape; ``None`` entries are sizes known only when fed."""
        return self.node.shape

    @property
    def dtype(self) -> np.dtype:
        return self.node.dtype

    @property
    def ndim(self) -> Optional[int]:
        shape = self.shape
        return None if shape is None else len(shape)

    @property
    def op(self) -> str:
        return self.node.op

    def __repr__(self) -> str:
        shape = "?" if self.shape is None else format_shape(self.shape)
        return f"<Tensor {self.name!r} {self.node.op} {shape} {self.dtype}>"

    def __bool__(self) -> bool:
        raise TypeError(f"Tensor {self.name!r} is symbolic and has no truth value; run the graph first")

    # -------------------------------------------------------- arithmetic --

    def __add__(self, other): return apply("add", self, other)
    def __radd__(self, other): return apply("add", other, self)
    def __sub__(self, other): return apply("sub", self, other)
    def __rsub__(self, other): return apply("sub", other, self)
    def __mul__(self, other): return apply("mul", self, other)
    def __rmul__(self, other): return apply("mul", other, self)
    def __truediv__(self, other): return apply("div", self, other)
    def __rtruediv__(self, other): return apply("div", other, self)
    def __pow__(self, other): return apply("pow", self, other)
    def __rpow__(self, other): return apply("pow", other, self)
    def __matmul__(self, other): return apply("matmul", self, other)
    def __rmatmul__(self, other): return apply("matmul", other, self)
    def __neg__(self): return apply("neg", self)
    def __pos__(self): return self
    def __abs__(self): return apply("abs", self)

    # ------------------------------------------------------------ layout --

    def __getitem__(self, index) -> "Tensor":
        for item in index if isinstance(index, tuple) else (index,):
            if isinstance(item, Tensor):
                raise GraphError(
                    f"indexing {self.name!r} with Tensor {item.name!r}: indices must be static; "
                    "use dagrad.take(x, indices) for indices computed or fed at run time"
                )
        return apply("getitem", self, index=encode_index(index, self.name))

    @property
    def T(self) -> "Tensor":
        return apply("transpose", self)

    def transpose(self, *axes) -> "Tensor":
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return apply("transpose", self, axes=axes or None)

    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return apply("reshape", self, shape=tuple(shape))

    def astype(self, dtype) -> "Tensor":
        return apply("astype", self, dtype=np.dtype(dtype).name)

    # -------------------------------------------------------- reductions --

    def sum(self, axis=None, keepdims: bool = False) -> "Tensor":
        return apply("sum", self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> "Tensor":
        return apply("mean", self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False) -> "Tensor":
        return apply("max", self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False) -> "Tensor":
        return apply("min", self, axis=axis, keepdims=keepdims)


def apply(op_name: str, *args: Any, name: Optional[str] = None, **attrs: Any) -> Tensor:
    """Add a node applying op ``op_name`` to ``args``; numbers and arrays become constants.

    The graph is the one the Tensor arguments belong to (``Graph.apply`` does
    the checking and the adding); ``name`` names the node within the current
    scope, and other keywords are the op's attributes.
    """
    graph = None
    for a in args:
        if isinstance(a, Tensor):
            graph = a.graph
            break
    if graph is None:
        raise GraphError(
            f"op {op_name!r} needs at least one Tensor argument to know its graph; "
            f"got {', '.join(type(a).__name__ for a in args) or 'no arguments'}"
        )
    return graph.apply(op_name, args, attrs, name=name)
