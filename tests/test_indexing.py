"""Indexing with computed indices: x[idx] with index Tensors (int and bool), take_along_axis, scatter_add, index_add,
masked_fill and one_hot. Values as numpy computes them, gradients that accumulate at repeated indices and never
reach an index, clear refusals, and graphs that save and load. Finite differences over every op's samples run in
test_op_gradients.py."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg

X = np.arange(20.0).reshape(4, 5)


def _graph():
    g = dg.Graph()
    return g, g.param("x", X.copy())


# ------------------------------------------------------- x[idx] with Tensors ---


@pytest.mark.parametrize("make, numpy_index", [
    (lambda x, i: x[i], lambda i: (i,)),
    (lambda x, i: x[:, i], lambda i: (slice(None), i)),
    (lambda x, i: x[i, 1:], lambda i: (i, slice(1, None))),
    (lambda x, i: x[..., i, None], lambda i: (Ellipsis, i, None)),
])
def test_indexing_with_a_fed_integer_tensor_picks_and_accumulates_as_numpy(make, numpy_index):
    g, x = _graph()
    i = g.input("i", shape=(None,), dtype="int64")
    y = make(x, i)
    assert y.op == "index" and g.node(y).inputs == ("x", "i")
    rows = np.array([0, 3, 3, -1])                          # a repeated index, and a negative one
    res = g.backward(dg.sum(y * y), {"i": rows})
    np.testing.assert_array_equal(res.value(y), X[numpy_index(rows)])
    expected = np.zeros_like(X)
    np.add.at(expected, numpy_index(rows), 2 * X[numpy_index(rows)])
    np.testing.assert_array_equal(res.grad(x), expected)


def test_two_index_tensors_broadcast_together_and_the_static_shape_says_what_it_knows():
    g, x = _graph()
    i = g.input("i", shape=(None, 1), dtype="int64")
    j = g.const(np.array([0, 4, 4]))
    y = x[i, j]
    assert y.shape == (None, 3)
    rows = np.array([[1], [2]])
    np.testing.assert_array_equal(g.forward(y, {"i": rows}).value(y), X[rows, np.array([0, 4, 4])])


def test_a_computed_bool_mask_picks_an_unknown_number_of_entries():
    g, x = _graph()
    picked = x[(x > 4.5) & (x < 12.5)]
    assert picked.shape == (None,)
    res = g.backward(dg.sum(picked * picked))
    np.testing.assert_array_equal(res.value(picked), X[(X > 4.5) & (X < 12.5)])
    np.testing.assert_array_equal(res.grad(x), np.where((X > 4.5) & (X < 12.5), 2 * X, 0.0))


def test_a_bool_row_mask_with_slices_and_its_gradient_checks_against_finite_differences():
    g, x = _graph()
    mask = g.input("mask", shape=(4,), dtype="bool")
    y = x[mask, 1:3]
    assert y.shape == (None, 2)
    feeds = {"mask": np.array([True, False, True, True])}
    assert dg.gradcheck(g, loss=dg.sum(dg.tanh(y) ** 2), feeds=feeds, wrt=["x"])
    with pytest.raises(dg.ShapeError, match="boolean index did not match"):
        x[g.input("short", shape=(3,), dtype="bool")]


def test_indexing_with_a_tensor_differentiates_twice():
    g, x = _graph()
    i = g.const(np.array([1, 1, 2]))
    loss = dg.sum(x[i] ** 3)
    gx = dg.grad(loss, x)
    ggx = dg.grad(dg.sum(gx), x)                             # d/dx of sum(3 x^2 * count) = 6 x * count
    count = np.bincount([1, 1, 2], minlength=4)[:, None]
    np.testing.assert_allclose(g.forward(ggx).value(ggx), 6 * X * count)


def test_index_tensors_must_hold_integers_or_booleans_and_stay_in_range():
    g, x = _graph()
    with pytest.raises(dg.GraphError, match="index Tensors hold integers or booleans"):
        x[g.input("f", shape=(2,))]
    i = g.input("i", shape=(None,), dtype="int64")
    y = x[i]
    with pytest.raises(dg.DagradError, match="out of bounds"):
        g.forward(y, {"i": np.array([7])})


def test_a_graph_indexed_by_a_tensor_saves_and_loads(tmp_path):
    g, x = _graph()
    i = g.input("i", shape=(None,), dtype="int64")
    y = x[1:, i]
    dg.save(g, tmp_path / "m.dagrad")
    loaded = dg.load(tmp_path / "m.dagrad")
    value = loaded.forward(y.name, {"i": np.array([4, 0])}).value(y.name)
    np.testing.assert_array_equal(value, X[1:, [4, 0]])


# ------------------------------------------------------ gather and scatter ---


def test_take_along_axis_gathers_with_broadcasting_and_its_gradient_scatters_back():
    g, x = _graph()
    indices = g.input("indices", shape=(None, 2), dtype="int64")
    y = dg.take_along_axis(x, indices, axis=1)
    assert y.shape == (4, 2)
    picks = np.array([[0, 0], [4, 1], [2, 2], [3, 0]])        # the same column twice in rows 0 and 2
    res = g.backward(dg.sum(y), {"indices": picks})
    np.testing.assert_array_equal(res.value(y), np.take_along_axis(X, picks, axis=1))
    expected = np.zeros_like(X)
    np.add.at(expected, (np.arange(4)[:, None], picks), 1.0)
    np.testing.assert_array_equal(res.grad(x), expected)
    with pytest.raises(dg.ShapeError, match="integer indices"):
        dg.take_along_axis(x, np.zeros((4, 1)), axis=1)
    with pytest.raises(dg.ShapeError, match="as many axes"):
        dg.take_along_axis(x, np.zeros(2, np.int64), axis=1)


def test_scatter_add_accumulates_repeated_indices_and_gives_values_their_gathered_gradient():
    g = dg.Graph()
    base = g.param("base", np.zeros((2, 3)))
    values = g.param("values", np.array([[1.0, 2.0], [3.0, 4.0]]))
    y = dg.scatter_add(base, np.array([[2, 2], [0, 1]]), values, axis=1)
    res = g.backward(dg.sum(y * np.array([[1.0, 10.0, 100.0]])))
    np.testing.assert_array_equal(res.value(y), [[0.0, 0.0, 3.0], [3.0, 4.0, 0.0]])
    np.testing.assert_array_equal(res.grad(base), np.broadcast_to([1.0, 10.0, 100.0], (2, 3)))
    np.testing.assert_array_equal(res.grad(values), [[100.0, 100.0], [1.0, 10.0]])


def test_index_add_has_torch_semantics_and_both_operands_get_gradients():
    g = dg.Graph()
    x = g.param("x", np.ones((3, 2)))
    values = g.param("values", np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    y = dg.index_add(x, np.array([2, 0, 2]), values, axis=0)
    res = g.backward(dg.sum(y * y))
    expected = np.array([[4.0, 5.0], [1.0, 1.0], [7.0, 9.0]])
    np.testing.assert_array_equal(res.value(y), expected)
    np.testing.assert_array_equal(res.grad(x), 2 * expected)
    np.testing.assert_array_equal(res.grad(values), 2 * expected[[2, 0, 2]])


# ------------------------------------------------------- masked_fill ---


def test_masked_fill_with_minus_infinity_leaves_a_finite_softmax_and_no_gradient_at_filled_entries():
    g = dg.Graph()
    scores = g.param("scores", np.array([[0.5, 1.0, -1.0], [2.0, 0.0, 1.0]]))
    causal = np.triu(np.ones((2, 3), bool), k=1)
    masked = dg.masked_fill(scores, causal, -np.inf)
    res = g.backward(dg.sum(dg.softmax(masked) * np.array([1.0, 2.0, 3.0])))
    assert np.isfinite(res.grad(scores)).all()
    assert (res.grad(scores)[causal] == 0).all() and (res.grad(scores)[~causal] != 0).any()
    assert (res.value(masked)[causal] == -np.inf).all()


def test_masked_fill_with_a_tensor_value_gives_that_value_the_filled_entries_gradient():
    g = dg.Graph()
    x = g.param("x", np.ones((2, 2)))
    fill = g.param("fill", np.array(3.0))
    y = dg.masked_fill(x, np.array([[True, False], [True, True]]), fill)
    res = g.backward(dg.sum(y))
    assert res.grad(fill) == 3.0 and res.grad(x).tolist() == [[0.0, 1.0], [0.0, 0.0]]


def test_masked_fill_refuses_a_number_mask_and_a_value_its_entries_cannot_hold():
    g = dg.Graph()
    x = g.param("x", np.ones(3))
    with pytest.raises(dg.ShapeError, match="bool mask"):
        dg.masked_fill(x, np.array([1.0, 0.0, 1.0]), 0.0)
    with pytest.raises(dg.ShapeError, match="cannot be stored in int64"):
        dg.masked_fill(g.const(np.arange(3)), np.array([True, False, True]), -np.inf)


# ------------------------------------------------------------ one_hot ---


def test_one_hot_of_fed_labels_trains_a_loss_without_a_gradient_for_the_labels():
    g = dg.Graph()
    labels = g.input("labels", shape=(None,), dtype="int64")
    logits = g.param("logits", np.zeros((3, 4)))
    targets = dg.one_hot(labels, 4, dtype="float32")
    assert targets.shape == (None, 4) and targets.dtype == np.float32
    res = g.backward(-dg.sum(targets * dg.log_softmax(logits)), {"labels": np.array([0, 3, 3])})
    np.testing.assert_array_equal(res.value(targets), np.eye(4, dtype=np.float32)[[0, 3, 3]])
    np.testing.assert_allclose(res.grad(logits), 0.25 - np.eye(4)[[0, 3, 3]])


def test_one_hot_refuses_labels_outside_the_classes_and_an_unknown_class_count():
    g = dg.Graph()
    labels = g.input("labels", shape=(None,), dtype="int64")
    with pytest.raises(dg.DagradError, match=r"index 4 is not a class: the indices must lie in \[0, 4\)"):
        y = dg.one_hot(labels, 4)
        g.forward(y, {"labels": np.array([1, 4])})
    with pytest.raises(dg.ShapeError, match="num_classes must be a count"):
        dg.one_hot(labels, -1)
    with pytest.raises(dg.ShapeError, match="integer indices"):
        dg.one_hot(g.input("f", shape=(2,)), 3)


def test_masked_fill_with_an_array_value_or_a_tensor_mask_still_wants_a_bool_mask():
    g = dg.Graph()
    x = g.param("x", np.zeros((2, 2)))
    y = dg.masked_fill(x, x > -1, np.array([1.0, 2.0]))
    np.testing.assert_array_equal(g.forward(y).value(y), [[1.0, 2.0], [1.0, 2.0]])
    with pytest.raises(dg.ShapeError, match="bool mask"):
        dg.masked_fill(x, x + 1, g.param("v", np.array(1.0)))


def test_scatter_add_of_an_unknown_number_of_rows_takes_values_of_any_fed_row_count():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    y = dg.scatter_add(x, g.input("i", shape=(None, 1), dtype="int64"), g.input("v", shape=(4, 1)), axis=1)
    assert y.shape == (None, 3)
    value = g.forward(y, {"x": np.zeros((4, 3)), "i": np.array([[0], [2], [2], [1]]), "v": np.ones((4, 1))}).value(y)
    np.testing.assert_array_equal(value, np.eye(3)[[0, 2, 2, 1]])
