"""argmax/argmin, any/all, argsort, sort, topk and values-with-indices: ties, NaN, stability, refusals, and gradients
that go back to where each value came from, to the second order."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg


def forward(fn, x):
    g = dg.Graph()
    out = fn(g.const(np.asarray(x)))
    outs = list(out) if isinstance(out, tuple) else [out]
    res = g.forward(outs)
    return [res.value(t) for t in outs] if isinstance(out, tuple) else res.value(out)


# ------------------------------------------------------- argmax, argmin ---


def test_argmax_and_argmin_give_the_first_of_ties_as_int64_and_count_nan_as_the_extreme():
    x = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, -1.0, 0.5, -1.0]])
    assert forward(lambda t: dg.argmax(t, 1), x).tolist() == [1, 0]
    assert forward(lambda t: dg.argmin(t, 1), x).tolist() == [3, 1]
    assert forward(lambda t: dg.argmax(t), x) == 1                                   # a flat index, as numpy
    assert forward(lambda t: dg.argmax(t, 0, keepdims=True), x).shape == (1, 4)
    assert forward(lambda t: dg.argmax(t), [0.5, np.nan, 9.0]) == 1
    assert forward(lambda t: dg.argmin(t), [0.5, np.nan, -9.0]) == 1
    assert forward(lambda t: dg.argmax(t, 1), x).dtype == np.int64


def test_argmax_of_an_empty_axis_is_refused_when_the_node_is_added():
    g = dg.Graph()
    with pytest.raises(dg.ShapeError, match="empty axis"):
        dg.argmax(g.input("x", shape=(None, 0)), 1)
    assert dg.argmax(g.input("y", shape=(0, 3)), 1).shape == (0,)                  # empty, but nothing to reduce


def test_a_loss_through_an_argmax_gives_its_input_no_gradient():
    g = dg.Graph()
    x = g.param("x", np.array([0.2, 0.9, 0.4]))
    picked = dg.take(x, dg.argmax(x))
    np.testing.assert_array_equal(g.backward(picked).grad(x), [0.0, 1.0, 0.0])      # through take only


# ------------------------------------------------------------- any, all ---


def test_any_and_all_read_nonzero_as_true_and_reduce_empty_axes_like_numpy():
    x = np.array([[0.0, np.nan, 0.0], [0.0, 0.0, 0.0]])
    assert forward(lambda t: dg.any(t, 1), x).tolist() == [True, False]
    assert forward(lambda t: dg.all(t, 0, keepdims=True), x + 1).tolist() == [[True, True, True]]
    assert forward(lambda t: dg.all(t, 1), np.zeros((2, 0))).tolist() == [True, True]
    assert forward(lambda t: dg.any(t, 1), np.zeros((2, 0))).tolist() == [False, False]
    assert forward(dg.any, x).dtype == np.bool_


# ------------------------------------------------------- argsort, sort ---


def test_sorting_is_stable_in_both_directions_and_puts_nan_where_pytorch_does():
    x = np.array([2.0, 1.0, 2.0, np.nan, 1.0])
    assert forward(dg.argsort, x).tolist() == [1, 4, 0, 2, 3]
    assert forward(lambda t: dg.argsort(t, descending=True), x).tolist() == [3, 0, 2, 1, 4]
    values, indices = forward(lambda t: dg.sort(t, descending=True, return_indices=True), x)
    np.testing.assert_array_equal(values, [np.nan, 2.0, 2.0, 1.0, 1.0])
    assert indices.tolist() == [3, 0, 2, 1, 4]


def test_sort_along_any_axis_matches_numpy():
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    for axis in (0, 1, -1):
        np.testing.assert_array_equal(forward(lambda t: dg.sort(t, axis), x), np.sort(x, axis=axis))
        np.testing.assert_array_equal(forward(lambda t: dg.sort(t, axis, descending=True), x),
                                      np.flip(np.sort(x, axis=axis), axis))


def test_sort_sends_each_gradient_back_to_where_the_value_came_from_to_the_second_order():
    g = dg.Graph()
    x = g.param("x", np.array([0.3, -1.0, 2.0, 0.5]))
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    loss = dg.sum(dg.sort(x) * weights * dg.sort(x))                   # sum_i w_i x_(i)^2
    (gx,) = dg.grad(loss, [x])
    hess = dg.hessian(loss, x)
    res = g.forward([gx, hess])
    rank = np.array([1, 0, 3, 2])                                      # where each entry lands
    np.testing.assert_allclose(res.value(gx), 2 * weights[rank] * np.array([0.3, -1.0, 2.0, 0.5]))
    np.testing.assert_allclose(res.value(hess), np.diag(2 * weights[rank]))
    np.testing.assert_allclose(g.backward(loss).grad(x), res.value(gx))


def test_sort_refuses_a_scalar():
    g = dg.Graph()
    with pytest.raises(dg.ShapeError, match="0-d"):
        dg.sort(g.const(np.array(1.0)))


# ----------------------------------------------------------------- topk ---


def test_topk_returns_values_and_indices_as_two_nodes_like_torch_topk():
    g = dg.Graph()
    x = g.param("x", np.array([[0.5, 2.0, -1.0, 2.0], [3.0, 0.0, 1.0, -2.0]]))
    top = dg.topk(x, 2, name="best")
    assert isinstance(top, dg.ValuesIndices) and top.values.op == "topk" and top.indices.dtype == np.int64
    assert top.indices.name == "best_indices"
    res = g.forward([top.values, top.indices])
    np.testing.assert_array_equal(res.value(top.values), [[2.0, 2.0], [3.0, 1.0]])
    assert res.value(top.indices).tolist() == [[1, 3], [0, 2]]                     # ties: the earlier first
    low = dg.topk(x, 1, axis=0, largest=False)
    res = g.forward(list(low))
    assert res.value(low.values).tolist() == [[0.5, 0.0, -1.0, -2.0]]
    assert res.value(low.indices).tolist() == [[0, 1, 0, 1]]


def test_topk_gradient_reaches_only_the_selected_entries_to_the_second_order():
    g = dg.Graph()
    x = g.param("x", np.array([0.1, 0.7, -0.3, 0.9, 0.2]))
    values, _ = dg.topk(x, 2)
    loss = dg.sum(values ** 3)
    (gx,) = dg.grad(loss, [x])
    hess = dg.hessian(loss, x)
    res = g.forward([gx, hess])
    np.testing.assert_allclose(res.value(gx), [0.0, 3 * 0.49, 0.0, 3 * 0.81, 0.0])
    np.testing.assert_allclose(res.value(hess), np.diag([0.0, 6 * 0.7, 0.0, 6 * 0.9, 0.0]))


def test_topk_with_an_unknown_axis_length_and_its_refusals():
    g = dg.Graph()
    x = g.input("x", shape=(2, None))
    values, indices = dg.topk(x, 3)
    assert values.shape == indices.shape == (2, 3)
    (gx,) = dg.grad(dg.sum(values * values), [x])
    data = np.array([[1.0, 5.0, 3.0, 4.0], [0.0, -1.0, 2.0, 1.0]])
    np.testing.assert_allclose(g.forward(gx, {"x": data}).value(gx), [[0, 10, 6, 8], [0, 0, 4, 2]])
    with pytest.raises(dg.ShapeError, match="k=5 is more than the 4"):
        dg.topk(g.input("y", shape=(4,)), 5)
    with pytest.raises(dg.ShapeError, match="non-negative integer"):
        dg.topk(x, -1)


# ------------------------------------------------------- values, indices ---


@pytest.mark.parametrize("name, arg", [("max", np.argmax), ("min", np.argmin)])
def test_max_and_min_return_indices_like_torch_max_with_a_dim(name, arg):
    x = np.array([[3.0, 1.0, 3.0], [0.0, 4.0, -2.0]])
    g = dg.Graph()
    p = g.param("x", x)
    found = getattr(dg, name)(p, 1, return_indices=True)
    values, indices = found
    res = g.forward([values, indices])
    np.testing.assert_array_equal(res.value(values), getattr(np, name)(x, axis=1))
    np.testing.assert_array_equal(res.value(indices), arg(x, axis=1))
    assert found.values is values and found.indices is indices
    kept = getattr(dg, name)(p, 0, keepdims=True, return_indices=True)
    assert kept.values.shape == kept.indices.shape == (1, 3)


def test_permute_along_refuses_what_is_not_a_permutation():
    g = dg.Graph()
    x = g.const(np.arange(4.0))
    for bad, message in [(np.array([0, 0, 1, 2]), "not a permutation"), (np.array([0, 1, 2, 7]), "outside")]:
        y = dg.ops.permute_along(x, g.const(bad), axis=0)
        with pytest.raises(dg.OpError, match=message):
            g.forward(y)
