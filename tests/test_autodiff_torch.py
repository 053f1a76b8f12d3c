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


# ------------------------------------------------- random DAGs, second order ---
# The random graphs of test_composite_gradients (fan-out, broadcasting, unknown sizes, where, pow at 0,
# binary cross-entropy, slicing...), differentiated twice by dg.grad and by torch.autograd.grad with
# create_graph=True. The torch side is the same graph run node by node through the table below.

from hypothesis import HealthCheck, given, settings  # noqa: E402 (after the skip: hypothesis is a test tool)
from test_composite_gradients import build_dag, random_dags  # noqa: E402

from dagrad.index import decode_index  # noqa: E402
from dagrad.shapes import normalize_axes  # noqa: E402


def _reduce(fn):
    def run(x, *, axis, keepdims):
        dims = normalize_axes(axis, x.ndim)
        return fn(x, dims, keepdims) if dims else x
    return run


def _bce(logits, targets, *, reduction):
    losses = torch.nn.functional.softplus(logits) - logits * targets   # the maths, not dagrad's stable form
    return {"mean": torch.mean, "sum": torch.sum}.get(reduction, lambda t: t)(losses)


def _unsqueeze(x, *, axis):
    for a in normalize_axes(axis, x.ndim + len(np.atleast_1d(axis))):
        x = x.unsqueeze(a)
    return x


TORCH_OPS = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "neg": torch.neg,
    "pow": torch.pow, "maximum": torch.maximum, "greater": torch.gt, "where": torch.where,
    "tanh": torch.tanh, "sin": torch.sin, "sigmoid": torch.sigmoid,
    "exp": lambda x: torch.exp(x if x.is_floating_point() else x.double()),   # dagrad computes in float64
    "sum": _reduce(lambda x, d, k: torch.sum(x, dim=d, keepdim=k)),
    "mean": _reduce(lambda x, d, k: torch.mean(x, dim=d, keepdim=k)),
    "logsumexp": _reduce(lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k)),
    "binary_cross_entropy_with_logits": _bce,
    "astype": lambda x, *, dtype: x.to(getattr(torch, np.dtype(dtype).name)),
    "getitem": lambda x, *, index: x[decode_index(index)],
    "concatenate": lambda *xs, axis: torch.cat(xs, dim=axis),
    "expand_dims": _unsqueeze,
    "squeeze": lambda x, *, axis: x.squeeze(normalize_axes(axis, x.ndim)) if axis is not None else x.squeeze(),
}


def run_in_torch(g: dg.Graph, loss: dg.Tensor, leaves: dict):
    """``loss`` computed by torch from the graph's nodes; ``leaves`` maps leaf names to torch tensors."""
    values = {}
    for node in g.topological_order():
        if node.name in leaves:
            values[node.name] = leaves[node.name]
        elif node.kind == "const":
            values[node.name] = torch.as_tensor(g.value(node.name))
        elif node.kind == "op":
            args = [values[i] for i in node.inputs]
            if node.op == "pow" and g.node(node.inputs[1]).kind == "const":
                args[1] = args[1].item()  # a constant exponent, as torch.pow(x, 0.0): its derivative is 0 at x = 0
            values[node.name] = TORCH_OPS[node.op](*args, **node.attrs)
        if node.name == loss.name:
            return values[node.name]
    raise AssertionError(f"{loss.name!r} was not reached")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags())
def test_second_derivatives_of_random_dags_match_torch_double_backward(recipe):
    shapes, fed, _, steps, reduce_to, seed = recipe
    g, total, leaves, feeds = build_dag((shapes, fed, [False] * len(shapes), steps, reduce_to, seed))  # float64
    arrays = {leaf.name: feeds[leaf.name] if leaf.name in feeds else g.value(leaf.name) for leaf in leaves}
    rng = np.random.default_rng(seed + 1)
    vectors = [rng.standard_normal(arrays[leaf.name].shape) for leaf in leaves]
    first = dg.grad(total, leaves)
    second = dg.hvp(total, leaves, vectors)
    res = g.forward(first + second, feeds)

    tleaves = {name: torch.tensor(a, requires_grad=True) for name, a in arrays.items()}
    xs = [tleaves[leaf.name] for leaf in leaves]
    tgrads = torch.autograd.grad(run_in_torch(g, total, tleaves), xs, create_graph=True, allow_unused=True)
    dot = sum(torch.sum(gi * torch.tensor(v)) for gi, v in zip(tgrads, vectors) if gi is not None)
    thvp = torch.autograd.grad(dot, xs, allow_unused=True) if torch.is_tensor(dot) and dot.requires_grad else [None] * len(xs)
    for leaf, ours, theirs in zip(leaves, first, tgrads):
        expected = np.zeros(arrays[leaf.name].shape) if theirs is None else theirs.detach().numpy()
        np.testing.assert_allclose(res.value(ours), expected, rtol=1e-7, atol=1e-10, err_msg=f"grad {leaf.name}")
    for leaf, ours, theirs in zip(leaves, second, thvp):
        expected = np.zeros(arrays[leaf.name].shape) if theirs is None else theirs.numpy()
        np.testing.assert_allclose(res.value(ours), expected, rtol=1e-7, atol=1e-10, err_msg=f"H v {leaf.name}")
