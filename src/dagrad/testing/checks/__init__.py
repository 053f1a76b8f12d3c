"""``check_op`` and ``check_plugin``: everything that can be checked about an op, with explanations.

For every case (the op's samples, plus generated broadcasting and size-0/1
variants for elementwise ops) an op must: run forward; produce the shape its
shape rule promises and the dtype its dtype rule promises; keep its shape rule
honest about unknown sizes (with any one input size unknown, every size the
rule still claims must be the one any fed size gives); return one gradient per
input from its VJP, each of a shape the engine can sum back to its input, and
read only what its ``saves=`` keeps; match central differences in float64; run
on float32 inputs through a graph, keep float32 values and gradients; run on
mixed float32 and float64 inputs, give each input a gradient of its own dtype;
and, if its dtype rule makes it a float op of integer inputs, compute in that
float dtype. An op with a graph VJP must also agree with its numpy VJP through
``dagrad.grad`` (with static and with unknown sizes), and its second
derivatives must match central differences of its gradient; an op without one
gets a note, not a failure.

Ops whose output is not floating point (comparisons, integer results) or that
declare no VJP get every check but the gradient ones; the report says which
cases skipped gradients and why.

The package's modules, one job each: ``cases`` makes the cases, ``rules``
checks what the op declares, ``numerics`` checks its numbers, ``second_order``
checks its graph VJP, ``report`` says what failed, and ``runner`` runs them all.
"""

from __future__ import annotations

from .report import OpCheckFailure, OpCheckReport
from .runner import check_op, check_plugin

__all__ = ["OpCheckFailure", "OpCheckReport", "check_op", "check_plugin"]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
