"""The interpreter loop: runs a plan's instructions one by one over slot lists.

It runs a plan's first ``CODEGEN_AFTER_RUNS`` runs, checked (``check=True``)
and profiled runs, and plans too large to generate code for. Per node it does what the generated code does (``codegen.py``), through
the same helpers in ``runtime.py``, so both compute the same thing. The
instructions are first flattened into tuples (``_forward_rows`` and
``_backward_rows``, made once per program), because unpacking a tuple is much
cheaper than a dozen attribute lookups per node in a loop that may visit a
million nodes.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np

from ..errors import DagradError
from ..shapes import fits
from .anomalies import check_finite
from .runtime import (as_grad_tuple, external_identities, failed, finish, fix_gradient, fix_output, freeze, placeholder,
                      seed, stored_values)

__all__ = ["run"]

ndarray = np.ndarray


def _forward_rows(plan: Any) -> list:
    rows = []
    for ins in plan.forward:
        exact = ins.shape if ins.ndim >= 0 and ins.lead == 0 else None     # a fully known shape: one compare
        rows.append((ins, ins.slot, ins.fn, ins.inputs, ins.attrs, ins.dtype, exact, ins.ndim, ins.lead,
                     ins.tail, ins.op.residuals, ins.keep_residuals, ins.guard, ins.free))
    return rows


def _backward_rows(plan: Any) -> list:
    rows = []
    for ins in plan.backward:
        op = ins.op
        wants = op.vjp_wants if op is not None else frozenset()
        rows.append((ins, ins.slot, ins.name, op, op.vjp_rule if op is not None else None, ins.inputs,
                     ins.reads_inputs, ins.reads_out, "out" in wants, "res" in wants, ins.kwargs, ins.guard,
                     ins.targets, ins.free_values, ins.free_grad))
    return rows


def run(plan: Any, fed: list, cotangent: Optional[np.ndarray], check: bool, profile: bool):
    """Run ``plan`` on validated feeds; return its ``Result``."""
    program = plan.program
    rows = program.loop_rows
    if rows is None:
        rows = program.loop_rows = (_forward_rows(program), _backward_rows(program))
    n = len(plan.nodes)
    values: list = [None] * n
    shapes: list = [None] * n
    stored = stored_values(plan)
    ext_ids = external_identities(fed + stored)
    for f, array in zip(plan.feeds, fed):
        values[f.slot] = freeze(array, ext_ids) if f.guard else array
        shapes[f.slot] = array.shape
    for s, array in zip(plan.stored, stored):
        values[s.slot] = freeze(array, ext_ids) if s.guard else array
        shapes[s.slot] = array.shape

    perf = time.perf_counter
    forward_times: Optional[dict] = {} if profile else None
    residuals: dict = {}
    get = values.__getitem__
    for (ins, slot, forward, slots, attrs, dtype, exact, ndim, lead, tail, has_res, keep_res, guard,
         free) in rows[0]:
        args = tuple(map(get, slots))
        if profile:
            t0 = perf()
        try:
            out = forward(*args, **attrs)
            if has_res:  # unpacked here, as the generated code does on the forward's line: same error
                out, res = out
        except DagradError:
            raise
        except Exception as exc:
            raise failed(ins.name, ins.op, "forward", args, exc) from exc
        if profile:
            forward_times[ins.name] = perf() - t0
        if has_res and keep_res:
            residuals[slot] = res
        if out.__class__ is not ndarray or out.dtype is not dtype or (
                out.shape != exact if exact is not None else ndim >= 0 and (
                    len(out.shape) != ndim or (out.shape[lead:] != tail if tail is not None
                                               else not fits(out.shape, ins.shape)))):
            out = fix_output(ins, out)
        if guard:
            out = freeze(out, ext_ids)
        if check:
            check_finite(out, ins.name, ins.op, "forward", args)
        values[slot] = out
        shapes[slot] = out.shape
        for s in free:
            values[s] = None

    order: list = []
    grads: list = [None] * n
    flows: Optional[dict] = {} if plan.keep == "all" else None
    backward_times: Optional[dict] = {} if profile else None
    if plan.backward:
        loss_slot = plan.backward[0].slot
        grads[loss_slot] = seed(plan.loss, values[loss_slot], cotangent)
        _backward(plan, rows[1], values, shapes, grads, residuals, order, flows, check, ext_ids, backward_times)

    kept_values = {name: values[slot] for slot, name in plan.kept_values}
    kept_grads = {name: grads[slot] for slot, name in plan.kept_grads}
    return finish(plan, kept_values, kept_grads, order, flows, ext_ids, shapes, forward_times, backward_times)


def _backward(plan, rows, values, shapes, grads, residuals, order, flows, check, ext_ids, backward_times) -> None:
    names = plan.nodes
    dtypes = plan.dtypes
    owned = [False] * len(grads)
    perf = time.perf_counter
    append = order.append
    get = values.__getitem__
    for (ins, slot, name, op, rule, slots, reads_inputs, reads_out, wants_out, wants_res, kwargs, guard,
         targets, free_values, free_grad) in rows:
        g = grads[slot]
        if g is None:
            continue
        append(name)
        if op is None:
            continue
        if reads_inputs:
            arrays = tuple(map(get, slots))
        else:
            arrays = tuple([placeholder(shapes[i], dtypes[i]) for i in slots])
        if wants_out or wants_res:
            kwargs = dict(kwargs)
            if wants_out:
                kwargs["out"] = values[slot] if reads_out else None
            if wants_res:
                kwargs["res"] = residuals.pop(slot, None)
        if guard:
            g = freeze(g, ext_ids)
        if backward_times is not None:
            t0 = perf()
        try:
            gs = rule(g, *arrays, **kwargs)
        except DagradError:
            raise
        except Exception as exc:
            raise failed(name, op, "backward (VJP)", arrays, exc) from exc
        if backward_times is not None:
            backward_times[name] = perf() - t0
        if gs.__class__ is not tuple or len(gs) != len(slots):
            gs = as_grad_tuple(gs, ins)
        for t in targets:
            gi = gs[t.position]
            if gi is None:
                continue
            i = t.slot
            if gi.__class__ is not ndarray or gi.shape != shapes[i] or gi.dtype is not dtypes[i]:
                gi = fix_gradient(ins, t.position, names[i], gi, shapes[i], dtypes[i], dtypes[slot])
            if check:
                check_finite(gi, name, op, "backward", arrays, into=names[i],
                             placeholders=() if reads_inputs else tuple(range(len(arrays))))
            if flows is not None:
                edge = (names[i], name)
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
                grads[i] = total if total.__class__ is ndarray else np.asarray(total)
                owned[i] = True
        for s in free_values:
            values[s] = None
        if free_grad:
            grads[slot] = None
