"""The conv pack: every op passes check_op (first and second derivatives), agrees with direct loop references and
with PyTorch's numbers (hard-coded here, so no torch is needed), and refuses what PyTorch refuses, by name."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import dagrad as dg
from dagrad.testing import op_tests

test_every_conv_op_passes_check_op = op_tests("conv")


# ------------------------------------------------- direct loop references --


def _ntuple(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def _pads(padding, kernel, dilation):
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [(t // 2, t - t // 2) for t in totals]
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    return [(p, p) for p in _ntuple(padding, len(kernel))]


def conv_reference(x, w, g=None, stride=1, padding=0, dilation=1, groups=1):
    """convNd, and the gradients of sum(out * g) for x and w, by looping over every output position."""
    n = x.ndim - 2
    kernel = w.shape[2:]
    stride, dilation = _ntuple(stride, n), _ntuple(dilation, n)
    pads = _pads(padding, kernel, dilation)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    out_sizes = [(xp.shape[2 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1 for a in range(n)]
    o, cg = w.shape[:2]
    out = np.zeros((x.shape[0], o, *out_sizes))
    g = np.ones_like(out) if g is None else g
    gxp, gw = np.zeros_like(xp), np.zeros_like(w)
    per_group = o // groups
    for pos in itertools.product(*map(range, out_sizes)):
        window = tuple(slice(p * s, p * s + d * (k - 1) + 1, d) for p, s, d, k in zip(pos, stride, dilation, kernel))
        for grp in range(groups):
            chans, outs = slice(grp * cg, (grp + 1) * cg), slice(grp * per_group, (grp + 1) * per_group)
            patch = xp[(slice(None), chans) + window]                                  # (N, Cg, *K)
            flat_patch, flat_w = patch.reshape(patch.shape[:2] + (-1,)), w[outs].reshape(per_group, cg, -1)
            out[(slice(None), outs) + pos] = np.einsum("nck,ock->no", flat_patch, flat_w)
            gi = g[(slice(None), outs) + pos]                                           # (N, O/G)
            gxp[(slice(None), chans) + window] += np.einsum("no,ock->nck", gi, flat_w).reshape(patch.shape)
            gw[outs] += np.einsum("no,nck->ock", gi, flat_patch).reshape(w[outs].shape)
    inner = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, x.shape[2:]))
    return out, gxp[(slice(None), slice(None)) + inner], gw


def pool_reference(x, kind, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False,
                   count_include_pad=True, divisor_override=None):
    """max or avg pooling by looping over every window, with PyTorch's window and divisor rules written out."""
    n = x.ndim - 2
    k, p, d = _ntuple(kernel_size, n), _ntuple(padding, n), _ntuple(dilation, n)
    s = k if stride is None else _ntuple(stride, n)
    sizes = []
    for a in range(n):
        length, room = x.shape[2 + a], x.shape[2 + a] + 2 * p[a] - d[a] * (k[a] - 1) - 1
        out = (-(-room // s[a]) if ceil_mode else room // s[a]) + 1
        if ceil_mode and (out - 1) * s[a] >= length + p[a]:
            out -= 1
        sizes.append(out)
    result = np.zeros(x.shape[:2] + tuple(sizes))
    for pos in itertools.product(*map(range, sizes)):
        taps = [[o * s[a] - p[a] + t * d[a] for t in range(k[a])] for a, o in enumerate(pos)]
        real = [[i for i in axis if 0 <= i < x.shape[2 + a]] for a, axis in enumerate(taps)]
        window = x[(slice(None), slice(None)) + np.ix_(*real)].reshape(x.shape[:2] + (-1,))
        if kind == "max":
            result[(slice(None), slice(None)) + pos] = window.max(axis=-1)
            continue
        if divisor_override:
            divisor = divisor_override
        elif count_include_pad:
            divisor = np.prod([sum(-p[a] <= i < x.shape[2 + a] + p[a] for i in axis) for a, axis in enumerate(taps)])
        else:
            divisor = window.shape[-1]
        result[(slice(None), slice(None)) + pos] = window.sum(axis=-1) / divisor
    return result


def run(op_name, *arrays, cotangent=None, **attrs):
    """Value of the op and the gradients of sum(op(...) * cotangent) with respect to each array, through a graph."""
    g = dg.Graph()
    params = [g.param(f"a{i}", a) for i, a in enumerate(arrays)]
    out = g.apply(op_name, params, attrs, name="out")
    loss = out.sum() if cotangent is None else (out * g.const(cotangent)).sum()
    res = g.backward(loss, wrt=params)
    return (res.value(out), *[res.grad(p) for p in params])


def _ids(attrs):
    return ", ".join(f"{k}={v}" for k, v in attrs.items()) or "plain"


# ---------------------------------------------------------- convolution --

CONV_CASES = [
    (2, dict()),
    (2, dict(stride=2, padding=1)),
    (2, dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1))),
    (2, dict(dilation=2, padding="same")),
    (2, dict(groups=2, stride=2)),
    (2, dict(groups=4, padding="valid")),
    (1, dict(stride=2, padding=1, dilation=2)),
    (1, dict(padding="same", groups=2)),
    (3, dict(padding="same", stride=1)),
    (3, dict(stride=(2, 1, 1), padding=(1, 0, 1), groups=2)),
]


@pytest.mark.parametrize("n, attrs", CONV_CASES, ids=lambda c: _ids(c) if isinstance(c, dict) else f"{c}d")
def test_convolution_matches_a_direct_loop_in_value_and_gradients(n, attrs):
    rng = np.random.default_rng(0)
    groups = attrs.get("groups", 1)
    x = rng.standard_normal((2, 4) + (7, 6, 5)[:n])
    w = rng.standard_normal((4, 4 // groups) + (3, 2, 2)[:n])
    ref_out, _, _ = conv_reference(x, w, **attrs)
    cot = rng.standard_normal(ref_out.shape)
    out, gx, gw = run(f"conv{n}d", x, w, cotangent=cot, **attrs)
    _, ref_gx, ref_gw = conv_reference(x, w, cot, **attrs)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    np.testing.assert_allclose(gx, ref_gx, atol=1e-12)
    np.testing.assert_allclose(gw, ref_gw, atol=1e-12)


TRANSPOSE_CASES = [
    (2, dict()),
    (2, dict(stride=2, padding=1, output_padding=1)),
    (2, dict(stride=(2, 3), output_padding=(0, 2), groups=2)),
    (1, dict(dilation=2, output_padding=1)),
    (3, dict(stride=2, padding=(1, 0, 0))),
]


@pytest.mark.parametrize("n, attrs", TRANSPOSE_CASES, ids=lambda c: _ids(c) if isinstance(c, dict) else f"{c}d")
def test_a_transposed_convolution_is_the_input_gradient_of_the_convolution_it_transposes(n, attrs):
    rng = np.random.default_rng(1)
    groups, extra = attrs.get("groups", 1), attrs.get("output_padding", 0)
    x = rng.standard_normal((2, 4) + (3, 4, 2)[:n])
    w = rng.standard_normal((4, 6 // groups) + (3, 2, 2)[:n])
    y = run(f"conv_transpose{n}d", x, w, **attrs)[0]
    conv = {k: v for k, v in attrs.items() if k != "output_padding"}
    # the convolution of an image of y's size, with w as its kernel, has x's shape (a few more outputs when
    # output_padding is a stride or more); its input gradient at x (zeros for those) is y
    out_shape = conv_reference(np.zeros(y.shape), w, **conv)[0].shape
    cot = np.pad(x, [(0, 0), (0, 0)] + [(0, o - s) for o, s in zip(out_shape[2:], x.shape[2:])])
    _, ref, _ = conv_reference(np.zeros(y.shape), w, cot, **conv)
    np.testing.assert_allclose(y, ref, atol=1e-12)
    extra = _ntuple(extra, n)
    assert y.shape[2:] == tuple((s - 1) * st - 2 * p + (k - 1) * d + e + 1 for s, st, p, k, d, e in zip(
        x.shape[2:], _ntuple(attrs.get("stride", 1), n), _ntuple(attrs.get("padding", 0), n), w.shape[2:],
        _ntuple(attrs.get("dilation", 1), n), extra))


def test_conv_gradient_ops_agree_with_the_convolution_vjp():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2))
    attrs = dict(stride=2, padding=1, groups=2)
    cot = rng.standard_normal((2, 6, 3, 3))
    _, gx, gw = run("conv2d", x, w, cotangent=cot, **attrs)
    g = dg.Graph()
    xi, wi, gi = g.const(x), g.const(w), g.const(cot)
    a, b = dg.ops.conv_input_grad(gi, wi, xi, **attrs), dg.ops.conv_weight_grad(xi, gi, wi, **attrs)
    res = g.forward([a, b])
    np.testing.assert_allclose(res.value(a), gx, atol=1e-12)
    np.testing.assert_allclose(res.value(b), gw, atol=1e-12)


# -------------------------------------------------------------- pooling --

POOL_CASES = [
    (2, dict()),
    (2, dict(kernel_size=3, stride=2, padding=1)),
    (2, dict(kernel_size=(2, 3), stride=1)),
    (2, dict(kernel_size=3, stride=(1, 2), dilation=(2, 1), ceil_mode=True)),
    (2, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (1, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, dict(kernel_size=2, stride=3, dilation=2, ceil_mode=True, divisor_override=3)),
    (3, dict(kernel_size=2, stride=(1, 2, 2), padding=(1, 0, 1))),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("n, attrs", POOL_CASES, ids=lambda c: _ids(c) if isinstance(c, dict) else f"{c}d")
def test_pooling_matches_a_direct_loop(kind, n, attrs):
    if kind == "max":
        attrs = {k: v for k, v in attrs.items() if k not in ("count_include_pad", "divisor_override")}
    x = np.random.default_rng(1).permutation(2 * 3 * 7 * 6 * 5)[: 2 * 3 * int(np.prod((7, 6, 5)[:n]))]
    x = x.reshape((2, 3) + (7, 6, 5)[:n]) * 0.1
    np.testing.assert_allclose(run(f"{kind}_pool{n}d", x, **attrs)[0], pool_reference(x, kind, **attrs), atol=1e-12)


def test_max_pool_gradient_goes_only_to_each_windows_first_winner():
    x = np.array([[[[1.0, 5.0], [3.0, 2.0]], [[7.0, 7.0], [0.0, 7.0]]]])
    _, gx = run("max_pool2d", x)
    np.testing.assert_array_equal(gx, [[[[0.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]]])


def test_pooling_with_ceil_mode_and_dilation_gives_pytorchs_numbers():
    x = np.arange(10.0).reshape(1, 1, 10)
    run1 = lambda op, **attrs: run(op, x, **attrs)[0].ravel().tolist()  # noqa: E731
    # torch.nn.functional.avg_pool1d / max_pool1d, torch 2.13
    np.testing.assert_allclose(run1("avg_pool1d", kernel_size=3, stride=2, padding=1, ceil_mode=True),
                               [1 / 3, 2, 4, 6, 8, 4.5])
    assert run1("max_pool1d", kernel_size=3, stride=2, padding=1, ceil_mode=True) == [1, 3, 5, 7, 9, 9]
    assert run1("avg_pool1d", kernel_size=2, stride=3, ceil_mode=True) == [0.5, 3.5, 6.5, 9.0]
    assert run1("avg_pool1d", kernel_size=3, stride=2, padding=1, ceil_mode=True,
                count_include_pad=False) == [0.5, 2.0, 4.0, 6.0, 8.0, 9.0]
    y = np.array([[[3.0, 1, 4, 1, 5, 9, 2, 6, 5]]])
    assert run("max_pool1d", y, kernel_size=2, stride=2, padding=1, dilation=3, ceil_mode=True)[0].ravel().tolist() \
        == [4.0, 5.0, 2.0, 9.0, 6.0]


def test_adaptive_pooling_gives_pytorchs_windows():
    x = np.array([[[3.0, 1, 4, 1, 5, 9, 2]]])
    assert run("adaptive_max_pool1d", x, output_size=3)[0].ravel().tolist() == [4.0, 5.0, 9.0]
    np.testing.assert_allclose(run("adaptive_avg_pool1d", x, output_size=3)[0].ravel(), [8 / 3, 10 / 3, 16 / 3])
    np.testing.assert_allclose(run("adaptive_avg_pool1d", np.arange(3.0).reshape(1, 1, 3), output_size=5)[0].ravel(),
                               [0, 0.5, 1, 1.5, 2])
    image = np.random.default_rng(3).standard_normal((2, 3, 5, 4))
    out, gx = run("adaptive_avg_pool2d", image, output_size=(1, None))
    np.testing.assert_allclose(out, image.mean(axis=2, keepdims=True))
    np.testing.assert_allclose(gx, np.full(image.shape, 1 / 5))
    assert run("adaptive_max_pool2d", image, output_size=1)[0].shape == (2, 3, 1, 1)


def test_max_pool_second_derivative_is_zero_but_its_gradient_is_differentiable_in_the_cotangent():
    g = dg.Graph()
    values = np.random.default_rng(4).permutation(16).reshape(1, 1, 4, 4) + 1.0
    x = g.param("x", values)
    gx = dg.grad(dg.sum(dg.ops.max_pool2d(x) ** 2), x)        # 2 * max at each winner
    hx = dg.grad(dg.sum(gx), x)                               # d/dx of 2 * max: 2 at the winners
    res = g.forward([gx, hx])
    maxes = values.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4).max(axis=1)
    assert sorted(res.value(gx)[res.value(gx) != 0].tolist()) == sorted((2 * maxes).tolist())
    assert res.value(hx).sum() == 8.0 and set(np.unique(res.value(hx)).tolist()) == {0.0, 2.0}


# ---------------------------------------------------------- interpolate --

ROW = np.arange(6.0).reshape(1, 1, 6)

# torch.nn.functional.interpolate(torch.arange(6.).reshape(1, 1, 6), ...), torch 2.13
INTERPOLATE_KNOWN = [
    (dict(scale_factor=0.7), [0, 1, 2, 4]),
    (dict(size=4), [0, 1, 3, 4]),
    (dict(size=4, mode="nearest-exact"), [0, 2, 3, 5]),
    (dict(scale_factor=1.7), [0, 0, 1, 1, 2, 2, 3, 4, 4, 5]),
    (dict(scale_factor=1.7, recompute_scale_factor=True), [0, 0, 1, 1, 2, 3, 3, 4, 4, 5]),
    (dict(size=4, mode="linear"), [0.25, 1.75, 3.25, 4.75]),
    (dict(size=4, mode="linear", align_corners=True), [0, 5 / 3, 10 / 3, 5]),
    (dict(scale_factor=1.5, mode="linear"), [0, 0.5, 7 / 6, 11 / 6, 2.5, 19 / 6, 23 / 6, 4.5, 5]),
    (dict(scale_factor=1.7, mode="linear", recompute_scale_factor=True), [0, 0.4, 1, 1.6, 2.2, 2.8, 3.4, 4, 4.6, 5]),
]


@pytest.mark.parametrize("attrs, expected", INTERPOLATE_KNOWN, ids=lambda c: _ids(c) if isinstance(c, dict) else "")
def test_interpolate_picks_and_weighs_pytorchs_pixels(attrs, expected):
    np.testing.assert_allclose(run("interpolate", ROW, **attrs)[0].ravel(), expected, rtol=1e-6)


def test_bilinear_interpolation_gives_pytorchs_numbers_and_its_transpose_is_its_gradient():
    image = np.arange(12.0).reshape(1, 1, 3, 4)
    out, gx = run("interpolate", image, size=(2, 5), mode="bilinear", cotangent=np.ones((1, 1, 2, 5)))
    np.testing.assert_allclose(out[0, 0], [[1.0, 1.7, 2.5, 3.3, 4.0], [7.0, 7.7, 8.5, 9.3, 10.0]], rtol=1e-6)
    assert gx.sum() == pytest.approx(10.0)      # every output's weights sum to 1
    np.testing.assert_array_equal(run("interpolate", image, scale_factor=1, mode="bilinear")[0], image)


def test_nearest_interpolation_keeps_integer_images_integer():
    g = dg.Graph()
    x = g.const(np.arange(4, dtype=np.uint8).reshape(1, 1, 2, 2))
    y = dg.ops.interpolate(x, scale_factor=2)
    assert y.dtype == np.uint8 and g.forward(y).value(y)[0, 0, 3].tolist() == [2, 2, 3, 3]
    assert dg.ops.interpolate(x, scale_factor=2, mode="bilinear").dtype == np.float64


def test_an_inf_pixel_reaches_only_the_windows_that_contain_it():
    x = np.zeros((1, 1, 6))
    x[0, 0, 0] = np.inf
    assert run("avg_pool1d", x, kernel_size=2)[0].ravel().tolist() == [np.inf, 0.0, 0.0]
    assert run("adaptive_avg_pool1d", x, output_size=3)[0].ravel().tolist() == [np.inf, 0.0, 0.0]
    assert run("interpolate", x, scale_factor=2)[0].ravel().tolist() == [np.inf] * 2 + [0.0] * 10


# ------------------------------------------------------------ shapes --


def test_shapes_are_known_when_the_graph_is_built_with_an_unknown_batch():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 8, 8))
    w = g.param("w", np.zeros((6, 3, 3, 3)))
    h = dg.ops.conv2d(x, w, stride=2, padding=1)
    p = dg.ops.max_pool2d(h)
    f = dg.ops.flatten(p)
    assert (h.shape, p.shape, f.shape) == ((None, 6, 4, 4), (None, 6, 2, 2), (None, 24))
    s = dg.ops.conv2d(x, w, padding="same")
    assert s.shape == (None, 6, 8, 8)
    up = dg.ops.interpolate(s, scale_factor=1.5, mode="bilinear")
    assert up.shape == (None, 6, 12, 12)
    assert dg.ops.adaptive_avg_pool2d(up, output_size=(3, None)).shape == (None, 6, 3, 12)
    wt = g.param("wt", np.zeros((6, 2, 3, 3)))
    assert dg.ops.conv_transpose2d(s, wt, stride=2, padding=1, output_padding=1).shape == (None, 2, 16, 16)


def test_unknown_spatial_sizes_stay_unknown_and_gradients_still_build():
    g = dg.Graph()
    x = g.input("x", shape=(None, 2, None, None))
    w = g.param("w", np.random.default_rng(5).standard_normal((3, 2, 3, 3)))
    y = dg.ops.max_pool2d(dg.ops.conv2d(x, w, stride=2), kernel_size=2, ceil_mode=True)
    assert y.shape == (None, 3, None, None)
    gw = dg.grad(dg.sum(y ** 2), w)
    penalty = dg.grad(dg.sum(gw ** 2), w)                     # a second derivative through conv and pooling
    feed = {"x": np.random.default_rng(6).standard_normal((2, 2, 9, 7))}
    assert g.forward(penalty, feed).value(penalty).shape == (3, 2, 3, 3)


@pytest.mark.parametrize("call, message", [
    (lambda x, w: dg.ops.conv2d(x, g_w(x, (6, 2, 3, 3))), r"conv2d.*3 channels but the kernel expects 2"),
    (lambda x, w: dg.ops.conv2d(x, w, dilation=4), "smaller than the kernel's span 9"),
    (lambda x, w: dg.ops.conv2d(x, w, padding="same", stride=2), "padding='same' needs stride 1"),
    (lambda x, w: dg.ops.conv2d(x, w, padding="full"), "'same' or 'valid'"),
    (lambda x, w: dg.ops.conv1d(x, g_w(x, (6, 3, 3))), r"batched input \(N, C, L\), got rank 4"),
    (lambda x, w: dg.ops.conv_transpose2d(x, g_w(x, (3, 2, 3, 3)), output_padding=1),
     "output_padding must be >= 0 and smaller than the stride or the dilation"),
    (lambda x, w: dg.ops.max_pool2d(x, kernel_size=2, padding=2), "at most half the kernel"),
    (lambda x, w: dg.ops.avg_pool2d(x, kernel_size=0), "kernel_size must be >= 1"),
    (lambda x, w: dg.ops.adaptive_avg_pool2d(x, output_size=(2, 2, 2)), "output_size must be an int or 2 ints"),
    (lambda x, w: dg.ops.interpolate(x, size=4, mode="linear"), "mode 'linear' takes 3-d input, got 4-d"),
    (lambda x, w: dg.ops.interpolate(x, size=4, scale_factor=2), "exactly one of size and scale_factor"),
    (lambda x, w: dg.ops.interpolate(x, size=4, align_corners=True), "align_corners can only be set"),
    (lambda x, w: dg.ops.flatten(x, start_dim=3, end_dim=1), "start_dim=3 comes after end_dim=1"),
])
def test_bad_geometry_is_a_shape_error_naming_the_node_and_leaves_the_graph_unchanged(call, message):
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 8, 8))
    w = g.param("w", np.zeros((6, 3, 3, 3)))
    before = len(g)
    with pytest.raises(dg.ShapeError, match=message):
        call(x, w)
    assert len(g) <= before + 1   # at most the kernel the case added; never the refused node


def g_w(x, shape):
    return x.graph.param(f"w{len(x.graph)}", np.zeros(shape))


def test_the_deprecated_attribute_names_still_work_and_warn():
    x = np.random.default_rng(7).standard_normal((1, 2, 4, 4))
    with pytest.warns(DeprecationWarning, match="kernel_size"):
        old = run("max_pool2d", x, kernel=2)[0]
    np.testing.assert_array_equal(old, run("max_pool2d", x, kernel_size=2)[0])
    with pytest.warns(DeprecationWarning, match="start_dim"):
        assert run("flatten", x, start=2)[0].shape == (1, 2, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run("avg_pool2d", x, kernel_size=2)


def test_conv_ops_are_provided_by_the_conv_plugin():
    reg = dg.registry()
    names = ["conv1d", "conv2d", "conv3d", "conv_transpose2d", "max_pool2d", "avg_pool1d", "adaptive_avg_pool2d",
             "adaptive_max_pool1d", "interpolate", "flatten", "conv_input_grad", "max_pool_scatter"]
    assert {reg.ops[n].plugin for n in names} == {"conv"}
    assert all(reg.ops[n].has_graph_vjp for n in reg.plugins["conv"].ops)


def test_float32_images_stay_float32_through_conv_pooling_and_resizing():
    rng = np.random.default_rng(2)
    g = dg.Graph()
    x = g.input("x", shape=(None, 2, 6, 6), dtype="float32")
    w = g.param("w", rng.standard_normal((3, 2, 3, 3)).astype(np.float32))
    h = dg.ops.max_pool2d(dg.ops.conv2d(x, w, padding="same"), kernel_size=2, ceil_mode=True)
    h = dg.ops.interpolate(dg.ops.adaptive_avg_pool2d(h, output_size=2), scale_factor=2, mode="bilinear")
    y = dg.ops.flatten(dg.ops.avg_pool2d(h, kernel_size=1))
    res = g.backward(y.sum(), {"x": rng.standard_normal((2, 2, 6, 6)).astype(np.float32)})
    assert res.value(y).dtype == np.float32 and res.grad("w").dtype == np.float32


def test_a_model_saved_with_the_old_attribute_names_loads_and_computes_the_same(tmp_path):
    g = dg.Graph("old-names")
    x = g.input("x", shape=(None, 1, 4, 4))
    w = g.param("w", np.random.default_rng(8).standard_normal((2, 1, 3, 3)))
    with pytest.warns(DeprecationWarning):
        y = dg.ops.flatten(dg.ops.avg_pool2d(dg.ops.conv2d(x, w, padding=1), kernel=2), start=1)
    dg.save(g, tmp_path / "old.dagrad")
    with pytest.warns(DeprecationWarning):
        again = dg.load(tmp_path / "old.dagrad")
    feed = {"x": np.random.default_rng(9).standard_normal((3, 1, 4, 4))}
    np.testing.assert_array_equal(again.forward(y.name, feed).value(y.name), g.forward(y, feed).value(y))
