"""Optional: every activation against PyTorch's double backward: second derivatives (float64).

Runs only where torch is importable (never a dependency). Inputs stay off the
kinks, where the one-sided conventions are checked without torch (see
test_activations.py). Values and first derivatives are compared with PyTorch
on every op's samples in the core tests' test_torch_parity.py (hardsigmoid's
only there: PyTorch cannot differentiate its gradient).
"""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _off_kinks(rng, shape, kinks=(-3.0, -1.0, 0.0, 1.0, 3.0, 6.0)):
    x = rng.uniform(-5, 7, size=shape)
    for k in kinks:
        x = np.where(np.abs(x - k) < 0.05, k + 0.1, x)
    return x


CASES = [
    ("gelu", {}, lambda x: F.gelu(x)),
    ("gelu", {"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh")),
    ("silu", {}, F.silu),
    ("mish", {}, F.mish),
    ("softplus", {}, F.softplus),
    ("softplus", {"beta": 2.0, "threshold": 3.0}, lambda x: F.softplus(x, beta=2.0, threshold=3.0)),
    ("logsigmoid", {}, F.logsigmoid),
    ("elu", {"alpha": 0.7}, lambda x: F.elu(x, alpha=0.7)),
    ("selu", {}, F.selu),
    ("celu", {"alpha": 1.5}, lambda x: F.celu(x, alpha=1.5)),
    ("hardtanh", {"min_val": -1.0, "max_val": 3.0}, lambda x: F.hardtanh(x, -1.0, 3.0)),
    ("relu6", {}, F.relu6),
    ("hardswish", {}, F.hardswish),
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
    ("softmin", {"axis": 1}, lambda x: F.softmin(x, dim=1)),
    ("glu", {"axis": 1}, lambda x: F.glu(x, dim=1)),
    ("ndtr", {}, torch.special.ndtr),
]


def _second_derivatives(values, projection, cot, make_out):
    """(second in x, second in the cotangent) of ``sum(first * projection)`` for one input, through dagrad."""
    g = dg.Graph()
    x, c = g.param("x", values), g.param("c", cot)
    first = dg.grad(make_out(x), x, cotangent=c)
    second_x, second_c = dg.grad(dg.sum(first * projection), [x, c], allow_unused=True)
    res = g.forward([second_x, second_c])
    return [res.value(second_x), res.value(second_c)]


def _torch_second_derivatives(values, projection, cot, fn):
    x, c = torch.tensor(values, requires_grad=True), torch.tensor(cot, requires_grad=True)
    (first,) = torch.autograd.grad(fn(x), x, c, create_graph=True)
    seconds = torch.autograd.grad((first * torch.tensor(projection)).sum(), [x, c], allow_unused=True)
    return [np.zeros(values.shape) if s is None else s.detach().numpy() for s in seconds]


@pytest.mark.parametrize("op_name, attrs, fn", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_second_derivatives_agree_with_pytorch(op_name, attrs, fn):
    rng = np.random.default_rng(0)
    values = _off_kinks(rng, (3, 4)) if op_name != "ndtr" else rng.uniform(-5, 5, (3, 4))
    cot = rng.standard_normal(tuple(fn(torch.tensor(values)).shape))
    projection = rng.standard_normal(values.shape)
    ours = _second_derivatives(values, projection, cot, lambda x: dg.registry().op(op_name)(x, **attrs))
    theirs = _torch_second_derivatives(values, projection, cot, fn)
    for name, a, b in zip(["second derivative", "second derivative in the cotangent"], ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)


def test_prelu_agrees_with_pytorch_in_both_inputs_to_the_second_order():
    rng = np.random.default_rng(1)
    x, w = _off_kinks(rng, (2, 3, 4)), rng.uniform(0.05, 0.5, 3)
    cot, px, pw = rng.standard_normal(x.shape), rng.standard_normal(x.shape), rng.standard_normal(3)
    g = dg.Graph()
    xt, wt, ct = g.param("x", x), g.param("w", w), g.param("c", cot)
    out = dg.ops.prelu(xt, wt)
    gx, gw = dg.grad(out, [xt, wt], cotangent=ct)
    seconds = dg.grad(dg.sum(gx * px) + dg.sum(gw * pw), [xt, wt, ct])
    res = g.forward(seconds)
    ours = [res.value(t) for t in seconds]
    tx, tw, tc = (torch.tensor(a, requires_grad=True) for a in (x, w, cot))
    tgx, tgw = torch.autograd.grad(F.prelu(tx, tw), [tx, tw], tc, create_graph=True)
    tseconds = torch.autograd.grad((tgx * torch.tensor(px)).sum() + (tgw * torch.tensor(pw)).sum(), [tx, tw, tc])
    theirs = [t.detach().numpy() for t in tseconds]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
