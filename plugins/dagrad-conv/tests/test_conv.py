"""The conv pack: finite differences on every sample, and agreement with direct (slow) loop references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dagrad as dg
from dagrad.testing import op_tests

test_every_conv_op_passes_check_op = op_tests("conv")


# ------------------------------------------------- direct loop references --


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_reference(x, w, stride=1, padding=0, dilation=1, groups=1):
    """conv2d and its input/weight gradients for g = ones, by looping over every output element."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    per_group = o // groups
    for b, oc, i, j in itertools.product(range(n), range(o), range(oh), range(ow)):
        grp = oc // per_group
        for ci, a, e in itertools.product(range(cg), range(kh), range(kw)):
            row, col, chan = i * sh + a * dh, j * sw + e * dw, grp * cg + ci
            out[b, oc, i, j] += xp[b, chan, row, col] * w[oc, ci, a, e]
            gxp[b, chan, row, col] += w[oc, ci, a, e]
            gw[oc, ci, a, e] += xp[b, chan, row, col]
    return out, gxp[:, :, ph: ph + h, pw: pw + wd], gw


def pool_reference(x, kind, kernel=2, stride=None, padding=0):
    """max or avg pooling and its input gradient for g = ones, by looping over every window."""
    (kh, kw), (ph, pw) = _pair(kernel), _pair(padding)
    sh, sw = _pair(kernel if stride is None else stride)
    n, c, h, wd = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    gxp = np.zeros_like(xp)
    for b, ch, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        window = xp[b, ch, i * sh: i * sh + kh, j * sw: j * sw + kw]
        if kind == "max":
            a, e = np.unravel_index(np.argmax(window), window.shape)
            out[b, ch, i, j] = window[a, e]
            gxp[b, ch, i * sh + a, j * sw + e] += 1
        else:
            out[b, ch, i, j] = window.mean()
            gxp[b, ch, i * sh: i * sh + kh, j * sw: j * sw + kw] += 1 / (kh * kw)
    return out, gxp[:, :, ph: ph + h, pw: pw + wd]


def run(op_name, *arrays, **attrs):
    """Value of the op and gradients of sum(op(...)) with respect to each array, through a graph."""
    g = dg.Graph()
    params = [g.param(f"a{i}", a) for i, a in enumerate(arrays)]
    out = g.apply(op_name, params, attrs, name="out")
    res = g.backward(out.sum(), wrt=params)
    return (res.value(out), *[res.grad(p) for p in params])


CONV_CASES = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1)),
    dict(dilation=2, padding=2),
    dict(groups=2, stride=2),
    dict(groups=4, padding=1),
]


@pytest.mark.parametrize("attrs", CONV_CASES, ids=lambda a: ", ".join(f"{k}={v}" for k, v in a.items()) or "plain")
def test_conv2d_matches_a_direct_loop_in_value_and_gradients(attrs):
    rng = np.random.default_rng(0)
    groups = attrs.get("groups", 1)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((4, 4 // groups, 3, 2))
    out, gx, gw = run("conv2d", x, w, **attrs)
    ref_out, ref_gx, ref_gw = conv_reference(x, w, **attrs)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    np.testing.assert_allclose(gx, ref_gx, atol=1e-12)
    np.testing.assert_allclose(gw, ref_gw, atol=1e-12)


POOL_CASES = [dict(), dict(kernel=3, stride=2, padding=1), dict(kernel=(2, 3), stride=1), dict(kernel=3, stride=(1, 2))]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("attrs", POOL_CASES, ids=lambda a: ", ".join(f"{k}={v}" for k, v in a.items()) or "2x2")
def test_pooling_matches_a_direct_loop_in_value_and_gradient(kind, attrs):
    x = np.random.default_rng(1).permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.1
    out, gx = run(f"{kind}_pool2d", x, **attrs)
    ref_out, ref_gx = pool_reference(x, kind, **attrs)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    np.testing.assert_allclose(gx, ref_gx, atol=1e-12)


def test_max_pool_gradient_goes_only_to_each_windows_winner():
    x = np.array([[[[1.0, 5.0], [3.0, 2.0]]]])
    _, gx = run("max_pool2d", x)
    np.testing.assert_array_equal(gx, [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_shapes_are_known_when_the_graph_is_built_with_an_unknown_batch():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 8, 8))
    w = g.param("w", np.zeros((6, 3, 3, 3)))
    h = dg.ops.conv2d(x, w, stride=2, padding=1)
    p = dg.ops.max_pool2d(h)
    f = dg.ops.flatten(p)
    assert (h.shape, p.shape, f.shape) == ((None, 6, 4, 4), (None, 6, 2, 2), (None, 24))


def test_a_channel_mismatch_is_a_shape_error_naming_the_node():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 8, 8))
    w = g.param("w", np.zeros((6, 2, 3, 3)))
    with pytest.raises(dg.ShapeError, match=r"conv2d.*3 channels but the kernel expects 2"):
        dg.ops.conv2d(x, w)
    assert len(g) == 2  # the refused node left the graph unchanged


def test_a_kernel_larger_than_the_padded_image_is_a_shape_error():
    g = dg.Graph()
    x = g.input("x", shape=(None, 1, 4, 4))
    w = g.param("w", np.zeros((1, 1, 3, 3)))
    with pytest.raises(dg.ShapeError, match="smaller than the kernel's span 5"):
        dg.ops.conv2d(x, w, dilation=2)


def test_conv_ops_are_provided_by_the_conv_plugin():
    reg = dg.registry()
    assert {n: reg.ops[n].plugin for n in ["conv2d", "max_pool2d", "avg_pool2d", "flatten"]} == dict.fromkeys(
        ["conv2d", "max_pool2d", "avg_pool2d", "flatten"], "conv"
    )


def test_float32_images_stay_float32_through_conv_and_pooling():
    rng = np.random.default_rng(2)
    g = dg.Graph()
    x = g.input("x", shape=(None, 2, 6, 6), dtype="float32")
    w = g.param("w", rng.standard_normal((3, 2, 3, 3)).astype(np.float32))
    y = dg.ops.flatten(dg.ops.avg_pool2d(dg.ops.max_pool2d(dg.ops.conv2d(x, w, padding=1), kernel=1)))
    res = g.backward(y.sum(), {"x": rng.standard_normal((2, 2, 6, 6)).astype(np.float32)})
    assert res.value(y).dtype == np.float32 and res.grad("w").dtype == np.float32
