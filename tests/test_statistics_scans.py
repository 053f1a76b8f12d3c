"""prod, var, std, norm, median, quantile and the scans where finite differences cannot judge them: zeros, ties, zero
variance, huge ranges, agreement with numpy over the options, and second derivatives at exactly those points."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import dagrad as dg


def grad_of(fn, x):
    """Value and gradient of ``sum(fn(x))`` at ``x``; also the Hessian built by ``dg.grad`` twice (small ``x``)."""
    g = dg.Graph()
    p = g.param("x", np.asarray(x, dtype=np.float64))
    y = fn(p)
    loss = dg.sum(y)
    (first,) = dg.grad(loss, [p])
    hess = dg.hessian(loss, p)
    res = g.forward([y, first, hess])
    numbers = g.backward(loss)
    # the graph VJP gives the numpy VJP's numbers
    np.testing.assert_allclose(res.value(first), numbers.grad(p), rtol=1e-12, atol=1e-12)
    return res.value(y), res.value(first), res.value(hess)


def others_product(x, k, skip=()):
    return math.prod(v for i, v in enumerate(x) if i != k and i not in skip)


# ---------------------------------------------------------------- prod ---


@pytest.mark.parametrize("x", [[0.5, 2.0, -3.0, 1.5], [0.5, 0.0, -3.0, 1.5], [0.0, 2.0, 0.0, 1.5],
                               [0.0, 0.0, 0.0, 4.0]])
def test_prod_gradient_and_hessian_are_products_of_the_other_entries_whatever_the_zeros(x):
    value, first, hess = grad_of(lambda t: dg.prod(t), x)
    assert value == math.prod(x)
    np.testing.assert_array_equal(first, [others_product(x, k) for k in range(len(x))])
    want = [[0.0 if i == j else others_product(x, i, skip=(j,)) for j in range(len(x))] for i in range(len(x))]
    np.testing.assert_array_equal(hess, want)


def test_prod_over_several_axes_and_keepdims_matches_numpy_and_the_product_of_others():
    x = np.array([[[1.5, 0.0], [2.0, -1.0]], [[0.5, 3.0], [0.0, 2.0]]])
    g = dg.Graph()
    p = g.param("x", x)
    y = dg.prod(p, axis=(0, 2), keepdims=True)
    res = g.backward(dg.sum(y * np.array([[[1.0], [10.0]]])), keep="all")
    np.testing.assert_array_equal(res.value(y), np.prod(x, axis=(0, 2), keepdims=True))
    for j in range(2):
        block = x[:, j, :].reshape(-1)
        want = np.array([others_product(block, k) for k in range(4)]).reshape(2, 2) * [1.0, 10.0][j]
        np.testing.assert_array_equal(res.grad(p)[:, j, :], want)


def test_prod_of_integers_accumulates_in_int64_as_numpy():
    g = dg.Graph()
    y = dg.prod(g.const(np.array([100000, 100000], dtype=np.int32)))
    assert y.dtype == np.int64 and g.forward(y).value(y) == 10**10


# ------------------------------------------------------------ var, std ---


@pytest.mark.parametrize("axis, ddof, keepdims", [(None, 0, False), (0, 1, False), ((0, 2), 1, True), (-1, 0, True)])
def test_var_and_std_match_numpy_with_ddof(axis, ddof, keepdims):
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    g = dg.Graph()
    p = g.const(x)
    v, s = dg.var(p, axis, ddof=ddof, keepdims=keepdims), dg.std(p, axis, ddof=ddof, keepdims=keepdims)
    res = g.forward([v, s])
    np.testing.assert_allclose(res.value(v), np.var(x, axis=axis, ddof=ddof, keepdims=keepdims), rtol=1e-13)
    np.testing.assert_allclose(res.value(s), np.std(x, axis=axis, ddof=ddof, keepdims=keepdims), rtol=1e-13)
    assert v.shape == res.value(v).shape


def test_std_at_zero_variance_has_gradient_zero_not_nan_to_every_order():
    value, first, hess = grad_of(lambda t: dg.std(t, ddof=1), [2.0, 2.0, 2.0])
    assert value == 0.0
    np.testing.assert_array_equal(first, np.zeros(3))
    np.testing.assert_array_equal(hess, np.zeros((3, 3)))
    # Elsewhere the usual gradient (x - mean) / ((n - ddof) * std).
    x = np.array([1.0, 2.0, 4.0])
    value, first, _ = grad_of(lambda t: dg.std(t, ddof=1), x)
    np.testing.assert_allclose(first, (x - x.mean()) / (2 * np.std(x, ddof=1)))


def test_var_with_fewer_entries_than_ddof_gives_numpys_inf_or_nan_without_a_warning():
    g = dg.Graph()
    x = g.const(np.array([[1.0, 3.0], [2.0, 2.0]]))
    v = dg.var(x, 1, ddof=2)
    with np.errstate(all="raise"):
        value = g.forward(v).value(v)
    np.testing.assert_array_equal(value, [np.inf, np.nan])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # the graph VJP's div and mean ops warn as numpy's do
@pytest.mark.parametrize("shape, axis, ddof", [((2, 2), 1, 2), ((2, 2), 1, 3), ((0, 3), 0, 0), ((0, 3), 0, 1)])
def test_var_gradient_without_degrees_of_freedom_is_inf_or_nan_as_numpys_division_not_an_error(shape, axis, ddof):
    # N - ddof <= 0 (or a reduced axis of size 0) divides by 0: the value is inf or NaN, and so is the gradient
    # 2 (x - mean) / 0, as PyTorch's; the numpy VJP used to raise ZeroDivisionError from a Python division.
    x = np.array([[1.0, 3.0], [2.0, 2.0]]) if shape == (2, 2) else np.zeros(shape)
    expected = np.array([[-np.inf, np.inf], [np.nan, np.nan]]) if x.size else x   # 2 (x - mean) / 0
    g = dg.Graph()
    p = g.param("x", x)
    loss = dg.sum(dg.var(p, axis, ddof=ddof))
    (graph_grad,) = dg.grad(loss, [p])
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(g.backward(loss).grad(p), expected)
    np.testing.assert_array_equal(g.forward(graph_grad).value(graph_grad), expected)


# ---------------------------------------------------------------- norm ---

NORM_CASES = [
    ((5,), None, None), ((5,), 1, None), ((5,), 2, None), ((5,), np.inf, None), ((5,), -np.inf, None),
    ((5,), 0, None), ((5,), 3, None), ((5,), 0.5, None), ((5,), -2, None), ((3, 4), None, None),
    ((3, 4), "fro", None), ((3, 4), 1, None), ((3, 4), -1, None), ((3, 4), np.inf, None), ((3, 4), -np.inf, None),
    ((2, 3, 4), None, None),
    ((2, 3, 4), 2, 1), ((2, 3, 4), np.inf, -1), ((2, 3, 4), 1, (2, 0)), ((2, 3, 4), np.inf, (0, 2)),
    ((2, 3, 4), "fro", (1, 2)), ((2, 3, 4), -1, (2, 1)),
]


@pytest.mark.parametrize("shape, order, axis", NORM_CASES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_norm_matches_numpy_linalg_norm(shape, order, axis, keepdims):
    x = np.random.default_rng(1).normal(size=shape)
    g = dg.Graph()
    n = dg.norm(g.const(x), order, axis, keepdims)
    value = g.forward(n).value(n)
    want = np.linalg.norm(x, ord=order, axis=axis, keepdims=keepdims)
    assert n.shape == value.shape == np.shape(want)
    np.testing.assert_allclose(value, want, rtol=1e-13)


@pytest.mark.parametrize("order", [None, 1, 3, np.inf, -np.inf])
def test_norm_of_the_zero_vector_has_gradient_zero(order):
    _, first, hess = grad_of(lambda t: dg.norm(t, order), np.zeros(3))
    np.testing.assert_array_equal(first, np.zeros(3))
    assert np.isfinite(hess).all()


def test_norm_ties_and_zero_entries_follow_the_documented_conventions():
    _, first, _ = grad_of(lambda t: dg.norm(t, np.inf), [3.0, -3.0, 1.0])     # two largest |x|: half each
    np.testing.assert_array_equal(first, [0.5, -0.5, 0.0])
    _, first, _ = grad_of(lambda t: dg.norm(t, 1), [0.0, -2.0])              # |x|'s kink gives 0
    np.testing.assert_array_equal(first, [0.0, -1.0])
    _, first, _ = grad_of(lambda t: dg.norm(t, 0.5), [0.0, 4.0, 1.0])       # p < 1: no infinity at the zero
    assert first[0] == 0.0 and np.isfinite(first).all()
    _, first, _ = grad_of(lambda t: dg.norm(t, 1), [[1.0, -2.0], [-3.0, 2.0]])   # two columns sum to 4: half each
    np.testing.assert_array_equal(first, [[0.5, -0.5], [-0.5, 0.5]])


@pytest.mark.parametrize("shape, order, axis, message", [
    ((3, 4), "nuc", None, "singular values"), ((3, 4), 2, (0, 1), "singular values"),
    ((None, 3, 4), "fro", 0, "matrix norm"), ((None, 3, 4), 1, None, "needs axis="),
    ((None, 3, 4), 1, (0, 1, 2), "one axis"), ((3, 4), 7, (0, 1), "invalid norm order"),
])
def test_norm_refuses_what_it_does_not_compute_when_the_node_is_added(shape, order, axis, message):
    g = dg.Graph()
    with pytest.raises(dg.ShapeError, match=message):
        dg.norm(g.input("x", shape=shape), order, axis)


# ----------------------------------------------------- median, quantile ---


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize("q, axis, keepdims", [(0.3, None, False), ((0.0, 0.25, 0.5, 1.0), 1, False),
                                              (0.7, (0, 2), True), ((0.1, 0.9), -1, True)])
def test_quantile_matches_numpy_and_its_gradient_weights_sum_to_one(method, q, axis, keepdims):
    x = np.random.default_rng(2).permutation(60).reshape(3, 4, 5) * 0.1
    g = dg.Graph()
    p = g.param("x", x)
    y = dg.quantile(p, q, axis, keepdims=keepdims, method=method)
    res = g.backward(dg.sum(y), keep="all")
    np.testing.assert_allclose(res.value(y), np.quantile(x, q, axis=axis, keepdims=keepdims, method=method))
    count = np.size(res.value(y))
    np.testing.assert_allclose(res.grad(p).sum(), count)        # each quantile's weights sum to 1
    assert (res.grad(p) >= 0).all()


def test_quantile_gradient_goes_to_the_two_neighbours_with_the_interpolation_weights():
    x = np.array([4.0, 0.0, 3.0, 1.0, 2.0])                       # sorted 0 1 2 3 4; q=0.3 sits at 1.2
    _, first, hess = grad_of(lambda t: dg.quantile(t, 0.3), x)
    np.testing.assert_allclose(first, [0.0, 0.0, 0.0, 0.8, 0.2])
    np.testing.assert_array_equal(hess, np.zeros((5, 5)))


def test_median_ties_share_the_gradient_evenly_whatever_their_order():
    value, first, _ = grad_of(lambda t: dg.median(t), [3.0, 1.0, 2.0, 3.0])
    assert value == 2.5
    np.testing.assert_allclose(first, [0.25, 0.0, 0.5, 0.25])
    _, first, _ = grad_of(lambda t: dg.median(t), [5.0, 5.0, 5.0])
    np.testing.assert_allclose(first, [1 / 3] * 3)


def test_median_matches_numpy_including_even_counts_and_several_axes():
    x = np.random.default_rng(3).normal(size=(4, 6, 2))
    g = dg.Graph()
    for axis in [None, 0, 1, (0, 2)]:
        m = dg.median(g.const(x), axis)
        np.testing.assert_allclose(g.forward(m).value(m), np.median(x, axis=axis))


def test_quantile_refuses_q_outside_zero_to_one_and_unknown_methods():
    g = dg.Graph()
    x = g.input("x", shape=(None, 4))
    with pytest.raises(dg.ShapeError, match=r"in \[0, 1\]"):
        dg.quantile(x, 1.5)
    with pytest.raises(dg.ShapeError, match="unknown quantile method"):
        dg.quantile(x, 0.5, method="hazen")


def test_quantile_with_an_unknown_number_of_entries_weighs_them_at_run_time():
    g = dg.Graph()
    x = g.input("x", shape=(None,))
    (gx,) = dg.grad(dg.quantile(x, 0.3), [x])
    for data in (np.array([4.0, 0.0, 3.0, 1.0, 2.0]), np.array([1.0, 0.0])):
        got = g.forward(gx, {"x": data}).value(gx)
        want = g.backward(dg.quantile(x, 0.3), {"x": data}, wrt=[x]).grad(x)
        np.testing.assert_allclose(got, want)


# ---------------------------------------------------------------- scans ---


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "logcumsumexp"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_scans_match_numpy(name, axis):
    x = np.random.default_rng(4).normal(size=(3, 4))
    g = dg.Graph()
    y = getattr(dg, name)(g.const(x), axis)
    flat = x.reshape(-1) if axis is None else x
    want = {"cumsum": np.cumsum, "cumprod": np.cumprod,
            "logcumsumexp": lambda a, axis: np.log(np.cumsum(np.exp(a), axis=axis))}[name](flat, axis=axis or 0)
    value = g.forward(y).value(y)
    assert y.shape == value.shape
    np.testing.assert_allclose(value, want, rtol=1e-13)


@pytest.mark.parametrize("x", [[0.5, 2.0, -3.0, 1.5], [0.5, 0.0, -3.0, 1.5], [0.0, 2.0, 0.0, 1.5],
                               [2.0, 3.0, 0.0, 0.0]])
def test_cumprod_gradient_and_hessian_are_exact_with_zeros(x):
    w = np.array([1.0, -2.0, 0.5, 3.0])
    _, first, hess = grad_of(lambda t: dg.cumprod(t) * w, x)
    n = len(x)
    want = [sum(w[i] * others_product(x[:i + 1], k) for i in range(k, n)) for k in range(n)]
    np.testing.assert_allclose(first, want, atol=1e-15)
    want_h = [[0.0 if j == k else sum(w[i] * others_product(x[:i + 1], k, skip=(j,)) for i in range(max(j, k), n))
               for j in range(n)] for k in range(n)]
    np.testing.assert_allclose(hess, want_h, atol=1e-15)


def test_cumsum_of_small_integers_accumulates_in_int64():
    g = dg.Graph()
    y = dg.cumsum(g.const(np.array([200, 100], dtype=np.uint8)))
    assert y.dtype == np.uint64 and g.forward(y).value(y).tolist() == [200, 300]


def test_logcumsumexp_is_stable_far_beyond_exps_range_to_the_second_order():
    x = np.array([-1000.0, 0.0, 1000.0, 999.0, -np.inf])
    value, first, hess = grad_of(lambda t: dg.logcumsumexp(t) * np.array([1.0, 2.0, -1.0, 0.5, 3.0]), x)
    np.testing.assert_allclose(value / [1.0, 2.0, -1.0, 0.5, 3.0],
                               [-1000.0, 0.0, 1000.0, 1000 + math.log1p(math.exp(-1)), 1000 + math.log1p(math.exp(-1))])
    assert np.isfinite(first).all() and np.isfinite(hess).all()
    # d y_i / d x_j = exp(x_j - y_i): the softmax of the prefix; x_0 and x_1 are negligible beside x_2.
    weights = np.array([1.0, 2.0, -1.0, 0.5, 3.0])
    y = value / weights
    want = [sum(weights[i] * math.exp(x[j] - y[i]) for i in range(j, 5)) if np.isfinite(x[j]) else 0.0
            for j in range(5)]
    np.testing.assert_allclose(first, want, atol=1e-300)


def test_logcumsumexp_gradient_pieces_are_transposes_of_each_other():
    rng = np.random.default_rng(5)
    h, g, x, y = (rng.normal(size=(2, 6)) for _ in range(4))
    forward = dg.registry().op("expscan").forward(h, x, y, axis=1)
    backward = dg.registry().op("expscan_reverse").forward(g, x, y, axis=1)
    np.testing.assert_allclose(np.sum(forward * g), np.sum(h * backward))      # <F h, g> == <h, R g>
    direct = np.array([[sum(g[r, i] * math.exp(x[r, j] - y[r, i]) for i in range(j, 6)) for j in range(6)]
                       for r in range(2)])
    np.testing.assert_allclose(backward, direct, rtol=1e-12)


def test_scans_refuse_several_axes_and_flatten_with_none():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    assert dg.cumsum(x).shape == (None,) and dg.cumsum(x, 1).shape == (None, 3)
    with pytest.raises(dg.ShapeError, match="one axis"):
        dg.cumsum(x, (0, 1))
    assert dg.cumprod(g.input("y", shape=(2, 3))).shape == (6,)


def test_every_combination_of_shape_and_axis_of_the_statistics_accepts_unknown_sizes():
    for name, attrs in itertools.product(["prod", "var", "std", "median"], [{"axis": None}, {"axis": 1}]):
        g = dg.Graph()
        x = g.input("x", shape=(None, 3))
        y = dg.registry().op(name)(x, **attrs)
        (gx,) = dg.grad(dg.sum(y), [x])
        data = np.arange(1.0, 7.0).reshape(2, 3)
        got = g.forward(gx, {"x": data}).value(gx)
        want = g.backward(dg.sum(y), {"x": data}, wrt=[x]).grad(x)
        np.testing.assert_allclose(got, want, err_msg=f"{name} {attrs}")
