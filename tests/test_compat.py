"""Every public name renamed in 0.2 still works for one release, with a DeprecationWarning naming the new one."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

import dagrad as dg


@pytest.fixture
def backward():
    g = dg.Graph()
    w = g.param("w", np.array([1.0, 2.0]))
    loss = dg.sum(w * w, name="loss")
    return g, loss, g.backward(loss)


def test_graph_add_is_graph_apply(backward):
    g, *_ = backward
    with pytest.warns(DeprecationWarning, match="Graph.apply"):
        t = g.add("tanh", ["w"])
    assert t.node.op == "tanh"


def test_result_step_is_result_rank(backward):
    _, loss, res = backward
    with pytest.warns(DeprecationWarning, match="Result.rank"):
        assert res.step(loss) == res.rank(loss) == 1


def test_plan_order_is_plan_nodes(backward):
    g, loss, _ = backward
    plan = g.compile(loss, loss=loss)
    with pytest.warns(DeprecationWarning, match="Plan.nodes"):
        assert plan.order == plan.nodes


def test_node_index_is_node_serial(backward):
    g, *_ = backward
    with pytest.warns(DeprecationWarning, match="Node.serial"):
        assert g.node("w").index == g.node("w").serial == 0


def test_the_old_op_module_still_imports_with_a_warning():
    with pytest.warns(DeprecationWarning, match="dagrad.extend"):
        from dagrad.op import float_dtype
    assert float_dtype is dg.extend.float_dtype


def test_dg_op_is_the_decorator_and_nothing_else():
    assert callable(dg.op) and not hasattr(dg.op, "float_dtype")
    assert importlib.import_module("dagrad.opdef").op is dg.op


def test_render_default_max_nodes_is_default_detail_nodes_and_the_io_limit_keeps_its_name():
    render = importlib.import_module("dagrad.render")
    with pytest.warns(DeprecationWarning, match="dagrad.render.DEFAULT_DETAIL_NODES"):
        from dagrad.render import DEFAULT_MAX_NODES
    assert DEFAULT_MAX_NODES == render.DEFAULT_DETAIL_NODES == 200
    with pytest.raises(AttributeError, match="'dagrad.render' has no attribute 'DEFAULT_MAX_NODE'"):
        render.DEFAULT_MAX_NODE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dg.io.DEFAULT_MAX_NODES == 100_000  # a load limit of model files: a different number, not renamed
