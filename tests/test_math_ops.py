"""The math ops where check_op's finite differences cannot see: erf to the last bits, rounding's jumps, arctan2's
origin, and dtypes numpy and PyTorch users rely on. (Every op's gradients and second derivatives are checked by
test_op_gradients.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dagrad as dg


def run(fn, x, dtype=None):
    """``(value, gradient of sum(value))`` of ``fn`` applied to a param holding ``x``."""
    g = dg.Graph()
    p = g.param("x", np.asarray(x, dtype=dtype))
    y = fn(p)
    res = g.backward(dg.sum(y), keep="all")
    return res.value(y), res.grad(p)


# ------------------------------------------------------------------ erf ---

# A dense grid over the whole line, the boundaries of Cody's three approximations, and the far tails.
ERF_POINTS = np.concatenate([
    np.linspace(-30, 30, 60001),
    np.geomspace(1e-300, 30, 4000), -np.geomspace(1e-300, 30, 4000),
    [0.46875, np.nextafter(0.46875, 1), 4.0, np.nextafter(4.0, 5), 26.543, 27.2, 27.3],
])


def _ulps(got, want):
    return np.abs(got - want) / np.spacing(np.abs(want))


@pytest.mark.parametrize("name, reference", [("erf", math.erf), ("erfc", math.erfc)])
def test_erf_and_erfc_agree_with_pythons_math_module_to_a_few_units_in_the_last_place(name, reference):
    want = np.array([reference(v) for v in ERF_POINTS])
    got = dg.registry().op(name).forward(ERF_POINTS)
    assert _ulps(got, want).max() <= 8, ERF_POINTS[np.argmax(_ulps(got, want))]
    beyond = ERF_POINTS > 27.3                          # erfc below the smallest subnormal double
    assert np.all(got[beyond] == want[beyond])


def test_erfc_keeps_its_precision_in_the_tail_where_one_minus_erf_is_zero():
    x = np.array([6.0, 10.0, 26.0])
    got = dg.erfc.forward(x)
    assert np.all(got > 0) and np.all(1 - dg.erf.forward(x) == 0)
    np.testing.assert_allclose(got, [math.erfc(v) for v in x], rtol=1e-14)


def test_erf_of_special_values_and_its_float32_output():
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(dg.erf.forward(special), [0.0, -0.0, 1.0, -1.0, np.nan])
    np.testing.assert_array_equal(dg.erfc.forward(special), [1.0, 1.0, 0.0, 2.0, np.nan])
    assert np.signbit(dg.erf.forward(np.array([-0.0])))[0]
    value, grad = run(dg.erf, [0.3, -1.2], dtype=np.float32)
    assert value.dtype == grad.dtype == np.float32
    np.testing.assert_allclose(grad, 2 / math.sqrt(math.pi) * np.exp(-np.float32([0.3, -1.2]) ** 2), rtol=1e-6)


# ------------------------------------------------------------- rounding ---


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "sign"])
def test_rounding_ops_have_gradient_zero_even_at_their_jumps(name):
    jumps = np.array([-2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.5])
    value, grad = run(dg.registry().op(name), jumps)
    np.testing.assert_array_equal(grad, np.zeros_like(jumps))
    np.testing.assert_array_equal(value, getattr(np, name if name != "round" else "round")(jumps))


def test_round_rounds_halves_to_even_like_numpy_and_pytorch():
    halves = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
    value, _ = run(dg.round, halves)
    np.testing.assert_array_equal(value, [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 4.0])
    value, _ = run(lambda x: dg.round(x, 1), [0.25, 0.35, -1.26])
    np.testing.assert_array_equal(value, np.round([0.25, 0.35, -1.26], 1))


def test_a_parameter_reached_only_through_rounding_gets_a_zero_gradient_to_any_order():
    g = dg.Graph()
    x = g.param("x", np.array([0.4, 1.6, -2.2]))
    loss = dg.sum(dg.floor(x * 3) * x + dg.sign(x) * dg.ceil(x))
    (gx,) = dg.grad(loss, [x])
    np.testing.assert_array_equal(g.forward(gx).value(gx), np.floor(np.array([0.4, 1.6, -2.2]) * 3))
    hess = dg.hessian(loss, x)
    np.testing.assert_array_equal(g.forward(hess).value(hess), np.zeros((3, 3)))


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
def test_rounding_keeps_integer_and_bool_dtypes(dtype):
    g = dg.Graph()
    x = g.const(np.array([0, 1, 1], dtype=dtype))
    for op in (dg.floor, dg.ceil, dg.round, dg.sign):
        y = op(x)
        value = g.forward(y).value(y)
        assert y.dtype == value.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(value, np.array([0, 1, 1], dtype=dtype))


def test_sign_of_zero_is_zero_and_nan_stays_nan():
    value, grad = run(dg.sign, [-3.0, -0.0, 0.0, 2.0, np.nan])
    np.testing.assert_array_equal(value, [-1.0, 0.0, 0.0, 1.0, np.nan])
    np.testing.assert_array_equal(grad, np.zeros(5))


# --------------------------------------------------------------- arctan2 ---


def test_arctan2_has_gradient_zero_at_the_origin_and_the_usual_one_elsewhere():
    g = dg.Graph()
    y = g.param("y", np.array([0.0, 1.0, -2.0]))
    x = g.param("x", np.array([0.0, 1.0, 0.5]))
    angle = dg.arctan2(y, x)
    res = g.backward(dg.sum(angle))
    np.testing.assert_allclose(res.grad(y), [0.0, 1.0 / 2, 0.5 / 4.25])
    np.testing.assert_allclose(res.grad(x), [0.0, -1.0 / 2, 2.0 / 4.25])
    hess = dg.hessian(dg.sum(angle), y)
    assert np.isfinite(g.forward(hess).value(hess)).all()


def test_arctan2_of_the_same_input_twice_is_a_quarter_turn_with_zero_gradient():
    value, grad = run(lambda t: dg.arctan2(t, t), [1.0, 2.0])
    np.testing.assert_allclose(value, [math.pi / 4] * 2)
    np.testing.assert_allclose(grad, [0.0, 0.0], atol=1e-15)


# ---------------------------------------------------------------- dtypes ---


def test_square_keeps_integers_and_reciprocal_of_integers_is_a_float_as_in_pytorch():
    g = dg.Graph()
    n = g.const(np.array([2, 4], dtype=np.int32))
    sq, rec = dg.square(n), dg.reciprocal(n)
    res = g.forward([sq, rec])
    assert sq.dtype == res.value(sq).dtype == np.int32
    np.testing.assert_array_equal(res.value(rec), [0.5, 0.25])
    assert rec.dtype == np.float64


@pytest.mark.parametrize("name, x", [
    ("arcsin", [-0.5, 0.25]), ("arccos", [-0.5, 0.25]), ("arctan", [-3.0, 0.25]), ("sinh", [-1.0, 2.0]),
    ("cosh", [-1.0, 2.0]), ("tan", [-1.0, 0.5]), ("arcsinh", [-3.0, 0.5]), ("arccosh", [1.5, 4.0]),
    ("arctanh", [-0.5, 0.9]), ("log1p", [-0.5, 1e-10]), ("expm1", [-2.0, 1e-10]), ("log2", [0.5, 8.0]),
    ("log10", [0.5, 1000.0]),
])
def test_math_ops_compute_what_numpy_computes(name, x):
    value, _ = run(dg.registry().op(name), x)
    np.testing.assert_allclose(value, getattr(np, name)(np.array(x)), rtol=1e-15)


def test_rsqrt_is_one_over_the_square_root():
    value, grad = run(dg.rsqrt, [4.0, 0.25])
    np.testing.assert_allclose(value, [0.5, 2.0])
    np.testing.assert_allclose(grad, [-0.5 * 4.0 ** -1.5, -0.5 * 0.25 ** -1.5])


def test_sum_of_bool_and_small_integers_runs_and_declares_numpys_int64():
    g = dg.Graph()
    for data, want in [(np.array([True, False, True]), np.int64), (np.arange(3, dtype=np.int32), np.int64),
                       (np.arange(3, dtype=np.uint8), np.uint64), (np.ones(2, np.float32), np.float32)]:
        total = dg.sum(g.const(data))
        value = g.forward(total).value(total)
        assert total.dtype == value.dtype == want
        assert value == data.sum()
