"""``Plan``: a compiled, reusable program for one request on one version of a graph.

A plan pairs its graph with a ``Program`` (see ``program.py``): the slots it
feeds and reads, its forward and backward instructions with what each frees,
and what the result keeps. ``print(plan)`` shows the Python that runs it.

Running a plan picks an executor. A plan's first ``CODEGEN_AFTER_RUNS`` runs,
checked and profiled runs and any run of a plan past ``CODEGEN_MAX_INSTRUCTIONS``
go through the interpreter loop (``loop.py``); later runs execute straight-line
Python generated for the plan (``codegen.py``), which spends less time per node
on bookkeeping than any loop but costs 150-230 us per node to compile, once.
Both compute exactly what the reference interpreter (``reference.py``)
defines, which the tests check.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any, Optional

from ..errors import FeedError, GraphError
from ..plugins import registry
from . import codegen, loop
from .anomalies import checking
from .program import Program
from .runtime import coerce_cotangent, coerce_feed

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..result import Result

__all__ = ["Plan", "CODEGEN_AFTER_RUNS", "CODEGEN_MAX_INSTRUCTIONS"]

CODEGEN_AFTER_RUNS = 100
"""A plan runs in the interpreter loop until it has run this many times, then as generated code.

Generating and compiling the code costs about 150-190 us per node (Python's
``compile``, about 12 us per line), and each run of the code then saves about
1-1.4 us per node over the loop: it pays for itself after 110-175 runs (measured
on chains of 30 to 2,000 nodes). Switching after 100 runs, about when the loop
has cost what compiling will, keeps a plan run only a few times from paying
for code it never repays, and costs a long training run at most twice the
best choice made in hindsight, and in practice nothing measurable.
"""

CODEGEN_MAX_INSTRUCTIONS = 250_000
"""Plans with more instructions always run in the interpreter loop: the memory generated code holds.

Generated code pays at any size measured: on the chain workload at 100,000
nodes (200,000 instructions, written as functions of
``codegen.INSTRUCTIONS_PER_PART``) it runs at about 2.0 us per node against
the loop's 3.1-3.3. But the compiled code holds about 2 KB per node (its
bytecode, line and exception tables) for as long as the plan lives, and
writing and compiling it costs about 200 us per node: at this cap, about 250 MB
and 25 seconds, once, after the loop has spent longer than that. Past it, a plan stays in
the loop. It is read at every run, so it can be raised to trade memory for speed: at
3,000,000 a million-node chain ran as generated code at 2.5x numpy instead of 3.4x,
after 202 s of writing and compiling, in a process grown from 2.7 to 6.2 GiB.
"""


EXECUTORS = ("auto", "loop", "codegen")


def _generate(program: Program) -> bool:
    """Whether this run uses generated code: after ``CODEGEN_AFTER_RUNS`` runs, unless the plan is huge.

    ``DAGRAD_EXECUTOR=loop`` or ``=codegen`` forces one executor for every plan
    that is not huge (to debug, or to run a test suite through each).
    """
    if len(program.forward) + len(program.backward) > CODEGEN_MAX_INSTRUCTIONS:
        return False
    forced = os.environ.get("DAGRAD_EXECUTOR", "auto")
    if forced == "loop":
        return False
    return forced == "codegen" or program.runs > CODEGEN_AFTER_RUNS


def _shown(name: str, doc: str) -> property:
    """A read-only attribute of the plan that is its program's field ``name``."""
    return property(lambda plan: getattr(plan.program, name), doc=doc)


class Plan:
    """A compiled program: forward (and backward) instructions over slots, one slot per node.

    Attributes
    ----------
    graph : Graph
        The graph the plan runs on (a plan keeps it alive).
    program : dagrad.scheduler.program.Program
        What was compiled; the attributes below are its fields.
    nodes : tuple[str]
        Every node the plan reads or computes, in forward (topological) order;
        ``nodes[slot]`` names a slot.
    dtypes : tuple[numpy.dtype]
        Each slot's dtype (values are checked to have it, so it is exact).
    outputs, loss, wrt, keep
        What was asked for: the values computed, the loss differentiated, the
        nodes gradients are taken with respect to, and what the result keeps.
    feeds, stored, forward, backward : tuple
        The program (see ``dagrad.scheduler.program``).
    kept_values, kept_grads : tuple
        ``(slot, name)`` of what the ``Result`` holds.
    runs : int
        How many times the program has run (it switches to generated code
        after ``CODEGEN_AFTER_RUNS``).

    A plan belongs to one version of its graph: if the graph changes (a node
    is added, ``rewire``...) or plugins are reloaded, the next ``run``
    recompiles the same request first, so a plan never runs old wiring.

    Why a plan is two objects: the graph caches what it compiled, and a plan
    must keep its graph alive (``make().run()`` works after the function that
    built the graph returns). If the graph cached ``Plan`` objects, every
    compiled graph would sit in a reference cycle, freed only by a full
    garbage collection, which then also rescans every dead graph. So the
    graph caches the ``Program`` (which never refers to the graph) strongly
    and the ``Plan`` around it only weakly: ``g.compile`` returns the same
    plan while someone holds it, otherwise a new plan around the same
    program, whose run count and generated code carry over.
    """

    __slots__ = ("graph", "program", "__weakref__")

    def __init__(self, graph: "Graph", program: Program):
        self.graph = graph
        self.program = program

    version = _shown("version", "The graph version the program was compiled from (``Graph.version``).")
    generation = _shown("generation", "The plugin registry generation the program was compiled against.")
    request = _shown("request", "``(outputs, loss, wrt, keep)`` as asked: what a recompile compiles again.")
    nodes = _shown("nodes", "Every node the plan reads or computes, in forward (topological) order.")
    dtypes = _shown("dtypes", "Each slot's dtype.")
    outputs = _shown("outputs", "The nodes whose values were asked for.")
    loss = _shown("loss", "The loss differentiated, or None for a forward plan.")
    wrt = _shown("wrt", "The nodes gradients are taken with respect to.")
    keep = _shown("keep", "What the result keeps: ``'all'`` or ``'wrt'``.")
    feeds = _shown("feeds", "``Feed`` instructions: the inputs the plan needs.")
    stored = _shown("stored", "``Stored`` instructions: the params and consts the plan reads.")
    feedable = _shown("feedable", "Names of every input of the graph (a feed for another input is refused).")
    forward = _shown("forward", "``Forward`` instructions, in topological order.")
    backward = _shown("backward", "``Backward`` instructions, the loss first.")
    kept_values = _shown("kept_values", "``(slot, name)`` of each value the result keeps.")
    kept_grads = _shown("kept_grads", "``(slot, name)`` of each gradient the result keeps.")

    @property
    def runs(self) -> int:
        """How many times the program has run (after ``CODEGEN_AFTER_RUNS`` it runs as generated code)."""
        return self.program.runs

    @runs.setter
    def runs(self, value: int) -> None:
        self.program.runs = value

    # ------------------------------------------------------------------ running --

    def run(self, feeds: Optional[dict] = None, *, check: Optional[bool] = None, cotangent: Any = None,
            profile: bool = False) -> "Result":
        """Run forward (and backward, if the plan has a loss) and return a ``Result``.

        Parameters
        ----------
        feeds
            ``{input name or Tensor: array}`` for every input the plan needs.
        check
            Check every value and gradient for NaN/Inf (``AnomalyError``);
            default: ``dagrad.check_anomalies``'s setting in this context.
        cotangent
            The gradient to start backpropagation from, with the loss's shape:
            needed when the loss is not a scalar (a vector-Jacobian product).
        profile
            Time every node's forward and VJP (``Result.forward_times`` and
            ``backward_times``); off by default, since timing costs more than a
            small op.
        """
        program = self.program
        if program.version != self.graph.version or program.generation != registry().generation:
            program = self._recompile()
        check = checking() if check is None else bool(check)
        fed = self._fed(program, feeds)
        seed = self._seed(program, cotangent)
        program.runs += 1
        if profile or check or not _generate(program):
            return loop.run(self, fed, seed, check, profile)
        if program.code is None:
            program.code = codegen.build(program)
        return codegen.run(self, program.code, fed, seed)

    def _recompile(self) -> Program:
        """Run from now on the program the same request compiles to on the graph as it is now."""
        outputs, loss, wrt, keep = self.program.request
        self.program = self.graph.compile(list(outputs), loss=loss, wrt=wrt, keep=keep).program
        return self.program

    def _fed(self, program: Program, feeds: Optional[dict]) -> list:
        """The feeds, validated and converted, in the order of ``program.feeds``; ``FeedError`` names a bad one."""
        given: dict = {}
        graph = self.graph
        for key, value in (feeds or {}).items():
            name = graph._name(key) if not isinstance(key, str) else key
            if name not in program.feedable:
                raise FeedError(self._unexpected(name))
            given[name] = value
        fed = []
        for f in program.feeds:
            if f.name not in given:
                raise FeedError(
                    f"input {f.name!r} needs a feed: it is required for {', '.join(map(repr, program.outputs))}"
                )
            fed.append(coerce_feed(f.name, given[f.name], f.shape, f.dtype))
        return fed

    def _unexpected(self, name: str) -> str:
        if name in self.graph:
            kind = self.graph.node(name).kind
            return f"feed {name!r} is not an input: it is a {kind} (change params with Graph.set_value)"
        inputs = ", ".join(map(repr, self.feedable)) or "none"
        return f"feed {name!r} matches no input of graph {self.graph.name!r} (inputs: {inputs})"

    def _seed(self, program: Program, cotangent: Any) -> Any:
        """The loss's starting gradient: the cotangent, checked, or None for "ones of the loss's shape"."""
        if program.loss is None:
            if cotangent is not None:
                raise GraphError("a cotangent needs a loss to start backpropagation from; this plan has none")
            return None
        if cotangent is None:
            return None
        return coerce_cotangent(program.loss, cotangent, self.graph.node(program.loss).dtype)

    # ---------------------------------------------------------------- showing --

    @property
    def order(self) -> list:
        """Deprecated alias of ``nodes`` (``Result.order`` is the *backward* order; this one runs forward)."""
        warnings.warn("Plan.order is deprecated; use Plan.nodes", DeprecationWarning, stacklevel=2)
        return self.nodes

    @property
    def source(self) -> str:
        """The Python source generated for this plan: its printed form."""
        return codegen.source(self.program)

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        kind = f"backward from {self.loss!r}" if self.loss else "forward"
        return (f"<Plan {kind}: {len(self.forward)} forward and {len(self.backward)} backward instructions, "
                f"keep={self.keep!r}>")


