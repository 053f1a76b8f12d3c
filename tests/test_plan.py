"""Compiled plans: cached while the graph is unchanged, free of networkx and recursion at run time,
and able to run a chain of a million nodes."""

from __future__ import annotations

import copy
import gc
import inspect
import pickle
import sys
import weakref

import networkx as nx
import numpy as np
import pytest

import dagrad as dg
from dagrad.scheduler.plan import CODEGEN_AFTER_RUNS


def small_graph():
    g = dg.Graph()
    x = g.input("x", shape=(None, 2))
    W = g.param("W", np.ones((2, 2)))
    loss = dg.mean(dg.tanh(x @ W))
    return g, x, W, loss


def test_a_plan_is_reused_while_the_graph_is_unchanged():
    g, x, W, loss = small_graph()
    plan = g.compile([loss], loss=loss)
    assert g.compile([loss], loss=loss) is plan
    g.backward(loss, feeds={"x": np.ones((1, 2))})
    assert g.compile([loss], loss=loss) is plan  # backward() used the cached plan too


def test_a_graph_caches_its_compiled_program_not_the_plan_object_so_runs_carry_over(monkeypatch):
    monkeypatch.delenv("DAGRAD_EXECUTOR", raising=False)
    g, x, W, loss = small_graph()
    feeds = {"x": np.ones((1, 2))}
    for _ in range(CODEGEN_AFTER_RUNS + 1):
        g.backward(loss, feeds=feeds, keep="wrt")
    plan = g.compile([loss], loss=loss, keep="wrt")
    assert plan.runs == CODEGEN_AFTER_RUNS + 1          # no plan was held, yet one program ran every time
    assert plan.program.code is not None                # and switched to generated code, once
    code = plan.program.code
    del plan
    g.backward(loss, feeds=feeds, keep="wrt")
    assert g.compile([loss], loss=loss, keep="wrt").program.code is code


def test_a_plan_keeps_its_graph_alive():
    def make():
        g, x, W, loss = small_graph()
        return g.compile([loss], loss=loss)

    res = make().run({"x": np.ones((1, 2))})
    assert res.grad("W").shape == (2, 2)


def test_a_dropped_graph_is_freed_by_reference_counting_alone(monkeypatch):
    monkeypatch.delenv("DAGRAD_EXECUTOR", raising=False)
    enabled = gc.isenabled()
    gc.disable()  # nothing may wait for the collector: no reference cycle holds a compiled, run graph
    try:
        g, x, W, loss = small_graph()
        feeds = {"x": np.ones((3, 2))}
        for _ in range(CODEGEN_AFTER_RUNS + 2):  # the loop's runs, then generated code
            res = g.backward(loss, feeds=feeds)
        plan = g.compile([loss], loss=loss, keep="wrt")
        plan.run(feeds, check=True)
        assert g.compile([loss], loss=loss).program.code is not None and res.edge_norms and str(plan)
        dropped = weakref.ref(g)
        del g, x, W, loss, res, plan
        assert dropped() is None
    finally:
        if enabled:
            gc.enable()


def test_changing_the_graph_recompiles():
    g, x, W, loss = small_graph()
    plan = g.compile([loss], loss=loss)
    dg.exp(loss)
    assert g.compile([loss], loss=loss) is not plan


def test_updating_param_values_needs_no_recompile_and_is_seen_by_the_next_run():
    g, x, W, loss = small_graph()
    plan = g.compile([loss], loss=loss)
    first = plan.run({"x": np.ones((1, 2))}).value(loss)
    g.params["W"] *= 0  # in place, as optimizers do
    assert plan.run({"x": np.ones((1, 2))}).value(loss) == 0 != first
    g.set_value("W", np.full((2, 2), 2.0))
    assert g.compile([loss], loss=loss) is plan
    assert plan.run({"x": np.ones((1, 2))}).value(loss) == pytest.approx(np.tanh(4.0))


def test_what_a_plan_shows_of_itself_cannot_be_edited_into_running_wrong(monkeypatch):
    monkeypatch.delenv("DAGRAD_EXECUTOR", raising=False)
    g = dg.Graph()
    x = g.param("x", np.array([1.0, 2.0]))
    loss = dg.sum(x * g.param("y", np.array([3.0, 4.0])) + x, name="loss")
    plan = g.compile(loss, loss=loss)
    with pytest.raises(AttributeError):
        plan.nodes.sort()                                             # the slots' names, not a list to reorder
    shown = list(plan.nodes)
    shown.sort()                                                      # a copy may be edited freely
    plan.runs = CODEGEN_AFTER_RUNS                                    # the next run writes code from plan.nodes
    res = plan.run()
    assert plan.program.code is not None
    assert res.value(loss) == 14.0 and res.value(x).tolist() == [1.0, 2.0]
    assert res.edge_norms[("y", "mul")] == pytest.approx(np.sqrt(5.0))


def test_a_nodes_attributes_cannot_be_changed_behind_the_plans_that_read_them():
    g = dg.Graph()
    x = g.param("x", np.array([0.5, 3.0]))
    y = dg.clip(x, low=0.0, high=1.0)
    loss = dg.sum(y, name="loss")
    plan = g.compile(loss, loss=loss)
    before = plan.run().value(y).tolist()
    attrs = g.node(y).attrs
    for change in (lambda: attrs.__setitem__("high", 2.5), lambda: attrs.update(high=2.5), attrs.clear,
                   lambda: attrs.pop("high"), lambda: attrs.setdefault("other", 1)):
        with pytest.raises(dg.GraphError, match="attributes cannot be changed in place.*rewire"):
            change()
    assert attrs == {"low": 0.0, "high": 1.0} and isinstance(attrs, dict)   # still reads as a dict
    plan.runs = CODEGEN_AFTER_RUNS
    assert plan.run().value(y).tolist() == before == [0.5, 1.0]         # the loop and generated code agree
    assert copy.deepcopy(attrs) == attrs and pickle.loads(pickle.dumps(attrs)) == attrs


def test_different_requests_get_different_plans():
    g, x, W, loss = small_graph()
    assert g.compile([loss], loss=loss, keep="wrt") is not g.compile([loss], loss=loss)
    assert g.compile([loss]) is not g.compile([loss], loss=loss)


def test_a_plan_for_early_nodes_of_a_graph_holds_exactly_their_ancestors():
    # Compiling numbers only the nodes up to the last output: the later ones are no slot, no
    # name a wrt may give, and no gradient.
    g = dg.Graph()
    a = g.param("a", np.array([1.0, 2.0]))
    b = g.param("b", np.array([3.0, 4.0]))
    h = dg.tanh(a, name="h")                 # every node up to h is needed
    late = dg.sum(h * b, name="late")
    plan = g.compile([h], loss=None)
    assert plan.nodes == ("a", "h")
    mid = dg.sum(h, name="mid")
    plan = g.compile([mid], loss=mid)
    assert plan.nodes == ("a", "h", "mid") and plan.wrt == ("a",)
    with pytest.raises(dg.GraphError, match="'b'"):
        g.compile([mid], loss=mid, wrt=["b"])
    res = g.backward(late, outputs=[mid])
    np.testing.assert_allclose(res.grad("b"), np.tanh([1.0, 2.0]))


def test_running_a_plan_uses_no_networkx(monkeypatch):
    g, x, W, loss = small_graph()
    plan = g.compile([loss], loss=loss)

    def forbidden(*args, **kwargs):
        raise AssertionError("networkx was called while running a plan")

    for name, member in inspect.getmembers(nx, callable):
        if not name.startswith("_") and not inspect.isclass(member):
            monkeypatch.setattr(nx, name, forbidden)
    for cls in (nx.DiGraph, nx.Graph):
        for attr in ("successors", "predecessors", "nodes", "edges", "subgraph", "__iter__", "__getitem__"):
            monkeypatch.setattr(cls, attr, forbidden, raising=False)
    res = plan.run({"x": np.ones((3, 2))})
    assert res.grad("W").shape == (2, 2)


def test_compiling_and_running_never_recurse():
    g = dg.Graph()
    x = g.param("x", [0.3])
    h = x
    for _ in range(20_000):
        h = dg.sin(h)
    loss = h.sum()
    limit = sys.getrecursionlimit()
    depth = len(inspect.stack(0))
    sys.setrecursionlimit(depth + 60)  # far fewer frames than nodes
    try:
        res = g.backward(loss)
    finally:
        sys.setrecursionlimit(limit)
    assert res.grad(x).shape == (1,)
    assert len(res.order) == 20_002  # x, 20,000 sines and the sum


def test_a_chain_of_a_million_nodes_compiles_runs_forward_and_backward():
    g = dg.Graph("chain")
    x = g.param("x", np.array([0.5, -0.25]))
    h = x
    for _ in range(1_000_000):
        h = -h
    loss = h.sum()
    plan = g.compile([loss], loss=loss, keep="wrt")
    res = plan.run()
    assert len(plan.nodes) == 1_000_002
    np.testing.assert_array_equal(res.grad(x), [1.0, 1.0])  # an even number of negations
    assert res.value(loss) == pytest.approx(0.25)
