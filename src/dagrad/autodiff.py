"""``grad``: the backward pass added to the graph as nodes, so a gradient can be run, saved, drawn and differentiated again.

``Graph.backward`` computes gradients as numbers, with each op's numpy VJP;
``grad`` instead walks the nodes between ``wrt`` and the loss in reverse
topological order once and calls each op's *graph* VJP, which adds that node's
backward step as ordinary nodes (``mul``, ``sum``, ...). It also does what
the engine does centrally for numpy VJPs, as explicit nodes: it sums fan-out
gradients with ``add`` nodes and sums broadcast gradients back to their input's
shape (``sum``, or ``sum_to`` when a size is known only at run time). The
result is symbolic reverse mode, as in Theano's ``T.grad`` or TF1's
``tf.gradients``; ``hvp``, ``hessian`` and ``jacobian`` are built on it.

The new nodes live in a scope ``grad`` (``grad_1``, ... for later calls),
under the name of the forward node whose backward step they belong to, and
``Node.origin`` records that forward node.

Examples
--------
>>> import numpy as np, dagrad as dg
>>> g = dg.Graph()
>>> x = g.param("x", np.array([1.0, 2.0]))
>>> y = dg.sum(x ** 3)
>>> dx = dg.grad(y, x)                        # 3 x ** 2, as nodes
>>> d2x = dg.grad(dg.sum(dx), x)              # 6 x
>>> g.forward([dx, d2x]).value(d2x)
array([ 6., 12.])
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator, Optional, Sequence, Union

import networkx as nx
import numpy as np

from .errors import DagradError, FeedError, GradientError, GraphError, HigherOrderError, OpError
from .graph import Graph
from .node import topological_order
from .ops.adjoints import sum_to, zeros_like
from .plugins import registry
from .scheduler.runtime import coerce_cotangent
from .shapes import broadcasts_to, format_shape, shapes_agree
from .tensor import Tensor, apply

__all__ = ["grad", "hvp", "hessian", "jacobian"]

Wrt = Union[Tensor, Sequence[Tensor]]


def grad(loss: Tensor, wrt: Wrt, cotangent: Any = None, *, allow_unused: bool = False) -> Union[Tensor, list]:
    """Gradients of ``loss`` with respect to ``wrt``, as new nodes of the same graph.

    Parameters
    ----------
    loss
        The Tensor to differentiate, floating point. Unless it is a scalar,
        ``cotangent`` is required.
    wrt
        A Tensor or a sequence of Tensors (params, inputs or any node) of the
        loss's graph.
    cotangent
        A Tensor or array of the loss's shape: the gradients are then the
        vector-Jacobian product ``cotangent · d(loss)/d(wrt)``.
    allow_unused
        Give a ``wrt`` the loss does not depend on a zero gradient instead of
        raising ``GraphError``.

    Returns
    -------
    Tensor or list of Tensor
        One gradient per ``wrt``, each of its shape and dtype (a list when
        ``wrt`` is a sequence). Nodes are added once, here; compile and run
        them like any others (``Graph.forward``), ``keep`` them, save, render
        or differentiate them again.

    Raises
    ------
    GraphError
        A ``wrt`` is not floating point, not in the graph, or not an ancestor
        of the loss; or the loss needs a cotangent.
    HigherOrderError
        The loss depends on a gradient computed by the numpy VJP of an op that
        has no graph VJP (a ``vjp`` node): differentiating it again needs that
        op's ``@<op>.graph_vjp``.
    GradientError, OpError
        An op's graph VJP failed or returned gradients of the wrong number,
        graph, shape or dtype; the graph is left as it was.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 2))
    >>> W = g.param("W", np.ones((2, 1)))
    >>> loss = dg.mean((x @ W) ** 2)
    >>> dW = dg.grad(loss, W)                 # nodes named grad/..., computing 2 x.T (x @ W) / n
    >>> dW.shape
    (2, 1)
    >>> g.forward(dW, {"x": np.array([[1.0, 2.0]])}).value(dW)
    array([[ 6.],
           [12.]])
    """
    single = isinstance(wrt, Tensor)
    targets = [wrt] if single else list(wrt)
    graph = _graph_of(loss, targets)
    grads = _Backward(graph, loss, targets, cotangent, allow_unused).run()
    return grads[0] if single else grads


def hvp(loss: Tensor, wrt: Wrt, vectors: Any) -> Union[Tensor, list]:
    """Hessian-vector products ``H v`` of a scalar ``loss``, as nodes: the gradient of ``grad(loss) · v``.

    ``vectors`` has the structure of ``wrt`` (one Tensor or array per
    ``wrt``, of its shape); the result too. Costs about two backward passes,
    however large the Hessian.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.array([1.0, 2.0]))
    >>> Hv = dg.hvp(dg.sum(x ** 3), x, np.array([1.0, 0.0]))   # H = diag(6 x)
    >>> g.forward(Hv).value(Hv)
    array([6., 0.])
    """
    single = isinstance(wrt, Tensor)
    targets = [wrt] if single else list(wrt)
    vs = [vectors] if single else list(vectors)
    if len(vs) != len(targets):
        raise GraphError(f"hvp: {len(vs)} vector(s) for {len(targets)} wrt tensor(s); give one per wrt")
    graph = _graph_of(loss, targets)
    with graph.scope(graph.unused_scope("hvp")):
        first = grad(loss, targets)
        dot = None
        for gi, v, x in zip(first, vs, targets):
            v = _as_tensor(graph, v, x, "hvp: vector")
            term = apply("sum", gi * v)
            dot = term if dot is None else dot + term
        out = grad(dot, targets, allow_unused=True)
    return out[0] if single else out


def hessian(loss: Tensor, wrt: Wrt) -> Union[Tensor, list]:
    """The Hessian of a scalar ``loss``, as nodes: shape ``x.shape + x.shape`` for one ``wrt``.

    For a sequence ``wrt``, a list of lists: block ``[i][j]`` is
    ``d2 loss / d wrt[i] d wrt[j]``, of shape ``wrt[i].shape + wrt[j].shape``.
    One backward pass of the backward pass per entry of the gradient: meant
    for small inputs, whose shapes must be static (no ``None`` sizes).

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.array([1.0, 2.0]))
    >>> H = dg.hessian(dg.sum(x ** 2) * x[0], x)
    >>> g.forward(H).value(H)
    array([[6., 4.],
           [4., 2.]])
    """
    single = isinstance(wrt, Tensor)
    targets = [wrt] if single else list(wrt)
    graph = _graph_of(loss, targets)
    _static(loss, "hessian: the loss")
    if loss.shape != ():
        raise GraphError(f"hessian: the loss {loss.name!r} must be a scalar, not of shape {format_shape(loss.shape)}")
    shapes = [_static(x, "hessian: wrt") for x in targets]
    with graph.scope(graph.unused_scope("hessian")):
        first = grad(loss, targets)
        blocks = [_rows_of(graph, gi, targets, shape, shapes) for gi, shape in zip(first, shapes)]
    return blocks[0][0] if single else blocks


def jacobian(y: Tensor, wrt: Wrt) -> Union[Tensor, list]:
    """The Jacobian of ``y`` as nodes: shape ``y.shape + x.shape`` for one ``wrt`` (a list for a sequence).

    One backward pass per entry of ``y``: meant for small functions, whose
    shapes must be static (no ``None`` sizes).

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.array([1.0, 2.0]))
    >>> J = dg.jacobian(x * x[0], x)
    >>> g.forward(J).value(J)
    array([[2., 0.],
           [2., 1.]])
    """
    single = isinstance(wrt, Tensor)
    targets = [wrt] if single else list(wrt)
    graph = _graph_of(y, targets)
    y_shape = _static(y, "jacobian: the output")
    shapes = [_static(x, "jacobian: wrt") for x in targets]
    with graph.scope(graph.unused_scope("jacobian")):
        blocks = _rows_of(graph, y, targets, y_shape, shapes)
    return blocks[0] if single else blocks


# ------------------------------------------------------------- the walk --


class _Backward:
    """One ``grad`` call: which nodes the gradient flows through, and the nodes that compute it."""

    def __init__(self, graph: Graph, loss: Tensor, targets: list, cotangent: Any, allow_unused: bool):
        self.graph = graph
        self.loss = graph.node(loss.name)
        if self.loss.dtype.kind not in "fc":
            raise GraphError(f"loss {loss.name!r} has dtype {self.loss.dtype}; gradients need a floating-point loss")
        self.cotangent = cotangent
        self.names = [t.name for t in targets]
        for name in self.names:
            dtype = graph.node(name).dtype
            if dtype.kind not in "fc":
                raise GraphError(f"cannot take gradients with respect to {name!r}: its dtype is {dtype}")
        G = graph.nx
        upstream = _reachable(G.reverse(copy=False), [self.loss.name])
        unused = [n for n in self.names if n not in upstream]
        if unused and not allow_unused:
            raise GraphError(
                f"cannot take gradients with respect to {', '.join(map(repr, unused))}: not an ancestor of the "
                f"loss {self.loss.name!r} (pass allow_unused=True for zero gradients)"
            )
        downstream = _reachable(G, set(self.names) & upstream)
        records = {n: graph.node(n) for n in upstream}
        self.flowing = {n for n in downstream & upstream if records[n].dtype.kind in "fc"}
        self.order = [n for n in reversed(topological_order(G, upstream, records)) if n in self.flowing]
        self.records = records
        self.reg = registry()

    def run(self) -> list:
        graph = self.graph
        self._check_cotangent()
        with graph.atomic() as added, graph.scope(graph.unused_scope("grad")):
            self.added = added
            parts: dict[str, list] = {}
            if self.order:
                with self._building(self.loss.name):
                    parts[self.loss.name] = [self._seed()]
            totals: dict[str, Tensor] = {}
            wanted = set(self.names)
            for name in self.order:
                incoming = parts.pop(name, None)
                if not incoming:
                    continue
                with self._building(name):
                    total = functools.reduce(lambda a, b: a + b, incoming)
                    if name in wanted:
                        totals[name] = total
                    self._step(name, total, parts)
            out = []
            for name in self.names:
                if name not in totals:
                    with self._building(name):
                        totals[name] = zeros_like(Tensor(graph, name))
                out.append(totals[name])
        return out

    @contextlib.contextmanager
    def _building(self, origin: str) -> Iterator[None]:
        """Add nodes under ``origin``'s name in the grad scope, and record ``origin`` on each."""
        start = len(self.added)
        with contextlib.ExitStack() as scopes:
            for part in origin.split("/"):
                if part:
                    scopes.enter_context(self.graph.scope(part))
            yield
        for name in self.added[start:]:
            self.graph.node(name).origin = origin

    def _check_cotangent(self) -> None:
        loss, cot = self.loss, self.cotangent
        if cot is None:
            if loss.shape != ():
                shape = "an unknown shape" if loss.shape is None else f"shape {format_shape(loss.shape)}"
                raise GraphError(
                    f"the loss {loss.name!r} has {shape}, not a scalar: pass cotangent= (a Tensor or array of "
                    "its shape) for the vector-Jacobian product, or reduce the loss to a scalar first"
                )
            return
        if isinstance(cot, Tensor):
            if cot.graph is not self.graph:
                raise GraphError(f"the cotangent {cot.name!r} belongs to another graph than the loss {loss.name!r}")
            shape, dtype = cot.shape, cot.dtype
        else:
            try:  # backward's check of cotangent=: 1e300 for a float32 loss is refused, not made inf
                array = coerce_cotangent(loss.name, cot, loss.dtype)
            except FeedError as exc:  # here it is part of building the graph
                raise GraphError(str(exc)) from None
            shape, dtype = array.shape, array.dtype
            self.cotangent = array
        if dtype.kind not in "fc":
            raise GraphError(f"the cotangent for {loss.name!r} has dtype {dtype}; it must be floating point")
        if shape is not None and loss.shape is not None and not shapes_agree(shape, loss.shape):
            raise GraphError(
                f"the cotangent for {loss.name!r} has shape {format_shape(shape)}, but the loss has shape "
                f"{format_shape(loss.shape)}"
            )

    def _seed(self) -> Tensor:
        graph, loss, cot = self.graph, self.loss, self.cotangent
        if cot is None:
            return graph.const(np.ones((), loss.dtype), name="seed")
        if isinstance(cot, Tensor):
            return cot if cot.dtype == loss.dtype else cot.astype(loss.dtype)
        return graph.const(cot, name="cotangent")

    def _step(self, name: str, total: Tensor, parts: dict) -> None:
        """Add node ``name``'s backward step: its inputs' gradient contributions, given its own gradient."""
        rec = self.records[name]
        if rec.kind != "op":
            return
        flows = tuple(i in self.flowing for i in rec.inputs)
        if not any(flows):
            return
        op = self.reg.op(rec.op)
        inputs = [Tensor(self.graph, i) for i in rec.inputs]
        out = Tensor(self.graph, name)
        if op.has_graph_vjp:
            grads = self._call_rule(op, name, total, inputs, out, rec.attrs, flows)
        elif op.differentiable:
            grads = [apply("vjp", total, *inputs, out, op=op.name, attrs=rec.attrs, input=j) if flow else None
                     for j, flow in enumerate(flows)]
        else:
            raise GraphError(
                f"node {name!r}: op {op.name!r} from {op.plugin} has no VJP, but a gradient must flow through it "
                f"to reach {', '.join(map(repr, self.names))}"
            )
        for j, (source, gi) in enumerate(zip(rec.inputs, grads)):
            if flows[j] and gi is not None:
                gi = self._sum_back(gi, j, rec, op, inputs)
                parts.setdefault(source, []).append(gi)

    def _call_rule(self, op, name, total, inputs, out, attrs, flows) -> tuple:
        where = f"node {name!r}: the graph VJP of op {op.name!r} from plugin {op.plugin!r}"
        try:
            grads = op.call_graph_vjp(total, inputs, out, attrs, flows)
        except HigherOrderError as exc:
            raise HigherOrderError(f"node {name!r}: {exc}") from None
        except DagradError as exc:
            raise GradientError(f"{where} failed to build: {exc}") from exc
        except Exception as exc:
            raise OpError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        if isinstance(grads, Tensor) and len(inputs) == 1:
            grads = (grads,)
        if not isinstance(grads, (tuple, list)) or len(grads) != len(inputs):
            got = f"{len(grads)} values" if isinstance(grads, (tuple, list)) else f"a {type(grads).__name__}"
            raise GradientError(f"{where} must return one Tensor (or None) per input, {len(inputs)} in all; it returned {got}")
        for j, gi in enumerate(grads):
            if gi is not None and not (isinstance(gi, Tensor) and gi.graph is self.graph):
                what = "a Tensor of another graph" if isinstance(gi, Tensor) else f"a {type(gi).__name__}"
                raise GradientError(
                    f"{where} returned {what} for input {j}; it must build the gradient with dagrad ops on its "
                    "Tensor arguments (numbers and arrays become constants only inside an expression)"
                )
        return tuple(grads)

    def _sum_back(self, gi: Tensor, j: int, rec, op, inputs: list) -> Tensor:
        """``gi`` summed back to input ``j``'s shape and cast to its dtype, as the engine does for numpy VJPs."""
        x = inputs[j]
        gshape, xshape = gi.shape, x.shape
        others = [t.shape for t in inputs if t.name != x.name]
        axes = _static_reduction(gshape, xshape, others)
        if axes is None:
            if gshape is not None and xshape is not None and not broadcasts_to(xshape, gshape):
                raise GradientError(
                    f"node {rec.name!r}: the graph VJP of op {op.name!r} from plugin {op.plugin!r} returned a "
                    f"gradient of shape {format_shape(gshape)} for input {j} ({x.name!r}), whose shape is "
                    f"{format_shape(xshape)} (and it does not broadcast to it)"
                )
            gi = sum_to(gi, x)
        else:
            lead, inner = axes
            if inner:
                gi = apply("sum", gi, axis=inner, keepdims=True)
            if lead:
                gi = apply("sum", gi, axis=lead)
        if gi.dtype != x.dtype:
            if gi.dtype.kind not in "fc":
                raise GradientError(
                    f"node {rec.name!r}: the graph VJP of op {op.name!r} from plugin {op.plugin!r} returned a "
                    f"{gi.dtype} gradient for input {j} ({x.name!r}), whose dtype is {x.dtype}"
                )
            gi = gi.astype(x.dtype)
        return gi


def _static_reduction(gshape, xshape, others) -> Optional[tuple]:
    """Axes to sum a gradient of static shape ``gshape`` over to get ``xshape``: ``(lead, inner)``.

    ``None`` when only the run-time shapes can tell: an unknown size of the
    input that may have been broadcast against a size of the gradient (a
    known one, or an unknown one that another input of the node also has).
    """
    if gshape is None or xshape is None:
        return None
    lead = len(gshape) - len(xshape)
    if lead < 0:
        return None
    inner = []
    for i, (d, gd) in enumerate(zip(xshape, gshape[lead:])):
        if d == gd and d is not None:
            continue
        if d == 1:
            inner.append(lead + i)
        elif d is None:
            if gd == 1:
                continue
            if gd is not None:
                return None
            position = i - len(xshape)  # counted from the right, as broadcasting aligns shapes
            if any(s is None or (len(s) >= -position and s[position] is None) for s in others):
                return None
        elif gd is not None:
            return None  # a known size the gradient does not have: cannot sum back
    return tuple(range(lead)), tuple(inner)


def _reachable(G, sources) -> set:
    """Nodes reachable from ``sources`` in ``G`` (sources included): one breadth-first walk for them all."""
    return set().union(*nx.bfs_layers(G, sources)) if sources else set()


# ------------------------------------------------------------- helpers --


def _graph_of(loss: Any, targets: list) -> Graph:
    if not isinstance(loss, Tensor):
        raise GraphError(f"expected a Tensor to differentiate, got {type(loss).__name__}")
    for t in targets:
        if not isinstance(t, Tensor):
            raise GraphError(f"wrt must hold Tensors, got {type(t).__name__}")
        if t.graph is not loss.graph:
            raise GraphError(
                f"wrt {t.name!r} belongs to graph {t.graph.name!r}, the loss {loss.name!r} to graph "
                f"{loss.graph.name!r}; differentiate within one graph"
            )
    return loss.graph


def _as_tensor(graph: Graph, value: Any, like: Tensor, what: str) -> Tensor:
    """A Tensor of ``graph`` for ``value``: as is, or a constant of ``like``'s dtype; its shape must fit ``like``'s."""
    if isinstance(value, Tensor):
        if value.graph is not graph:
            raise GraphError(f"{what} {value.name!r} belongs to another graph")
        shape = value.shape
    else:
        value = graph.const(np.asarray(value, dtype=like.dtype))
        shape = value.shape
    if shape is not None and like.shape is not None and not shapes_agree(shape, like.shape):
        raise GraphError(
            f"{what} for {like.name!r} has shape {format_shape(shape)}, but {like.name!r} has shape "
            f"{format_shape(like.shape)}"
        )
    return value


def _static(t: Tensor, what: str) -> tuple:
    if t.shape is None or None in t.shape:
        shape = "unknown" if t.shape is None else format_shape(t.shape)
        raise GraphError(f"{what} {t.name!r} needs a static shape (no None sizes); its shape is {shape}")
    return t.shape


def _rows_of(graph: Graph, y: Tensor, targets: list, y_shape: tuple, shapes: list) -> list:
    """Per target, the Jacobian of ``y`` with respect to it, shaped ``y_shape + shape``: one grad per entry of y."""
    size = int(np.prod(y_shape, dtype=np.int64))
    flat = y if len(y_shape) == 1 else apply("reshape", y, shape=(-1,))
    rows = [grad(flat[i], targets, allow_unused=True) for i in range(size)]
    blocks = []
    for k, (x, shape) in enumerate(zip(targets, shapes)):
        if size == 0:
            blocks.append(graph.const(np.zeros(y_shape + shape, x.dtype)))
            continue
        stacked = apply("stack", *[row[k] for row in rows], axis=0)
        blocks.append(apply("reshape", stacked, shape=y_shape + shape))
    return blocks
