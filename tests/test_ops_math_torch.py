"""The math, statistics, scan and selection ops against PyTorch's double backward: second derivatives.

Values, first derivatives and indices are compared with PyTorch on every op's samples in test_torch_parity.py;
this file checks what that cannot: Hessian-vector products of a nonlinear loss of each op, built by ``dg.grad``.
Runs only where torch is importable; it is never a dependency of dagrad. Where the two differ on purpose
(numpy's ``ddof=0`` and median, documented in docs/ops.md) the PyTorch call is given numpy's meaning.
"""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(11)
X = RNG.uniform(-0.9, 0.9, size=(3, 4))
ZEROS = np.array([[0.5, 0.0, -1.5, 2.0], [0.0, 1.2, 0.0, -0.7], [0.3, -0.4, 0.8, 1.1]])

CASES = [
    # name, dagrad function, torch function, input
    ("tan", dg.tan, torch.tan, X),
    ("arcsin", dg.arcsin, torch.asin, X),
    ("arccos", dg.arccos, torch.acos, X),
    ("arctan", dg.arctan, torch.atan, X * 3),
    ("arctan2", lambda x: dg.arctan2(x, x[::-1] + 0.1), lambda x: torch.atan2(x, x.flip(0) + 0.1), X),
    ("sinh", dg.sinh, torch.sinh, X * 2),
    ("cosh", dg.cosh, torch.cosh, X * 2),
    ("arcsinh", dg.arcsinh, torch.asinh, X * 3),
    ("arccosh", dg.arccosh, torch.acosh, X + 2),
    ("arctanh", dg.arctanh, torch.atanh, X),
    ("log1p", dg.log1p, torch.log1p, X),
    ("expm1", dg.expm1, torch.expm1, X),
    ("log2", dg.log2, torch.log2, X + 1),
    ("log10", dg.log10, torch.log10, X + 1),
    ("erf", dg.erf, torch.erf, X * 3),
    ("erfc", dg.erfc, torch.erfc, X * 3),
    ("square", dg.square, torch.square, X),
    ("reciprocal", dg.reciprocal, torch.reciprocal, X + 2),
    ("rsqrt", dg.rsqrt, torch.rsqrt, X + 1),
    ("sign", lambda x: dg.sign(x) * x, lambda x: torch.sign(x) * x, X),
    ("floor", lambda x: dg.floor(x * 3) * x, lambda x: torch.floor(x * 3) * x, X),
    ("round", lambda x: dg.round(x * 3) * x, lambda x: torch.round(x * 3) * x, X),
    ("prod with zeros", lambda x: dg.prod(x, 1), lambda x: torch.prod(x, 1), ZEROS),
    ("prod of all", lambda x: dg.prod(x[:, :3] + 1), lambda x: torch.prod(x[:, :3] + 1), X),
    ("var ddof=1", lambda x: dg.var(x, 0, ddof=1), lambda x: torch.var(x, 0, correction=1), X),
    ("std ddof=0", lambda x: dg.std(x, 1, ddof=0, keepdims=True),
     lambda x: torch.std(x, 1, correction=0, keepdim=True), X),
    ("norm 2", lambda x: dg.norm(x, 2, 1), lambda x: torch.linalg.norm(x, 2, 1), X),
    ("norm fro", lambda x: dg.norm(x), lambda x: torch.linalg.norm(x), X),
    ("norm 3", lambda x: dg.norm(x, 3, 0), lambda x: torch.linalg.vector_norm(x, 3, 0), X),
    ("norm inf", lambda x: dg.norm(x, np.inf, 1), lambda x: torch.linalg.vector_norm(x, float("inf"), 1), X),
    ("matrix norm 1", lambda x: dg.norm(x, 1), lambda x: torch.linalg.matrix_norm(x, 1), X),
    ("matrix norm -inf", lambda x: dg.norm(x, -np.inf), lambda x: torch.linalg.matrix_norm(x, float("-inf")), X),
    ("quantile", lambda x: dg.quantile(x, [0.2, 0.7], 1), lambda x: torch.quantile(x, torch.tensor([0.2, 0.7],
                                                                                   dtype=x.dtype), 1), X),
    ("quantile nearest", lambda x: dg.quantile(x, 0.4, 0, method="nearest"),
     lambda x: torch.quantile(x, 0.4, 0, interpolation="nearest"), X),
    ("median", lambda x: dg.median(x[:, :3], 1), lambda x: torch.median(x[:, :3], 1).values, X),
    ("cumsum", lambda x: dg.cumsum(x, 1), lambda x: torch.cumsum(x, 1), X),
    ("cumprod with zeros", lambda x: dg.cumprod(x, 1), lambda x: torch.cumprod(x, 1), ZEROS),
    ("logcumsumexp", lambda x: dg.logcumsumexp(x * 30, 0), lambda x: torch.logcumsumexp(x * 30, 0), X),
    ("sort", lambda x: dg.sort(x, 0, descending=True), lambda x: torch.sort(x, 0, descending=True).values, X),
    ("topk", lambda x: dg.topk(x, 2, 1).values, lambda x: torch.topk(x, 2, 1).values, X),
    ("max with indices", lambda x: dg.max(x, 1, return_indices=True).values, lambda x: torch.max(x, 1).values, X),
]


@pytest.mark.parametrize("name, fn, torch_fn, x", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_pytorchs_double_backward(name, fn, torch_fn, x):
    g = dg.Graph()
    p = g.param("x", x)
    y = fn(p)
    weights = np.random.default_rng(0).standard_normal(g.forward(y).value(y).shape)
    loss = dg.sum(dg.sum(y * weights) ** 2) / 2 + dg.sum(y * weights)
    hv = dg.hvp(loss, p, np.ones_like(x))

    t = torch.tensor(x, requires_grad=True)
    ty = torch_fn(t)
    tloss = (ty * torch.tensor(weights)).sum() ** 2 / 2 + (ty * torch.tensor(weights)).sum()
    (tg,) = torch.autograd.grad(tloss, t, create_graph=True)
    (thv,) = torch.autograd.grad(tg, t, torch.ones_like(t))

    np.testing.assert_allclose(g.forward(hv).value(hv), thv.numpy(), rtol=1e-9, atol=1e-11)
