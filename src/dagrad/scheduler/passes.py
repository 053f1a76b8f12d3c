"""Compiling a graph into a ``Plan``, as a sequence of named passes that each return data.

1. ``_request``: check the outputs, loss, wrt and keep asked for.
2. ``_needed`` and ``_order``: prune to the ancestors of the outputs; order topologically.
3. ``_resolve``: find every node's op and its inputs' slots, once.
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
from typing import TYPE_CHECKING, Optional

import networkx as nx

from ..errors import GraphError
from ..node import SOURCE_KINDS, topological_order
from ..plugins import BUILTINS, registry
from .plan import Plan
from .program import Backward, Feed, Forward, Stored, Target

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph

__all__ = ["compile"]

KEEPS = ("all", "wrt")


def compile(graph: "Graph", outputs: tuple, *, loss: Optional[str] = None, wrt: Optional[tuple] = None,
            keep: str = "all") -> Plan:
    """Compile ``graph`` into a ``Plan`` computing ``outputs`` and, given ``loss``, gradients.

    Prefer ``Graph.compile``, which caches plans per graph version.
    """
    with _collector_paused():
        G, node_data = _graph_view(graph)
        outputs, wrt_asked = _request(graph, tuple(outputs), loss, wrt, keep)
        ordered = graph._insertion_is_topological
        needed = _needed(G, outputs, ordered)
        names = _order(graph, G, needed, node_data, ordered)
        slot = dict(zip(names, range(len(names))))
        nodes = [node_data[name]["node"] for name in names]
        ops, inputs = _resolve(nodes, slot)
        upstream = needed if outputs == (loss,) else None  # the loss's ancestors, when already known
        in_bset, wrt_names = _backward_set(G, names, nodes, loss, wrt_asked, upstream, ordered)
        forward, feeds, stored = _forward_program(nodes, ops, inputs)
        backward = _backward_program(nodes, ops, inputs, in_bset, slot, loss, wrt_names)
        kept_values, kept_grads = _kept(names, outputs, in_bset, wrt_names, keep)
        _liveness(forward, backward, None if keep == "all" else {s for s, _ in kept_values},
                  None if keep == "all" else {s for s, _ in kept_grads})
        _guards(forward, backward, stored, feeds, ops, inputs)
        return Plan(
            graph=graph,
            version=graph.version,
            generation=registry().generation,
            request=(tuple(outputs), loss, wrt, keep),
            nodes=names,
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


def _ancestors(G, sources, ordered: bool) -> set:
    """``sources`` and every node they depend on.

    When insertion order is topological, one backward scan over the nodes
    does it (each node adds its inputs if it is itself reached), with the
    inner loop in C; otherwise a breadth-first walk.
    """
    if not ordered:
        return _reachable(G._pred, sources)
    reached = set(sources)
    pred = G._pred
    for n in reversed(G._node):
        if n in reached:
            reached.update(pred[n])
    return reached


def _needed(G, outputs: tuple, ordered: bool) -> set:
    return _ancestors(G, outputs, ordered)


def _order(graph, G, needed: set, node_data: dict, ordered: bool) -> list:
    if ordered:
        return list(G._node) if len(needed) == len(G._node) else [n for n in G._node if n in needed]
    records = {n: node_data[n]["node"] for n in needed}
    try:
        return topological_order(G, needed, records)
    except nx.NetworkXUnfeasible:
        graph.check_acyclic()  # raises CycleError naming the cycle
        raise


def _resolve(nodes: list, slot: dict) -> tuple[list, list]:
    """Every node's ``Op`` (None for sources) and its inputs' slots.

    The arity is checked again here although ``Graph.apply`` checked it: the
    plugins may have been reloaded since the graph was built.
    """
    reg = registry()
    lookup = slot.__getitem__
    ops: list = [None] * len(nodes)
    inputs: list = [()] * len(nodes)
    resolved: dict = {}
    for s, rec in enumerate(nodes):
        if rec.op in SOURCE_KINDS:
            continue
        op = resolved.get(rec.op)
        if op is None:
            op = resolved[rec.op] = reg.op(rec.op)
        if op.arity is not None and len(rec.inputs) != op.arity:
            raise GraphError(
                f"node {rec.name!r} (op {rec.op!r} from {op.plugin}) takes {op.arity} input(s), "
                f"has {len(rec.inputs)}"
            )
        ops[s] = op
        inputs[s] = tuple(map(lookup, rec.inputs))
    return ops, inputs


def _backward_set(G, names: list, nodes: list, loss: Optional[str], wrt, upstream: Optional[set],
                  ordered: bool) -> tuple[list, tuple]:
    """Which slots get gradients (on a path from ``wrt`` to the loss, floating point), and the wrt names."""
    if loss is None:
        return [False] * len(nodes), ()
    if wrt is None:
        wrt_names = tuple([n.name for n in nodes if n.op == "param" and n.trainable])
    else:
        wrt_names = tuple(wrt)
    if upstream is None:
        upstream = _ancestors(G, [loss], ordered)
    for w in wrt_names:
        if w not in upstream:
            raise GraphError(
                f"cannot take gradients with respect to {w!r}: it is not an ancestor of the loss {loss!r}"
            )
    if ordered:  # descendants of wrt, by one forward scan over the needed nodes (in topological order)
        downstream = set(wrt_names)
        succ = G._succ
        for n in names:
            if n in downstream:
                downstream.update(succ[n])
    else:
        downstream = _reachable(G._succ, wrt_names)
    return [n in downstream and n in upstream and rec.dtype.kind in "fc" for n, rec in zip(names, nodes)], wrt_names


def _forward_program(nodes: list, ops: list, inputs: list) -> tuple[list, list, list]:
    forward, feeds, stored = [], [], []
    patterns: dict = {}  # a network has few distinct shapes
    for s, rec in enumerate(nodes):
        op = ops[s]
        if op is not None:
            shape = rec.shape
            pattern = patterns.get(shape)
            if pattern is None:
                pattern = patterns[shape] = shape_pattern(shape)
            fn = op.forward
            if op.float_inputs and all(nodes[i].dtype.kind in "fc" for i in inputs[s]):
                fn = op.float_forward  # nothing to cast: skip the wrapper that would check
            forward.append(Forward(s, rec.name, op, fn, inputs[s], rec.attrs, shape, rec.dtype, *pattern))
        elif rec.op == "input":
            feeds.append(Feed(s, rec.name, rec.shape, rec.dtype))
        else:
            stored.append(Stored(s, rec.name, rec.op))
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


def _backward_program(nodes: list, ops: list, inputs: list, in_bset: list, slot: dict, loss, wrt_names) -> list:
    """One instruction per node with a gradient, in reverse topological order (the loss first)."""
    backward: list = []
    if loss is None or not in_bset[slot[loss]]:
        return backward
    # How many gradient contributions each slot receives (x * x gives x two), to mark the shared ones.
    contributions = [0] * len(nodes)
    for s, op in enumerate(ops):
        if op is not None and in_bset[s]:
            for i in inputs[s]:
                if in_bset[i]:
                    contributions[i] += 1
    seen = [0] * len(nodes)
    for s in range(len(nodes) - 1, -1, -1):
        if not in_bset[s]:
            continue
        op = ops[s]
        ins = Backward(s, nodes[s].name)
        backward.append(ins)
        if op is None:
            continue
        flows = tuple([in_bset[i] for i in inputs[s]])
        if True not in flows:
            continue
        if not op.differentiable:
            raise GraphError(
                f"node {nodes[s].name!r}: op {op.name!r} from {op.plugin} has no VJP, "
                f"but a gradient must flow through it to reach {', '.join(wrt_names)}"
            )
        ins.op = op
        ins.inputs = inputs[s]
        ins.reads_inputs = "inputs" in op.saves
        ins.reads_out = "out" in op.saves
        ins.kwargs = op.vjp_kwargs(nodes[s].attrs, flows)
        targets = []
        for j, i in enumerate(inputs[s]):
            if flows[j]:
                targets.append(Target(j, i, seen[i] == 0, contributions[i] > 1))
                seen[i] += 1
        ins.targets = tuple(targets)
    return backward


def _kept(names: list, outputs: tuple, in_bset: list, wrt_names: tuple, keep: str) -> tuple[list, list]:
    if keep == "all":
        values = list(enumerate(names))
        grads = [(s, n) for s, n in enumerate(names) if in_bset[s]]
    else:
        wanted = set(outputs)
        values = [(s, n) for s, n in enumerate(names) if n in wanted]
        wanted_grads = set(wrt_names)
        grads = [(s, n) for s, n in enumerate(names) if n in wanted_grads]
    return values, grads


def _liveness(forward: list, backward: list, kept_values: Optional[set], kept_grads: Optional[set]) -> None:
    """Free every value right after its last reader, in one reverse sweep (JAX's ``last_used``).

    The program is the forward instructions followed by the backward ones; a
    VJP reads the inputs and output its op saves. A kept value is never freed;
    a node's gradient is freed once its own VJP has run, unless it is kept.
    ``None`` for the kept sets means everything is kept (``keep="all"``).
    """
    has_vjp = {ins.slot for ins in backward if ins.op is not None}
    for ins in forward:
        ins.keep_residuals = ins.op.residuals and ins.slot in has_vjp and "res" in ins.op.vjp_wants
    if kept_values is None:
        for ins in backward:
            ins.free_grad = False
        return
    reads: list = [ins.inputs for ins in forward]
    for ins in backward:
        read = ins.inputs if ins.reads_inputs else ()
        reads.append(read + (ins.slot,) if ins.reads_out else read)
    last: dict = {}
    for k in range(len(reads) - 1, -1, -1):
        for s in reads[k]:
            if s not in last:
                last[s] = k
    frees: dict = {}
    for s, k in last.items():
        if s not in kept_values:
            frees.setdefault(k, []).append(s)
    n_forward = len(forward)
    for k, ins in enumerate(forward):
        ins.free = tuple(frees.get(k, ()))
    for k, ins in enumerate(backward):
        ins.free_values = tuple(frees.get(n_forward + k, ()))
        ins.free_grad = ins.slot not in kept_grads


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
    for i, rec in enumerate(stored):
        if exposed[rec.slot]:
            stored[i] = Stored(rec.slot, rec.name, rec.kind, guard=True)
    for i, rec in enumerate(feeds):
        if exposed[rec.slot]:
            feeds[i] = Feed(rec.slot, rec.name, rec.shape, rec.dtype, guard=True)
