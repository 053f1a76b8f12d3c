"""The interpreter loop: runs a plan's instructions one by one over slot lists.

It runs a plan's first run, profiled runs and plans too large to generate code
for. Per node it does what the generated code does (``codegen.py``), through
the same helpers in ``runtime.py``, so both compute the same thing.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np

from ..errors import DagradError
from ..shapes import fits
from .anomalies import check_finite
from .runtime import (
    as_grad_tuple,
    failed,
    finish,
    fix_gradient,
    fix_output,
    freeze,
    placeholder,
    seed,
)

__all__ = ["run"]

ndarray = np.ndarray


def run(plan: Any, fed: list, cotangent: Optional[np.ndarray], check: bool, profile: bool):
    """Run ``plan`` on validated feeds; return its ``Result``."""
    n = len(plan.nodes)
    values: list = [None] * n
    shapes: list = [None] * n
    external = list(fed)
    stored = plan.graph._values
    for s in plan.stored:
        external.append(stored[s.name])
    ext_ids = {id(a) for a in external}
    for f, array in zip(plan.feeds, fed):
        values[f.slot] = freeze(array, ext_ids) if f.guard else array
        shapes[f.slot] = array.shape
    for s, array in zip(plan.stored, external[len(fed):]):
        values[s.slot] = freeze(array, ext_ids) if s.guard else array
        shapes[s.slot] = array.shape

    perf = time.perf_counter
    forward_times: Optional[dict] = {} if profile else None
    residuals: dict = {}
    for ins in plan.forward:
        args = [values[i] for i in ins.inputs]
        op = ins.op
        if profile:
            t0 = perf()
        try:
            out = op.forward(*args, **ins.attrs)
        except DagradError:
            raise
        except Exception as exc:
            raise failed(ins.name, op, "forward", args, exc) from exc
        if profile:
            forward_times[ins.name] = perf() - t0
        if op.residuals:
            out, res = out
            if ins.keep_residuals:
                residuals[ins.slot] = res
        if type(out) is not ndarray or out.dtype is not ins.dtype or (ins.ndim >= 0 and (
                len(out.shape) != ins.ndim or (out.shape[ins.lead:] != ins.tail if ins.tail is not None
                                               else not fits(out.shape, ins.shape)))):
            out = fix_output(ins, out)
        if ins.guard:
            out = freeze(out, ext_ids)
        if check:
            check_finite(out, ins.name, op, "forward", args)
        values[ins.slot] = out
        shapes[ins.slot] = out.shape
        for s in ins.free:
            values[s] = None

    order: list = []
    grads: list = [None] * n
    flows: Optional[dict] = {} if plan.keep == "all" else None
    backward_times: Optional[dict] = {} if profile else None
    if plan.backward:
        loss_slot = plan.backward[0].slot
        grads[loss_slot] = seed(plan, values[loss_slot], cotangent)
        _backward(plan, values, shapes, grads, residuals, order, flows, check, ext_ids, backward_times)

    kept_values = {name: values[slot] for slot, name in plan.kept_values}
    kept_grads = {name: grads[slot] for slot, name in plan.kept_grads}
    return finish(plan, kept_values, kept_grads, order, flows, external, shapes, forward_times, backward_times)


def _backward(plan, values, shapes, grads, residuals, order, flows, check, ext_ids, backward_times) -> None:
    names = plan.nodes
    dtypes = plan.dtypes
    owned = [False] * len(grads)
    perf = time.perf_counter
    for ins in plan.backward:
        g = grads[ins.slot]
        if g is None:
            continue
        order.append(ins.name)
        op = ins.op
        if op is None:
            continue
        if ins.reads_inputs:
            arrays = [values[i] for i in ins.inputs]
        else:
            arrays = [placeholder(shapes[i], dtypes[i]) for i in ins.inputs]
        kwargs = ins.kwargs
        wants = op.vjp_wants
        if wants:
            kwargs = dict(kwargs)
            if "out" in wants:
                kwargs["out"] = values[ins.slot] if ins.reads_out else None
            if "res" in wants:
                kwargs["res"] = residuals.pop(ins.slot, None)
        if ins.guard:
            g = freeze(g, ext_ids)
        if backward_times is not None:
            t0 = perf()
        try:
            gs = op.vjp_rule(g, *arrays, **kwargs)
        except DagradError:
            raise
        except Exception as exc:
            raise failed(ins.name, op, "backward (VJP)", arrays, exc) from exc
        if backward_times is not None:
            backward_times[ins.name] = perf() - t0
        if type(gs) is not tuple or len(gs) != len(ins.inputs):
            gs = as_grad_tuple(gs, ins)
        for t in ins.targets:
            gi = gs[t.position]
            if gi is None:
                continue
            i = t.slot
            if type(gi) is not ndarray or gi.shape != shapes[i] or gi.dtype is not dtypes[i]:
                gi = fix_gradient(ins, t.position, names[i], gi, shapes[i], dtypes[i], dtypes[ins.slot])
            if check:
                check_finite(gi, ins.name, op, "backward", arrays, into=names[i],
                             placeholders=() if ins.reads_inputs else tuple(range(len(arrays))))
            if flows is not None:
                edge = (names[i], ins.name)
                if t.shared:
                    flows[edge] = gi if flows.get(edge) is None else flows[edge] + gi
                else:
                    flows[edge] = None  # the input's whole gradient flowed along this edge
            acc = grads[i]
            if acc is None:
                grads[i] = gi
            elif owned[i]:
                acc += gi
            else:
                # A fresh array we own and may add into in place; numpy returns a scalar for 0-d sums.
                total = acc + gi
                grads[i] = total if type(total) is ndarray else np.asarray(total)
                owned[i] = True
        for s in ins.free_values:
            values[s] = None
        if ins.free_grad:
            grads[ins.slot] = None
