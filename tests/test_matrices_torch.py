"""dg.linalg against torch.linalg's double backward: Hessian-vector products of losses of the factors.

Values and first derivatives of each factor are compared with PyTorch on every op's samples in
test_torch_parity.py; this file checks the second derivatives, which that cannot.
Runs only where torch is importable; it is never a dependency of dagrad. Losses square the entries of
eigenvectors, singular vectors and Q, whose signs LAPACK builds may choose differently; symmetric inputs are
built in the graph (cholesky and eigh report the gradient of the triangle they read, PyTorch the symmetric
matrix: the same gradient reaches the matrix they are built from).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dagrad as dg
from dagrad.ops.matrices import conditioned

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(2014)


class Dagrad:
    """What the shared loss definitions call, in dagrad."""

    linalg = dg.linalg
    sum = staticmethod(dg.sum)
    mT = staticmethod(dg.linalg.matrix_transpose)

    @staticmethod
    def c(array):
        return array

    @staticmethod
    def eye(n):
        return np.eye(n)


class Torch:
    """The same in PyTorch."""

    linalg = torch.linalg
    sum = staticmethod(torch.sum)

    @staticmethod
    def mT(t):
        return t.mT

    @staticmethod
    def c(array):
        return torch.from_numpy(np.asarray(array))

    @staticmethod
    def eye(n):
        return torch.eye(n, dtype=torch.float64)


def _spd(L, b):
    return b @ L.mT(b) + L.c(np.eye(b.shape[-1]))


def _sym(L, b):
    return (b + L.mT(b)) / 2


R23, R33, R43, R34 = (RNG.standard_normal(s) for s in [(2, 3), (3, 3), (4, 3), (3, 4)])
W2, W3 = np.array([1.0, -2.0]), np.array([1.0, 2.0, 3.0])


def _svd(L, a):
    return L.linalg.svd(a, full_matrices=False)


CASES = {
    "inv": (lambda L, a: L.sum(L.linalg.inv(a) * L.c(R33)), [(2, 3, 3)]),
    "det": (lambda L, a: L.sum(L.linalg.det(a) * L.c(W2)), [(2, 3, 3)]),
    "slogdet": (lambda L, a: L.sum(L.linalg.slogdet(a)[1] * L.c(W2)), [(2, 3, 3)]),
    "solve vector": (lambda L, a, b: L.sum(L.linalg.solve(a, b) * L.c(R23)), [(2, 3, 3), (3,)]),
    "solve matrix": (lambda L, a, b: L.sum(L.linalg.solve(a, b) * L.c(R33)), [(2, 3, 3), (3, 3)]),
    "cholesky": (lambda L, b: L.sum(L.linalg.cholesky(_spd(L, b)) * L.c(R33)), [(3, 3)]),
    "cholesky upper": (lambda L, b: L.sum(L.linalg.cholesky(_spd(L, b), upper=True) * L.c(R33)), [(3, 3)]),
    "qr tall": (lambda L, a: L.sum(L.linalg.qr(a)[0] ** 2 * L.c(R43)) + L.sum(L.linalg.qr(a)[1] ** 2 * L.c(R33)),
                [(4, 3)]),
    "qr wide": (lambda L, a: L.sum(L.linalg.qr(a)[0] ** 2 * L.c(R33)) + L.sum(L.linalg.qr(a)[1] ** 2 * L.c(R34)),
                [(3, 4)]),
    "svd": (lambda L, a: L.sum(_svd(L, a)[0] ** 2 * L.c(R43)) + L.sum(_svd(L, a)[1] * L.c(W3))
            + L.sum(_svd(L, a)[2] ** 2 * L.c(R33)), [(4, 3)]),
    "svd wide": (lambda L, a: L.sum(_svd(L, a)[0] ** 2 * L.c(R33)) + L.sum(_svd(L, a)[2] ** 2 * L.c(R34)), [(3, 4)]),
    "eigh": (lambda L, b: L.sum(L.linalg.eigh(_sym(L, b))[0] * L.c(W3))
             + L.sum(L.linalg.eigh(_sym(L, b))[1] ** 2 * L.c(R33)), [(3, 3)]),
    "eigh upper": (lambda L, b: L.sum(L.linalg.eigh(_sym(L, b), UPLO="U")[1] ** 2 * L.c(R33)), [(3, 3)]),
    "pinv": (lambda L, a: L.sum(L.linalg.pinv(a) * L.c(R34)), [(4, 3)]),
    **{f"matrix_norm {o}": ((lambda o: lambda L, a: L.sum(L.linalg.matrix_norm(a, ord=o) ** 2))(o), [(2, 3, 4)])
       for o in ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf]},
}


def _inputs(shapes):
    return [conditioned(RNG, s) if len(s) >= 2 else RNG.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("case", list(CASES))
def test_hessian_vector_products_match_pytorchs_double_backward(case):
    f, shapes = CASES[case]
    arrays = _inputs(shapes)
    directions = [RNG.standard_normal(a.shape) for a in arrays]

    g = dg.Graph()
    params = [g.param(f"x{i}", a) for i, a in enumerate(arrays)]
    hvps = dg.hvp(f(Dagrad, *params), params, directions)
    hv = g.forward(hvps)

    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    t_grads = torch.autograd.grad(f(Torch, *xs), xs, create_graph=True)
    t_hvps = torch.autograd.grad(sum((gr * Torch.c(d)).sum() for gr, d in zip(t_grads, directions)), xs)

    for i, th in enumerate(t_hvps):
        assert np.allclose(hv.value(hvps[i]), th.numpy(), rtol=1e-7, atol=1e-9), f"Hessian-vector product of input {i}"
