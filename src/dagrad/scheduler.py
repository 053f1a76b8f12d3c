"""The scheduler: compile a graph into a flat, reusable ``Plan`` and run it forward and backward.

Compiling validates the graph, prunes it to what the requested outputs (and,
for backward, the path from ``wrt`` to the loss) need, orders it topologically
with a deterministic tie-break (insertion order), and works out when each
value and gradient is last used so it can be freed right then. networkx is
used only here, while compiling; running a plan is a plain loop over slots.
Nothing is recursive, so a chain of a million nodes runs.
"""

from __future__ import annotations

import contextlib
import gc
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import networkx as nx
import numpy as np

from .errors import (
    AnomalyError,
    DagradError,
    FeedError,
    GradientError,
    GraphError,
    OpError,
)
from .node import SOURCE_KINDS, topological_order
from .ops.adjoints import sum_to_shape as _sum_to  # one summing-back for numpy VJPs and the sum_to op
from .plugins import registry
from .result import Result
from .shapes import fits, format_shape

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph

__all__ = ["Plan", "compile", "check_anomalies"]


class _Settings:
    check = False


class check_anomalies:
    """Turn NaN/Inf checking on or off for every run; also usable as a context manager.

    With checking on, the first node whose forward value or VJP gradient holds
    NaN or Inf raises ``AnomalyError`` naming it.

    >>> import dagrad as dg
    >>> with dg.check_anomalies(True):
    ...     pass
    """

    def __init__(self, enabled: bool = True):
        self._previous = _Settings.check
        _Settings.check = bool(enabled)

    def __enter__(self) -> "check_anomalies":
        return self

    def __exit__(self, *exc: Any) -> None:
        _Settings.check = self._previous


@dataclass(slots=True)
class _Step:
    slot: int
    name: str
    op: Any
    ins: tuple
    attrs: dict
    free: tuple = ()              # slots whose value is dead after this step
    keep_residuals: bool = False


@dataclass(slots=True)
class _BackStep:
    slot: int
    name: str
    op: Any                       # None for a source node
    ins: tuple = ()
    flows: tuple = ()             # per input: does a gradient flow back to it?
    targets: tuple = ()           # (position, slot) of each input a gradient flows back to
    kwargs: Optional[dict] = None # attrs (and needs=) of every VJP call
    saves_inputs: bool = False
    saves_out: bool = False
    free_values: tuple = ()
    free_grad: bool = False


_PLACEHOLDERS: dict = {}


def _placeholder(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A zero-cost stand-in for an input the VJP does not read: right shape and dtype, no memory.

    Placeholders are read-only, so one per (shape, dtype) is shared by every run.
    """
    key = (shape, dtype)
    stand_in = _PLACEHOLDERS.get(key)
    if stand_in is None:
        if len(_PLACEHOLDERS) > 4096:
            _PLACEHOLDERS.clear()
        stand_in = _PLACEHOLDERS[key] = np.broadcast_to(np.zeros((), dtype), shape)
    return stand_in


def _reachable(adjacency: dict, sources) -> set:
    """Nodes reachable from ``sources`` through ``adjacency`` (sources included), without recursion.

    ``adjacency`` is one of networkx's own successor or predecessor dicts; walking
    them directly is several times faster than the generic traversal views,
    which matters for graphs of a million nodes.
    """
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


class Plan:
    """A compiled, reusable program for one (outputs, loss, wrt, keep) request on one graph version."""

    def __init__(self, graph: "Graph"):
        self.graph = graph
        self.nodes: list[str] = []  # every node the plan computes or reads, in forward (topological) order
        self.outputs: tuple = ()
        self.loss: Optional[str] = None
        self.wrt: tuple = ()
        self.keep = "all"
        self._inputs: list = []           # (slot, name, declared shape, dtype)
        self._stored: list = []           # (slot, name) of params and consts
        self._steps: list[_Step] = []
        self._bsteps: list[_BackStep] = []
        self._kept_values: list = []      # (slot, name)
        self._kept_grads: list = []       # (slot, name)
        self._feedable: tuple = ()        # names of every input of the graph, fed or not

    @property
    def order(self) -> list[str]:
        """Deprecated alias of ``nodes`` (``Result.order`` is the *backward* order; this one runs forward)."""
        warnings.warn("Plan.order is deprecated; use Plan.nodes", DeprecationWarning, stacklevel=2)
        return self.nodes

    def __repr__(self) -> str:
        kind = f"backward from {self.loss!r}" if self.loss else "forward"
        return f"<Plan {kind}: {len(self._steps)} op steps, {len(self._bsteps)} backward steps>"

    # ----------------------------------------------------------------- run --

    def run(self, feeds: Optional[dict] = None, *, check: Optional[bool] = None) -> Result:
        """Run forward (and backward, if the plan has a loss) and return a ``Result``."""
        check = _Settings.check if check is None else bool(check)
        n = len(self.nodes)
        values: list = [None] * n
        shapes: list = [None] * n
        dtypes: list = [None] * n
        stored = self.graph._values
        for slot, name in self._stored:
            v = stored[name]
            values[slot] = v
            shapes[slot] = v.shape
            dtypes[slot] = v.dtype
        for slot, name, v in self._fed(feeds):
            values[slot] = v
            shapes[slot] = v.shape
            dtypes[slot] = v.dtype

        perf = time.perf_counter
        ftimes = [0.0] * n
        residuals: dict = {}
        for st in self._steps:
            args = [values[i] for i in st.ins]
            t0 = perf()
            try:
                out = st.op.forward(*args, **st.attrs)
            except DagradError:
                raise
            except Exception as exc:
                raise _failed(st.name, st.op, "forward", args, exc) from exc
            if st.op.residuals:
                out, res = out
                if st.keep_residuals:
                    residuals[st.slot] = res
            if type(out) is not np.ndarray:
                out = np.asarray(out)
            ftimes[st.slot] = perf() - t0
            if check:
                _check_finite(out, st.name, st.op, "forward", args)
            values[st.slot] = out
            shapes[st.slot] = out.shape
            dtypes[st.slot] = out.dtype
            for s in st.free:
                values[s] = None

        order: list[str] = []
        btimes: dict = {}
        grads: list = [None] * n
        edge_norms: Optional[dict] = {} if self.keep == "all" else None
        if self.loss is not None and self._bsteps:
            loss_slot = self._bsteps[0].slot
            grads[loss_slot] = np.ones(shapes[loss_slot], dtypes[loss_slot])
            self._backward(values, shapes, dtypes, grads, residuals, order, btimes, check, edge_norms)

        result_values = {name: values[slot] for slot, name in self._kept_values}
        result_grads = {}
        for slot, name in self._kept_grads:
            g = grads[slot]
            if g is None:
                if name not in self.wrt:
                    continue
                g = np.zeros(shapes[slot], dtypes[slot])
            elif not g.flags.writeable:
                g = np.array(g)
            result_grads[name] = g
        return Result(
            self.graph,
            result_values,
            result_grads,
            order,
            loss=self.loss,
            wrt=self.wrt,
            forward_times={st.name: ftimes[st.slot] for st in self._steps},
            backward_times=btimes,
            edge_norms=edge_norms or {},
        )

    def _backward(self, values, shapes, dtypes, grads, residuals, order, btimes, check, edge_norms) -> None:
        perf = time.perf_counter
        owned = [False] * len(grads)
        names = self.nodes
        for bs in self._bsteps:
            g = grads[bs.slot]
            if g is None:
                continue
            order.append(bs.name)
            if bs.op is None:
                continue
            if bs.saves_inputs:
                arrays = [values[i] for i in bs.ins]
            else:
                arrays = [_placeholder(shapes[i], dtypes[i]) for i in bs.ins]
            kwargs = bs.kwargs
            wants = bs.op.vjp_wants
            if wants:
                kwargs = dict(kwargs)
                if "out" in wants:
                    kwargs["out"] = values[bs.slot] if bs.saves_out else None
                if "res" in wants:
                    kwargs["res"] = residuals.pop(bs.slot, None)
            t0 = perf()
            try:
                gs = bs.op.vjp_rule(g, *arrays, **kwargs)
            except DagradError:
                raise
            except Exception as exc:
                raise _failed(bs.name, bs.op, "backward (VJP)", arrays, exc) from exc
            btimes[bs.name] = perf() - t0
            if type(gs) is not tuple or len(gs) != len(bs.ins):
                gs = _as_grad_tuple(gs, bs, len(bs.ins))
            flowing = {} if edge_norms is not None else None
            for j, i in bs.targets:
                gi = gs[j]
                if gi is None:
                    continue
                if type(gi) is not np.ndarray:
                    gi = np.asarray(gi)
                if gi.shape != shapes[i]:
                    summed = _sum_to(gi, shapes[i])
                    if summed is None:
                        _bad_shape(self, bs, j, i, gi, shapes)
                    gi = summed
                if gi.dtype != dtypes[i]:
                    gi = _cast_back(self, bs, j, i, gi, dtypes)
                if check:
                    _check_finite(gi, bs.name, bs.op, "backward", arrays, into=names[i])
                if flowing is not None:
                    flowing[i] = gi if i not in flowing else flowing[i] + gi
                acc = grads[i]
                if acc is None:
                    grads[i] = gi
                elif owned[i]:
                    acc += gi
                else:
                    # A fresh array we own and may add into in place; numpy returns a scalar for 0-d sums.
                    total = acc + gi
                    grads[i] = total if type(total) is np.ndarray else np.asarray(total)
                    owned[i] = True
            if flowing:
                for i, flow in flowing.items():
                    edge_norms[(names[i], bs.name)] = float(np.linalg.norm(flow))
            for s in bs.free_values:
                values[s] = None
            if bs.free_grad:
                grads[bs.slot] = None

    def _fed(self, feeds: Optional[dict]):
        """Validated feeds as (slot, name, array); ``FeedError`` names any bad one."""
        given: dict[str, Any] = {}
        for key, value in (feeds or {}).items():
            name = getattr(key, "name", key)
            if name not in self._feedable:
                raise FeedError(self._unexpected(name))
            given[name] = value
        out = []
        for slot, name, shape, dtype in self._inputs:
            if name not in given:
                raise FeedError(
                    f"input {name!r} needs a feed: it is required for {', '.join(map(repr, self.outputs))}"
                )
            out.append((slot, name, _coerce_feed(name, given[name], shape, dtype)))
        return out

    def _unexpected(self, name: str) -> str:
        if name in self.graph:
            kind = self.graph.node(name).kind
            return f"feed {name!r} is not an input: it is a {kind} (change params with Graph.set_value)"
        inputs = ", ".join(map(repr, self._feedable)) or "none"
        return f"feed {name!r} matches no input of graph {self.graph.name!r} (inputs: {inputs})"


def _coerce_feed(name: str, value: Any, shape, dtype: np.dtype) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype == dtype and (shape is None or fits(value.shape, shape)):
        return value  # the common case, checked without conversions
    try:
        array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - anything numpy cannot take is a bad feed
        raise FeedError(f"feed {name!r} is not an array: {exc}") from None
    if array.dtype != dtype:
        if array.dtype.kind not in "biuf" or not np.can_cast(array.dtype, dtype, casting="same_kind"):
            raise FeedError(f"feed {name!r} has dtype {array.dtype}; input {name!r} expects {dtype}")
        array = array.astype(dtype)
    if shape is not None and not fits(array.shape, shape):
        raise FeedError(
            f"feed {name!r} has shape {format_shape(array.shape)}; input {name!r} expects {format_shape(shape)}"
        )
    return array


def _as_grad_tuple(gs: Any, bs: _BackStep, arity: int) -> tuple:
    if isinstance(gs, np.ndarray) and arity == 1:
        return (gs,)
    if not isinstance(gs, (tuple, list)) or len(gs) != arity:
        got = f"{len(gs)} values" if isinstance(gs, (tuple, list)) else f"a {type(gs).__name__}"
        raise GradientError(
            f"node {bs.name!r}: the VJP of op {bs.op.name!r} from plugin {bs.op.plugin!r} must return "
            f"one gradient (or None) per input, {arity} in all; it returned {got}"
        )
    return gs


def _bad_shape(plan: Plan, bs: _BackStep, j: int, i: int, gi: np.ndarray, shapes: list):
    raise GradientError(
        f"node {bs.name!r}: the VJP of op {bs.op.name!r} from plugin {bs.op.plugin!r} "
        f"returned a gradient of shape {gi.shape} for input {j} ({plan.nodes[i]!r}), "
        f"whose value has shape {shapes[i]} (and it does not broadcast to it)"
    )


def _cast_back(plan: Plan, bs: _BackStep, j: int, i: int, gi: np.ndarray, dtypes: list) -> np.ndarray:
    """Cast a gradient widened by numpy promotion back to its input's dtype; any other mismatch is a bug."""
    if dtypes[bs.slot] == dtypes[i] or gi.dtype.kind != dtypes[i].kind:
        raise GradientError(
            f"node {bs.name!r}: the VJP of op {bs.op.name!r} from plugin {bs.op.plugin!r} "
            f"returned a {gi.dtype} gradient for input {j} ({plan.nodes[i]!r}), whose value is {dtypes[i]}"
        )
    return gi.astype(dtypes[i])


def _describe(arrays) -> str:
    return ", ".join(f"{a.dtype}{format_shape(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__ for a in arrays)


def _failed(name: str, op, phase: str, arrays, exc: Exception) -> OpError:
    return OpError(
        f"node {name!r} (op {op.name!r} from plugin {op.plugin!r}) raised in its {phase} "
        f"with inputs {_describe(arrays)}: {type(exc).__name__}: {exc}"
    )


def _check_finite(array: np.ndarray, name: str, op, phase: str, inputs, into: Optional[str] = None) -> None:
    if array.dtype.kind not in "fc" or np.isfinite(array).all():
        return
    nan = int(np.isnan(array).sum())
    inf = int(np.isinf(array).sum())
    target = f" for its input {into!r}" if into else ""
    inputs_ok = all(
        not isinstance(a, np.ndarray) or a.dtype.kind not in "fc" or np.isfinite(a).all() for a in inputs
    )
    cause = "from finite inputs" if inputs_ok else "(some of its inputs were already non-finite)"
    raise AnomalyError(
        f"node {name!r} (op {op.name!r}) produced {nan} NaN and {inf} Inf "
        f"of {array.size} entries{target} in the {phase} pass, {cause}",
        name,
        phase,
    )


# ------------------------------------------------------------- compiling --


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


def compile(
    graph: "Graph",
    outputs: tuple,
    *,
    loss: Optional[str] = None,
    wrt: Optional[tuple] = None,
    keep: str = "all",
) -> Plan:
    """Compile ``graph`` into a ``Plan`` computing ``outputs`` and, given ``loss``, gradients.

    Prefer ``Graph.compile``, which caches plans per graph version.
    """
    with _collector_paused():
        return _compile(graph, outputs, loss=loss, wrt=wrt, keep=keep)


def _compile(graph: "Graph", outputs: tuple, *, loss: Optional[str], wrt: Optional[tuple], keep: str) -> Plan:
    if keep not in ("all", "wrt"):
        raise GraphError(f"keep must be 'all' or 'wrt', not {keep!r}")
    G = graph._g
    records = {}
    for name in outputs:
        records[name] = graph.node(name)
    if loss is not None:
        loss_node = graph.node(loss)
        if loss_node.dtype.kind not in "fc":
            raise GraphError(f"loss {loss!r} has dtype {loss_node.dtype}; gradients need a floating-point loss")
        if loss not in outputs:
            outputs = (loss, *outputs)

    records_of = {n: d["node"] for n, d in G._node.items()}
    needed = _reachable(G._pred, outputs)
    try:
        order = topological_order(G, needed, records_of)
    except nx.NetworkXUnfeasible:
        graph.check_acyclic()
        raise
    slot = {name: i for i, name in enumerate(order)}
    node_of = [records_of[name] for name in order]

    plan = Plan(graph)
    plan.nodes = order
    plan.outputs = outputs
    plan.loss = loss
    plan.keep = keep
    plan._feedable = tuple(graph.inputs)

    # Resolve every op and every input slot once; the passes below share them.
    reg = registry()
    ops: list = [None] * len(order)
    ins_of: list = [()] * len(order)
    for s, rec in enumerate(node_of):
        if rec.op in SOURCE_KINDS:
            continue
        op = reg.op(rec.op)
        if op.arity is not None and len(rec.inputs) != op.arity:
            raise GraphError(
                f"node {rec.name!r} (op {rec.op!r} from {op.plugin}) takes {op.arity} input(s), "
                f"has {len(rec.inputs)}"
            )
        ops[s] = op
        ins_of[s] = tuple([slot[i] for i in rec.inputs])

    # Backward set: nodes on a path from wrt to the loss, with floating-point values.
    in_bset = [False] * len(order)
    wrt_names: tuple = ()
    if loss is not None:
        if wrt is None:
            wrt_names = tuple([n.name for n in node_of if n.op == "param" and n.trainable])
        else:
            wrt_names = tuple(wrt)
            for w in wrt_names:
                rec = graph.node(w)
                if rec.dtype.kind not in "fc":
                    raise GraphError(f"cannot take gradients with respect to {w!r}: its dtype is {rec.dtype}")
        upstream = _reachable(G._pred, [loss])
        downstream = _reachable(G._succ, [w for w in wrt_names if w in upstream])
        for n in downstream & upstream:
            if records_of[n].dtype.kind in "fc":
                in_bset[slot[n]] = True
    plan.wrt = wrt_names

    # Backward steps in reverse topological order; when does each value die?
    last_back_use: dict[int, int] = {}
    bsteps: list[_BackStep] = []
    if loss is not None and in_bset[slot[loss]]:
        for s in range(len(order) - 1, -1, -1):
            if not in_bset[s]:
                continue
            bs = _BackStep(s, order[s], None)
            op = ops[s]
            if op is not None:
                ins = ins_of[s]
                flows = tuple([in_bset[i] for i in ins])
                if True in flows:
                    if not op.differentiable:
                        raise GraphError(
                            f"node {order[s]!r}: op {op.name!r} from {op.plugin} has no VJP, "
                            f"but a gradient must flow through it to reach {', '.join(wrt_names)}"
                        )
                    bs.op = op
                    bs.ins = ins
                    bs.flows = flows
                    bs.targets = tuple([(j, i) for j, i in enumerate(ins) if in_bset[i]])
                    bs.kwargs = op.vjp_kwargs(node_of[s].attrs, flows)
                    bs.saves_inputs = "inputs" in op.saves
                    bs.saves_out = "out" in op.saves
                    pos = len(bsteps)
                    if bs.saves_inputs:
                        for i in ins:
                            last_back_use[i] = pos
                    if bs.saves_out:
                        last_back_use[s] = pos
            bsteps.append(bs)
    plan._bsteps = bsteps
    bset = {order[s] for s in range(len(order)) if in_bset[s]}

    keep_all = keep == "all"
    kept_value = [keep_all or name in outputs for name in order]
    kept_grad_names = set(order) if keep_all else set(wrt_names)

    # Forward steps, freeing each value after its last forward use unless kept or needed backward.
    last_fwd_use: dict[int, int] = {}
    steps: list[_Step] = []
    for s, rec in enumerate(node_of):
        if rec.op == "input":
            plan._inputs.append((s, rec.name, rec.shape, rec.dtype))
        elif ops[s] is None:
            plan._stored.append((s, rec.name))
        else:
            ins = ins_of[s]
            pos = len(steps)
            for i in ins:
                last_fwd_use[i] = pos
            steps.append(_Step(s, rec.name, ops[s], ins, rec.attrs))
    vjp_slots = {b.slot for b in bsteps if b.op is not None}
    free_after: dict[int, list] = {}
    for s, pos in last_fwd_use.items():
        if not kept_value[s] and s not in last_back_use:
            free_after.setdefault(pos, []).append(s)
    for pos, st in enumerate(steps):
        st.free = tuple(free_after.get(pos, ()))
        st.keep_residuals = st.op.residuals and st.slot in vjp_slots
    plan._steps = steps

    free_back: dict[int, list] = {}
    for s, pos in last_back_use.items():
        if not kept_value[s]:
            free_back.setdefault(pos, []).append(s)
    for pos, bs in enumerate(bsteps):
        bs.free_values = tuple(free_back.get(pos, ()))
        bs.free_grad = bs.name not in kept_grad_names

    plan._kept_values = [(slot[n], n) for n in order if kept_value[slot[n]]]
    grad_names = [n for n in order if n in kept_grad_names and (n in bset or n in wrt_names)]
    plan._kept_grads = [(slot[n], n) for n in grad_names]
    for w in wrt_names:
        if w not in slot:
            raise GraphError(
                f"cannot take gradients with respect to {w!r}: it is not an ancestor of the loss {loss!r}"
            )
    return plan
