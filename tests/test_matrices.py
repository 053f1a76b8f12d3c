"""The matrix ops and dg.linalg: batching, one node per result, numpy's conventions, errors that name the matrix,
and what the gradients do where they are not defined everywhere (singular matrices, repeated eigenvalues, ties).

Finite differences of every op, its graph VJP and its second derivatives run in test_op_gradients.py
(check_op over the ops' samples); PyTorch comparisons are in test_matrices_torch.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg
from dagrad.ops.matrices import conditioned, symmetric

RNG = np.random.default_rng(14)


def run(outputs, feeds=None):
    """Values of ``outputs`` (a Tensor or a list) from one forward pass."""
    single = not isinstance(outputs, (list, tuple))
    listed = [outputs] if single else list(outputs)
    res = listed[0].graph.forward(listed, feeds or {})
    values = [res.value(t) for t in listed]
    return values[0] if single else values


# ------------------------------------------------ results, batching, numpy's conventions ---


def test_svd_qr_eigh_slogdet_return_one_named_node_per_result_that_rebuild_the_input():
    g = dg.Graph()
    a = g.param("a", conditioned(RNG, (2, 4, 3)))
    s_ = g.param("s", symmetric(RNG, (3, 3)))
    U, S, Vh = dg.linalg.svd(a, name="f")
    Q, R = dg.linalg.qr(a)
    w, V = dg.linalg.eigh(s_)
    sign, logabsdet = dg.linalg.slogdet(s_)
    assert [t.name for t in (U, S, Vh)] == ["f.U", "f.S", "f.Vh"]
    assert (U.shape, S.shape, Vh.shape, Q.shape, R.shape) == ((2, 4, 3), (2, 3), (2, 3, 3), (2, 4, 3), (2, 3, 3))
    assert dg.linalg.svd(a).S.op == "svd" and dg.linalg.eigh(s_).eigenvectors.op == "eigh"
    u, s, vh, q, r, w_, v, sg, lad = run([U, S, Vh, Q, R, w, V, sign, logabsdet])
    A, B = g.value(a), g.value(s_)
    assert np.allclose((u * s[..., None, :]) @ vh, A) and np.allclose(q @ r, A)
    assert np.allclose(np.triu(r), r) and np.allclose((v * w_) @ v.T, B)
    assert np.isclose(sg * np.exp(lad), np.linalg.det(B))


def test_results_nobody_uses_are_not_computed():
    g = dg.Graph()
    a = g.param("a", conditioned(RNG, (3, 3)))
    U, S, Vh = dg.linalg.svd(a)
    plan = g.compile([S])
    assert [n for n in plan.nodes if g.node(n).op == "svd"] == [S.name]


def test_ops_batch_over_leading_axes_of_unknown_size():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 3))
    outs = [dg.linalg.inv(x), dg.linalg.det(x), dg.linalg.pinv(x), dg.linalg.svdvals(x),
            dg.linalg.matrix_norm(x, ord="nuc"), dg.linalg.solve(x, np.ones(3))]
    assert [t.shape for t in outs] == [(None, 3, 3), (None,), (None, 3, 3), (None, 3), (None,), (None, 3)]
    X = conditioned(RNG, (4, 3, 3))
    got = run(outs, {"x": X})
    want = [np.linalg.inv(X), np.linalg.det(X), np.linalg.pinv(X), np.linalg.svd(X, compute_uv=False),
            np.linalg.norm(X, "nuc", axis=(-2, -1)), np.linalg.solve(X, np.ones((3, 1)))[..., 0]]
    for a, b in zip(got, want):
        assert np.allclose(a, b)


@pytest.mark.parametrize("a_shape, b_shape, out_shape", [
    ((3, 3), (3,), (3,)),                   # one vector
    ((2, 3, 3), (3,), (2, 3)),              # one vector for every matrix
    ((3, 3), (3, 2), (3, 2)),               # two right-hand sides
    ((2, 3, 3), (3, 2), (2, 3, 2)),         # as numpy 2: a 2-axis b is a matrix (PyTorch: 2 vectors if (2, 3))
    ((2, 1, 3, 3), (4, 3, 1), (2, 4, 3, 1)),
])
def test_solve_reads_a_one_axis_b_as_a_vector_and_more_axes_as_matrices_as_numpy_2(a_shape, b_shape, out_shape):
    g = dg.Graph()
    A, B = conditioned(RNG, a_shape), RNG.standard_normal(b_shape)
    x = dg.linalg.solve(g.param("a", A), B)
    assert x.shape == out_shape
    value = run(x)
    assert value.shape == out_shape
    assert np.allclose(A @ (value if len(b_shape) > 1 else value[..., None]), B if len(b_shape) > 1 else B[:, None])


def test_cholesky_and_eigh_read_one_triangle_and_their_gradient_lives_on_it():
    spd = symmetric(RNG, (3, 3), 0.5, 2.0)
    junk = spd + np.triu(RNG.standard_normal((3, 3)), 1)      # the upper triangle is not read
    g = dg.Graph()
    a = g.param("a", junk)
    L = dg.linalg.cholesky(a)
    w = dg.linalg.eigvalsh(a)
    Lt = dg.linalg.cholesky(g.param("b", junk.T), upper=True)
    assert np.allclose(run(L), np.linalg.cholesky(spd)) and np.allclose(run(Lt), np.linalg.cholesky(spd).T)
    res = g.backward(dg.sum(L * np.arange(9.0).reshape(3, 3)) + dg.sum(w ** 2) + dg.sum(Lt))
    assert np.all(np.triu(res.grad("a"), 1) == 0) and np.all(np.tril(res.grad("b"), -1) == 0)
    assert np.any(np.tril(res.grad("a"), -1) != 0)


def test_a_symmetric_input_built_in_the_graph_gets_the_same_gradient_whichever_triangle_is_read():
    B = RNG.standard_normal((3, 3))
    grads = []
    for uplo in "LU":
        g = dg.Graph()
        b = g.param("b", B)
        w, v = dg.linalg.eigh(b @ dg.linalg.matrix_transpose(b) + np.eye(3), UPLO=uplo)
        grads.append(g.backward(dg.sum(w * np.arange(3.0)) + dg.sum(v[0] ** 2)).grad(b))
    assert np.allclose(*grads)


@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf])
def test_matrix_norm_is_numpys_for_every_ord(ord):
    X = RNG.standard_normal((2, 3, 4))
    g = dg.Graph()
    x = g.param("x", X)
    assert np.allclose(run(dg.linalg.matrix_norm(x, ord=ord)), np.linalg.norm(X, ord, axis=(-2, -1)))
    assert run(dg.linalg.matrix_norm(x, ord=ord, keepdims=True)).shape == (2, 1, 1)


def test_matrix_norm_ties_share_the_gradient_evenly_and_zero_has_gradient_zero():
    g = dg.Graph()
    eye = g.param("eye", np.eye(3))
    ones = g.param("ones", np.ones((2, 2)))
    zero = g.param("zero", np.zeros((2, 3)))
    loss = (dg.linalg.matrix_norm(eye, ord=2) + dg.linalg.matrix_norm(ones, ord=1)
            + dg.linalg.matrix_norm(zero))
    res = g.backward(loss)
    assert np.allclose(res.grad("eye"), np.eye(3) / 3)        # the mean of u vᵀ over the three equal values
    assert np.allclose(res.grad("ones"), np.full((2, 2), 0.5))  # two columns tie
    assert np.array_equal(res.grad("zero"), np.zeros((2, 3)))   # as PyTorch


@pytest.mark.parametrize("shape", [(3, 0), (0, 3), (2, 0, 0)])
def test_norms_of_empty_matrices_are_0_with_an_empty_gradient_and_the_undefined_ones_say_so(shape):
    g = dg.Graph()
    x = g.param("x", np.zeros(shape))
    norms = [dg.linalg.matrix_norm(x, ord=o) for o in ["fro", "nuc", 1, 2, np.inf]]
    res = g.backward(dg.sum(dg.stack(norms)))
    assert res.grad(x).shape == shape and all(np.all(v == 0) for v in run(norms))
    with pytest.raises(dg.OpError, match=r"ord=-2 of .* matrices is not defined"):
        run(dg.linalg.matrix_norm(x, ord=-2))


def test_integer_matrices_compute_in_float64():
    g = dg.Graph()
    a = g.const(np.array([[2, 1], [1, 3]]), name="a")
    d = dg.linalg.det(a)
    assert d.dtype == np.float64 and np.isclose(run(d), 5.0)


# ------------------------------------------------------------------------ errors ---


@pytest.mark.parametrize("build, match", [
    (lambda x: dg.linalg.inv(x[..., :2]), "square matrices"),
    (lambda x: dg.ops.svd(x), r"part= one of 'U', 'S', 'Vh'"),
    (lambda x: dg.ops.eigh(x, part="eigenvalues", UPLO="X"), "UPLO"),
    (lambda x: dg.linalg.matrix_norm(x, ord=3), "ord is one of"),
    (lambda x: dg.linalg.solve(x, np.ones(4)), "matrices of size 3 against a right-hand side of length 4"),
    (lambda x: dg.linalg.det(dg.sum(x, axis=(1, 2))), "needs matrices"),
    (lambda x: dg.linalg.inv(dg.astype(x, dtype="float16")), "float32 or float64"),
])
def test_bad_shapes_attributes_and_dtypes_are_refused_when_the_node_is_added(build, match):
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 3))
    before = len(g)
    with pytest.raises(dg.ShapeError, match=match):
        build(x)
    assert len(g) <= before + 2  # only the nodes built before the refused one


@pytest.mark.parametrize("call, kwargs, match", [
    (dg.linalg.svd, {"full_matrices": True}, "full_matrices=True is not supported"),
    (dg.linalg.qr, {"mode": "complete"}, "mode is 'reduced' or 'r'"),
    (dg.linalg.pinv, {"rcond": 1e-3, "rtol": 1e-3}, "not both"),
])
def test_numpy_options_without_gradients_are_refused_saying_why(call, kwargs, match):
    g = dg.Graph()
    with pytest.raises(dg.GraphError, match=match):
        call(g.input("x", shape=(3, 3)), **kwargs)


@pytest.mark.parametrize("build, match", [
    (dg.linalg.inv, r"inv: matrix \[1\] of the batch is singular .* use pinv"),
    (lambda x: dg.linalg.solve(x, np.ones(3)), r"solve: matrix \[1\] of the batch is singular"),
    (dg.linalg.cholesky, r"cholesky: matrix \[1\] of the batch is not positive definite"),
])
def test_a_singular_or_indefinite_matrix_is_an_op_error_naming_the_node_and_the_matrix(build, match):
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 3))
    y = build(x)
    with pytest.raises(dg.OpError, match=f"node {y.name!r}.*{match}"):
        run(y, {"x": np.stack([np.eye(3), np.diag([1.0, 0.0, -1.0])])})


# ---------------------------------------------- gradients where they are not smooth ---


def test_det_gradient_at_a_singular_matrix_is_the_cofactor_matrix():
    A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])   # rank 2
    cofactor = np.array([[-3.0, 6.0, -3.0], [6.0, -12.0, 6.0], [-3.0, 6.0, -3.0]])
    g = dg.Graph()
    a = g.param("a", A)
    assert np.allclose(g.backward(dg.linalg.det(a)).grad(a), cofactor)
    assert dg.gradcheck(dg.ops.det, A)
    rank1 = np.outer([1.0, 2.0, -1.0], [0.5, 1.0, 2.0])                  # every cofactor is 0
    assert np.allclose(g.backward(dg.linalg.det(g.param("r", rank1))).grad("r"), 0)


def test_logabsdet_of_a_singular_matrix_has_an_infinite_gradient_and_says_so():
    g = dg.Graph()
    a = g.param("a", np.ones((2, 2)))
    with pytest.raises(dg.OpError, match="singular: its logabsdet is -inf, with an infinite gradient"):
        g.backward(dg.linalg.slogdet(a).logabsdet)


def equal_eigenvalues_graph():
    """eigh of diag(1, 1, 2): eigenvalues 0 and 1 are exactly equal."""
    g = dg.Graph()
    a = g.param("a", np.diag([1.0, 1.0, 2.0]))
    return g, a, dg.linalg.eigh(a)


def test_equal_eigenvalues_leave_the_gradient_of_the_other_eigenvectors_and_of_the_eigenvalues_defined():
    g, a, (w, v) = equal_eigenvalues_graph()
    loss = dg.sum(v[:, 2] * np.array([1.0, 2.0, 3.0])) ** 2 + dg.sum(w ** 2)   # squared: either sign of v
    grad = g.backward(loss).grad(a)
    assert np.isfinite(grad).all()
    assert dg.gradcheck(g, loss=loss)


def test_equal_eigenvalues_whose_vectors_the_loss_uses_raise_and_give_nan_with_dg_grad():
    g, a, (w, v) = equal_eigenvalues_graph()
    # Even a loss that does not depend on the basis: its gradient needs more than a VJP of eigh can know
    # (here d(A²) involves 2λ on the repeated pair), as in PyTorch, which gives NaN.
    for loss in (dg.sum(v[:, 0] * np.array([1.0, 2.0, 3.0])),
                 dg.sum((v * dg.expand_dims(w ** 2, 0)) @ dg.linalg.matrix_transpose(v))):
        with pytest.raises(dg.OpError, match=r"eigenvalues 0 and 1 of the matrix are equal \(within rounding\).*"
                                             r"not defined"):
            g.backward(loss)
        grad = dg.grad(loss, a)
        assert np.isnan(g.forward(grad).value(grad)).any()


def test_nearly_equal_eigenvalues_count_as_equal():
    Q = np.linalg.qr(RNG.standard_normal((3, 3)))[0]
    g = dg.Graph()
    a = g.param("a", (Q * np.array([1.0, 1.0, 2.0])) @ Q.T)     # computed eigenvalues differ by an ulp or so
    with pytest.raises(dg.OpError, match="eigenvalues 0 and 1"):
        g.backward(dg.sum(dg.linalg.eigh(a).eigenvectors[0]))


def test_equal_singular_values_and_a_loss_that_depends_on_the_basis_raise():
    g = dg.Graph()
    a = g.param("a", np.eye(3))
    with pytest.raises(dg.OpError, match=r"svd: singular values 0 and 1 of the matrix are equal \(within"):
        g.backward(dg.sum(dg.linalg.svd(a).U[0]))
    assert np.allclose(g.backward(dg.sum(dg.linalg.svdvals(a))).grad(a), np.eye(3))


def test_second_derivatives_of_logabsdet_match_the_closed_form():
    # The derivative of A⁻ᵀ in direction V is -A⁻ᵀ Vᵀ A⁻ᵀ: the Hessian-vector product of logabsdet
    A, V = conditioned(RNG, (3, 3)), RNG.standard_normal((3, 3))
    g = dg.Graph()
    a = g.param("a", A)
    hv = dg.hvp(dg.linalg.slogdet(a).logabsdet, a, V)
    Ait = np.linalg.inv(A).T
    assert np.allclose(g.forward(hv).value(hv), -Ait @ V.T @ Ait)
