"""The reference interpreter: what running a plan means, in a screenful.

Dicts by node name, no slots, no freeing, no placeholders, no checks: the
plain definition that the fast executors (``loop.py``, ``codegen.py``) must
agree with exactly, which the tests check on random graphs. Reading it is the
quickest way to learn what a plan computes.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .runtime import sum_to

__all__ = ["run_reference"]


def run_reference(plan: Any, feeds: Optional[dict] = None, cotangent: Any = None) -> tuple[dict, dict]:
    """Values and gradients of every node ``plan`` computes, by name."""
    value = {s.name: plan.graph.value(s.name) for s in plan.stored}
    value.update({f.name: np.asarray((feeds or {})[f.name], f.dtype) for f in plan.feeds})
    res = {}
    for ins in plan.forward:                                    # topological order
        out = ins.op.forward(*[value[plan.nodes[i]] for i in ins.inputs], **ins.attrs)
        if ins.op.residuals:
            out, res[ins.name] = out
        value[ins.name] = np.asarray(out)
    grad = {}
    if plan.backward:                                           # no wrt on the loss's path: no gradients
        grad[plan.loss] = np.ones((), value[plan.loss].dtype) if cotangent is None else np.asarray(cotangent)
    for ins in plan.backward:                                   # reverse topological order
        if ins.op is None or ins.name not in grad:
            continue
        inputs = [value[plan.nodes[i]] for i in ins.inputs]
        gs = ins.op.call_vjp(grad[ins.name], inputs, out=value[ins.name], res=res.get(ins.name),
                             attrs=ins.op.bind_attrs({k: v for k, v in ins.kwargs.items() if k != "needs"}),
                             needs=tuple(any(t.position == j for t in ins.targets) for j in range(len(inputs))))
        for t in ins.targets:                                   # fan-out accumulates
            gi = gs[t.position]
            if gi is not None:
                x = value[plan.nodes[t.slot]]
                gi = sum_to(np.asarray(gi), x.shape).astype(x.dtype)  # broadcasting undone, once
                name = plan.nodes[t.slot]
                grad[name] = grad[name] + gi if name in grad else gi
    return value, grad
