"""Gradients of whole graphs match finite differences: an MLP with softmax cross-entropy, fan-out and
shared parameters, and random DAGs that hypothesis builds from the op set."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dagrad as dg


def test_mlp_with_softmax_cross_entropy_matches_finite_differences():
    rng = np.random.default_rng(0)
    g = dg.Graph("mlp")
    x = g.input("x", shape=(None, 5), dtype="float32")
    y = g.input("y", shape=(None,), dtype="int64")
    h = x
    for i, (n_in, n_out) in enumerate([(5, 8), (8, 6), (6, 3)]):
        with g.scope(f"fc{i}"):
            h = h @ g.param("W", rng.normal(size=(n_in, n_out)).astype(np.float32)) + g.param("b", rng.normal(size=n_out).astype(np.float32))
            if i < 2:
                h = dg.tanh(h)
    loss = dg.softmax_cross_entropy(h, y)
    feeds = {"x": rng.normal(size=(7, 5)), "y": rng.integers(0, 3, size=7)}
    report = dg.gradcheck(g, loss=loss, feeds=feeds)
    assert report, str(report)
    assert {c.name for c in report.checks} == {f"fc{i}/{p}" for i in range(3) for p in "Wb"}


def test_shared_parameters_and_fan_out_accumulate_correctly():
    rng = np.random.default_rng(1)
    g = dg.Graph("shared")
    x = g.input("x", shape=(4, 3))
    W = g.param("W", rng.normal(size=(3, 3)))
    h1 = dg.tanh(x @ W)
    h2 = dg.sigmoid(h1 @ W)          # W used twice
    both = dg.concatenate([h1, h2, h1 * h2], axis=1)  # h1 and h2 fan out
    loss = dg.logsumexp(both, axis=1).sum() + (W * W).sum() * 0.1
    report = dg.gradcheck(g, loss=loss, feeds={"x": rng.normal(size=(4, 3))}, wrt=[W, x])
    assert report, str(report)


def test_gradcheck_reports_the_worst_node_with_both_values(fresh_registry):
    @dg.op(shape=dg.shapes.same_as_first, saves=("inputs",))
    def bad_square(x):
        "x**2 with a VJP off by a factor of two"
        return x * x

    @bad_square.vjp
    def _(g, x, out):
        return (g * x,)

    dg.register_ops(bad_square, plugin="buggy")
    report = dg.gradcheck(dg.ops.bad_square, np.array([1.0, 3.0]))
    assert not report
    text = str(report)
    assert "op 'bad_square' from buggy: FAILED" in text and "'input0'" in text
    assert "analytic" in text and "numeric" in text
    worst = report.worst
    assert worst.numeric[worst.worst_index] == pytest.approx(2 * worst.analytic[worst.worst_index])


# ---------------------------------------------------------- random DAGs ---

# Besides plain arithmetic, the cases of issue 8.15 join the mix: x ** 0 at x = 0, where() with a Python
# number (in float32 graphs too), binary cross-entropy with either side the wider one and with float32
# logits meeting float64 targets, slicing and squeezing, and leaves whose sizes are unknown until fed.
UNARY = ["tanh", "sin", "sigmoid", "exp_small", "square", "neg", "pow0_at_zero", "where_number",
         "slice_roundtrip", "squeeze_roundtrip", "uint8_scale"]
BINARY = ["add", "sub", "mul", "maximum_shifted", "div_safe", "bce_mean", "bce_none"]


def _apply_unary(kind, t):
    if kind == "exp_small":
        return dg.exp(t * 0.3)
    if kind == "square":
        return t * t
    if kind == "pow0_at_zero":
        return t + (t * 0.0) ** 0              # d/dx x**0 at x = 0 is 0, not NaN
    if kind == "where_number":
        return dg.where(t > 0.25, t, 0.5)      # a computed condition, a Python number in the other branch
    if kind == "slice_roundtrip":
        return t if t.ndim == 0 else dg.concatenate([t[..., :1], t[..., 1:]], axis=-1)
    if kind == "squeeze_roundtrip":
        return dg.squeeze(dg.expand_dims(t, 0), 0)
    if kind == "uint8_scale":                  # exp of uint8 12 computes in float64, not float16 (inf)
        return t * (dg.exp(t.graph.const(np.uint8(12))) * 1e-5).astype(t.dtype)
    return dg.apply(kind, t)


def _apply_binary(kind, a, b):
    if kind == "maximum_shifted":
        return dg.maximum(a, b + 0.37)  # avoid exact ties
    if kind == "div_safe":
        return a / (b * b + 1.0)
    if kind.startswith("bce_"):        # targets in (0, 1), and either side may be the wider one
        return dg.binary_cross_entropy_with_logits(a, dg.sigmoid(b), reduction=kind[4:])
    return dg.apply(kind, a, b)


@st.composite
def random_dags(draw):
    """A recipe for a DAG: each step applies an op to earlier nodes (any of them: fan-out happens)."""
    n_leaves = draw(st.integers(1, 3))
    shapes = draw(st.lists(st.sampled_from([(3,), (2, 3), (1, 3), ()]), min_size=n_leaves, max_size=n_leaves))
    fed = draw(st.lists(st.booleans(), min_size=n_leaves, max_size=n_leaves))  # inputs of unknown sizes
    float32 = draw(st.lists(st.booleans(), min_size=n_leaves, max_size=n_leaves))
    steps = []
    for k in range(draw(st.integers(1, 8))):
        available = n_leaves + k
        if draw(st.booleans()):
            steps.append(("u", draw(st.sampled_from(UNARY)), draw(st.integers(0, available - 1))))
        else:
            steps.append(("b", draw(st.sampled_from(BINARY)), draw(st.integers(0, available - 1)), draw(st.integers(0, available - 1))))
    reduce_to = draw(st.sampled_from(["sum", "mean", "logsumexp"]))
    seed = draw(st.integers(0, 2**16))
    return shapes, fed, float32, steps, reduce_to, seed


def build_dag(recipe) -> tuple:
    """``(graph, scalar loss, leaves, feeds)`` for a ``random_dags`` recipe."""
    shapes, fed, float32, steps, reduce_to, seed = recipe
    rng = np.random.default_rng(seed)
    g = dg.Graph("random")
    leaves, feeds = [], {}
    for i, (shape, is_fed, narrow) in enumerate(zip(shapes, fed, float32)):
        value = rng.uniform(-1, 1, size=shape).astype(np.float32 if narrow else np.float64)
        if is_fed:
            leaves.append(g.input(f"x{i}", shape=(None,) * len(shape), dtype=value.dtype))
            feeds[f"x{i}"] = value
        else:
            leaves.append(g.param(f"p{i}", value))
    nodes = list(leaves)
    for step in steps:
        if step[0] == "u":
            nodes.append(_apply_unary(step[1], nodes[step[2]]))
        else:
            nodes.append(_apply_binary(step[1], nodes[step[2]], nodes[step[3]]))
    # Every node reaches the loss, so dead branches are exercised as fan-out too.
    total = dg.sum(nodes[-1]) if reduce_to == "sum" else dg.mean(nodes[-1]) if reduce_to == "mean" else dg.logsumexp(nodes[-1])
    for extra in nodes[:-1]:
        total = total + dg.sum(extra) * 0.1
    return g, total, leaves, feeds


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags())
def test_random_dags_match_finite_differences(recipe):
    g, total, leaves, feeds = build_dag(recipe)
    report = dg.gradcheck(g, loss=total, feeds=feeds, wrt=leaves, atol=1e-5, rtol=1e-4)
    assert report, str(report)
    # The graph as built (float32 and float64 leaves mixed) gives each leaf a gradient of its own
    # dtype, close to the float64 one; a graph of float32 leaves stays float32 throughout.
    res = g.backward(total, feeds, wrt=leaves)
    for leaf, check in zip(leaves, report.checks):
        grad = res.grad(leaf)
        assert grad.dtype == leaf.dtype, leaf.name
        np.testing.assert_allclose(grad, check.analytic, rtol=2e-3, atol=2e-3, err_msg=leaf.name)
    if all(leaf.dtype == np.float32 for leaf in leaves):
        assert total.dtype == np.float32
