"""Every op, built-in or from a bundled plugin, passes dagrad.testing.check_op on its samples (finite
differences in float64, shape and dtype rules against the forward, unknown sizes, one gradient per input,
float32 kept float32, mixed float32/float64 inputs, small-integer inputs of float ops), and its samples
cover the shapes that break gradient code."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg
from dagrad.testing import check_op

BUNDLED_PLUGINS = {"builtins", "activations", "conv"}
OPS = sorted(name for name, op in dg.registry().ops.items() if op.plugin in BUNDLED_PLUGINS)


def test_the_bundled_plugins_provide_every_op_the_engine_promises():
    promised = {
        "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "sin", "cos", "tanh", "sigmoid",
        "relu", "maximum", "minimum", "where", "clip", "matmul", "sum", "mean", "max", "min", "reshape",
        "transpose", "broadcast_to", "expand_dims", "squeeze", "concatenate", "stack", "getitem", "softmax",
        "log_softmax", "logsumexp", "softmax_cross_entropy", "mse", "einsum",
        "gelu", "silu", "softplus", "elu", "leaky_relu",
        "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
        "logical_and", "logical_or", "logical_xor", "logical_not", "isfinite", "isnan", "isinf",
    }
    assert promised <= set(OPS)


@pytest.mark.parametrize("name", OPS)
def test_op_passes_the_full_check_on_every_sample(name):
    # Finite differences in float64, shape and dtype rules, VJP arity, float32 preservation, and for an op
    # with a graph VJP: agreement with the numpy VJP and second derivatives against finite differences.
    report = check_op(name)
    assert report.cases, f"op {name!r} has no samples"
    if name != "vjp":  # the op that runs another op's numpy VJP cannot be differentiated, and says so
        assert report.second_order == dg.registry().op(name).has_graph_vjp


def test_the_core_ops_have_graph_vjps_so_dg_grad_can_differentiate_them_again():
    core = {
        "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "sin", "cos", "tanh", "sigmoid",
        "relu", "sum", "mean", "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze", "matmul", "where",
        "maximum", "minimum", "getitem", "take", "concatenate", "stack", "softmax", "log_softmax", "logsumexp", "mse",
        "max", "min", "clip", "astype", "sum_to", "broadcast_like", "reshape_like", "add_at", "index_add", "split_like",
    }
    assert {name for name in core if not dg.registry().op(name).has_graph_vjp} == set()


def _shapes(sample):
    return [np.shape(a) for a in sample.args]


@pytest.mark.parametrize("name", OPS)
def test_samples_include_size_zero_and_size_one_dimensions(name):
    samples = dg.registry().op(name).samples(np.random.default_rng(0))
    dims = [d for s in samples for shape in _shapes(s) for d in shape]
    assert 1 in dims or any(shape == () for s in samples for shape in _shapes(s)), name
    # Reductions over nothing are undefined for max/min; every other op must handle an empty array.
    if name not in {"max", "min"}:
        assert 0 in dims, f"op {name!r} has no sample with a size-0 dimension"


@pytest.mark.parametrize("name", [n for n in OPS if dg.registry().op(n).arity != 1])
def test_samples_of_multi_input_ops_broadcast_or_repeat_an_input(name):
    samples = dg.registry().op(name).samples(np.random.default_rng(0))
    repeated = any(len({id(a) for a in s.args}) < len(s.args) for s in samples)
    differing = any(len(set(_shapes(s))) > 1 for s in samples)
    assert repeated or differing
    # Ops whose inputs cannot be one array: labels, indices or masks beside floats, a 1-D statistic beside
    # its batch, or (diagonal_transpose) one no array can share.
    cannot_repeat = {"softmax_cross_entropy", "binary_cross_entropy_with_logits", "take", "where", "dropout",
                     "take_along_axis", "masked_fill", "diagonal_transpose", "class_mask", "batch_norm_update",
                     "dropout_mask"}
    if name not in cannot_repeat:
        assert repeated, f"op {name!r} has no sample using the same input twice"


# ------------------------------------------- issue 8.15: edge cases against PyTorch ---


def test_pow_samples_include_x_to_the_zero_at_zero_and_its_gradient_is_zero():
    labels = [s.label for s in dg.registry().op("pow").samples(np.random.default_rng(0))]
    assert any("x ** 0 at x = 0" in label for label in labels)
    g = dg.Graph()
    x = g.param("x", np.array([0.0, 2.0]))
    res = g.backward(dg.sum(x ** 0))
    np.testing.assert_array_equal(res.grad(x), [0.0, 0.0])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_takes_targets_wider_than_its_logits(reduction):
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(3,)), rng.uniform(size=(2, 3))
    report = dg.gradcheck(dg.ops.binary_cross_entropy_with_logits, logits, targets, reduction=reduction)
    assert report, str(report)


def test_binary_cross_entropy_keeps_float32_logits_float32_beside_float64_targets():
    g = dg.Graph()
    logits = g.param("logits", np.array([0.3, -1.2, 2.0], np.float32))
    targets = g.param("targets", np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]]))    # float64, and wider
    loss = dg.binary_cross_entropy_with_logits(logits, targets)
    res = g.backward(loss, wrt=[logits, targets])
    assert loss.dtype == np.float32 and res.value(loss).dtype == np.float32
    assert res.grad(logits).dtype == np.float32 and res.grad(targets).dtype == np.float64
    assert res.grad(targets).shape == (2, 3)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "bool"])
def test_float_ops_on_small_integers_compute_in_the_float64_they_declare(dtype):
    g = dg.Graph()
    x = g.const(np.array([12, 1], dtype=dtype))
    for name in ("exp", "log", "sqrt", "sin", "tanh", "sigmoid", "div", "softmax", "gelu"):
        op = dg.registry().op(name)
        node = g.apply(name, [x] * (op.arity or 1))
        value = g.forward(node).value(node)
        assert node.dtype == value.dtype == np.float64, name
    y = dg.exp(x)
    np.testing.assert_allclose(g.forward(y).value(y), np.exp(np.array([12, 1], dtype=dtype).astype(np.float64)))


def test_where_with_a_python_number_keeps_a_float32_graph_float32():
    g = dg.Graph()
    y = g.input("y", shape=(3,), dtype="float32")
    out = dg.where(y > 0, 0.0, y)
    assert out.dtype == np.float32
    assert g.forward(out, {"y": np.float32([1, -2, 3])}).value(out).dtype == np.float32
