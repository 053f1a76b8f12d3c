"""Graph building: names, scopes, constants, the networkx view, Tensor methods and graph surgery."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import dagrad as dg


def test_nodes_get_unique_readable_scoped_names():
    g = dg.Graph()
    x = g.input("x", shape=(None, 2))
    with g.scope("fc1"):
        W = g.param("W", np.ones((2, 2)))
        a = x @ W
        b = x @ W
        with g.scope("inner"):
            c = dg.tanh(a)
    assert (W.name, a.name, b.name, c.name) == ("fc1/W", "fc1/matmul", "fc1/matmul_1", "fc1/inner/tanh")
    assert g.node(c).scope == "fc1/inner"


def test_unused_scope_skips_scopes_in_use_at_any_depth_and_frees_those_of_a_failed_block():
    g = dg.Graph()
    g.param("fc", [1.0])  # a node named like the scope, and one whose name merely starts with it:
    g.param("fcx/W", [1.0])  # neither puts scope "fc" in use
    assert g.unused_scope("fc") == "fc"
    for scope in ("fc", "fc_1"):
        with g.scope(scope):
            g.param("W", [1.0])
    assert g.unused_scope("fc") == "fc_2"
    with g.scope("outer"), g.scope("fc"), g.scope("inner"):
        g.param("b", [1.0])
    with g.scope("outer"):
        assert g.unused_scope("fc") == "fc_1"
        with g.scope("fc"):
            assert (g.unused_scope("inner"), g.unused_scope("W")) == ("inner_1", "W")
    with pytest.raises(RuntimeError), g.atomic():
        with g.scope(g.unused_scope("fc")):
            g.param("W", [1.0])  # fc_2/W, removed again
        assert g.unused_scope("fc") == "fc_3"
        raise RuntimeError("the block fails")
    assert g.unused_scope("fc") == "fc_2"


def test_indexing_a_graph_gives_a_handle_named_by_the_node_whatever_the_reference():
    g = dg.Graph()
    x = g.param("x", [1.0])
    for ref in ("x", x, g.node("x")):
        assert g[ref].name == "x" and g[ref].graph is g
    with pytest.raises(dg.GraphError, match="no node named 'y'"):
        g["y"]


def test_an_input_added_in_a_failed_atomic_block_and_added_again_is_one_input():
    g = dg.Graph()
    with pytest.raises(RuntimeError), g.atomic():
        g.input("a", shape=(2,))
        raise RuntimeError("the block fails")
    assert g.inputs == []
    g.input("a", shape=(2,))
    assert g.inputs == ["a"]


def test_duplicate_node_names_are_refused_and_change_nothing():
    g = dg.Graph()
    g.param("W", [1.0])
    version = g.version
    with pytest.raises(dg.GraphError, match="already has a node named 'W'"):
        g.param("W", [2.0])
    assert len(g) == 1 and g.version == version
    np.testing.assert_array_equal(g.value("W"), [1.0])


def test_numbers_and_arrays_in_expressions_become_constants():
    g = dg.Graph()
    x = g.input("x", shape=(3,))
    y = 2.0 * x + np.array([1.0, 2.0, 3.0])
    kinds = sorted(n.kind for n in g.nodes())
    assert kinds.count("const") == 2
    np.testing.assert_allclose(g.forward(y, {"x": np.ones(3)}).value(y), [3.0, 4.0, 5.0])


def test_nx_is_a_read_only_view_for_any_networkx_algorithm():
    g = dg.Graph()
    x = g.param("x", [1.0])
    y = dg.exp(x) * x
    view = g.nx
    assert nx.is_directed_acyclic_graph(view)
    assert nx.ancestors(view, y.name) == {"x", "exp"}
    assert view.nodes[y.name]["node"].inputs == ("exp", "x")
    with pytest.raises(nx.NetworkXError):
        view.add_edge("x", "oops")
    dg.sin(y)
    assert len(view) == len(g)  # a live view of later changes


def test_repeated_input_is_one_edge_and_two_argument_positions():
    g = dg.Graph()
    x = g.param("x", [3.0])
    y = x * x
    assert g.node(y).inputs == ("x", "x")
    assert list(g.nx.in_edges(y.name)) == [("x", y.name)]


def test_tensor_methods_build_the_expected_values():
    g = dg.Graph()
    a = np.arange(24.0).reshape(2, 3, 4)
    x = g.input("x", shape=(2, 3, 4))
    outs = {
        "slice": x[0, 1:, ::2],
        "int array": x[:, np.array([2, 0, 2])],
        "bool mask": x[np.array([True, False])],
        "newaxis and ellipsis": x[None, ..., 1],
        "T": x.T,
        "reshape": x.reshape(4, -1),
        "sum": x.sum(axis=1, keepdims=True),
        "mean": x.mean(axis=(0, 2)),
        "max": x.max(axis=-1),
        "min": x.min(),
        "astype": x.astype("float32"),
        "neg and abs": abs(-x),
        "rpow": 2.0 ** (x / 10),
    }
    expected = {
        "slice": a[0, 1:, ::2], "int array": a[:, [2, 0, 2]], "bool mask": a[[True, False]],
        "newaxis and ellipsis": a[None, ..., 1], "T": a.T, "reshape": a.reshape(4, -1),
        "sum": a.sum(axis=1, keepdims=True), "mean": a.mean(axis=(0, 2)), "max": a.max(axis=-1),
        "min": a.min(), "astype": a.astype(np.float32), "neg and abs": a, "rpow": 2.0 ** (a / 10),
    }
    res = g.forward(list(outs.values()), {"x": a})
    for label, tensor in outs.items():
        value = res.value(tensor)
        np.testing.assert_allclose(value, expected[label], err_msg=label)
        assert value.dtype == expected[label].dtype, label
        assert tensor.shape == value.shape, label


def test_static_shapes_keep_unknown_batch_sizes():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    y = (x @ g.param("W", np.ones((3, 5)))).reshape(-1, 5, 1)
    assert y.shape == (None, 5, 1)
    assert dg.mean(y, axis=0).shape == (5, 1)


def test_tensors_from_different_graphs_do_not_mix():
    a = dg.Graph("a").param("x", [1.0])
    b = dg.Graph("b").param("y", [1.0])
    with pytest.raises(dg.GraphError, match="belongs to another graph .*'b'"):
        a + b


def test_a_tensor_has_no_truth_value():
    x = dg.Graph().param("x", [1.0])
    with pytest.raises(TypeError, match="symbolic"):
        bool(x)


def test_numpy_arrays_on_the_left_defer_to_tensors():
    g = dg.Graph()
    x = g.param("x", [1.0, 2.0])
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, dg.Tensor)


# -------------------------------------------------------------- surgery ---


def test_rewire_replaces_one_input_and_keeps_records_and_edges_in_agreement():
    g = dg.Graph()
    a = g.param("a", [1.0, 2.0])
    b = g.param("b", [5.0, 7.0])
    y = a * a
    g.rewire(y, 1, b)
    assert g.node(y).inputs == ("a", "b")
    assert set(g.nx.predecessors(y.name)) == {"a", "b"}
    res = g.backward(y.sum())
    np.testing.assert_array_equal(res.grad(a), [5.0, 7.0])
    g.rewire(y, 0, b)
    assert set(g.nx.predecessors(y.name)) == {"b"}


def test_rewire_that_would_make_a_cycle_is_refused_naming_the_cycle():
    g = dg.Graph()
    x = g.param("x", [1.0])
    a = dg.exp(x)
    b = dg.sin(a)
    c = dg.cos(b)
    before = (g.node(a).inputs, sorted(g.nx.edges), g.version)
    with pytest.raises(dg.CycleError) as err:
        g.rewire(a, 0, c)
    assert err.value.cycle == [a.name, b.name, c.name, a.name]
    assert "exp -> sin -> cos -> exp" in str(err.value)
    assert (g.node(a).inputs, sorted(g.nx.edges), g.version) == before


def test_rewire_reinfers_shapes_downstream_or_changes_nothing():
    g = dg.Graph()
    x = g.param("x", np.ones((2, 3)))
    wide = g.param("wide", np.ones((2, 4)))
    col = g.param("col", np.ones((5, 1)))
    y = dg.exp(x)
    z = y + g.param("bias", np.ones(3))
    with pytest.raises(dg.ShapeError, match="do not fit"):
        g.rewire(y, 0, wide)  # (2, 4) + (3,) no longer broadcasts
    assert g.node(y).inputs == ("x",) and g.node(z).shape == (2, 3)
    g.rewire(y, 0, col)
    assert g.node(y).shape == (5, 1) and g.node(z).shape == (5, 3)


def test_a_rewired_graph_is_ordered_by_dependencies_not_insertion():
    g = dg.Graph()
    x = g.param("x", [0.5])
    early = dg.exp(x)
    late = dg.sin(x) * 2
    g.rewire(early, 0, late)  # early now reads a node added after it
    res = g.backward(early.sum())
    np.testing.assert_allclose(res.value(early), np.exp(2 * np.sin(0.5)))
    assert dg.gradcheck(g, loss=early.sum())


def test_indexing_a_feed_sized_axis_infers_shapes_without_materialising_anything():
    g = dg.Graph()
    x = g.input("x", shape=(None, 5))
    assert x[:, np.array([[0, 1], [4, 4]])].shape == (None, 2, 2)
    assert x[1:].shape == (None, 5)
    assert x[np.array([0, 2000])].shape == (2, 5)
    assert x[None, ..., 2].shape == (1, None)


def test_topological_order_puts_every_node_after_its_inputs_even_after_rewiring():
    g = dg.Graph()
    x = g.param("x", [0.5])
    early = dg.exp(x)
    late = dg.sin(x)
    g.rewire(early, 0, late)
    names = [n.name for n in g.topological_order()]
    assert names.index(late.name) < names.index(early.name)
    assert names == ["x", late.name, early.name]
