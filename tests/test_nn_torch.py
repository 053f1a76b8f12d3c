"""Normalization ops and losses against torch.nn.functional: second derivatives, and BatchNorm's running
statistics over training steps. Values and first derivatives are compared with PyTorch on every op's samples in
test_torch_parity.py. Runs only where torch is importable (never a dependency)."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(11)
X = RNG.normal(size=(6, 4))
X3 = RNG.normal(size=(3, 4, 5))
LABELS = np.array([0, 3, 1, -100, 2, 2])
LABELS3 = np.array([[0, 3, 1, -100, 2], [2, 2, 0, 1, 3], [-100, 1, 1, 0, 3]])
W = RNG.uniform(0.5, 2.0, size=4)
PROBS = RNG.dirichlet(np.ones(4), size=6)
P3 = RNG.dirichlet(np.ones(4), size=(3, 5)).transpose(0, 2, 1).copy()
A, B = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
LOGQ, Q = np.log(RNG.dirichlet(np.ones(3), size=5)), RNG.dirichlet(np.ones(3), size=5)
RUNNING = RNG.normal(size=4), RNG.uniform(0.5, 2.0, size=4)

# name: (dagrad loss of tensors, torch loss of tensors, arrays, indices PyTorch does not differentiate)
CASES = {
    "layer_norm": (lambda x, w, b: dg.layer_norm(x, (4, 5), w, b), lambda x, w, b: F.layer_norm(x, (4, 5), w, b),
                   (X3, X3[0] + 1, X3[1]), ()),
    "rms_norm": (lambda x, w: dg.rms_norm(x, 5, w), lambda x, w: F.rms_norm(x, (5,), w), (X3, X3[0, 0]), ()),
    "group_norm": (lambda x, w, b: dg.group_norm(x, 2, w, b), lambda x, w, b: F.group_norm(x, 2, w, b),
                   (X3, W, W - 1), ()),
    "batch_norm train": (lambda x, m, v, w, b: dg.batch_norm(x, m, v, w, b, training=True, momentum=0),
                         lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=True),
                         (X3, *RUNNING, W, W - 1), (1, 2)),
    "batch_norm eval": (lambda x, m, v, w, b: dg.batch_norm(x, m, v, w, b, training=False),
                        lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=False),
                        (X3, *RUNNING, W, W - 1), (1, 2)),
    "cross_entropy": (lambda x, t, w: dg.cross_entropy(x, t, w, label_smoothing=0.2),
                      lambda x, t, w: F.cross_entropy(x, t, w, label_smoothing=0.2), (X, LABELS, W), (2,)),
    "cross_entropy axis 1, none": (
        lambda x, t, w: dg.cross_entropy(x, t, w, axis=1, reduction="none", label_smoothing=0.1, ignore_index=3),
        lambda x, t, w: F.cross_entropy(x, t, w, reduction="none", label_smoothing=0.1, ignore_index=3),
        (X3, np.where(LABELS3 < 0, 3, LABELS3), W), (2,)),
    "cross_entropy probabilities": (lambda x, p, w: dg.cross_entropy(x, p, w, label_smoothing=0.3),
                                    lambda x, p, w: F.cross_entropy(x, p, w, label_smoothing=0.3), (X, PROBS, W), (2,)),
    "cross_entropy probabilities axis 1": (lambda x, p: dg.cross_entropy(x, p, axis=1, reduction="sum"),
                                           lambda x, p: F.cross_entropy(x, p, reduction="sum"), (X3, P3), ()),
    "nll_loss": (lambda x, t, w: dg.nll_loss(x, t, w), lambda x, t, w: F.nll_loss(x, t, w), (X, LABELS, W), (2,)),
    "l1_loss": (lambda a, b: dg.l1_loss(a, b, "sum"), lambda a, b: F.l1_loss(a, b, reduction="sum"), (A, B), ()),
    "smooth_l1_loss": (lambda a, b: dg.smooth_l1_loss(a, b, beta=0.6), lambda a, b: F.smooth_l1_loss(a, b, beta=0.6),
                       (A, B), ()),
    "huber_loss": (lambda a, b: dg.huber_loss(a, b, "none", delta=0.6),
                   lambda a, b: F.huber_loss(a, b, reduction="none", delta=0.6), (A, B), ()),
    "kl_div": (lambda a, b: dg.kl_div(a, b, "batchmean"), lambda a, b: F.kl_div(a, b, reduction="batchmean"),
               (LOGQ, Q), ()),
    "kl_div log_target": (lambda a, b: dg.kl_div(a, b, "sum", log_target=True),
                          lambda a, b: F.kl_div(a, b, reduction="sum", log_target=True), (LOGQ, np.log(Q)), ()),
    "cosine_similarity": (lambda a, b: dg.cosine_similarity(a, b, axis=1), lambda a, b: F.cosine_similarity(a, b, dim=1),
                          (X3, X3[::-1].copy()), ()),
    "cosine_embedding_loss": (lambda a, b, y: dg.cosine_embedding_loss(a, b, y, margin=-0.2),
                              lambda a, b, y: F.cosine_embedding_loss(a, b, y, margin=-0.2),
                              (A, B, np.array([1, -1, 1, -1, -1])), ()),
    "binary_cross_entropy_with_logits weighted": (
        lambda x, t, w, p: dg.binary_cross_entropy_with_logits(x, t, "sum", weight=w, pos_weight=p),
        lambda x, t, w, p: F.binary_cross_entropy_with_logits(x, t, w, reduction="sum", pos_weight=p),
        (A, np.abs(B) / 3, np.abs(A[:, :1]), W[:3]), (2, 3)),
}


def dagrad_side(build, arrays):
    g = dg.Graph()
    tensors = [g.param(f"a{i}", a) if a.dtype.kind == "f" else g.const(a) for i, a in enumerate(arrays)]
    out = build(*tensors)
    return g, tensors, out


def torch_side(build, arrays, fixed):
    tensors = [torch.tensor(a, requires_grad=a.dtype.kind == "f" and i not in fixed) for i, a in enumerate(arrays)]
    return tensors, build(*tensors)


@pytest.mark.parametrize("name", CASES)
def test_second_derivatives_match_pytorchs_double_backward(name):
    ours, theirs, arrays, fixed = CASES[name]
    g, tensors, out = dagrad_side(ours, arrays)
    x = tensors[0]
    gx = dg.grad(dg.sum(out * out), x)
    hvp = dg.grad(dg.sum(gx * np.cos(arrays[0])), x)
    inputs, reference = torch_side(theirs, arrays, fixed)
    (tgx,) = torch.autograd.grad((reference * reference).sum(), inputs[0], create_graph=True)
    (thvp,) = torch.autograd.grad((tgx * torch.tensor(np.cos(arrays[0]))).sum(), inputs[0])
    np.testing.assert_allclose(g.forward(hvp).value(hvp), thvp.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("momentum", [0.3, None])
def test_batch_norm_running_statistics_follow_torch_batchnorm_over_training_steps(momentum):
    data = RNG.normal(2.0, 3.0, size=(20, 3, 4))
    module = torch.nn.BatchNorm1d(3, momentum=momentum).double()
    g = dg.Graph()
    x, training = g.input("x", shape=(None, 3, 4)), g.input("training", shape=())
    y = dg.nn.batch_norm(x, training, momentum=momentum, name="bn")
    module.train()
    for start in range(0, 20, 6):                       # batches of 6, 6, 6 and 2
        batch = data[start:start + 6]
        expected = module(torch.tensor(batch)).detach().numpy()
        res = g.forward([y, *g.updates.values()], {"x": batch, "training": start + 1})
        np.testing.assert_allclose(res.value(y), expected, rtol=1e-10, atol=1e-12)
        dg.train.apply_updates(g, res)
    np.testing.assert_allclose(g.value("bn/running_mean"), module.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g.value("bn/running_var"), module.running_var.numpy(), rtol=1e-12)
    module.eval()
    np.testing.assert_allclose(g.forward(y, {"x": data, "training": 0}).value(y),
                               module(torch.tensor(data)).detach().numpy(), rtol=1e-10, atol=1e-12)
