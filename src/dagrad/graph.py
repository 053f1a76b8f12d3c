"""``Graph``: the network as an explicit ``networkx.DiGraph`` of named op nodes.

A node record holds the op's name, its attributes and the *ordered* list of
its inputs (``("x", "x")`` for ``x * x``); the DiGraph's edges mirror those
lists for topology. Every change goes through a ``Graph`` method that checks
it completely before touching anything, so a failed change leaves the graph
exactly as it was. ``Graph.nx`` is a read-only view for any networkx algorithm.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import operator
import warnings
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import networkx as nx
import numpy as np

from .errors import CycleError, GraphError, ShapeError
from .node import NO_ATTRS, SOURCE_KINDS, Attrs, Node, topological_order
from .plugins import registry
from .scheduler import Plan
from .scheduler import compile as compile_plan
from .shapes import Shape, fits, format_shape
from .tensor import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from .result import Result

__all__ = ["Graph", "Node", "SOURCE_KINDS"]  # Node and SOURCE_KINDS are re-exported from .node

NodeRef = Union[str, "Tensor"]


def _canonical_attr(value: Any, where: Callable[[], str]) -> Any:
    """Attrs are stored JSON-shaped and hashable: tuples for sequences, Python scalars.

    ``where`` returns the message prefix naming the node; it is called only
    when a value is refused, since this runs for every attribute of every node.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if isinstance(value, (list, tuple)):
        return tuple(_canonical_attr(v, where) for v in value)
    if isinstance(value, np.ndarray):
        return _canonical_attr(value.tolist(), where)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise GraphError(f"{where()}: attribute dictionaries need string keys")
        return tuple(sorted((k, _canonical_attr(v, where)) for k, v in value.items()))
    raise GraphError(
        f"{where()}: attribute value {value!r} of type {type(value).__name__} is not JSON-serialisable"
    )


class Graph:
    """A network: named nodes in a ``networkx.DiGraph``.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 3))
    >>> W = g.param("W", np.ones((3, 2)))
    >>> loss = dg.mean((x @ W) ** 2)
    >>> res = g.backward(loss, feeds={"x": np.ones((4, 3))})
    >>> res.value(loss)
    array(9.)
    >>> res.grad("W")
    array([[3., 3.],
           [3., 3.],
           [3., 3.]])
    """

    def __init__(self, name: str = "graph"):
        self.name = name
        self._g = nx.DiGraph()
        self._view = self._g.copy(as_view=True)
        self._values: dict[str, np.ndarray] = {}
        self._scopes: list[str] = []
        self._prefix = ""  # "fc1/inner/" inside nested scopes
        self._counters: dict[str, int] = {}
        self._scopes_used: set[str] = set()  # see _scopes_in_use
        self._scopes_read = 0  # how many nodes (the first, in insertion order) _scopes_used has read
        self._next_serial = 0
        self._plans: dict[tuple, tuple] = {}  # request -> (Program, weakref to the Plan handed out); see compile
        self._journal: Optional[list] = None  # names added inside ``atomic()``
        self._input_names: list[str] = []  # in insertion order
        self._insertion_is_topological = True  # until a rewire makes a node read a later one
        self._updates: dict[str, str] = {}  # param -> the node whose value it takes after a training step
        self.version = 0

    # ----------------------------------------------------------- reading --

    @property
    def nx(self) -> nx.DiGraph:
        """A read-only view of the DiGraph; node attribute ``"node"`` is the record."""
        return self._view

    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def __contains__(self, ref: NodeRef) -> bool:
        return (ref.graph is self and ref.name in self._g) if isinstance(ref, Tensor) else ref in self._g

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes())

    def __getitem__(self, ref: NodeRef) -> "Tensor":
        return Tensor(self, self.node(ref).name)  # by the record's name: ``g[tensor]`` and ``g[record]`` work too

    def _name(self, ref: NodeRef) -> str:
        """The node name ``ref`` stands for; a Tensor of another graph is refused, naming both graphs."""
        if isinstance(ref, Tensor):
            if ref.graph is not self:
                raise GraphError(
                    f"Tensor {ref.name!r} belongs to another graph ({ref.graph.name!r} at {id(ref.graph):#x}), "
                    f"not to graph {self.name!r} (at {id(self):#x}); use the graph the Tensor was built in"
                )
            return ref.name
        if isinstance(ref, Node):
            return ref.name
        if not isinstance(ref, str):
            raise GraphError(f"expected a node name or Tensor, got {type(ref).__name__}")
        return ref

    def node(self, ref: NodeRef) -> Node:
        """The record of a node, by name or Tensor; ``GraphError`` if there is none."""
        name = self._name(ref)
        try:
            return self._g.nodes[name]["node"]
        except KeyError:
            close = difflib.get_close_matches(str(name), list(self._g), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise GraphError(f"graph {self.name!r} has no node named {name!r}{hint}") from None

    def nodes(self) -> list[Node]:
        """Every node record, in the order the nodes were added."""
        return [d["node"] for d in self._g._node.values()]  # networkx keeps insertion order

    def consumers(self, ref: NodeRef) -> list[str]:
        """Names of the nodes that take this node as an input."""
        return list(self._g.successors(self.node(ref).name))

    @property
    def inputs(self) -> list[str]:
        """Names of the input nodes (fed at run time), in the order they were added."""
        return [n for n in self._input_names if n in self._g]

    @property
    def params(self) -> "ParamsView":
        """Trainable parameters by name, read-only; the arrays are the live values (optimizers update them in place).

        Assigning ``g.params[name] = array`` raises: it could only change this
        mapping, never the graph; use ``g.set_value(name, array)``.
        """
        # Optimizers read this every step: walk the stored values, not every node in sorted order.
        records = self._g._node
        return ParamsView({
            name: value for name, value in self._values.items()
            if (rec := records[name]["node"]).op == "param" and rec.trainable
        })

    def value(self, ref: NodeRef) -> np.ndarray:
        """The stored value of a param or const."""
        node = self.node(ref)
        if node.name not in self._values:
            raise GraphError(f"node {node.name!r} is a {node.kind}; only params and consts hold values")
        return self._values[node.name]

    def set_value(self, ref: NodeRef, value: Any) -> None:
        """Replace a param's or const's value with an array of the same shape and dtype kind."""
        node = self.node(ref)
        old = self.value(node)
        new = np.asarray(value)
        if new.shape != old.shape:
            raise ShapeError(
                f"node {node.name!r}: new value has shape {new.shape}, expected {old.shape}"
            )
        if not np.can_cast(new.dtype, old.dtype, casting="same_kind"):
            raise ShapeError(f"node {node.name!r}: cannot store {new.dtype} values in a {old.dtype} node")
        self._values[node.name] = np.array(new, dtype=old.dtype)

    @property
    def updates(self) -> dict[str, str]:
        """State updates, ``{param: node}``: after every training step the param takes the node's value.

        Running statistics (``dagrad.nn.batch_norm``) are non-trainable params
        updated this way, since an op cannot change state: ``fit`` computes
        these nodes in each step's plan and applies them after the optimizer
        step; ``dagrad.train.apply_updates`` does it for a loop of your own.
        """
        return dict(self._updates)

    def add_update(self, param: NodeRef, value: NodeRef) -> None:
        """After every training step, set the non-trainable ``param`` to the value of node ``value`` in that step.

        ``value`` usually reads ``param`` itself (``(1 - m) * running + m * batch_mean``);
        it must have ``param``'s shape and a dtype that casts to its dtype. A
        param has at most one update, and a trainable one has none: the
        optimizer owns it.

        Examples
        --------
        >>> import numpy as np, dagrad as dg
        >>> g = dg.Graph()
        >>> steps = g.param("steps", np.array(0), trainable=False)
        >>> g.add_update(steps, steps + 1)          # count the training steps
        >>> g.updates
        {'steps': 'add'}
        """
        record, source = self.node(param), self.node(value)
        if record.op != "param" or record.trainable:
            what = "a trainable param, which the optimizer updates" if record.op == "param" else f"a {record.kind}"
            raise GraphError(f"add_update: {record.name!r} is {what}; only non-trainable params take state updates "
                             f"(g.param(..., trainable=False))")
        if source.name == record.name:
            raise GraphError(f"add_update: param {record.name!r} cannot be updated to itself")
        if record.name in self._updates:
            raise GraphError(f"add_update: param {record.name!r} is already updated from {self._updates[record.name]!r}; "
                             "a param takes one update per step")
        if source.shape is not None and (len(source.shape) != len(record.shape) or not fits(record.shape, source.shape)):
            raise ShapeError(f"add_update: node {source.name!r} has shape {format_shape(source.shape)}, but param "
                             f"{record.name!r} has shape {format_shape(record.shape)}")
        if not np.can_cast(source.dtype, record.dtype, casting="same_kind"):
            raise ShapeError(f"add_update: node {source.name!r} is {source.dtype}, which cannot be stored in param "
                             f"{record.name!r} ({record.dtype})")
        self._updates[record.name] = source.name
        self._changed()

    # ---------------------------------------------------------- building --

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[str]:
        """Prefix the names of nodes added inside the block with ``name/``.

        >>> import dagrad as dg
        >>> g = dg.Graph()
        >>> with g.scope("fc1"):
        ...     W = g.param("W", [1.0, 2.0])
        >>> W.name
        'fc1/W'
        """
        if not isinstance(name, str) or not name or "/" in name:
            raise GraphError(f"scope name {name!r} must be a non-empty string without '/'")
        check_name(name, self.name)
        self._scopes.append(name)
        self._prefix = "".join(s + "/" for s in self._scopes)
        try:
            yield self._prefix
        finally:
            self._scopes.pop()
            self._prefix = "".join(s + "/" for s in self._scopes)

    def unused_scope(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``...: the first scope name (under the current scope) no node uses yet.

        Layer builders call it so that a second ``dense(..., name="fc")`` gets ``fc_1/...``.
        """
        used = self._scopes_in_use()
        candidate, i = base, 0
        while f"{self._prefix}{candidate}/" in used:
            i += 1
            candidate = f"{base}_{i}"
        return candidate

    def _scopes_in_use(self) -> set:
        """Every scope some node lives in, nested ones too: ``{"fc1/", "fc1/inner/", ...}``.

        Layer builders ask for an unused scope once per layer, so scanning every
        node name each time made building a deep network cubic in its depth. The
        set is brought up to date here rather than in ``_add_node`` (the hot
        path): only the names added since the last call, the tail of networkx's
        insertion-ordered node dict, are read. ``atomic`` resets it when it
        removes nodes.
        """
        nodes = self._g._node
        used = self._scopes_used
        for name in itertools.islice(reversed(nodes), len(nodes) - self._scopes_read):
            end = name.rfind("/")
            while end >= 0 and (prefix := name[: end + 1]) not in used:  # a prefix in the set has its own in too
                used.add(prefix)
                end = name.rfind("/", 0, end)
        self._scopes_read = len(nodes)
        return used

    @contextlib.contextmanager
    def atomic(self) -> Iterator[list]:
        """Add nodes all or nothing: yields the list of names added in the block, removed again if it raises.

        ``dagrad.grad`` builds a backward pass inside one, so a VJP rule that
        fails half-way leaves the graph as it was. Blocks nest.
        """
        outer, added = self._journal, []
        self._journal = added
        updates = dict(self._updates)
        try:
            yield added
        except BaseException:
            self._g.remove_nodes_from(added)
            self._input_names = [n for n in self._input_names if n in self._g]  # an input added again is listed once
            self._scopes_used, self._scopes_read = set(), 0  # rebuilt when next asked for
            for name in added:
                self._values.pop(name, None)
            self._updates = updates
            self._changed()
            raise
        finally:
            self._journal = outer
        if outer is not None:
            outer.extend(added)

    def _new_name(self, name: Optional[str], base: str, taken: Optional[str] = None) -> str:
        """The full name of a new node: ``name`` in the current scope, or a fresh ``base``, ``base_1``, ...

        ``taken`` is a name about to be used by a node added in the same call.
        """
        nodes = self._g._node
        if name is not None:
            check_name(name, self.name)
            full = self._prefix + name
            if full in nodes or full == taken:
                raise GraphError(f"graph {self.name!r} already has a node named {full!r}; names are unique")
            return full
        stem = self._prefix + base
        if stem not in nodes and stem != taken:
            return stem
        i = self._counters.get(stem, 1)
        candidate = f"{stem}_{i}"
        while candidate in nodes or candidate == taken:
            i += 1
            candidate = f"{stem}_{i}"
        self._counters[stem] = i + 1
        return candidate

    def input(self, name: str, shape: Optional[Sequence[Optional[int]]] = None, dtype: Any = "float64") -> "Tensor":
        """Add an input, fed at run time; ``None`` in ``shape`` is a size given by the feed."""
        try:
            dt = np.dtype(dtype)
            shp = None if shape is None else tuple(None if d is None else int(d) for d in shape)
        except (TypeError, ValueError) as exc:
            raise GraphError(f"input {name!r}: bad shape {shape!r} or dtype {dtype!r}: {exc}") from None
        if shp is not None and any(d is not None and d < 0 for d in shp):
            raise GraphError(f"input {name!r}: shape {shape!r} has a negative size")
        _check_numeric(dt, f"input {name!r}")
        tensor = self._add_node(self._new_name(name, "input"), "input", (), {}, shp, dt)
        self._input_names.append(tensor.name)
        return tensor

    def param(self, name: str, value: Any, *, trainable: bool = True) -> "Tensor":
        """Add a parameter holding a copy of ``value`` (gradients are taken with respect to these)."""
        array = _array_of(value, None, f"param {name!r}")
        if array.dtype.kind not in "fc" and trainable:
            array = array.astype(np.float64)
        full = self._new_name(name, "param")
        return self._add_node(full, "param", (), {}, array.shape, array.dtype, value=array, trainable=trainable)

    def const(self, value: Any, *, name: Optional[str] = None, dtype: Any = None) -> "Tensor":
        """Add a constant (no gradient is taken with respect to it)."""
        array = _array_of(value, dtype, "a constant" if name is None else f"constant {name!r}")
        return self._add_node(self._new_name(name, "const"), "const", (), {}, array.shape, array.dtype, value=array)

    def apply(self, op_name: str, inputs: Sequence[Any], attrs: Optional[dict] = None, *,
              name: Optional[str] = None) -> "Tensor":
        """Add a node applying the registered op ``op_name`` to ``inputs`` (in order).

        An input is a Tensor of this graph, the name of one of its nodes, or a
        number or array, which becomes a constant: a Python number takes the
        dtype of the tensor it meets (the first floating-point one), so a
        float32 graph stays float32. The op, its arity, its attributes, the
        inputs and their shapes are all checked before the graph changes; any
        failure leaves the graph as it was.

        Examples
        --------
        >>> import dagrad as dg
        >>> g = dg.Graph()
        >>> x = g.input("x", shape=(3,), dtype="float32")
        >>> y = g.apply("mul", [x, 2.0], name="twice")
        >>> y.name, y.dtype
        ('twice', dtype('float32'))
        """
        op = registry().op(op_name)
        full = self._new_name(name, op_name) if name is not None else None
        where = _Where(full or op_name, op_name, op)  # the message prefix, formatted only for an error

        known = self._g._node  # networkx's node-attribute dict: the fastest lookup on this path
        records: list = []
        constants: list = []  # (position, array) of inputs that become constants
        like = None
        for position, ref in enumerate(inputs):
            if ref.__class__ is Tensor:
                if ref.graph is not self:
                    raise GraphError(
                        f"{where()}: input {position}, Tensor {ref.name!r}, belongs to another graph "
                        f"({ref.graph.name!r} at {id(ref.graph):#x}) than graph {self.name!r} "
                        f"(at {id(self):#x}); build one expression in one graph"
                    )
                ref = ref.name
            elif isinstance(ref, Tensor):
                raise GraphError(f"{where()}: input {position} is a {type(ref).__name__}, not a dagrad.Tensor")
            if ref.__class__ is str:
                data = known.get(ref)
                if data is None:
                    raise GraphError(f"{where()}: input {ref!r} is not a node of graph {self.name!r}")
                record = data["node"]
                if like is None or (like.dtype.kind not in "fc" and record.dtype.kind in "fc"):
                    like = record
                records.append(record)
            else:
                constants.append(position)
                records.append(ref)
        if op.arity is not None and len(records) != op.arity:
            raise GraphError(f"{where()}: takes {op.arity} input(s), got {len(records)}")
        if op.arity is None and not records:
            raise GraphError(f"{where()}: takes at least one input, got none")
        if attrs or op.attr_defaults:
            try:
                bound = op.bind_attrs(attrs or {})
            except TypeError as exc:
                raise GraphError(f"{where()}: {exc}") from None
            bound = {k: _canonical_attr(v, where) for k, v in bound.items()}
        else:
            bound = {}
        for position in constants:  # the array stands in for its constant's record: it has a shape and a dtype
            records[position] = _weak_array(records[position], like, lambda: f"{where()}: input {position}")
        shape, dtype = _infer(op, records, bound, where)
        # Everything is checked: commit the constants, then the node.
        if full is None:
            full = self._new_name(None, op_name)
        input_names = []
        for record in records:
            if record.__class__ is np.ndarray:
                const_name = self._new_name(None, "const", full)
                self._add_node(const_name, "const", (), {}, record.shape, record.dtype, value=record, handle=False)
                input_names.append(const_name)
            else:
                input_names.append(record.name)
        return self._add_node(full, op_name, tuple(input_names), bound, shape, dtype)

    def add(self, op: str, inputs: Sequence[Any], attrs: Optional[dict] = None, *, name: Optional[str] = None) -> "Tensor":
        """Deprecated alias of :meth:`apply` (``Graph.add`` read as addition, beside ``dagrad.add``)."""
        warnings.warn("Graph.add is deprecated; use Graph.apply", DeprecationWarning, stacklevel=2)
        return self.apply(op, inputs, attrs, name=name)

    def _add_node(self, name, op, inputs, attrs, shape, dtype, *, value=None, trainable=False,
                  handle=True) -> Optional["Tensor"]:
        """Add a checked node; return a Tensor on it (``handle=False``: nothing, for a constant nobody holds)."""
        record = Node(name, op, inputs, Attrs(attrs) if attrs else NO_ATTRS, shape, dtype, self._next_serial, trainable)
        self._next_serial += 1
        # networkx's add_node and add_edge, written out: the same dicts, filled without the
        # generic checks (the name is new, the inputs exist), 4x faster on a path that adds
        # every node of a million-node graph. tests/test_graph.py compares the result with
        # a DiGraph built through networkx's public API.
        G = self._g
        G._node[name] = {"node": record}
        G._succ[name] = {}
        preds = G._pred[name] = {}
        succ = G._succ
        for src in inputs:
            if src not in preds:
                preds[src] = succ[src][name] = {}
        if G.__networkx_cache__:
            G.__networkx_cache__.clear()  # what networkx's own mutators do (nx._clear_cache)
        if self._journal is not None:
            self._journal.append(name)
        if value is not None:
            self._values[name] = value
        self.version += 1
        if self._plans:
            self._plans.clear()
        return Tensor(self, name) if handle else None

    def _changed(self) -> None:
        self.version += 1
        if self._plans:
            self._plans.clear()

    # ----------------------------------------------------------- surgery --

    def rewire(self, node: NodeRef, index: int, new_input: NodeRef) -> None:
        """Make input ``index`` of ``node`` read from ``new_input`` instead.

        Shapes of the node and everything downstream are re-inferred; a cycle or
        a shape that no longer fits raises before anything changes.
        """
        record = self.node(node)
        source = self.node(new_input)
        if record.kind != "op":
            raise GraphError(f"node {record.name!r} is a {record.kind} and has no inputs to rewire")
        if not -len(record.inputs) <= index < len(record.inputs):
            raise GraphError(
                f"node {record.name!r} has {len(record.inputs)} input(s); index {index} is out of range"
            )
        index %= len(record.inputs)
        if source.name == record.name or nx.has_path(self._g, record.name, source.name):
            path = [record.name] if source.name == record.name else nx.shortest_path(self._g, record.name, source.name)
            cycle = path + [record.name]
            raise CycleError(
                f"rewiring {record.name!r} input {index} to {source.name!r} would make a cycle: "
                + " -> ".join(cycle),
                cycle,
            )
        new_inputs = record.inputs[:index] + (source.name,) + record.inputs[index + 1 :]
        # Re-infer shapes downstream on copies; commit only if all of them fit.
        updates = {record.name: new_inputs}
        pending: dict[str, tuple] = {}

        def shape_of(n: str):
            return pending.get(n) or (self._g.nodes[n]["node"].shape, self._g.nodes[n]["node"].dtype)

        order = [record.name] + [
            n for n in nx.topological_sort(self._g.subgraph(nx.descendants(self._g, record.name)))
        ]
        for n in order:
            rec = self._g.nodes[n]["node"]
            ins = updates.get(n, rec.inputs)
            proxies = [_ShapeProxy(*shape_of(i)) for i in ins]
            op = registry().op(rec.op)
            result = _infer(op, proxies, rec.attrs, _Where(n, rec.op, op))
            if n != record.name and result == (rec.shape, rec.dtype):
                continue
            pending[n] = result
        # Commit.
        if source.serial > record.serial:
            self._insertion_is_topological = False
        old = record.inputs[index]
        record.inputs = new_inputs
        if old not in new_inputs:
            self._g.remove_edge(old, record.name)
        self._g.add_edge(source.name, record.name)
        for n, (shape, dtype) in pending.items():
            rec = self._g.nodes[n]["node"]
            rec.shape, rec.dtype = shape, dtype
        self._changed()

    def topological_order(self) -> list[Node]:
        """Every node record, each after all of its inputs; ties keep insertion order.

        Raises ``CycleError`` listing the nodes of a cycle, if there is one.
        """
        records = {n: d["node"] for n, d in self._g._node.items()}
        try:
            names = topological_order(self._g, records.keys(), records, self._insertion_is_topological)
        except nx.NetworkXUnfeasible:
            self.check_acyclic()
            raise
        return [records[n] for n in names]

    def check_acyclic(self) -> None:
        """Raise ``CycleError`` listing the nodes of a cycle, if the graph has one."""
        try:
            cycle_edges = nx.find_cycle(self._g)
        except nx.NetworkXNoCycle:
            return
        cycle = [u for u, _ in cycle_edges] + [cycle_edges[0][0]]
        raise CycleError(f"graph {self.name!r} has a cycle: " + " -> ".join(cycle), cycle)

    # --------------------------------------------------------- execution --

    def compile(
        self,
        outputs: Union[NodeRef, Sequence[NodeRef]],
        *,
        loss: Optional[NodeRef] = None,
        wrt: Optional[Sequence[NodeRef]] = None,
        keep: str = "all",
    ) -> Plan:
        """The cached ``Plan`` for these outputs (and loss/wrt); recompiled after any change.

        The graph keeps what it compiled (the plan's ``Program``, with its run
        count and generated code) but not the ``Plan`` object itself, which
        refers to the graph: asked again, it returns the same plan while you
        hold it, otherwise a new plan around the same program. So a dropped
        graph is freed at once, never kept for the garbage collector by a cycle.
        """
        outs = tuple(self._name(o) for o in _as_list(outputs))
        loss_name = None if loss is None else self._name(loss)
        wrt_names = None if wrt is None else tuple(self._name(w) for w in _as_list(wrt))
        key = (self.version, registry().generation, outs, loss_name, wrt_names, keep)
        cached = self._plans.get(key)
        if cached is not None:
            plan = cached[1]()
            if plan is not None:
                return plan
            plan = Plan(self, cached[0])
        else:
            plan = compile_plan(self, outs, loss=loss_name, wrt=wrt_names, keep=keep)
            if len(self._plans) >= 32:
                self._plans.pop(next(iter(self._plans)))
        self._plans[key] = (plan.program, weakref.ref(plan))
        return plan

    def forward(self, outputs: Union[NodeRef, Sequence[NodeRef]], feeds: Optional[dict] = None, *,
                check: Optional[bool] = None, profile: bool = False) -> "Result":
        """Compute the values of ``outputs`` (and what they need) from ``feeds``."""
        return self.compile(outputs).run(feeds, check=check, profile=profile)

    def backward(
        self,
        loss: NodeRef,
        feeds: Optional[dict] = None,
        *,
        wrt: Optional[Sequence[NodeRef]] = None,
        keep: str = "all",
        outputs: Sequence[NodeRef] = (),
        cotangent: Any = None,
        check: Optional[bool] = None,
        profile: bool = False,
    ) -> "Result":
        """Forward, then backpropagate from ``loss`` in reverse topological order.

        ``wrt`` defaults to every trainable param; only nodes between them and
        the loss get gradients. ``keep="all"`` keeps every value and gradient
        (for diagrams); ``keep="wrt"`` keeps only the gradients asked for and the
        values of ``loss`` and ``outputs``, freeing the rest as soon as possible.

        The loss must be a scalar, unless ``cotangent`` (an array of the loss's
        shape) says what gradient to start from: the result's gradients are then
        the vector-Jacobian product of the loss with that cotangent. ``check``
        turns NaN/Inf checking on for this run; ``profile`` times every node.
        """
        loss_name = self._name(loss)
        shape = self.node(loss_name).shape
        if cotangent is None and shape is not None and None not in shape and shape != ():
            raise GraphError(
                f"the loss {loss_name!r} has shape {format_shape(shape)}, not a scalar: reduce it (dg.sum, dg.mean) "
                "or pass cotangent= with its shape for a vector-Jacobian product"
            )
        outs = [loss_name, *outputs]
        plan = self.compile(outs, loss=loss_name, wrt=wrt, keep=keep)
        return plan.run(feeds, check=check, cotangent=cotangent, profile=profile)

    def __repr__(self) -> str:
        return f"<Graph {self.name!r}: {len(self)} nodes>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        # The one sanctioned upward import (with Result's and Graph's twin): a notebook asks the
        # IR to show itself, and the renderer sits two layers up. Lazy, so the IR never needs it.
        from .render import mimebundle

        return mimebundle(self)


class ParamsView(Mapping):
    """``Graph.params``: a read-only mapping of names to live parameter arrays.

    Writing into an array (``g.params["W"][...] = 0``, ``g.params["W"] *= 0``)
    changes the parameter; replacing one (``g.params["W"] = new``) would only
    change this mapping, so it raises a ``GraphError`` pointing to ``set_value``.
    """

    __slots__ = ("_arrays",)

    def __init__(self, arrays: dict):
        self._arrays = arrays

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __setitem__(self, name: str, value: Any) -> None:
        if value is self._arrays.get(name):  # ``g.params[n] *= 2`` writes in place, then stores the same array
            return
        raise GraphError(
            f"g.params is read-only: assigning g.params[{name!r}] would be lost; "
            f"use g.set_value({name!r}, value), or write into the array with g.params[{name!r}][...] = value"
        )

    def __delitem__(self, name: str) -> None:
        raise GraphError(f"g.params is read-only: parameter {name!r} cannot be deleted from it")

    def __repr__(self) -> str:
        return f"ParamsView({self._arrays!r})"


class _Where:
    """``node 'x' (op 'mul' from builtins)``: called (and formatted) only when an error needs it."""

    __slots__ = ("name", "op_name", "op")

    def __init__(self, name: str, op_name: str, op: Any):
        self.name, self.op_name, self.op = name, op_name, op

    def __call__(self) -> str:
        return f"node {self.name!r} (op {self.op_name!r} from {self.op.plugin})"


@dataclass(slots=True)
class _ShapeProxy:
    """Shape and dtype of a node as ``rewire`` re-infers it, before the change is committed."""

    shape: Optional[Shape]
    dtype: np.dtype


MAX_NAME_LENGTH = 1024  # generous for scoped names, and far below what zip and JSON tooling choke on


def check_name(name: Any, graph: str = "graph") -> None:
    """Refuse a node name no model file or diagram could hold: ``GraphError`` saying why.

    Names are non-empty printable text (no control characters, no lone
    surrogates) of at most ``MAX_NAME_LENGTH`` characters.
    """
    if not isinstance(name, str) or not name:
        raise GraphError(f"node names must be non-empty strings, not {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise GraphError(
            f"graph {graph!r}: a node name of {len(name)} characters is too long "
            f"(at most {MAX_NAME_LENGTH}): {name[:40]!r}..."
        )
    if not name.isprintable():
        bad = next(c for c in name if not c.isprintable())
        raise GraphError(
            f"graph {graph!r}: node name {name!r} contains the unprintable character {bad!r}; "
            "names must be printable text"
        )


def _check_numeric(dtype: np.dtype, what: Union[str, Callable[[], str]]) -> None:
    if dtype.kind not in "biufc":
        raise ShapeError(f"{what if isinstance(what, str) else what()}: dtype {dtype} is not numeric; "
                         "dagrad computes with bool, integer, float and complex arrays only")


def _array_of(value: Any, dtype: Any, what: Union[str, Callable[[], str]]) -> np.ndarray:
    """A fresh numeric array holding ``value`` (a copy: the graph owns its values).

    ``what`` names the value in an error message: a string, or a function
    returning one, called only when there is an error to report.
    """
    try:
        array = np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise GraphError(f"{what if isinstance(what, str) else what()}: {value!r} cannot be made an array: "
                         f"{exc}") from None
    if array.dtype.kind not in "biufc":
        _check_numeric(array.dtype, what)
    return array


def _weak_array(value: Any, like: Optional[Node], what: Callable[[], str]) -> np.ndarray:
    """The array of a number or array met in an expression; a Python number adopts ``like``'s dtype."""
    cls = value.__class__
    if like is not None and (cls is float or cls is int or cls is bool or cls is complex):
        kind = like.dtype.kind
        if kind in "fc" or (kind in "iu" and cls is not float and cls is not complex) or (kind == "b" and cls is bool):
            return _array_of(value, like.dtype, what)
    return _array_of(value, None, what)


_INFERRED: dict = {}  # (op, input shapes, input dtypes, attrs) -> (shape, dtype): rules are pure functions


def _infer(op, records, attrs: dict, where: Callable[[], str]) -> tuple:
    """Output shape and dtype from the op's rules; ``ShapeError`` naming the node if they do not fit.

    Rules are pure functions of shapes, dtypes and attributes, and a network
    repeats the same few combinations many times (every layer of a chain), so
    results are remembered: building then costs a dictionary lookup per node.
    """
    if len(records) == 1:  # the common arities spelled out: no list built per node
        only, = records
        shapes, dtypes = (only.shape,), (only.dtype,)
    elif len(records) == 2:
        a, b = records
        shapes, dtypes = (a.shape, b.shape), (a.dtype, b.dtype)
    else:
        shapes = tuple([r.shape for r in records])
        dtypes = tuple([r.dtype for r in records])
    try:
        key = (op, shapes, dtypes, tuple(attrs.items())) if attrs else (op, shapes, dtypes)
        known = _INFERRED.get(key)
    except TypeError:  # an unhashable attribute: no caching for this node
        key = known = None
    if known is not None:
        return known
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        result = _infer_now(op, shapes, dtypes, attrs, where)
    for w in warned:  # a rule that warns (a deprecated attribute) must warn every time: not remembered
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if key is not None and not warned:
        if len(_INFERRED) > 65536:
            _INFERRED.clear()
        _INFERRED[key] = result
    return result


def _infer_now(op, shapes: tuple, dtypes: tuple, attrs: dict, where: Callable[[], str]) -> tuple:
    shape = None
    if op.shape_rule is not None and None not in shapes:
        try:
            shape = tuple(op.shape_rule(*shapes, **attrs))
        except (ValueError, TypeError, IndexError) as exc:
            described = ", ".join("?" if s is None else format_shape(s) for s in shapes)
            raise ShapeError(f"{where()}: input shapes {described} do not fit: {exc}") from None
        try:
            # numpy integers (a rule computing a size with numpy) become ints: shapes are written into
            # generated code and model files, where np.int64(3) is not a literal
            shape = tuple([None if d is None else operator.index(d) for d in shape])
        except TypeError:
            raise ShapeError(f"{where()}: the shape rule of op {op.name!r} returned {shape!r}; sizes must be "
                             "integers, or None for a size known only at run time") from None
    try:
        dtype = np.dtype(op.dtype_rule(*dtypes, **attrs))
    except (ValueError, TypeError) as exc:
        raise ShapeError(f"{where()}: input dtypes {[str(d) for d in dtypes]} do not fit: {exc}") from None
    return shape, dtype


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]

