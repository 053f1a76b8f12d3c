"""Checks of an op's graph VJP: it agrees with the numpy VJP through ``dagrad.grad``, and its second
derivatives match central differences of the gradient."""

from __future__ import annotations

import numpy as np

from ...autodiff import grad
from ...errors import DagradError
from ...gradcheck import gradgradcheck, op_graph
from ...opdef import Op
from ...shapes import fits, format_shape
from ..diagnose import format_index, format_value
from .cases import Case
from .report import Problem, index_of

__all__ = ["check_graph_vjp", "check_second_order"]


def check_graph_vjp(op: Op, case: Case, seed: int) -> None:
    """``dagrad.grad`` through the op's graph VJP must give the numpy VJP's numbers, with static and unknown sizes."""
    keys = [id(raw) for raw in case.args]
    for fed in (False, True):
        sizes = "with unknown sizes, " if fed else ""
        try:
            g, out, names, feeds = op_graph(op, case.args, case.attrs, keys=keys, fed=fed)
        except DagradError as exc:
            if fed:
                continue  # the rule turns down unknown sizes; the shape-rule check judges that
            raise Problem(f"building a graph of the op failed: {exc}") from None
        if not names or out.dtype.kind != "f":
            return
        try:
            value = g.forward(out, feeds).value(out)
            if out.shape is not None and not fits(value.shape, out.shape):
                continue  # the shape rule is wrong for unknown sizes; the shape-rule check reports that
            cotangent = g.const(np.random.default_rng(seed).standard_normal(value.shape), name="cotangent")
            built = grad(out, [g[n] for n in names], cotangent=cotangent)
            got = g.forward(built, feeds)
            expected = g.backward((out * cotangent).sum(), feeds, wrt=names, keep="wrt")
        except DagradError as exc:
            raise Problem(f"dagrad.grad through its graph VJP, {sizes}failed: {exc}") from None
        for name, tensor in zip(names, built):
            a, b = got.value(tensor), expected.grad(name)
            i = index_of(name)
            if a.shape != b.shape:
                raise Problem(
                    f"{sizes}the graph VJP's gradient of input {i} has shape {format_shape(a.shape)}, "
                    f"the numpy VJP's {format_shape(b.shape)}"
                )
            if a.size and not np.allclose(a, b, rtol=1e-7, atol=1e-9, equal_nan=True):
                idx = np.unravel_index(int(np.nanargmax(np.abs(a - b))), a.shape) if a.ndim else ()
                raise Problem(
                    f"{sizes}the graph VJP disagrees with the numpy VJP for input {i}\n"
                    f"  worst element: input{i}{format_index(idx)}: graph VJP {format_value(a[idx])}, "
                    f"numpy VJP {format_value(b[idx])}\n"
                    f"  likely cause: the two rules compute different maths, or the graph rule misses a "
                    f"case the numpy rule handles (a tie, a zero, keepdims)"
                )


def check_second_order(op: Op, case: Case, seed: int, eps: float, atol: float, rtol: float) -> None:
    """Second derivatives, built by ``dagrad.grad`` from the graph VJP, against differences of the gradient."""
    try:
        report = gradgradcheck(op, *case.args, attrs=case.attrs, eps=eps, atol=atol, rtol=rtol, seed=seed)
    except DagradError as exc:
        raise Problem(f"differentiating its graph VJP again failed: {exc}") from None
    if report.ok:
        return
    lines = []
    for check in report.checks:
        if check.ok:
            continue
        idx = check.worst_index
        what = "the cotangent" if check.name == "cotangent" else f"input {index_of(check.name)}"
        lines.append(
            f"second derivatives with respect to {what} are wrong\n"
            f"  worst element: {check.name}{format_index(idx)}: dagrad.grad twice {format_value(check.analytic[idx])}, "
            f"differences of the gradient {format_value(check.numeric[idx])} ({check.worst_ratio:.3g}x the tolerance)\n"
            f"  likely cause: the graph VJP uses a value (an input, out, a mask) in a way that is right as a "
            f"number but not as a function of the inputs; or an op it builds on has a wrong graph VJP"
        )
    raise Problem("\n".join(lines))
