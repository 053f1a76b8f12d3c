"""Finite-difference checks of any op or graph, in float64, to the first and the second order.

Analytic gradients from the engine are compared with central differences of
the loss. For an op, the loss is ``sum(op(*inputs) * R)`` with a fixed random
``R``, so every entry of the VJP is exercised, not only its sum. Passing the
same array object twice makes one node used twice, as in ``x * x``.
``gradgradcheck`` does the same for second derivatives, built by
``dagrad.grad`` from the op's graph VJP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np

from .autodiff import grad
from .errors import GraphError
from .graph import Graph
from .opdef import Op
from .plugins import registry

__all__ = ["gradcheck", "gradgradcheck", "GradcheckReport", "InputCheck", "as_float64", "op_graph", "projected_graph"]


@dataclass
class InputCheck:
    """Analytic against numeric gradient for one checked node."""

    name: str
    analytic: np.ndarray
    numeric: np.ndarray
    worst_index: tuple = ()
    worst_ratio: float = 0.0  # error / tolerance at the worst entry; > 1 fails

    @property
    def ok(self) -> bool:
        return self.worst_ratio <= 1.0


@dataclass(repr=False)
class GradcheckReport:
    """Outcome of ``gradcheck``; true when every entry is within tolerance."""

    target: str
    checks: list = field(default_factory=list)
    atol: float = 0.0
    rtol: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def worst(self) -> Optional[InputCheck]:
        return max(self.checks, key=lambda c: c.worst_ratio, default=None)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        worst = self.worst
        if worst is None:
            return f"gradcheck of {self.target}: nothing to check"
        if worst.analytic.size == 0:
            return f"gradcheck of {self.target}: passed ({len(self.checks)} input(s), all empty)"
        idx = worst.worst_index
        a, n = worst.analytic[idx], worst.numeric[idx]
        verdict = "passed" if self.ok else "FAILED"
        return (
            f"gradcheck of {self.target}: {verdict}; worst is {worst.name!r} at index {idx}: "
            f"analytic {a:.8g}, numeric {n:.8g} (error {abs(a - n):.3g}, "
            f"{worst.worst_ratio:.3g}x the tolerance atol={self.atol:g} + rtol={self.rtol:g}*|numeric|)"
        )


    def __repr__(self) -> str:
        worst = self.worst
        tail = f", worst {worst.name!r} at {worst.worst_ratio:.3g}x the tolerance" if worst is not None else ""
        return f"<GradcheckReport of {self.target}: {'passed' if self.ok else 'FAILED'}, {len(self.checks)} checked{tail}>"

    def _repr_html_(self) -> str:
        """One row per checked node: shape, largest error, and its ratio to the tolerance."""
        import html

        rows = []
        for c in self.checks:
            error = float(np.max(np.abs(c.analytic - c.numeric))) if c.analytic.size else 0.0
            rows.append(f"<tr><td>{html.escape(c.name)}</td><td>{c.analytic.shape}</td><td>{error:.3g}</td>"
                        f"<td>{c.worst_ratio:.3g}</td><td>{'ok' if c.ok else '<b>FAILED</b>'}</td></tr>")
        return (f"<p>{html.escape(str(self))}</p><table><thead><tr><th>node</th><th>shape</th>"
                f"<th>max |error|</th><th>x tolerance</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def as_float64(graph: Graph) -> Graph:
    """A copy of ``graph`` with every floating-point input, param, const and cast in float64."""
    out = Graph(graph.name + "/float64")
    for rec in graph.topological_order():
        name = rec.name
        if rec.op == "input":
            dtype = np.float64 if rec.dtype.kind == "f" else rec.dtype
            out.input(name, rec.shape, dtype)
        elif rec.op in ("param", "const"):
            value = graph._values[name]
            if value.dtype.kind == "f":
                value = value.astype(np.float64)
            if rec.op == "param":
                out.param(name, value, trainable=rec.trainable)
            else:
                out.const(value, name=name)
        else:
            attrs = dict(rec.attrs)
            if isinstance(attrs.get("dtype"), str) and np.dtype(attrs["dtype"]).kind == "f":
                attrs["dtype"] = "float64"
            out.apply(rec.op, rec.inputs, attrs, name=name)
            out.node(name).origin = rec.origin
    return out


def _compare(name: str, analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> InputCheck:
    check = InputCheck(name, analytic, numeric)
    if analytic.size:
        ratio = np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric))
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        flat = int(np.argmax(ratio))
        check.worst_index = tuple(int(i) for i in np.unravel_index(flat, analytic.shape)) if analytic.ndim else ()
        check.worst_ratio = float(ratio.reshape(-1)[flat])
    return check


def _numeric(run_loss, array: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of ``run_loss()`` with respect to each entry of ``array`` (perturbed in place)."""
    grad = np.zeros(array.shape, np.float64)
    for i in np.ndindex(array.shape):  # indexes the array itself: reshape(-1) copies a Fortran-ordered one
        keep = array[i]
        array[i] = keep + eps
        up = run_loss()
        array[i] = keep - eps
        down = run_loss()
        array[i] = keep
        grad[i] = (up - down) / (2 * eps)
    return grad


def gradcheck(
    target: Union[Op, str, Graph],
    *args: Any,
    loss: Any = None,
    feeds: Optional[dict] = None,
    wrt: Optional[Sequence[Any]] = None,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    seed: int = 0,
    attrs: Optional[dict] = None,
    **more_attrs: Any,
) -> GradcheckReport:
    """Compare analytic gradients with central finite differences, in float64.

    Parameters
    ----------
    target
        An ``Op`` (or op name) applied to ``args`` with attributes ``attrs`` (a
        dict, or keywords; the dict also passes attributes whose names clash with
        this function's own, such as ``seed``); or a ``Graph`` together with
        ``loss``, ``feeds`` and ``wrt`` (default: all params).
    eps, atol, rtol
        Step of the central difference, and the tolerance
        ``|analytic - numeric| <= atol + rtol * |numeric|``.

    Returns
    -------
    GradcheckReport
        True when every entry is within tolerance; ``str()`` names the worst
        node or input with both values.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> x = np.linspace(0.5, 2.0, 6).reshape(2, 3)
    >>> bool(dg.gradcheck(dg.ops.mul, x, x))        # x * x: one node used twice
    True
    """
    if isinstance(target, Graph):
        if loss is None:
            raise GraphError("gradcheck of a graph needs loss=")
        return _check_graph(target, loss, feeds or {}, wrt, eps, atol, rtol)
    op = registry().op(target) if isinstance(target, str) else target
    return _check_op(op, args, {**(attrs or {}), **more_attrs}, eps, atol, rtol, seed)


def op_graph(
    op: Op,
    args: Sequence[Any],
    attrs: dict,
    *,
    dtype: Any = np.float64,
    keys: Optional[Sequence[Any]] = None,
    fed: bool = False,
) -> tuple:
    """A graph applying ``op`` to ``args``: ``(graph, out, names, feeds)``.

    Floating-point arguments become params cast to ``dtype`` (or of their own
    dtype, for ``dtype=None``), so gradients are taken with respect to them
    (their names are ``names``); or, with ``fed``,
    inputs fed ``feeds`` whose sizes are unknown (``None``) except sizes of 1,
    which rules such as squeeze's may rely on; other arguments become
    constants. Arguments with the same key (by default, the same object) are
    one node, as in ``x * x``.
    """
    g = Graph(f"check:{op.name}")
    keys = [id(a) for a in args] if keys is None else list(keys)
    nodes: dict = {}
    tensors, names, feeds = [], [], {}
    for i, (key, arg) in enumerate(zip(keys, args)):
        if key not in nodes:
            array = np.asarray(arg)
            kind = array.dtype if dtype is None else np.dtype(dtype)  # None: each argument keeps its own dtype
            if array.dtype.kind == "f" and fed:
                nodes[key] = g.input(f"input{i}", shape=[1 if d == 1 else None for d in array.shape], dtype=kind)
                feeds[f"input{i}"] = array.astype(kind)
                names.append(nodes[key].name)
            elif array.dtype.kind == "f":
                nodes[key] = g.param(f"input{i}", array.astype(kind))
                names.append(nodes[key].name)
            else:
                nodes[key] = g.const(array, name=f"input{i}")
        tensors.append(nodes[key])
    out = g.apply(op.name, tensors, attrs, name="out")
    return g, out, names, feeds


def projected_graph(
    op: Op,
    args: Sequence[Any],
    attrs: dict,
    *,
    dtype: Any = np.float64,
    keys: Optional[Sequence[Any]] = None,
    seed: int = 0,
) -> tuple:
    """:func:`op_graph` (with params) ending in ``loss = sum(out * R)`` for a fixed random ``R``.

    The projection ``R`` makes the loss exercise every entry of the VJP, not
    only its sum.

    Returns ``(graph, out, loss, param_names)``.
    """
    g, out, params, _ = op_graph(op, args, attrs, dtype=dtype, keys=keys)
    shape = g.forward(out).value(out).shape
    projection = np.random.default_rng(seed).standard_normal(shape).astype(
        out.dtype if out.dtype.kind == "f" else (dtype or np.float64))
    loss = (out * g.const(projection, name="projection")).sum()
    return g, out, loss, params


def gradgradcheck(
    target: Union[Op, str],
    *args: Any,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    seed: int = 0,
    attrs: Optional[dict] = None,
    **more_attrs: Any,
) -> GradcheckReport:
    """Compare an op's second derivatives, built by ``dagrad.grad``, with finite differences of its gradient.

    The op's vector-Jacobian product for a random cotangent ``G``, built by
    ``dagrad.grad`` from the op's graph VJP, is projected to a scalar
    ``s = sum_i sum(grad_i * R_i)``; the gradient of ``s`` with respect to the
    op's floating-point inputs and to ``G``, built by ``dagrad.grad`` again,
    is compared with central differences of ``s``, in float64. Arguments as
    for :func:`gradcheck` of an op.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> x = np.linspace(0.5, 2.0, 6).reshape(2, 3)
    >>> bool(dg.gradgradcheck("tanh", x))
    True
    """
    op = registry().op(target) if isinstance(target, str) else target
    attrs = {**(attrs or {}), **more_attrs}
    g, out, params, _ = op_graph(op, args, attrs)
    report = GradcheckReport(f"second derivatives of op {op.name!r} from {op.plugin}", [], atol, rtol)
    if not params or out.dtype.kind != "f":
        return report
    rng = np.random.default_rng(seed)
    cotangent = g.param("cotangent", rng.standard_normal(g.forward(out).value(out).shape))
    firsts = grad(out, [g[p] for p in params], cotangent=cotangent)
    projected = None
    for p, first in zip(params, firsts):
        term = (first * g.const(rng.standard_normal(g.value(p).shape))).sum()
        projected = term if projected is None else projected + term
    wrt = [*params, cotangent.name]
    seconds = grad(projected, [g[n] for n in wrt], allow_unused=True)
    values = g.forward(seconds)
    analytic = {n: values.value(t) for n, t in zip(wrt, seconds)}
    report.checks = _against_differences(g, projected.name, {}, analytic, eps, atol, rtol)
    return report


def _check_op(op: Op, args, attrs, eps, atol, rtol, seed) -> GradcheckReport:
    if not any(np.asarray(a).dtype.kind == "f" for a in args):
        return GradcheckReport(op.name, [], atol, rtol)
    g, out, loss, params = projected_graph(op, args, attrs, seed=seed)
    report = _check_graph(g, loss, {}, params, eps, atol, rtol, converted=True)
    report.target = f"op {op.name!r} from {op.plugin}"
    return report


def _check_graph(graph: Graph, loss, feeds: dict, wrt, eps, atol, rtol, converted: bool = False) -> GradcheckReport:
    g = graph if converted else as_float64(graph)
    loss_name = getattr(loss, "name", loss)
    wrt_names = [getattr(w, "name", w) for w in wrt] if wrt is not None else list(g.params)
    feeds64 = {}
    for key, value in feeds.items():
        name = getattr(key, "name", key)
        array = np.array(value)
        feeds64[name] = array.astype(np.float64) if array.dtype.kind == "f" else array
    result = g.backward(loss_name, feeds64, wrt=wrt_names, keep="wrt")
    analytic = {name: result.grad(name) for name in wrt_names}
    return GradcheckReport(f"graph {graph.name!r}", _against_differences(g, loss_name, feeds64, analytic, eps, atol, rtol),
                           atol, rtol)


def _against_differences(g: Graph, loss_name: str, feeds64: dict, analytic: dict, eps, atol, rtol) -> list:
    """One ``InputCheck`` per name in ``analytic``: the given gradient against central differences of the loss."""
    plan = g.compile([loss_name])

    def run_loss() -> float:
        return float(np.sum(plan.run(feeds64).value(loss_name)))

    checks = []
    for name, value in analytic.items():
        node = g.node(name)
        if node.op == "input":
            array = feeds64[name]
        else:
            array = g._values[name]
        numeric = _numeric(run_loss, array, eps)
        checks.append(_compare(name, np.asarray(value, np.float64), numeric, atol, rtol))
    return checks
