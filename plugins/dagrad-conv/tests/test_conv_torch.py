"""Optional: every op of the conv pack against PyTorch's double backward: second derivatives (float64).

Runs only where torch is importable (never a dependency). For each case the
op's vector-Jacobian product for a random cotangent, built by ``dg.grad``, is
differentiated again (with respect to the inputs and the cotangent) and
compared with ``torch.autograd.grad(..., create_graph=True)``. Values and
first derivatives are compared with PyTorch on every op's samples in the core
tests' test_torch_parity.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")   # PyTorch's note on its own copy


def _distinct(rng, shape):
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.05 - 1.0


CASES = [
    # (op, input shapes, attrs, the torch call)
    ("conv1d", [(2, 4, 9), (6, 2, 3)], dict(stride=2, padding=2, dilation=2, groups=2), F.conv1d),
    ("conv1d", [(1, 3, 8), (2, 3, 4)], dict(padding="same", dilation=2), F.conv1d),
    ("conv2d", [(2, 3, 6, 5), (4, 3, 3, 2)], dict(stride=(2, 1), padding=(1, 0)), F.conv2d),
    ("conv2d", [(1, 4, 5, 6), (4, 1, 2, 3)], dict(padding="same", groups=4), F.conv2d),
    ("conv2d", [(1, 2, 5, 5), (3, 2, 3, 3)], dict(padding="valid", dilation=(1, 2)), F.conv2d),
    ("conv3d", [(1, 2, 4, 3, 4), (2, 2, 2, 2, 3)], dict(stride=(1, 2, 1), padding=1), F.conv3d),
    ("conv_transpose1d", [(2, 4, 5), (4, 3, 3)], dict(stride=2, padding=1, output_padding=1, groups=2),
     F.conv_transpose1d),
    ("conv_transpose2d", [(1, 3, 3, 4), (3, 2, 3, 2)], dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2)),
     F.conv_transpose2d),
    ("conv_transpose2d", [(1, 2, 3, 3), (2, 2, 2, 2)], dict(dilation=3, output_padding=2), F.conv_transpose2d),
    ("conv_transpose3d", [(1, 2, 2, 3, 2), (2, 1, 2, 2, 2)], dict(stride=2, padding=(0, 1, 0)), F.conv_transpose3d),
    ("max_pool1d", [(2, 3, 10)], dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True), F.max_pool1d),
    ("max_pool2d", [(1, 2, 7, 6)], dict(kernel_size=(3, 2), stride=2, padding=(1, 1), ceil_mode=True), F.max_pool2d),
    ("max_pool3d", [(1, 2, 4, 5, 3)], dict(kernel_size=2, stride=(1, 2, 1), dilation=(2, 1, 1)), F.max_pool3d),
    ("avg_pool1d", [(2, 3, 10)], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), F.avg_pool1d),
    ("avg_pool2d", [(1, 2, 7, 6)], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
     F.avg_pool2d),
    ("avg_pool2d", [(1, 2, 6, 6)], dict(kernel_size=(3, 2), stride=(2, 1), padding=1, divisor_override=5),
     F.avg_pool2d),
    ("avg_pool3d", [(1, 2, 5, 4, 3)], dict(kernel_size=2, stride=2, padding=1, ceil_mode=True), F.avg_pool3d),
    ("adaptive_max_pool1d", [(2, 3, 7)], dict(output_size=3), F.adaptive_max_pool1d),
    ("adaptive_max_pool2d", [(1, 2, 5, 7)], dict(output_size=(4, None)), F.adaptive_max_pool2d),
    ("adaptive_avg_pool1d", [(2, 3, 4)], dict(output_size=6), F.adaptive_avg_pool1d),
    ("adaptive_avg_pool2d", [(1, 2, 7, 5)], dict(output_size=(3, 2)), F.adaptive_avg_pool2d),
    ("adaptive_avg_pool3d", [(1, 1, 3, 4, 5)], dict(output_size=(2, 3, 2)), F.adaptive_avg_pool3d),
    ("interpolate", [(1, 2, 5)], dict(scale_factor=1.7, mode="linear"), F.interpolate),
    ("interpolate", [(1, 2, 4, 5)], dict(size=(7, 3), mode="bilinear", align_corners=True), F.interpolate),
    ("interpolate", [(1, 2, 4, 5)], dict(scale_factor=(0.6, 2.5), mode="bilinear", recompute_scale_factor=True),
     F.interpolate),
    ("interpolate", [(1, 2, 3, 4)], dict(scale_factor=(2.4, 1.3), mode="nearest"), F.interpolate),
    ("interpolate", [(1, 2, 5, 6)], dict(size=(3, 8), mode="nearest-exact"), F.interpolate),
    ("interpolate", [(1, 1, 2, 3, 2)], dict(scale_factor=2, mode="trilinear"), F.interpolate),
    ("flatten", [(2, 3, 4, 2)], dict(start_dim=1, end_dim=2), lambda x, **a: torch.flatten(x, **a)),
]


def _ours(op_name, arrays, attrs, cot, projections):
    g = dg.Graph()
    params = [g.param(f"a{i}", a) for i, a in enumerate(arrays)]
    cotangent = g.param("cotangent", cot)
    out = g.apply(op_name, params, attrs)
    firsts = dg.grad(out, params, cotangent=cotangent)
    projected = sum(dg.sum(f * r) for f, r in zip(firsts, projections))
    seconds = dg.grad(projected, params + [cotangent], allow_unused=True)
    res = g.forward(seconds)
    return [res.value(t) for t in seconds]


def _theirs(fn, arrays, attrs, cot, projections):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tc = torch.tensor(cot, requires_grad=True)
    out = fn(*ts, **attrs)
    firsts = torch.autograd.grad(out, ts, tc, create_graph=True)
    projected = sum((f * torch.tensor(r)).sum() for f, r in zip(firsts, projections))
    wrt = ts + [tc]
    seconds = torch.autograd.grad(projected, wrt, allow_unused=True) if projected.requires_grad else [None] * len(wrt)
    return [np.zeros(w.shape) if s is None else s.detach().numpy() for s, w in zip(seconds, wrt)]


@pytest.mark.parametrize("op_name, shapes, attrs, fn", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_second_derivatives_agree_with_pytorch(op_name, shapes, attrs, fn):
    rng = np.random.default_rng(0)
    arrays = [_distinct(rng, s) if "max" in op_name else rng.standard_normal(s) for s in shapes]
    out_shape = fn(*[torch.tensor(a) for a in arrays], **attrs).shape
    cot = rng.standard_normal(tuple(out_shape))
    projections = [rng.standard_normal(s) for s in shapes]
    ours, theirs = _ours(op_name, arrays, attrs, cot, projections), _theirs(fn, arrays, attrs, cot, projections)
    # In the cotangent, the second derivative is the Jacobian applied to the projections: the first order, again.
    names = [f"second derivative {i}" for i in range(len(arrays))] + ["second derivative in the cotangent"]
    for name, a, b in zip(names, ours, theirs):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=name)
