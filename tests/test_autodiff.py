"""dagrad.grad adds the backward pass as ordinary nodes: they agree with Graph.backward, differentiate again
(hvp, hessian, jacobian against finite differences), run with unknown sizes, save, load and render, and a
failure names the node, op and plugin and leaves the graph as it was."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg
from dagrad.gradcheck import _numeric
from dagrad.shapes import same_as_first

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 3))


def mlp():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    W = g.param("W", RNG.standard_normal((3, 2)))
    b = g.param("b", RNG.standard_normal(2))
    loss = dg.mean(dg.tanh(x @ W + b) ** 2)
    return g, x, W, b, loss


def numeric_grad(f, array, eps=1e-6):
    """Central differences of the scalar f() with respect to each entry of array (perturbed in place)."""
    return _numeric(f, array, eps)


# ------------------------------------------------------------ first order --


def test_grad_nodes_compute_what_backward_computes():
    g, x, W, b, loss = mlp()
    gW, gb, gx = dg.grad(loss, [W, b, x])
    built = g.forward([gW, gb, gx], {"x": X})
    numbers = g.backward(loss, {"x": X}, wrt=["W", "b", "x"])
    for name, tensor in [("W", gW), ("b", gb), ("x", gx)]:
        np.testing.assert_allclose(built.value(tensor), numbers.grad(name), rtol=1e-12, atol=1e-14)


def test_a_single_wrt_gives_a_tensor_and_a_list_gives_a_list():
    g, x, W, b, loss = mlp()
    assert isinstance(dg.grad(loss, W), dg.Tensor)
    assert isinstance(dg.grad(loss, [W]), list)


def test_a_cotangent_gives_the_vector_jacobian_product_of_a_non_scalar():
    g = dg.Graph()
    x = g.param("x", np.array([1.0, 2.0, 3.0]))
    y = x * x                                       # dy/dx = diag(2x)
    v = np.array([1.0, 0.5, -1.0])
    vjp = dg.grad(y, x, cotangent=v)
    np.testing.assert_allclose(g.forward(vjp).value(vjp), v * 2 * np.array([1.0, 2.0, 3.0]))
    fed = g.input("v", shape=(3,))
    vjp2 = dg.grad(y, x, cotangent=fed)
    np.testing.assert_allclose(g.forward(vjp2, {"v": v}).value(vjp2), v * 2 * np.array([1.0, 2.0, 3.0]))


def test_a_non_scalar_loss_without_cotangent_is_refused_before_anything_is_added():
    g = dg.Graph()
    x = g.param("x", np.ones(3))
    y = x * 2.0
    n = len(g)
    with pytest.raises(dg.GraphError, match=r"not a scalar: pass cotangent="):
        dg.grad(y, x)
    with pytest.raises(dg.GraphError, match=r"cotangent for .* has shape \(2,\), but the loss has shape \(3,\)"):
        dg.grad(y, x, cotangent=np.ones(2))
    assert len(g) == n


def test_a_cotangent_the_loss_dtype_cannot_hold_is_refused_not_made_infinite():
    g = dg.Graph()
    x = g.param("x", np.ones(2, dtype=np.float32))
    y = dg.tanh(x)
    with pytest.raises(dg.GraphError, match=r"the cotangent holds values that float32 cannot represent: 1e\+300"):
        dg.grad(y, x, cotangent=np.array([1e300, 1.0]))
    with pytest.raises(dg.GraphError, match=r"the cotangent has dtype complex128; the loss .* is float32"):
        dg.grad(y, x, cotangent=np.array([1j, 1.0]))
    assert len(g) == 2                                                  # nothing was added


def test_wrt_must_be_a_floating_point_ancestor_of_the_loss_in_the_same_graph():
    g, x, W, b, loss = mlp()
    other = dg.Graph().param("W", np.ones(2))
    labels = g.input("labels", shape=(None,), dtype="int64")
    lonely = g.param("lonely", np.ones(2))
    with pytest.raises(dg.GraphError, match="belongs to graph"):
        dg.grad(loss, other)
    with pytest.raises(dg.GraphError, match="its dtype is int64"):
        dg.grad(loss, labels)
    with pytest.raises(dg.GraphError, match="not an ancestor of the loss .* allow_unused=True"):
        dg.grad(loss, lonely)
    zero = dg.grad(loss, lonely, allow_unused=True)
    np.testing.assert_array_equal(g.forward(zero).value(zero), np.zeros(2))


def test_an_ancestor_no_gradient_flows_to_gets_zeros():
    g = dg.Graph()
    x = g.param("x", np.array([1.0, -2.0]))
    y = dg.sum(x.astype("int64") * 1.0)       # through an integer node: no gradient
    gx = dg.grad(y, x)
    np.testing.assert_array_equal(g.forward(gx).value(gx), [0.0, 0.0])


def test_fan_out_is_summed_with_add_nodes_and_broadcasting_with_sum_nodes():
    g = dg.Graph()
    x = g.param("x", np.array([1.0, 2.0, 3.0]))
    b = g.param("b", np.array(0.5))
    loss = dg.sum(x * x + b)                       # x twice; b broadcast
    gx, gb = dg.grad(loss, [x, b])
    assert g.node(gx).op == "add" and g.node(gb).op == "sum"
    res = g.forward([gx, gb])
    np.testing.assert_allclose(res.value(gx), [2.0, 4.0, 6.0])
    assert res.value(gb) == 3.0


def test_unknown_sizes_broadcast_at_run_time_are_summed_back_at_run_time():
    g = dg.Graph()
    x = g.input("x", shape=(None, None))
    y = g.input("y", shape=(None, None))
    loss = dg.sum(x * y)
    gx, gy = dg.grad(loss, [x, y])
    assert g.node(gy).op == "sum_to"
    Xv, Yv = RNG.standard_normal((1, 3)), RNG.standard_normal((5, 3))   # x broadcast over 5 rows
    res = g.forward([gx, gy], {"x": Xv, "y": Yv})
    np.testing.assert_allclose(res.value(gx), Yv.sum(axis=0, keepdims=True))
    np.testing.assert_allclose(res.value(gy), np.broadcast_to(Xv, (5, 3)))


def test_float32_graphs_get_float32_gradients():
    g = dg.Graph()
    x = g.param("x", np.ones((2, 3), np.float32))
    loss = dg.mean(dg.softmax(x) * dg.exp(x))
    gx = dg.grad(loss, x)
    assert gx.dtype == np.float32
    assert g.forward(gx).value(gx).dtype == np.float32


# ----------------------------------------------------------- second order --


def test_the_gradient_of_a_gradient_matches_finite_differences():
    g, x, W, b, loss = mlp()
    gx = dg.grad(loss, [x])[0]
    penalty = dg.sum(gx ** 2)
    (ggx,) = dg.grad(penalty, [x])
    feeds = {"x": X.copy()}
    plan = g.compile(penalty)
    numeric = numeric_grad(lambda: float(plan.run(feeds).value(penalty)), feeds["x"])
    np.testing.assert_allclose(g.forward(ggx, feeds).value(ggx), numeric, rtol=1e-5, atol=1e-8)


def test_a_gradient_penalty_trains_by_backward_through_the_gradient_nodes():
    g, x, W, b, loss = mlp()
    penalty = dg.sum(dg.grad(loss, x) ** 2)
    report = dg.gradcheck(g, loss=penalty, feeds={"x": X}, wrt=["W", "b"])
    assert report, str(report)


def test_hvp_hessian_and_jacobian_match_finite_differences():
    g = dg.Graph()
    x = g.param("x", np.array([0.3, -0.8, 1.1]))
    A = g.const(RNG.standard_normal((3, 3)))
    loss = dg.sum(dg.tanh(A @ x) ** 2) + dg.sum(x ** 3) * x[0]
    grad_x = dg.grad(loss, x)
    plan = g.compile(grad_x)
    # The Hessian's rows are finite differences of the gradient.
    numeric = np.stack([numeric_grad(lambda: float(plan.run().value(grad_x)[i]), g.value(x)) for i in range(3)])
    H = dg.hessian(loss, x)
    v = np.array([1.0, -2.0, 0.5])
    Hv = dg.hvp(loss, x, v)
    y = dg.tanh(A @ x) * x[1]
    J = dg.jacobian(y, x)
    res = g.forward([H, Hv, J])
    np.testing.assert_allclose(res.value(H), numeric, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.value(Hv), numeric @ v, rtol=1e-5, atol=1e-7)
    y_plan = g.compile(y)
    numeric_J = np.stack([numeric_grad(lambda: float(y_plan.run().value(y)[i]), g.value(x)) for i in range(3)])
    np.testing.assert_allclose(res.value(J), numeric_J, rtol=1e-5, atol=1e-7)


def test_hessian_blocks_of_several_wrt_and_a_loss_linear_in_one_of_them():
    g = dg.Graph()
    a = g.param("a", np.array([1.0, 2.0]))
    c = g.param("c", np.array(3.0))
    loss = dg.sum(a * a) * c                       # d2/dc2 = 0; d2/da dc = 2a; d2/da2 = 2c I
    (Haa, Hac), (Hca, Hcc) = dg.hessian(loss, [a, c])
    res = g.forward([Haa, Hac, Hca, Hcc])
    np.testing.assert_allclose(res.value(Haa), 6 * np.eye(2))
    np.testing.assert_allclose(res.value(Hac), [2.0, 4.0])
    np.testing.assert_allclose(res.value(Hca), [2.0, 4.0])
    assert res.value(Hcc) == 0.0


def test_hessian_and_jacobian_need_static_shapes():
    g, x, W, b, loss = mlp()
    with pytest.raises(dg.GraphError, match="needs a static shape"):
        dg.hessian(loss, x)
    with pytest.raises(dg.GraphError, match="needs a static shape"):
        dg.jacobian(x @ W, W)


# ------------------------------------------------ ordinary nodes, by name --


def test_nodes_live_in_a_grad_scope_and_record_their_forward_node():
    g, x, W, b, loss = mlp()
    before = {n.name for n in g}
    dg.grad(loss, W)
    dg.grad(loss, W)
    added = [n for n in g if n.name not in before]
    assert {n.name.split("/")[0] for n in added} == {"grad", "grad_1"}
    assert all(n.origin in before for n in added)
    assert {n.origin for n in added} == {loss.name, "pow", "tanh", "matmul"}  # add passes g on unchanged
    assert all(g.node(n).origin is None for n in before)


def test_grad_nodes_save_and_load_with_their_origin(tmp_path):
    g, x, W, b, loss = mlp()
    gx = dg.grad(loss, x)
    ggx = dg.grad(dg.sum(gx ** 2), x)
    dg.save(g, tmp_path / "m.dagrad")
    back = dg.load(tmp_path / "m.dagrad")
    assert [n.origin for n in back.nodes()] == [n.origin for n in g.nodes()]
    np.testing.assert_allclose(back.forward(ggx.name, {"x": X}).value(ggx.name), g.forward(ggx, {"x": X}).value(ggx))


def test_a_graph_with_grad_nodes_renders(tmp_path):
    g, x, W, b, loss = mlp()
    gW = dg.grad(loss, W)
    dg.render(g.backward(dg.sum(gW ** 2), {"x": X}), tmp_path / "flow.svg")
    assert (tmp_path / "flow.svg").stat().st_size > 0


# ---------------------------------------------- ops without a graph VJP --


@pytest.fixture
def softsign():
    """A plugin op with a numpy VJP and no graph VJP, registered as plugin 'softsign-pack'."""

    @dg.op(shape=same_as_first, saves=("inputs",))
    def soft_sign(x):
        "x / (1 + |x|)."
        return x / (1 + np.abs(x))

    @soft_sign.vjp
    def _(g, x):
        return (g / (1 + np.abs(x)) ** 2,)

    dg.register_ops(soft_sign, plugin="softsign-pack")
    yield soft_sign
    dg.load_plugins()


def test_an_op_without_a_graph_vjp_is_differentiated_once_through_its_numpy_vjp(softsign):
    g = dg.Graph()
    x = g.param("x", np.array([0.5, -2.0]))
    loss = dg.sum(softsign(x) * x)
    gx = dg.grad(loss, x)
    assert "vjp" in {n.op for n in g}
    np.testing.assert_allclose(g.forward(gx).value(gx), g.backward(loss).grad("x"))


def test_differentiating_a_numpy_vjp_node_again_names_the_op_its_plugin_and_the_fix(softsign):
    g = dg.Graph()
    x = g.param("x", np.array([0.5, -2.0]))
    gx = dg.grad(dg.sum(softsign(x)), x)
    n = len(g)
    message = r"op 'soft_sign' from plugin 'softsign-pack' .* @soft_sign.graph_vjp"
    with pytest.raises(dg.HigherOrderError, match=message):
        dg.grad(dg.sum(gx * gx), x)
    assert len(g) == n + 2                       # the nodes of sum(gx * gx) stay; the failed grad's are gone
    with pytest.raises(dg.HigherOrderError, match=message):
        g.backward(dg.sum(gx * gx), wrt=["x"])


# ------------------------------------------------------- broken rules --


def op_with_graph_vjp(rule, name="twice"):
    op = dg.op(shape=same_as_first, saves=(), name=name)(lambda x: 2 * x)
    op.vjp(lambda g, x: (2 * g,))
    op.graph_vjp(rule)
    return op


@pytest.mark.parametrize("rule, message", [
    (lambda g, x: 2.0, r"must return one Tensor \(or None\) per input, 1 in all; it returned a float"),
    (lambda g, x: (g, g), r"must return one Tensor \(or None\) per input, 1 in all; it returned 2 values"),
    (lambda g, x: (np.ones(3),), r"returned a ndarray for input 0; it must build the gradient with dagrad ops"),
    (lambda g, x: (dg.reshape(g, (2, 2)),), r"failed to build: .*cannot reshape \(3,\)"),
    (lambda g, x: (dg.concatenate([g, g]),), r"gradient of shape \(6,\) for input 0 \('x'\), whose shape is \(3,\)"),
    (lambda g, x: (1 / 0,), r"raised ZeroDivisionError"),
])
def test_a_broken_graph_vjp_is_named_and_leaves_the_graph_unchanged(rule, message):
    op = op_with_graph_vjp(rule)
    dg.register_ops(op, plugin="twice-pack")
    try:
        g = dg.Graph()
        x = g.param("x", np.ones(3))
        loss = dg.sum(op(x))
        names = [n.name for n in g]
        version = g.version
        with pytest.raises((dg.GradientError, dg.OpError), match=message) as info:
            dg.grad(loss, x)
        assert "node 'twice' (op" in str(info.value) or "node 'twice':" in str(info.value)
        assert "'twice-pack'" in str(info.value)
        assert [n.name for n in g] == names and g.version > version
        assert g.forward(loss).value(loss) == 6.0
    finally:
        dg.load_plugins()


def test_a_graph_vjp_may_not_read_residuals_and_must_take_every_attribute():
    op = dg.op(shape=same_as_first)(lambda x, *, k=1: x * k)
    with pytest.raises(TypeError, match="no residuals"):
        op.graph_vjp(lambda g, x, res, *, k: (g,))
    with pytest.raises(TypeError, match=r"graph VJP must accept the attribute\(s\) k"):
        op.graph_vjp(lambda g, x: (g,))


def test_atomic_removes_every_node_added_in_a_failing_block_and_nests():
    g = dg.Graph()
    x = g.param("x", np.ones(2))
    with g.atomic() as outer:
        y = x + 1.0
        with pytest.raises(RuntimeError):
            with g.atomic():
                x * 3.0
                raise RuntimeError
        assert set(outer) == {y.name, g.node(y).inputs[1]}
    assert sorted(n.name for n in g) == sorted(["x", y.name, g.node(y).inputs[1]])


# -------------------------------------------------------------- gradcheck --


def test_gradcheck_perturbs_fortran_ordered_arrays_too():
    x = np.linspace(0.5, 2.0, 6).reshape(2, 3)
    assert dg.gradcheck("matmul", x, x.T)          # x.T is Fortran-ordered: reshape(-1) would copy it
    assert dg.gradgradcheck("matmul", x, x.T)


# ------------------------------------------------ every built-in op, second order --


def test_every_built_in_op_has_a_graph_vjp_except_vjp():
    reg = dg.registry()
    missing = {name for name in reg.plugins["builtins"].ops if reg.op(name).differentiable and not reg.op(name).has_graph_vjp}
    assert missing == set()
    assert reg.op("vjp").has_graph_vjp  # ... which raises HigherOrderError, naming the op to fix


def test_dropouts_gradient_is_the_same_mask_to_any_order():
    g = dg.Graph()
    x = g.param("x", RNG.standard_normal((3, 5)))
    training = g.input("training", shape=())
    y = dg.nn.dropout(x, 0.4, training, seed=7)
    loss = dg.sum(y * y)                                   # d/dx = 2 mask^2 x, d2/dx2 = 2 mask^2
    gx = dg.grad(loss, x)
    Hv = dg.hvp(loss, x, np.ones((3, 5)))
    for key in (3.0, 4.0, 0.0):
        res = g.forward([y, gx, Hv], {"training": key})
        mask = res.value(y) / g.value("x")                 # what the forward drew for this key
        if key:
            assert set(np.round(mask.ravel(), 12)) == {0.0, round(1 / 0.6, 12)}
        else:
            np.testing.assert_array_equal(mask, 1.0)       # evaluation: the identity
        np.testing.assert_allclose(res.value(gx), 2 * mask ** 2 * g.value("x"))
        np.testing.assert_allclose(res.value(Hv), 2 * mask ** 2)
        numpy_path = g.backward(loss, {"training": key})
        np.testing.assert_allclose(res.value(gx), numpy_path.grad("x"))


def test_softmax_cross_entropy_hessian_is_diag_p_minus_p_p_transposed_over_the_batch():
    g = dg.Graph()
    logits = g.param("logits", RNG.standard_normal((2, 4)))
    labels = g.const(np.array([1, 3]))
    H = dg.hessian(dg.softmax_cross_entropy(logits, labels), logits)
    p = np.exp(g.value("logits")) / np.exp(g.value("logits")).sum(axis=1, keepdims=True)
    expected = np.zeros((2, 4, 2, 4))
    for row in range(2):                                   # rows are independent; the mean divides by 2
        expected[row, :, row, :] = (np.diag(p[row]) - np.outer(p[row], p[row])) / 2
    np.testing.assert_allclose(g.forward(H).value(H), expected, atol=1e-12)


def test_softmax_cross_entropy_second_order_with_an_unknown_number_of_classes():
    g = dg.Graph()
    logits = g.input("logits", shape=(None, None))
    labels = g.input("labels", shape=(None,), dtype="int64")
    gl = dg.grad(dg.softmax_cross_entropy(logits, labels, reduction="sum"), logits)
    Hv = dg.grad(dg.sum(gl * gl), logits)
    feeds = {"logits": RNG.standard_normal((3, 5)), "labels": np.array([0, 4, 2])}
    got = g.forward([gl, Hv], feeds)
    onehot = np.eye(5)[feeds["labels"]]
    p = np.exp(feeds["logits"]) / np.exp(feeds["logits"]).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got.value(gl), p - onehot)
    d = p - onehot                                         # d/dz sum (p - y)^2 = 2 (diag p - p p^T) (p - y), per row
    np.testing.assert_allclose(got.value(Hv), 2 * (p * d - p * (p * d).sum(axis=1, keepdims=True)), atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_second_derivatives_in_both_inputs(reduction):
    report = dg.gradgradcheck(dg.ops.binary_cross_entropy_with_logits, RNG.standard_normal((2, 1)),
                              RNG.uniform(0.1, 0.9, size=(1, 3)), reduction=reduction)
    assert report, str(report)


@pytest.mark.parametrize("subscripts, shapes", [
    ("ijk,j->j", [(2, 1, 4), (3,)]),          # an index summed away, and a size 1 broadcast against 3
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("...i,i->...", [(2, 3, 4), (4,)]),
])
def test_einsum_second_derivatives(subscripts, shapes):
    arrays = [RNG.standard_normal(s) for s in shapes]
    assert dg.gradgradcheck(dg.ops.einsum, *arrays, subscripts=subscripts)


def test_masks_are_one_comparison_node_and_nan_is_not_positive():
    from dagrad.extend import is_nonzero, is_positive

    g = dg.Graph()
    x = g.param("x", np.array([-1.0, 0.0, 2.0, np.nan]))
    pos, nonzero = is_positive(x), is_nonzero(x)
    assert (g.node(pos).op, g.node(nonzero).op) == ("greater", "not_equal")
    res = g.forward([pos, nonzero])
    assert res.value(pos).tolist() == [False, False, True, False]
    assert res.value(nonzero).tolist() == [True, False, True, True]


@pytest.mark.parametrize("axis, ndim, shape", [(1, 4, (3, 1, 1)), (-3, 4, (3, 1, 1)), (0, 2, (3, 1)),
                                               (-1, 4, (3,)), (1, 2, (3,)), (0, 1, (3,))])
def test_vector_on_axis_lines_a_vector_up_with_one_axis_for_arrays_and_tensors_alike(axis, ndim, shape):
    from dagrad.extend import vector_on_axis

    v = np.arange(3.0)
    assert vector_on_axis(v, axis, ndim).shape == shape
    g = dg.Graph()
    t = vector_on_axis(g.input("v", shape=(None,)), axis, ndim)
    assert t.shape == tuple(None if d == 3 else d for d in shape)
    np.testing.assert_array_equal(g.forward(t, {"v": v}).value(t), v.reshape(shape))
