"""The activations pack: every op passes check_op (first and second derivatives), computes PyTorch's numbers,
takes PyTorch's side at each kink, and refuses bad attributes by name."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import dagrad as dg
from dagrad.testing import op_tests

test_every_activation_passes_check_op = op_tests("activations")

OPS = ["gelu", "silu", "mish", "softplus", "logsigmoid", "elu", "selu", "celu", "hardtanh", "relu6", "hardsigmoid",
       "hardswish", "leaky_relu", "prelu", "softmin", "glu", "ndtr"]


def test_every_op_is_registered_by_the_activations_plugin_with_a_graph_vjp():
    reg = dg.registry()
    assert sorted(reg.plugins["activations"].ops) == sorted(OPS)
    assert all(reg.ops[name].plugin == "activations" and reg.ops[name].has_graph_vjp for name in OPS)
    assert all(reg.ops[name].counterparts.get("torch") for name in OPS)


def values_and_grads(op_name, *arrays, **attrs):
    g = dg.Graph()
    params = [g.param(f"a{i}", np.asarray(a, float)) for i, a in enumerate(arrays)]
    out = g.apply(op_name, params, attrs, name="out")
    res = g.backward(out.sum(), wrt=params)
    return (res.value(out), *[res.grad(p) for p in params])


# ----------------------------------------------------------------- gelu --


def test_gelu_is_exact_by_default_and_the_tanh_form_on_request():
    x = [-1.0, 0.0, 1.0]
    exact = [x_ * 0.5 * math.erfc(-x_ / math.sqrt(2)) for x_ in x]
    np.testing.assert_allclose(values_and_grads("gelu", x)[0], exact, rtol=1e-15)
    np.testing.assert_allclose(values_and_grads("gelu", x)[0], [-0.15865525393145707, 0.0, 0.8413447460685429])
    np.testing.assert_allclose(values_and_grads("gelu", x, approximate="tanh")[0], [-0.158808, 0.0, 0.841192],
                               atol=1e-6)


def test_ndtr_is_accurate_in_both_tails():
    # Φ to 16 digits (Abramowitz and Stegun's table; Φ(-10) from the asymptotic series)
    x = [-10.0, -3.0, 0.0, 1.96, 5.0]
    expected = [7.6198530241605260e-24, 1.3498980316300945e-3, 0.5, 0.9750021048517795, 0.9999997133484281]
    np.testing.assert_allclose(values_and_grads("ndtr", x)[0], expected, rtol=1e-13)


def test_the_second_derivative_of_exact_gelu_is_its_closed_form():
    g = dg.Graph()
    values = np.linspace(-3, 3, 7)
    x = g.param("x", values)
    hessian = dg.hessian(dg.sum(dg.ops.gelu(x)), x)            # diag(φ(x) (2 - x²))
    pdf = np.exp(-values ** 2 / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(g.forward(hessian).value(hessian), np.diag(pdf * (2 - values ** 2)), atol=1e-12)


# ---------------------------------------------------------- the kinks --

KINKS = np.array([-3.0, -2.0, 0.0, 3.0, 4.0])
SCALE, ALPHA = 1.0507009873554805, 1.6732632423543772

# gradients of sum(f(x)) at KINKS, from PyTorch 2.13
AT_KINKS = {
    "hardswish": [0.0, -1 / 6, 0.5, 1.0, 1.0],
    "hardsigmoid": [0.0, 1 / 6, 1 / 6, 0.0, 0.0],
    "relu6": [0.0, 0.0, 0.0, 1.0, 1.0],
    "hardtanh": [0.0, 0.0, 1.0, 0.0, 0.0],
    "elu": [math.exp(-3), math.exp(-2), 1.0, 1.0, 1.0],
    "celu": [math.exp(-3), math.exp(-2), 1.0, 1.0, 1.0],
    "selu": [SCALE * ALPHA * math.exp(-3), SCALE * ALPHA * math.exp(-2), SCALE * ALPHA, SCALE, SCALE],
    "leaky_relu": [0.01, 0.01, 0.01, 1.0, 1.0],
}


@pytest.mark.parametrize("op_name", sorted(AT_KINKS))
def test_the_gradient_at_each_kink_is_pytorchs(op_name):
    np.testing.assert_allclose(values_and_grads(op_name, KINKS)[1], AT_KINKS[op_name], rtol=1e-7)


def test_prelu_learns_one_slope_per_channel():
    x = np.array([[[-2.0, 3.0], [0.0, -1.0]], [[1.0, -4.0], [-0.5, 2.0]]])       # (N=2, C=2, 2)
    out, gx, gw = values_and_grads("prelu", x, [0.25, 0.5])
    np.testing.assert_allclose(out, np.where(x > 0, x, x * np.array([0.25, 0.5])[:, None]))
    np.testing.assert_allclose(gx, np.where(x > 0, 1.0, np.array([0.25, 0.5])[:, None]) * np.ones_like(x))
    np.testing.assert_allclose(gw, [-2.0 + 0.0 - 4.0, -1.0 - 0.5])           # x at x <= 0, per channel
    _, _, one = values_and_grads("prelu", x, [0.25])
    np.testing.assert_allclose(one, [-7.5])


def test_softplus_follows_beta_and_is_exactly_linear_past_the_threshold():
    x = np.array([-30.0, 0.0, 9.0, 10.5, 800.0])
    out, gx = values_and_grads("softplus", x, beta=2.0, threshold=20.0)
    assert out[3] == 10.5 and out[4] == 800.0 and gx[3] == gx[4] == 1.0
    np.testing.assert_allclose(out[:3], np.log1p(np.exp(2 * x[:3])) / 2)


def test_softmin_is_softmax_of_the_negation_and_glu_gates_one_half_with_the_other():
    x = np.random.default_rng(0).standard_normal((3, 4))
    e = np.exp(-x)
    np.testing.assert_allclose(values_and_grads("softmin", x, axis=0)[0], e / e.sum(axis=0))
    out = values_and_grads("glu", x, axis=-1)[0]
    np.testing.assert_allclose(out, x[:, :2] / (1 + np.exp(-x[:, 2:])))


def test_large_inputs_neither_overflow_nor_lose_the_small_values():
    x = np.array([-800.0, -40.0, 40.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no overflow warning from numpy
        for op_name in ["gelu", "silu", "mish", "softplus", "logsigmoid", "elu", "selu", "celu", "ndtr"]:
            out, gx = values_and_grads(op_name, x)
            assert np.isfinite(out).all() and np.isfinite(gx).all(), op_name
    np.testing.assert_allclose(values_and_grads("logsigmoid", x)[0][:2], [-800.0, -40.0])
    np.testing.assert_allclose(values_and_grads("mish", x)[0][2:], [40.0, 800.0])


# ---------------------------------------------------------------- refusals --


@pytest.mark.parametrize("call, message", [
    (lambda x: dg.ops.gelu(x, approximate="erf"), "approximate must be 'none'"),
    (lambda x: dg.ops.hardtanh(x, min_val=2.0, max_val=1.0), r"min_val \(2.0\) cannot be greater than max_val"),
    (lambda x: dg.ops.celu(x, alpha=0.0), "alpha must be a nonzero number"),
    (lambda x: dg.ops.softplus(x, beta=0), "beta must be a nonzero number"),
    (lambda x: dg.ops.glu(x, axis=1), "whose size 3 is odd"),
    (lambda x: dg.ops.glu(x, axis=0), "must be known when the graph is built"),
    (lambda x: dg.ops.softmin(x, axis=2), "axis"),
    (lambda x: dg.ops.prelu(x, np.ones(2)), "2 slopes but the input has 3 channels"),
    (lambda x: dg.ops.prelu(x, np.ones((3, 1))), "a number or a vector"),
])
def test_bad_attributes_are_a_shape_error_naming_the_node(call, message):
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    with pytest.raises(dg.ShapeError, match=message):
        call(x)


def test_leaky_relus_old_attribute_name_still_works_and_warns():
    x = np.array([-2.0, 3.0])
    with pytest.warns(DeprecationWarning, match="negative_slope"):
        old = values_and_grads("leaky_relu", x, slope=0.2)
    np.testing.assert_allclose(old[0], values_and_grads("leaky_relu", x, negative_slope=0.2)[0])
    np.testing.assert_allclose(old[0], [-0.4, 3.0])
