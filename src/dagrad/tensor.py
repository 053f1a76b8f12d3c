"""``Tensor``: a symbolic handle on one graph node, with Python operators that add nodes.

A Tensor computes nothing; ``x * y`` adds a ``mul`` node to ``x``'s graph and
returns a handle on it. Python numbers and numpy arrays mixed into an
expression become constants; a Python number takes the dtype of the Tensor it
meets, so a float32 graph stays float32.

Comparisons build nodes too (``x == 0`` is a bool ``equal`` node, as in
numpy, PyTorch and JAX), and ``&``, ``|``, ``^``, ``~`` are the logical ops
on bool Tensors. Whatever needs a value (``if x:``, ``float(loss)``,
``np.exp(x)``) raises ``SymbolicTensorError`` saying what to use instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numbers

import numpy as np

from .errors import GraphError, ShapeError, SymbolicTensorError
from .index import encode_index, tensor_slot
from .shapes import format_shape

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph, Node

__all__ = ["Tensor", "apply"]


class Tensor:
    """A handle ``(graph, name)`` on a node.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(3,))
    >>> y = dg.where(x > 0, x, 0.1 * x)          # the condition is a bool node
    >>> (x > 0).dtype, (x == 0).op
    (dtype('bool'), 'equal')
    >>> g.forward(y, {"x": np.array([-1.0, 0.0, 2.0])}).value(y)
    array([-0.1,  0. ,  2. ])
    """

    __slots__ = ("graph", "name")
    # ``==`` builds a node, so hashing cannot follow equality: a Tensor is hashed by identity,
    # and can still be a dict key or set member (lookups compare identity before equality).
    __hash__ = object.__hash__

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

    # ------------------------------------------------- no value to give --

    def __bool__(self) -> bool:
        raise SymbolicTensorError(
            f"Tensor {self.name!r} has no truth value: it is symbolic and gets a value only when its graph "
            "runs. `if`, `and`, `or`, `not` and chained comparisons (`a < x < b`) need one; build the "
            "condition into the graph instead (`dg.where(x > 0, a, b)`, `(a < x) & (x < b)`, `~mask`), "
            f"or run the graph and test the number: `res.value({self.name!r})`"
        )

    def _no_number(self, what: str) -> SymbolicTensorError:
        return SymbolicTensorError(
            f"{what}(Tensor {self.name!r}) needs a number, but a Tensor is symbolic: run the graph and convert "
            f"its value: `{what}(res.value({self.name!r}))`, with `res = g.forward(...)` or `g.backward(...)`"
        )

    def __float__(self) -> float:
        raise self._no_number("float")

    def __int__(self) -> int:
        raise self._no_number("int")

    def __complex__(self) -> complex:
        raise self._no_number("complex")

    def __index__(self) -> int:
        raise SymbolicTensorError(
            f"Tensor {self.name!r} cannot be a Python index or size: it is symbolic. Static sizes are in "
            f"`.shape`; to pick entries by computed indices use `dg.take(x, indices)`"
        )

    def __iter__(self):
        # Without this, Python would iterate through __getitem__(0), (1), ... adding nodes, and
        # forever along an axis whose size is unknown.
        raise SymbolicTensorError(
            f"Tensor {self.name!r} cannot be iterated: it is symbolic. Index it (`[x[i] for i in "
            f"range(n)]`), or run the graph and iterate over `res.value({self.name!r})`"
        )

    def __contains__(self, item) -> bool:
        raise SymbolicTensorError(
            f"`... in` Tensor {self.name!r} needs its values: it is symbolic. Compare in the graph "
            f"(`t == value` gives a bool Tensor), or run the graph and search `res.value({self.name!r})`"
        )

    def __array__(self, dtype=None, copy=None):
        raise SymbolicTensorError(
            f"numpy cannot turn Tensor {self.name!r} into an array: it is symbolic and gets a value only when "
            f"its graph runs. Use dagrad's ops on Tensors (`dg.exp(x)`, `dg.sum(x)`), or run the graph and "
            f"use numpy on `res.value({self.name!r})`"
        )

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """``array * tensor`` and the other operators build nodes; any other numpy ufunc raises, naming the fix."""
        op_name = _OPERATOR_UFUNCS.get(ufunc.__name__)
        if op_name is not None and method == "__call__" and not kwargs:
            if op_name.startswith("logical_"):
                return _logical(op_name, *inputs)
            return apply(op_name, *inputs)
        call = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        raise self._numpy_refused(call, _UFUNC_OPS.get(ufunc.__name__, ufunc.__name__))

    def __array_function__(self, func, types, args, kwargs):
        raise self._numpy_refused(f"np.{func.__name__}", func.__name__)

    def _numpy_refused(self, call: str, dg_name: str) -> SymbolicTensorError:
        return SymbolicTensorError(
            f"{call} cannot compute with Tensor {self.name!r}: it is symbolic and gets a value only when its "
            f"graph runs. Build the node with dagrad instead (`dg.{dg_name}(...)`; `dagrad ops` lists the ops), "
            f"or run the graph and use numpy on `res.value({self.name!r})`"
        )

    # -------------------------------------------------------- arithmetic --

    # Straight to the graph (a Tensor knows it): this is the hottest path of building a network.
    def __add__(self, other): return self.graph.apply("add", (self, other))
    def __radd__(self, other): return self.graph.apply("add", (other, self))
    def __sub__(self, other): return self.graph.apply("sub", (self, other))
    def __rsub__(self, other): return self.graph.apply("sub", (other, self))
    def __mul__(self, other): return self.graph.apply("mul", (self, other))
    def __rmul__(self, other): return self.graph.apply("mul", (other, self))
    def __truediv__(self, other): return self.graph.apply("div", (self, other))
    def __rtruediv__(self, other): return self.graph.apply("div", (other, self))
    def __pow__(self, other): return self.graph.apply("pow", (self, other))
    def __rpow__(self, other): return self.graph.apply("pow", (other, self))
    def __matmul__(self, other): return self.graph.apply("matmul", (self, other))
    def __rmatmul__(self, other): return self.graph.apply("matmul", (other, self))
    def __neg__(self): return self.graph.apply("neg", (self,))
    def __pos__(self): return self
    def __abs__(self): return self.graph.apply("abs", (self,))

    # ------------------------------------------------------- comparisons --
    # Bool nodes without gradient, as numpy computes them. An operand that cannot be an array
    # (None, a string) is not comparable, so ``x == None`` is False, as for any Python object.

    def __eq__(self, other): return apply("equal", self, other) if _comparable(other) else NotImplemented
    def __ne__(self, other): return apply("not_equal", self, other) if _comparable(other) else NotImplemented
    def __lt__(self, other): return apply("less", self, other) if _comparable(other) else NotImplemented
    def __le__(self, other): return apply("less_equal", self, other) if _comparable(other) else NotImplemented
    def __gt__(self, other): return apply("greater", self, other) if _comparable(other) else NotImplemented
    def __ge__(self, other): return apply("greater_equal", self, other) if _comparable(other) else NotImplemented

    # ----------------------------------------------------------- logical --

    def __and__(self, other): return _logical("logical_and", self, other)
    def __rand__(self, other): return _logical("logical_and", other, self)
    def __or__(self, other): return _logical("logical_or", self, other)
    def __ror__(self, other): return _logical("logical_or", other, self)
    def __xor__(self, other): return _logical("logical_xor", self, other)
    def __rxor__(self, other): return _logical("logical_xor", other, self)
    def __invert__(self): return _logical("logical_not", self)

    # ------------------------------------------------------------ layout --

    def __getitem__(self, index) -> "Tensor":
        """``x[index]``: a ``getitem`` node for a static index, an ``index`` node if Tensors are among its items.

        Integer and bool Tensors index as numpy arrays do (a bool one picks a
        number of entries known only when the graph runs); the static items
        are stored in the node's ``index`` attribute, with a ``("tensor", kind)``
        slot for each Tensor, which is an input of the node.
        """
        items = index if isinstance(index, tuple) else (index,)
        tensors = [item for item in items if isinstance(item, Tensor)]
        if not tensors:
            return apply("getitem", self, index=encode_index(index, self.name))
        encoded = []
        for item in items:
            if not isinstance(item, Tensor):
                encoded.extend(encode_index((item,), self.name))
            elif item.dtype.kind in "biu":
                encoded.append(tensor_slot("bool" if item.dtype.kind == "b" else "int"))
            else:
                raise GraphError(
                    f"indexing {self.name!r} with Tensor {item.name!r} of dtype {item.dtype}: index Tensors hold "
                    f"integers or booleans; cast it (`{item.name}.astype('int64')`) or compare (`t > 0`)"
                )
        return apply("index", self, *tensors, index=tuple(encoded))

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


# numpy ufuncs behind Python's operators: ``array + tensor`` reaches Tensor.__array_ufunc__ as np.add.
_OPERATOR_UFUNCS = {
    "add": "add", "subtract": "sub", "multiply": "mul", "true_divide": "div", "divide": "div",
    "power": "pow", "matmul": "matmul",
    "equal": "equal", "not_equal": "not_equal", "less": "less", "less_equal": "less_equal",
    "greater": "greater", "greater_equal": "greater_equal",
    "bitwise_and": "logical_and", "bitwise_or": "logical_or", "bitwise_xor": "logical_xor",
}
# dagrad names of ufuncs whose name differs, for error messages only.
_UFUNC_OPS = {"absolute": "abs", "negative": "neg", "subtract": "sub", "multiply": "mul",
              "true_divide": "div", "divide": "div", "power": "pow"}
_SYMBOLS = {"logical_and": "&", "logical_or": "|", "logical_xor": "^", "logical_not": "~"}


def _comparable(other: Any) -> bool:
    return isinstance(other, (Tensor, numbers.Number, np.ndarray, np.generic, list, tuple))


def _logical(op_name: str, *operands: Any) -> "Tensor":
    """``&``, ``|``, ``^``, ``~``: logical ops on bool operands; numbers are refused, not bit-twiddled."""
    for x in operands:
        dtype = x.dtype if isinstance(x, Tensor) else getattr(x, "dtype", None)
        if dtype is None:
            dtype = np.asarray(x).dtype if isinstance(x, (bool, numbers.Number, list, tuple)) else None
        if dtype is None or np.dtype(dtype).kind != "b":
            what = f"Tensor {x.name!r} of dtype {dtype}" if isinstance(x, Tensor) else f"a {type(x).__name__}"
            symbol = _SYMBOLS[op_name]
            example = f"{symbol}(x > 0)" if len(operands) == 1 else f"(x > 0) {symbol} (y < 1)"
            raise ShapeError(
                f"`{symbol}` is {op_name} on bool Tensors, and got {what}. dagrad has no bitwise ops: "
                f"for the truth of numbers (nonzero is true) call `dg.{op_name}(...)`, or compare first "
                f"(`{example}`)"
            )
    return apply(op_name, *operands)


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
