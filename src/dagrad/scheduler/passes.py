"""Compiling a graph into a ``Program`` (run through a ``Plan``), as a sequence of named passes that each return data.

1. ``_request``: check the outputs, loss, wrt and keep asked for.
2. ``_needed_in_insertion_order`` (or ``_reachable`` and ``_order`` after a rewire): prune to the
   ancestors of the outputs, in topological order, and number every node's inputs by slot.
3. ``_resolve``: find every node's op, once.
4. ``_backward_set``: the nodes on a path from ``wrt`` to the loss, with floating-point values.
5. ``_forward_program`` and ``_backward_program``: the instructions.
6. ``_kept``: what the result keeps, by ``keep``.
7. ``_liveness``: one reverse sweep over forward-then-backward instructions frees every
   value and gradient right after its last reader.

networkx is used only here, while compiling; running a plan never touches it.
"""

from __future__ import annotations

import contextlib
import gc
from itertools import compress, islice
from typing import TYPE_CHECKING, Optional

import networkx as nx

from ..errors import GraphError
from ..node import SOURCE_KINDS, topological_order
from ..plugins import BUILTINS, registry
from .plan import Plan
from .program import Backward, Feed, Forward, Program, Stored, Target

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph

__all__ = ["compile", "compile_program"]

KEEPS = ("all", "wrt")
_NO_ATTRS: dict = {}  # the attrs of every instruction whose node has none; never changed


def compile(graph: "Graph", outputs: tuple, *, loss: Optional[str] = None, wrt: Optional[tuple] = None,
            keep: str = "all") -> Plan:
    """Compile ``graph`` into a ``Plan`` computing ``outputs`` and, given ``loss``, gradients.

    Prefer ``Graph.compile``, which caches plans per graph version.
    """
    return Plan(graph, compile_program(graph, outputs, loss=loss, wrt=wrt, keep=keep))


def compile_program(graph: "Graph", outputs: tuple, *, loss: Optional[str] = None, wrt: Optional[tuple] = None,
                    keep: str = "all") -> Program:
    """The ``Program`` that ``compile`` wraps: the passes, with nothing that refers back to ``graph``."""
    with _collector_paused():
        G, node_data = _graph_view(graph)
        outputs, wrt_asked = _request(graph, tuple(outputs), loss, wrt, keep)
        if graph._insertion_is_topological:
            names, nodes, slot, inputs = _needed_in_insertion_order(node_data, outputs)
        else:
            names = _order(graph, G, _reachable(G._pred, outputs), node_data)
            nodes = [node_data[name]["node"] for name in names]
            slot = dict(zip(names, range(len(names))))
            lookup = slot.__getitem__
            inputs = [tuple(map(lookup, rec.inputs)) for rec in nodes]
        ops = _resolve(nodes)
        floating = [rec.dtype.kind in "fc" for rec in nodes]
        # With the loss as the only output, every needed node is one of its ancestors.
        in_bset, wrt_names = _backward_set(nodes, inputs, slot, floating, loss, wrt_asked, outputs == (loss,))
        forward, feeds, stored = _forward_program(nodes, ops, inputs, floating)
        backward = _backward_program(names, nodes, ops, inputs, in_bset, slot, loss, wrt_names)
        kept_values, kept_grads = _kept(names, slot, outputs, in_bset, wrt_names, keep)
        _liveness(forward, backward, None if keep == "all" else {s for s, _ in kept_values},
                  None if keep == "all" else {s for s, _ in kept_grads}, len(names))
        _guards(forward, backward, stored, feeds, ops, inputs)
        return Program(
            version=graph.version,
            generation=registry().generation,
            request=(tuple(outputs), loss, wrt, keep),
            nodes=tuple(names),   # a tuple: plan.nodes hands it out, and a caller's edit would rename slots
            dtypes=tuple([rec.dtype for rec in nodes]),
            outputs=outputs,
            loss=loss,
            wrt=wrt_names,
            keep=keep,
            feeds=tuple(feeds),
            stored=tuple(stored),
            feedable=tuple(graph.inputs),
            forward=tuple(forward),
            backward=tuple(backward),
            kept_values=tuple(kept_values),
            kept_grads=tuple(kept_grads),
        )


@contextlib.contextmanager
def _collector_paused():
    """Pause the cyclic garbage collector while compiling.

    Compiling allocates a few small objects per node and frees none, so for a
    large graph the collector would rescan the whole graph over and over
    (compiling a million-node chain took twice as long with it on).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _graph_view(graph: "Graph") -> tuple:
    """The networkx DiGraph and its node-attribute dict (``name -> {"node": record}``), read directly.

    This is the scheduler's one window into the graph's storage: networkx's own
    adjacency dicts are walked without its generic views, which matters for
    graphs of a million nodes.
    """
    G = graph._g
    return G, G._node


def _request(graph, outputs: tuple, loss: Optional[str], wrt, keep: str) -> tuple:
    if keep not in KEEPS:
        raise GraphError(f"keep must be 'all' or 'wrt', not {keep!r}")
    for name in outputs:
        graph.node(name)  # raises, with suggestions, for an unknown name
    if loss is not None:
        loss_node = graph.node(loss)
        if loss_node.dtype.kind not in "fc":
            raise GraphError(f"loss {loss!r} has dtype {loss_node.dtype}; gradients need a floating-point loss")
        if loss not in outputs:
            outputs = (loss, *outputs)
    if wrt is not None:
        for w in wrt:
            node = graph.node(w)
            if node.dtype.kind not in "fc":
                raise GraphError(f"cannot take gradients with respect to {w!r}: its dtype is {node.dtype}")
    return tuple(dict.fromkeys(outputs)), wrt


def _reachable(adjacency: dict, sources) -> set:
    """Nodes reachable from ``sources`` through ``adjacency`` (sources included), without recursion."""
    seen = set(sources)
    frontier = list(seen)
    while frontier:
        nxt = []
        for n in frontier:
            for m in adjacency[n]:
                if m not in seen:
                    seen.add(m)
                    nxt.append(m)
        frontier = nxt
    return seen


def _needed_in_insertion_order(node_data: dict, outputs: tuple) -> tuple[list, list, dict, list]:
    """The outputs' ancestors (names, records, name -> slot, input slots), in insertion order.

    For a graph whose insertion order is topological (no rewire made a node
    read a later one). One sweep down the slots from the last output marks the
    ancestors in a byte array, numbering the inputs of each node it reaches:
    hashing a million names into a set, as a walk over names does, cost more
    than everything else this pass does. Nodes after the last output and nodes
    the sweep does not reach are never numbered, so a plan for a few early
    nodes of a large graph costs little more than the name -> slot dict. When
    some nodes are not needed, the rest are numbered again.
    """
    names = list(node_data)
    slot = dict(zip(names, range(len(names))))
    lookup = slot.__getitem__
    top = max(map(lookup, outputs), default=-1) + 1   # no later node is an ancestor of an output
    nodes = [data["node"] for data in islice(node_data.values(), top)]
    inputs: list = [()] * top
    reached = bytearray(top)
    for name in outputs:
        reached[slot[name]] = 1
    for s in range(top - 1, -1, -1):
        if reached[s]:
            ins = inputs[s] = tuple(map(lookup, nodes[s].inputs))
            for i in ins:
                reached[i] = 1
    if top == len(names) and 0 not in reached:
        return names, nodes, slot, inputs
    kept = [s for s, r in enumerate(reached) if r]
    renumbered = [-1] * top
    for k, s in enumerate(kept):
        renumbered[s] = k
    at = renumbered.__getitem__
    names = [names[s] for s in kept]
    return (names, [nodes[s] for s in kept], dict(zip(names, range(len(names)))),
            [tuple(map(at, inputs[s])) for s in kept])


def _order(graph, G, needed: set, node_data: dict) -> list:
    """The ``needed`` nodes in a deterministic topological order (insertion order is not one: a rewire)."""
    records = {n: node_data[n]["node"] for n in needed}
    try:
        return topological_order(G, needed, records)
    except nx.NetworkXUnfeasible:
        graph.check_acyclic()  # raises CycleError naming the cycle
        raise


def _resolve(nodes: list) -> list:
    """Every node's ``Op`` (None for sources).

    The arity is checked again here although ``Graph.apply`` checked it: the
    plugins may have been reloaded since the graph was built.
    """
    reg = registry()
    ops: list = [None] * len(nodes)
    resolved: dict = dict.fromkeys(SOURCE_KINDS)  # op name -> Op, looked up once per op; None for sources
    for s, rec in enumerate(nodes):
        op_name = rec.op
        try:
            op = resolved[op_name]
        except KeyError:
            op = resolved[op_name] = reg.op(op_name)
        if op is None:
            continue
        if op.arity is not None and len(rec.inputs) != op.arity:
            raise GraphError(
                f"node {rec.name!r} (op {op_name!r} from {op.plugin}) takes {op.arity} input(s), "
                f"has {len(rec.inputs)}"
            )
        ops[s] = op
    return ops


def _backward_set(nodes: list, inputs: list, slot: dict, floating: list, loss: Optional[str], wrt,
                  upstream_is_all: bool) -> tuple[list, tuple]:
    """Which slots get gradients (on a path from ``wrt`` to the loss, floating point), and the wrt names.

    Slots are in topological order, so one sweep down the slots finds the
    descendants of ``wrt`` and one sweep up finds the loss's ancestors, over
    slot-indexed byte arrays rather than sets of names (which cost a hash
    lookup per node, felt on a million-node graph). ``upstream_is_all`` says
    that every slot is an ancestor of the loss (the plan's only output).
    """
    n = len(nodes)
    if loss is None:
        return [False] * n, ()
    if upstream_is_all:
        upstream = None
    else:
        upstream = bytearray(n)
        upstream[slot[loss]] = 1
        for s in range(n - 1, -1, -1):
            if upstream[s]:
                for i in inputs[s]:
                    upstream[i] = 1
    if wrt is None:
        # The trainable params the loss depends on: a param that only another output reads is no
        # error to leave out (asking for it by name is).
        wrt_names = tuple([rec.name for s, rec in enumerate(nodes)
                           if rec.op == "param" and rec.trainable and (upstream is None or upstream[s])])
    else:
        wrt_names = tuple(wrt)
    for w in wrt_names:
        if w not in slot or (upstream is not None and not upstream[slot[w]]):
            raise GraphError(
                f"cannot take gradients with respect to {w!r}: it is not an ancestor of the loss {loss!r}"
            )
    downstream = bytearray(n)
    for w in wrt_names:
        downstream[slot[w]] = 1
    reached = downstream.__getitem__
    for s, ins in enumerate(inputs):
        if ins and not downstream[s] and any(map(reached, ins)):
            downstream[s] = 1
    if upstream is None:
        return [f and d == 1 for f, d in zip(floating, downstream)], wrt_names
    return [f and d == 1 and u == 1 for f, d, u in zip(floating, downstream, upstream)], wrt_names


def _forward_program(nodes: list, ops: list, inputs: list, floating: list) -> tuple[list, list, list]:
    forward, feeds, stored = [], [], []
    append = forward.append
    patterns: dict = {}  # a network has few distinct shapes
    is_floating = floating.__getitem__
    for s, (rec, op, ins) in enumerate(zip(nodes, ops, inputs)):
        if op is not None:
            shape = rec.shape
            pattern = patterns.get(shape)
            if pattern is None:
                pattern = patterns[shape] = shape_pattern(shape)
            fn = op.forward
            if op.float_inputs:
                # Nothing to cast: the forward itself; else a forward casting to the node's dtype,
                # known now, not found by the dtype rule at every call.
                fn = op.float_forward if all(map(is_floating, ins)) else op.forward_for(rec.dtype)
            # A plain dict (the loop passes it as **attrs: a dict subclass would be copied at every call).
            attrs = dict(rec.attrs) if rec.attrs else _NO_ATTRS
            append(Forward(s, rec.name, op, fn, ins, attrs, shape, rec.dtype, *pattern))
        elif rec.op == "input":
            feeds.append(Feed(s, rec.name, rec.shape, rec.dtype))
        else:
            stored.append(Stored(s, rec.name, rec.op, rec.shape))
    return forward, feeds, stored


def shape_pattern(shape: Optional[tuple]) -> tuple:
    """``(ndim, lead, tail)`` such that a shape fits ``shape`` iff ``len(s) == ndim and s[lead:] == tail``.

    Unknown (``None``) sizes usually lead (a batch axis); when one sits after a
    known size, ``tail`` is None and the slower ``fits`` decides.
    """
    if shape is None:
        return -1, 0, ()
    lead = 0
    for i, d in enumerate(shape):
        if d is None:
            lead = i + 1
    tail = tuple(shape[lead:])
    if any(d is not None for d in shape[:lead]):
        return len(shape), lead, None
    return len(shape), lead, tail


def _backward_program(names: list, nodes: list, ops: list, inputs: list, in_bset: list, slot: dict, loss,
                      wrt_names) -> list:
    """One instruction per node with a gradient, in reverse topological order (the loss first)."""
    backward: list = []
    if loss is None or not in_bset[slot[loss]]:
        return backward
    # How many gradient contributions each slot receives (x * x gives x two), to mark the shared ones:
    # the inputs of the nodes with gradients are counted (only flowing inputs' counts are read).
    contributions = [0] * len(nodes)
    for ins in compress(inputs, in_bset):
        for i in ins:
            contributions[i] += 1
    flowing = in_bset.__getitem__
    append = backward.append
    target = tuple.__new__  # Target(...) without the named tuple's Python-level __new__: one per edge
    saving: dict = {}  # op -> (reads its inputs, reads its output), looked up once per op
    for s in range(len(nodes) - 1, -1, -1):
        if not in_bset[s]:
            continue
        op = ops[s]
        if op is None:
            append(Backward(s, names[s]))
            continue
        ins = inputs[s]
        flows = tuple(map(flowing, ins))
        if True not in flows:
            append(Backward(s, names[s]))
            continue
        reads = saving.get(op)
        if reads is None:
            if not op.differentiable:
                raise GraphError(
                    f"node {names[s]!r}: op {op.name!r} from {op.plugin} has no VJP, "
                    f"but a gradient must flow through it to reach {', '.join(wrt_names)}"
                )
            reads = saving[op] = ("inputs" in op.saves, "out" in op.saves)
        targets = []
        for j, i in enumerate(ins):
            if flows[j]:
                targets.append(target(Target, (j, i, contributions[i] > 1)))
        append(Backward(s, names[s], op, ins, *reads, tuple(targets), op.vjp_kwargs(nodes[s].attrs, flows)))
    return backward


def _kept(names: list, slot: dict, outputs: tuple, in_bset: list, wrt_names: tuple, keep: str) -> tuple[list, list]:
    """``(slot, name)`` of the values and gradients the result keeps, in slot order."""
    if keep == "all":
        values = list(enumerate(names))
        grads = [(s, n) for s, n in enumerate(names) if in_bset[s]]
    else:  # the outputs and wrt are among the plan's nodes: look them up rather than scan every node
        values = sorted([(slot[n], n) for n in set(outputs)])
        grads = sorted([(slot[n], n) for n in set(wrt_names)])
    return values, grads


def _liveness(forward: list, backward: list, kept_values: Optional[set], kept_grads: Optional[set],
              n_slots: int) -> None:
    """Free every value right after its last reader, in one reverse sweep (JAX's ``last_used``).

    The program is the forward instructions followed by the backward ones; a
    VJP reads the inputs and output its op saves. A kept value is never freed;
    a node's gradient is freed once its own VJP has run, unless it is kept.
    ``None`` for the kept sets means everything is kept (``keep="all"``).
    Each instruction frees the slots it reads that no later instruction reads,
    in the order it reads them.
    """
    if any(ins.op.residuals for ins in forward):
        has_vjp = {ins.slot for ins in backward if ins.op is not None}
        for ins in forward:
            if ins.op.residuals:
                ins.keep_residuals = ins.slot in has_vjp and "res" in ins.op.vjp_wants
    if kept_values is None:
        for ins in backward:
            ins.free_grad = False
        return
    read_later = bytearray(n_slots)  # 1: read by a later instruction, or kept (never freed)
    for s in kept_values:
        read_later[s] = 1
    for ins in reversed(backward):
        read = ins.inputs if ins.reads_inputs else ()
        if ins.reads_out:
            read = read + (ins.slot,)
        free = []
        for s in read:
            if not read_later[s]:
                read_later[s] = 1
                free.append(s)
        if free:
            ins.free_values = tuple(free)
        ins.free_grad = ins.slot not in kept_grads
    for ins in reversed(forward):
        free = []
        for s in ins.inputs:
            if not read_later[s]:
                read_later[s] = 1
                free.append(s)
        if free:
            ins.free = tuple(free)


def _guards(forward: list, backward: list, stored: list, feeds: list, ops: list, inputs: list) -> None:
    """Which arrays must reach ops read-only: those read by an op that does not ship with dagrad.

    Built-in ops are tested never to write into their inputs (tests/test_trust.py),
    so only arrays that a plugin op's forward or VJP reads are protected, and
    the common all-built-in plan pays nothing.
    """
    guarded = [op is not None and op.plugin != BUILTINS for op in ops]
    if True not in guarded:
        return
    exposed = [False] * len(ops)
    for s, op in enumerate(ops):
        if guarded[s]:
            exposed[s] = True  # its own VJP may read its output
            for i in inputs[s]:
                exposed[i] = True
    for ins in forward:
        ins.guard = guarded[ins.slot] or exposed[ins.slot]
    for ins in backward:
        ins.guard = ins.op is not None and guarded[ins.slot]
    for rec in stored:
        rec.guard = exposed[rec.slot]
    for rec in feeds:
        rec.guard = exposed[rec.slot]
