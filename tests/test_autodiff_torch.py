"""dg.grad, hvp, hessian and jacobian against PyTorch's double backward (create_graph=True).

Runs only where torch is importable; it is never a dependency of dagrad.
"""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((4,))
X0 = RNG.standard_normal((2, 3))
V = RNG.standard_normal((2, 3))


def f_dagrad(x):
    """A small function using many of the core ops: matmul, broadcasting, softmax, logsumexp, max, getitem..."""
    h = dg.tanh(x @ A + B)
    s = dg.softmax(h * 2.0, axis=-1)
    z = dg.logsumexp(h, axis=0) + dg.maximum(s, 0.2)[0] - dg.sqrt(dg.exp(h) + 1.0)[1]
    return dg.sum(z ** 2) + dg.mean(dg.sigmoid(x) * dg.sin(x)) / dg.sum(dg.abs(x) + 1.0)


def f_torch(x):
    a, b = torch.tensor(A), torch.tensor(B)
    h = torch.tanh(x @ a + b)
    s = torch.softmax(h * 2.0, dim=-1)
    z = torch.logsumexp(h, dim=0) + torch.maximum(s, torch.tensor(0.2, dtype=torch.float64))[0] - torch.sqrt(torch.exp(h) + 1.0)[1]
    return torch.sum(z ** 2) + torch.mean(torch.sigmoid(x) * torch.sin(x)) / torch.sum(torch.abs(x) + 1.0)


def dagrad_graph():
    g = dg.Graph()
    x = g.param("x", X0)
    return g, x, f_dagrad(x)


def torch_x():
    return torch.tensor(X0, requires_grad=True)


def test_grad_of_a_gradient_penalty_matches_torch():
    g, x, loss = dagrad_graph()
    penalty = dg.sum(dg.grad(loss, x) ** 2)
    ggx = dg.grad(penalty, x)
    ours = g.forward(ggx).value(ggx)
    tx = torch_x()
    (gx,) = torch.autograd.grad(f_torch(tx), tx, create_graph=True)
    (theirs,) = torch.autograd.grad(torch.sum(gx ** 2), tx)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-12)


def test_hvp_matches_torch():
    g, x, loss = dagrad_graph()
    Hv = dg.hvp(loss, x, V)
    tx = torch_x()
    theirs = torch.autograd.functional.hvp(f_torch, tx, torch.tensor(V))[1]
    np.testing.assert_allclose(g.forward(Hv).value(Hv), theirs.numpy(), rtol=1e-9, atol=1e-12)


def test_hessian_matches_torch():
    g, x, loss = dagrad_graph()
    H = dg.hessian(loss, x)
    theirs = torch.autograd.functional.hessian(f_torch, torch_x())
    np.testing.assert_allclose(g.forward(H).value(H), theirs.numpy(), rtol=1e-9, atol=1e-12)


def test_jacobian_matches_torch():
    g = dg.Graph()
    x = g.param("x", X0)
    y = dg.log_softmax(dg.tanh(x @ A), axis=0) * dg.sum(x)
    J = dg.jacobian(y, x)
    theirs = torch.autograd.functional.jacobian(
        lambda t: torch.log_softmax(torch.tanh(t @ torch.tensor(A)), dim=0) * torch.sum(t), torch_x())
    np.testing.assert_allclose(g.forward(J).value(J), theirs.numpy(), rtol=1e-9, atol=1e-12)
