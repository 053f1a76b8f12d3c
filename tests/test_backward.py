"""The backward pass: chain rule in reverse order, accumulation, broadcasting, pruning, keep, residuals."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg


def test_x_times_x_gradient_is_2x():
    g = dg.Graph()
    x = g.param("x", [1.0, -2.0, 3.0])
    res = g.backward((x * x).sum())
    np.testing.assert_array_equal(res.grad(x), [2.0, -4.0, 6.0])


def test_fan_out_gradients_accumulate():
    g = dg.Graph()
    x = g.param("x", [0.5, 1.5])
    y = dg.sin(x) + dg.exp(x) * x  # x feeds three consumers
    res = g.backward(y.sum())
    expected = np.cos([0.5, 1.5]) + np.exp([0.5, 1.5]) * (1 + np.array([0.5, 1.5]))
    np.testing.assert_allclose(res.grad(x), expected)


def test_add_gradient_is_not_aliased_between_its_inputs():
    g = dg.Graph()
    a = g.param("a", [1.0, 2.0])
    b = g.param("b", [3.0, 4.0])
    s = a + b
    loss = (s + a).sum()  # a receives two contributions; b's must stay 1
    res = g.backward(loss)
    np.testing.assert_array_equal(res.grad(a), [2.0, 2.0])
    np.testing.assert_array_equal(res.grad(b), [1.0, 1.0])


def test_engine_sums_broadcast_gradients_back_to_the_input_shape():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    b = g.param("b", np.zeros((1, 3)))
    s = g.param("s", 2.0)
    res = g.backward(((x + b) * s).sum(), feeds={"x": np.ones((4, 3))})
    assert res.grad(b).shape == (1, 3)
    np.testing.assert_array_equal(res.grad(b), np.full((1, 3), 8.0))
    assert res.grad(s).shape == ()
    assert float(res.grad(s)) == 12.0


def test_gradient_has_the_shape_and_dtype_of_its_node():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3), dtype="float32")
    W = g.param("W", np.ones((3, 2), np.float32))
    b = g.param("b", np.zeros(2, np.float32))
    loss = dg.mean(dg.tanh(x @ W + b) ** 2 * 0.5 + 1)
    res = g.backward(loss, feeds={"x": np.ones((5, 3))})
    for name in res.grads:
        assert res.grad(name).dtype == np.float32, name
        assert res.grad(name).shape == res.value(name).shape, name
    assert res.value(loss).dtype == np.float32


def test_python_scalars_do_not_upcast_a_float32_graph():
    g = dg.Graph()
    x = g.param("x", np.ones(3, np.float32))
    y = 2 * x + 0.5 - x / 3.0 + x ** 2
    assert y.dtype == np.float32
    assert g.forward(y).value(y).dtype == np.float32


def test_order_starts_at_the_loss_and_lists_every_node_after_all_its_consumers():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    h = x
    for layer in range(3):
        with g.scope(f"fc{layer}"):
            h = dg.tanh(h @ g.param("W", np.eye(3)) + g.param("b", np.zeros(3)))
    loss = dg.mean(h)
    res = g.backward(loss, feeds={"x": np.ones((2, 3))})
    assert res.order[0] == loss.name
    position = {n: i for i, n in enumerate(res.order)}
    for name in res.order:
        for consumer in g.consumers(name):
            if consumer in position:
                assert position[consumer] < position[name], (consumer, name)
    # Layer L's parameters are finished before layer L-1's: the chain rule runs from the loss back.
    assert position["fc2/W"] < position["fc1/W"] < position["fc0/W"]
    assert res.rank("fc2/W") == position["fc2/W"] + 1


def test_wrt_limits_the_backward_pass_to_the_path_from_those_nodes_to_the_loss():
    g = dg.Graph()
    x = g.input("x", shape=(2,))
    a = g.param("a", [1.0, 2.0])
    b = g.param("b", [3.0, 4.0])
    loss = (dg.exp(x * a) + b).sum()
    res = g.backward(loss, feeds={"x": np.ones(2)}, wrt=[b])
    assert set(res.order) == {loss.name, "add", "b"}
    assert not res.has_grad("a")
    with pytest.raises(dg.GraphError, match="no gradient"):
        res.grad("a")


def test_nodes_that_do_not_reach_the_loss_are_neither_run_nor_differentiated():
    g = dg.Graph()
    x = g.param("x", [1.0, 2.0])
    side = dg.log(x - 10)  # would be NaN if it ran
    loss = (x * 3).sum()
    with dg.check_anomalies(True):
        res = g.backward(loss)
    assert side.name not in res.values
    assert side.name not in res.order


def test_params_that_do_not_reach_the_loss_get_no_gradient_by_default():
    g = dg.Graph()
    x = g.param("x", [1.0])
    unused = g.param("unused", [5.0])
    res = g.backward((x * 2).sum())
    assert res.has_grad(x) and not res.has_grad(unused)


@pytest.mark.parametrize("keep", ["all", "wrt"])
def test_a_param_that_only_another_output_reads_gets_no_gradient_by_default(keep):
    g = dg.Graph()
    w = g.param("w", [1.0, 2.0])
    v = g.param("v", [3.0])
    loss = dg.sum(w * w, name="loss")
    metric = dg.sum(v, name="metric")                     # computed beside the loss, not part of it
    res = g.backward(loss, keep=keep, outputs=[metric])
    assert res.has_grad(w) and not res.has_grad(v)
    assert res.value(metric) == 3.0
    with pytest.raises(dg.GraphError, match="'v': it is not an ancestor of the loss"):
        g.backward(loss, keep=keep, outputs=[metric], wrt=[w, v])   # asked for by name, it is an error


def test_keep_wrt_keeps_only_the_gradients_asked_for_and_the_loss_value():
    g = dg.Graph()
    x = g.input("x", shape=(None, 2))
    W = g.param("W", np.ones((2, 2)))
    h = dg.relu(x @ W)
    loss = h.sum()
    res = g.backward(loss, feeds={"x": np.ones((3, 2))}, keep="wrt")
    assert set(res.grads) == {"W"}
    assert set(res.values) == {loss.name}
    full = g.backward(loss, feeds={"x": np.ones((3, 2))})
    np.testing.assert_array_equal(res.grad(W), full.grad(W))
    assert h.name in full.grads and h.name in full.values


def test_keep_wrt_with_outputs_keeps_their_values_too():
    g = dg.Graph()
    x = g.param("x", [1.0, 2.0])
    y = dg.exp(x)
    loss = y.sum()
    res = g.backward(loss, keep="wrt", outputs=[y])
    np.testing.assert_allclose(res.value(y), np.exp([1.0, 2.0]))


def test_residuals_reach_the_vjp_and_are_dropped_after_it(fresh_registry):
    seen = []

    @dg.op(shape=dg.shapes.same_as_first, saves=(), residuals=True)
    def scaled_exp(x):
        "exp(x) handing exp(x) to its VJP as a residual."
        e = np.exp(x)
        return e * 2, e

    @scaled_exp.vjp
    def _(g, x, out, res):
        seen.append(res)
        return (g * 2 * res,)

    dg.register_ops(scaled_exp, plugin="test-residuals")
    g = dg.Graph()
    x = g.param("x", [0.0, 1.0])
    loss = dg.ops.scaled_exp(x).sum()
    res = g.backward(loss)
    np.testing.assert_allclose(res.grad(x), 2 * np.exp([0.0, 1.0]))
    assert len(seen) == 1
    assert dg.gradcheck(g, loss=loss)


def test_unread_inputs_reach_the_vjp_as_placeholders_with_shape_and_dtype():
    shapes = []

    @dg.op(shape=dg.shapes.same_as_first, saves=())
    def double(x):
        "2x"
        return 2 * x

    @double.vjp
    def _(g, x, out):
        shapes.append((x.shape, x.dtype, x.strides, out))
        return (2 * g,)

    dg.register_ops(double, plugin="test-placeholders")
    try:
        g = dg.Graph()
        x = g.param("x", np.ones((3, 4), np.float32))
        g.backward(dg.ops.double(x).sum())
    finally:
        dg.load_plugins()
    (shape, dtype, strides, out), = shapes
    assert shape == (3, 4) and dtype == np.float32
    assert strides == (0, 0)  # no memory behind it
    assert out is None


def test_integer_labels_get_no_gradient_and_logits_do():
    g = dg.Graph()
    logits = g.param("logits", np.zeros((4, 3)))
    y = g.input("y", shape=(None,), dtype="int64")
    loss = dg.softmax_cross_entropy(logits, y)
    res = g.backward(loss, feeds={"y": np.array([0, 1, 2, 1])})
    assert not res.has_grad(y)
    np.testing.assert_allclose(res.grad(logits).sum(axis=1), 0, atol=1e-12)


def test_a_non_scalar_loss_needs_a_cotangent_and_is_never_summed_silently():
    g = dg.Graph()
    x = g.param("x", [1.0, 2.0])
    with pytest.raises(dg.GraphError, match=r"shape \(2,\), not a scalar.*cotangent="):
        g.backward(x * x)
    res = g.backward(x * x, cotangent=np.ones(2))          # the old implicit seed, now explicit
    np.testing.assert_array_equal(res.grad(x), [2.0, 4.0])


def test_a_cotangent_gives_the_vector_jacobian_product():
    g = dg.Graph()
    x = g.param("x", [1.0, 2.0, 3.0])
    y = dg.tanh(x) * 2.0
    v = np.array([0.5, -1.0, 2.0])
    res = g.backward(y, cotangent=v)
    np.testing.assert_allclose(res.grad(x), v * 2.0 * (1 - np.tanh([1.0, 2.0, 3.0]) ** 2))
    with pytest.raises(dg.FeedError, match=r"cotangent has shape \(2,\)"):
        g.backward(y, cotangent=np.ones(2))


def test_a_complex_loss_takes_a_complex_cotangent():
    g = dg.Graph()
    z = g.param("z", np.array([1 + 2j, 3 - 1j]))
    y = z * z
    res = g.backward(y, cotangent=np.array([1.0, 1j]))
    np.testing.assert_allclose(res.grad(z), 2 * np.array([1 + 2j, 3 - 1j]) * [1.0, 1j])   # ct * dy/dz, as for a real ct
    with pytest.raises(dg.FeedError, match="the cotangent has dtype complex128; the loss 'x' is float64"):
        g.backward(g.param("x", [1.0]), cotangent=np.array([1j]))


def test_a_loss_whose_size_is_known_only_when_fed_is_checked_at_run_time():
    g = dg.Graph()
    x = g.input("x", shape=(None,))
    w = g.param("w", 2.0)
    loss = x * w
    with pytest.raises(dg.GraphError, match="not a scalar"):
        g.backward(loss, feeds={"x": np.ones(3)})
    assert g.backward(loss, feeds={"x": np.ones(3)}, cotangent=np.ones(3)).grad(w) == 3.0


def test_forward_returns_values_only():
    g = dg.Graph()
    x = g.input("x", shape=(2,))
    y = dg.exp(x)
    res = g.forward([y], feeds={"x": [0.0, 1.0]})
    np.testing.assert_allclose(res.value(y), [1.0, np.e])
    assert res.grads == {} and res.order == []


def test_timings_are_recorded_for_every_node_that_ran_when_profiling():
    g = dg.Graph()
    x = g.param("x", [1.0, 2.0])
    y = dg.tanh(x)
    loss = y.sum()
    assert g.backward(loss).forward_times == {}             # timing costs more than a small op: off by default
    res = g.backward(loss, profile=True)
    assert set(res.forward_times) == {y.name, "sum"}
    assert y.name in res.backward_times and all(t >= 0 for t in res.backward_times.values())


def test_edge_norms_give_the_gradient_flowing_back_along_each_edge():
    g = dg.Graph()
    x = g.param("x", [3.0, 4.0])
    y = x * x
    res = g.backward(y.sum())
    # Both uses of x come through one edge; together they carry 2x.
    assert res.edge_norms[("x", y.name)] == pytest.approx(10.0)
    assert res.edge_norms[(y.name, "sum")] == pytest.approx(np.sqrt(2))


def test_a_scalar_node_accumulates_three_contributions():
    # Found by hypothesis: numpy returns a scalar for a 0-d sum, which must not break in-place accumulation.
    g = dg.Graph()
    p = g.param("p", 0.5)
    loss = (p + p).sum() + p.sum() * 0.1
    res = g.backward(loss)
    assert float(res.grad(p)) == pytest.approx(2.1)
    assert isinstance(res.grad(p), np.ndarray)
