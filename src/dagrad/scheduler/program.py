"""What compiling produces: a ``Program`` of instruction records that the executors read and the printer shows.

A plan is a straight-line program over numbered slots, one slot per node:
``Feed`` and ``Stored`` fill the slots of inputs and of params and consts,
each ``Forward`` computes one op node's value, and each ``Backward`` finishes
one node's gradient and, for an op node, calls its VJP rule to pass gradients
on to its inputs. ``free`` lists say which slots are dead after an
instruction, so values and gradients are dropped as soon as nothing reads them.

A ``Program`` holds the instructions with what was asked for and what running
has built (the run count, the loop's flattened rows, the generated code). It
never refers to the graph: the graph caches programs, and the ``Plan`` a user
holds pairs a graph with one (see ``plan.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

import numpy as np

__all__ = ["Feed", "Stored", "Forward", "Target", "Backward", "Program"]


@dataclass(slots=True)
class Feed:
    """An input node's slot, filled from the run's feeds."""

    slot: int
    name: str
    shape: Optional[tuple]
    dtype: np.dtype
    guard: bool = False   # an op that does not ship with dagrad reads it: hand over a read-only view


@dataclass(slots=True)
class Stored:
    """A param's or const's slot, filled from the graph's stored value at the start of each run."""

    slot: int
    name: str
    kind: str             # "param" or "const"
    shape: tuple          # declared shape (the stored value has it)
    guard: bool = False


@dataclass(slots=True)
class Forward:
    """Compute one op node: ``slot = op.forward(*inputs, **attrs)``."""

    slot: int
    name: str
    op: Any
    fn: Any                       # the forward to call (float_forward if no input needs a cast, else forward_for)
    inputs: tuple                 # slots of the arguments, in order (a slot may repeat: x * x)
    attrs: dict
    shape: Optional[tuple]        # declared output shape (None sizes match anything); None: no shape rule
    dtype: np.dtype               # declared output dtype
    ndim: int = -1                # fast shape check: len(shape) == ndim and shape[lead:] == tail
    lead: int = 0                 # (-1: no shape rule; tail None: sizes unknown in the middle, use fits())
    tail: Optional[tuple] = ()
    keep_residuals: bool = False  # the forward returns (out, residuals) and a VJP will read them
    guard: bool = False           # hand this op read-only arrays (it does not ship with dagrad)
    free: tuple = ()              # slots whose values are dead after this instruction


class Target(NamedTuple):
    """An input of a VJP that receives a gradient: ``position`` in the op's inputs, the input's ``slot``.

    A named tuple (not a dataclass): a plan holds one per edge, and tuples are
    the cheapest records Python makes and the garbage collector skips.
    """

    position: int
    slot: int
    shared: bool   # more than one instruction (or input position) contributes to it


@dataclass(slots=True)
class Backward:
    """Finish the gradient of ``slot``; for an op node whose inputs need gradients, run its VJP rule."""

    slot: int
    name: str
    op: Any = None                # None: the node's gradient is only finished here (a param, or nothing flows on)
    inputs: tuple = ()
    reads_inputs: bool = False    # the op saves its inputs (otherwise the VJP sees placeholders)
    reads_out: bool = False
    targets: tuple = ()           # Target per input that gets a gradient
    kwargs: Optional[dict] = None # attrs, and needs= if the rule declares it
    guard: bool = False
    free_values: tuple = ()       # value slots dead after this instruction
    free_grad: bool = True        # this node's gradient is not kept in the result


@dataclass(eq=False)
class Program:
    """One request compiled on one version of a graph, and what running it has built since.

    The fields are described on ``Plan``, which shows them. ``runs``, ``code``
    (``codegen.Code``, once generated) and ``loop_rows`` (the loop's flattened
    instructions, ``loop.py``) belong here, not to a ``Plan`` object: a graph
    hands out a new ``Plan`` around its cached program whenever nobody holds
    the old one, and the run count and generated code must carry over.

    Nothing here refers to the graph (stored values are read through the
    ``Plan`` at run time), so the graph may cache programs without making a
    reference cycle.
    """

    version: int
    generation: int
    request: tuple
    nodes: tuple = field(repr=False)
    dtypes: tuple = field(repr=False)
    outputs: tuple
    loss: Optional[str]
    wrt: tuple
    keep: str
    feeds: tuple = field(repr=False)
    stored: tuple = field(repr=False)
    feedable: tuple = field(repr=False)
    forward: tuple = field(repr=False)
    backward: tuple = field(repr=False)
    kept_values: tuple = field(repr=False)
    kept_grads: tuple = field(repr=False)
    runs: int = 0
    code: Any = field(default=None, repr=False)
    loop_rows: Optional[tuple] = field(default=None, repr=False)
