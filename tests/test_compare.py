"""Comparisons and logic build bool nodes without gradient; a Tensor never pretends to have a value it lacks."""

from __future__ import annotations

import operator

import numpy as np
import pytest

import dagrad as dg

A = np.array([[-1.0, 0.0, 2.0], [3.0, np.nan, -0.5]])
B = np.array([0.0, 0.0, 2.5])


def _graph():
    g = dg.Graph("compare")
    return g, g.input("a", shape=(None, 3)), g.input("b", shape=(3,))


def test_where_with_an_equality_condition_picks_per_entry():
    # Issue 8.8: `x == 0` was Python's False, so where() silently took the second branch everywhere.
    g, a, _ = _graph()
    y = dg.where(a == 0, 1.0, a)
    res = g.forward(y, {"a": A})
    np.testing.assert_array_equal(res.value(y), np.where(A == 0, 1.0, A))


@pytest.mark.parametrize("symbol, op_name, numpy_op", [
    ("==", "equal", operator.eq), ("!=", "not_equal", operator.ne), ("<", "less", operator.lt),
    ("<=", "less_equal", operator.le), (">", "greater", operator.gt), (">=", "greater_equal", operator.ge),
])
def test_each_comparison_operator_builds_its_op_and_computes_what_numpy_does(symbol, op_name, numpy_op):
    g, a, b = _graph()
    forms = {
        "tensor, tensor": (numpy_op(a, b), numpy_op(A, B)),
        "tensor, number": (numpy_op(a, 0.0), numpy_op(A, 0.0)),
        "number, tensor": (numpy_op(0.0, a), numpy_op(0.0, A)),
        "array, tensor": (numpy_op(B, a), numpy_op(B, A)),
    }
    for form, (node, expected) in forms.items():
        assert node.dtype == np.dtype(bool) and node.shape == (None, 3), form
        value = g.forward(node, {"a": A, "b": B}).value(node)
        assert value.dtype == np.bool_
        np.testing.assert_array_equal(value, expected, err_msg=f"{symbol} with {form}")
    assert numpy_op(a, b).op == op_name


@pytest.mark.parametrize("symbol, op_name, numpy_op", [
    ("&", "logical_and", operator.and_), ("|", "logical_or", operator.or_), ("^", "logical_xor", operator.xor),
])
def test_logical_operators_on_bool_tensors(symbol, op_name, numpy_op):
    g, a, b = _graph()
    p, q = a > 0, b > 0
    for node, expected in [(numpy_op(p, q), numpy_op(A > 0, B > 0)), (numpy_op(p, True), numpy_op(A > 0, True)),
                           (numpy_op(np.array([True, False, True]), p), numpy_op(np.array([True, False, True]), A > 0))]:
        assert node.op == op_name
        np.testing.assert_array_equal(g.forward(node, {"a": A, "b": B}).value(node), expected)
    inverted = ~p
    assert inverted.op == "logical_not"
    np.testing.assert_array_equal(g.forward(inverted, {"a": A}).value(inverted), ~(A > 0))


def test_bitwise_operators_on_numbers_are_refused_pointing_to_the_logical_ops():
    g, a, _ = _graph()
    with pytest.raises(dg.ShapeError, match=r"`&` is logical_and on bool Tensors.*dg\.logical_and"):
        a & (a > 0)
    with pytest.raises(dg.ShapeError, match=r"`~`.*float64.*~\(x > 0\)"):
        ~a
    with pytest.raises(dg.ShapeError, match="`|`"):
        (a > 0) | 1


def test_logical_ops_called_by_name_take_the_truth_of_numbers():
    g, a, b = _graph()
    node = dg.logical_and(a, b)
    np.testing.assert_array_equal(g.forward(node, {"a": A, "b": B}).value(node), np.logical_and(A, B))


def test_predicates_find_nan_and_infinities():
    g = dg.Graph()
    x = g.input("x", shape=(4,))
    values = np.array([1.0, np.nan, np.inf, -np.inf])
    for op, expected in [(dg.isnan, np.isnan), (dg.isfinite, np.isfinite), (dg.isinf, np.isinf)]:
        node = op(x)
        np.testing.assert_array_equal(g.forward(node, {"x": values}).value(node), expected(values))


def test_a_python_number_compared_with_a_float32_tensor_becomes_a_float32_constant():
    g = dg.Graph()
    x = g.input("x", shape=(2,), dtype="float32")
    node = x == 0.1
    const = g.node(node.node.inputs[1])
    assert const.dtype == np.float32
    assert g.forward(node, {"x": np.float32([0.1, 0.2])}).value(node).tolist() == [True, False]


def test_comparisons_have_no_gradient_and_a_parameter_behind_one_only_gets_zero():
    g = dg.Graph()
    w = g.param("w", np.array([-1.0, 2.0, 3.0]))
    loss = dg.sum(dg.where(w > 0, w * w, -w))   # the gradient flows through where's branches only
    res = g.backward(loss)
    np.testing.assert_allclose(res.grad(w), [-1.0, 4.0, 6.0])
    assert not dg.registry().op("greater").differentiable

    g2 = dg.Graph()
    w2 = g2.param("w", np.array([-1.0, 2.0]))
    only_through_a_comparison = dg.sum((w2 > 0).astype("float64"))
    res2 = g2.backward(only_through_a_comparison)
    np.testing.assert_array_equal(res2.grad(w2), [0.0, 0.0])   # constant almost everywhere, as in JAX
    assert "greater" not in res2.order                         # a bool node is never differentiated


# --------------------------------------------------- a Tensor has no value --


def test_truth_testing_a_tensor_raises_with_what_to_write_instead():
    g, a, _ = _graph()
    for attempt in (lambda: bool(a), lambda: 0 < a < 1, lambda: a > 0 and a < 1, lambda: not a):
        with pytest.raises(dg.SymbolicTensorError, match=r"no truth value.*dg\.where.*\(a < x\) & \(x < b\).*res\.value"):
            attempt()
    with pytest.raises(TypeError):  # also a TypeError, as Python's own conversions raise
        if a:
            pass


@pytest.mark.parametrize("convert", [float, int, complex])
def test_converting_a_tensor_to_a_number_points_to_res_value(convert):
    g, a, _ = _graph()
    with pytest.raises(dg.SymbolicTensorError, match=rf"{convert.__name__}\(res\.value\('sum'\)\)"):
        convert(dg.sum(a))


@pytest.mark.parametrize("call, names", [
    (lambda a: np.exp(a), ("np.exp", "dg.exp(")),
    (lambda a: np.add.reduce(a), ("np.add.reduce", "dg.add(")),
    (lambda a: np.negative(a), ("np.negative", "dg.neg(")),
    (lambda a: np.add(a, 1.0, out=np.empty(3)), ("np.add", "dg.add(")),
    (lambda a: np.sum(a), ("np.sum", "dg.sum(")),
    (lambda a: np.where(a, 1.0, 0.0), ("np.where", "dg.where(")),
    (lambda a: np.asarray(a), ("numpy cannot turn Tensor 'a' into an array", "dg.exp(x)")),
])
def test_numpy_on_a_tensor_raises_pointing_to_the_dagrad_op_and_to_res_value(call, names):
    g, a, _ = _graph()
    with pytest.raises(dg.SymbolicTensorError) as info:
        call(a)
    for name in names + ("res.value('a')",):
        assert name in str(info.value)
    assert len(g) == 2  # nothing was added


def test_numpy_operators_still_build_nodes():
    g, a, _ = _graph()
    assert (B * a).op == "mul" and (B - a).op == "sub" and (B / a).op == "div" and (B ** a).op == "pow"
    assert (np.float64(2.0) + a).op == "add" and (np.ones((3, 3)) @ a.T).op == "matmul"


def test_iterating_over_a_tensor_raises_instead_of_indexing_forever():
    g, a, _ = _graph()   # a's first axis is unknown: iteration through __getitem__ would never stop
    with pytest.raises(dg.SymbolicTensorError, match="cannot be iterated"):
        list(a)
    with pytest.raises(dg.SymbolicTensorError, match=r"needs its values.*`t == value`"):
        1.0 in a
    with pytest.raises(dg.SymbolicTensorError, match="cannot be a Python index"):
        range(dg.sum(a))


def test_tensors_stay_usable_as_dict_keys_and_set_members():
    g, a, b = _graph()
    seen = {a: "a", b: "b"}
    assert seen[a] == "a" and a in {a, b} and b in seen
    assert (a == None) is False and (a != "a") is True  # noqa: E711 - not comparable: identity, as any object
    assert len({a, a, b}) == 2
