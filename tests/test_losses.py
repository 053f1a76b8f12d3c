"""PyTorch's losses: what weights, ignored labels, smoothing, probability targets and reductions mean, checked
against the formulas written out in numpy. (Finite differences and second derivatives of every op:
test_op_gradients.py; the same cases against PyTorch itself: test_nn_torch.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg

RNG = np.random.default_rng(3)


def value_and_grads(build, *arrays, wrt=None):
    """The loss ``build(*tensors)`` and its gradients with respect to the float arrays (params)."""
    g = dg.Graph()
    tensors = [g.param(f"a{i}", a) if np.asarray(a).dtype.kind == "f" else g.const(a, name=f"a{i}")
               for i, a in enumerate(arrays)]
    loss = build(*tensors)
    res = g.backward(dg.sum(loss), wrt=wrt or [t for t in tensors if t.op == "param"], outputs=[loss])
    return res.value(loss), {t.name: res.grad(t) for t in tensors if t.op == "param" and res.has_grad(t)}


def log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


LOGITS = RNG.normal(size=(6, 4))
LABELS = np.array([0, 3, 1, -100, 2, 2])
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5])


# ------------------------------------------------------ cross-entropy ---


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_weighted_mean_divides_by_the_weight_of_the_labels_that_count(smoothing):
    loss, _ = value_and_grads(lambda x, t, w: dg.cross_entropy(x, t, w, label_smoothing=smoothing),
                              LOGITS, LABELS, WEIGHT)
    logp = log_softmax(LOGITS)
    kept = LABELS != -100
    rows, labels = np.arange(6)[kept], LABELS[kept]
    nll = -(WEIGHT[labels] * logp[rows, labels])
    smooth = -(logp[rows] * WEIGHT).sum(axis=1)
    expected = ((1 - smoothing) * nll + smoothing / 4 * smooth).sum() / WEIGHT[labels].sum()
    assert np.isclose(loss, expected, rtol=1e-12)


def test_every_label_ignored_gives_a_nan_mean_and_zero_gradients_as_in_pytorch():
    loss, grads = value_and_grads(lambda x, t: dg.cross_entropy(x, t), LOGITS[:2], np.array([-100, -100]))
    assert np.isnan(loss) and np.array_equal(grads["a0"], np.zeros((2, 4)))
    total, _ = value_and_grads(lambda x, t: dg.cross_entropy(x, t, reduction="sum"), LOGITS[:2], np.array([-100, -100]))
    assert total == 0


def test_ignored_labels_get_no_gradient_and_a_loss_of_zero():
    losses, grads = value_and_grads(lambda x, t: dg.cross_entropy(x, t, reduction="none", label_smoothing=0.1),
                                    LOGITS, LABELS)
    assert losses.shape == (6,) and losses[3] == 0 and np.all(losses[LABELS != -100] > 0)
    assert np.array_equal(grads["a0"][3], np.zeros(4))


def test_a_class_index_may_be_the_ignore_index():
    labels = np.array([0, 1, 1, 2, 3, 3])
    loss, _ = value_and_grads(lambda x, t: dg.cross_entropy(x, t, ignore_index=3), LOGITS, labels)
    logp = log_softmax(LOGITS)
    assert np.isclose(loss, -logp[np.arange(4), labels[:4]].mean(), rtol=1e-12)


def test_probability_targets_make_a_soft_cross_entropy_divided_by_the_number_of_examples():
    targets = RNG.dirichlet(np.ones(4), size=6)
    g = dg.Graph()
    node = dg.cross_entropy(g.const(LOGITS), g.const(targets), g.const(WEIGHT), label_smoothing=0.2)
    assert node.op == "soft_cross_entropy"
    q = targets * 0.8 + 0.2 / 4
    expected = -(q * WEIGHT * log_softmax(LOGITS)).sum() / 6
    assert np.isclose(g.forward(node).value(node), expected, rtol=1e-12)
    with pytest.raises(dg.GraphError, match="ignore_index applies to class-index targets"):
        dg.cross_entropy(g.const(LOGITS), g.const(targets), ignore_index=0)


def test_hard_probability_targets_give_the_class_index_loss():
    one_hot = np.eye(4)[[0, 3, 1, 2]]
    soft, _ = value_and_grads(lambda x, t: dg.cross_entropy(x, t, label_smoothing=0.1), LOGITS[:4], one_hot)
    hard, _ = value_and_grads(lambda x, t: dg.cross_entropy(x, t, label_smoothing=0.1), LOGITS[:4], np.array([0, 3, 1, 2]))
    assert np.isclose(soft, hard, rtol=1e-12)


def test_classes_on_axis_1_as_pytorch_lays_them_out():
    x = RNG.normal(size=(2, 4, 3))                  # (N, C, d)
    labels = RNG.integers(0, 4, size=(2, 3))
    on_axis_1, _ = value_and_grads(lambda x, t: dg.cross_entropy(x, t, axis=1, reduction="none"), x, labels)
    last, _ = value_and_grads(lambda x, t: dg.cross_entropy(x, t, reduction="none"), x.transpose(0, 2, 1).copy(), labels)
    np.testing.assert_allclose(on_axis_1, last, rtol=1e-12)


def test_nll_loss_of_log_softmax_is_cross_entropy():
    nll, nll_grads = value_and_grads(lambda x, t, w: dg.nll_loss(dg.log_softmax(x), t, w), LOGITS, LABELS, WEIGHT,
                                     wrt=["a0"])
    ce, ce_grads = value_and_grads(lambda x, t, w: dg.cross_entropy(x, t, w), LOGITS, LABELS, WEIGHT, wrt=["a0"])
    assert np.isclose(nll, ce, rtol=1e-12)
    np.testing.assert_allclose(nll_grads["a0"], ce_grads["a0"], rtol=1e-10, atol=1e-15)


def test_an_out_of_range_label_is_an_op_error_naming_the_node():
    g = dg.Graph()
    loss = dg.nn.cross_entropy(g.input("x", shape=(None, 3)), g.input("y", shape=(None,), dtype="int64"))
    with pytest.raises(dg.OpError, match=r"node 'loss'.*target 5 is out of range for 3 classes"):
        g.forward(loss, {"x": np.zeros((2, 3)), "y": [0, 5]})


def test_class_weights_of_the_wrong_size_and_float_labels_are_refused_when_added():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    with pytest.raises(dg.ShapeError, match="class weights"):
        dg.nll_loss(x, g.input("y", shape=(None,), dtype="int64"), g.const(np.ones(4)))
    with pytest.raises(dg.ShapeError, match="must be integers"):
        g.apply("nll_loss", [x, g.input("f", shape=(None,))])


# ------------------------------------------------------ regression ---

PRED, TARGET = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))


def test_huber_is_beta_times_smooth_l1_and_beta_zero_is_l1():
    huber, huber_grads = value_and_grads(lambda a, b: dg.huber_loss(a, b, delta=0.4), PRED, TARGET)
    smooth, smooth_grads = value_and_grads(lambda a, b: dg.smooth_l1_loss(a, b, beta=0.4), PRED, TARGET)
    assert np.isclose(huber, 0.4 * smooth, rtol=1e-12)
    np.testing.assert_allclose(huber_grads["a0"], 0.4 * smooth_grads["a0"], rtol=1e-12)
    l1, _ = value_and_grads(lambda a, b: dg.l1_loss(a, b), PRED, TARGET)
    smooth0, _ = value_and_grads(lambda a, b: dg.smooth_l1_loss(a, b, beta=0.0), PRED, TARGET)
    assert np.isclose(l1, np.abs(PRED - TARGET).mean(), rtol=1e-12) and l1 == smooth0


def test_l1_has_gradient_zero_where_prediction_and_target_tie():
    _, grads = value_and_grads(lambda a, b: dg.l1_loss(a, b, reduction="sum"), np.array([1.0, 2.0, 0.5]),
                               np.array([1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(grads["a0"], [0.0, 1.0, -1.0])


@pytest.mark.parametrize("loss", [dg.l1_loss, dg.smooth_l1_loss, dg.huber_loss, dg.kl_div, dg.mse,
                                  dg.binary_cross_entropy_with_logits, dg.softmax_cross_entropy])
def test_the_mean_over_no_entries_is_nan_as_in_pytorch(loss):
    # The older ops (mse, binary_cross_entropy_with_logits, softmax_cross_entropy) gave 0, unlike PyTorch and
    # unlike what the guide says of dg.nn.mse and dg.nn.binary_cross_entropy.
    target = np.zeros((0,), np.int64) if loss is dg.softmax_cross_entropy else np.ones((0, 3))
    value, grads = value_and_grads(loss, np.zeros((0, 3)), target)
    assert np.isnan(value) and grads["a0"].shape == (0, 3)


# ------------------------------------------------------------ kl_div ---


def test_kl_div_batchmean_is_the_divergence_per_example_and_zero_targets_count_zero():
    logq = log_softmax(RNG.normal(size=(4, 3)))
    p = RNG.dirichlet(np.ones(3), size=4)
    p[0] = [0.0, 0.4, 0.6]
    batchmean, _ = value_and_grads(lambda a, b: dg.kl_div(a, b, reduction="batchmean"), logq, p, wrt=["a0"])
    with np.errstate(divide="ignore", invalid="ignore"):
        pointwise = np.where(p > 0, p * (np.log(p) - logq), 0)
    assert np.isclose(batchmean, pointwise.sum() / 4, rtol=1e-12)
    log_target, _ = value_and_grads(lambda a, b: dg.kl_div(a, b, reduction="batchmean", log_target=True),
                                    logq[1:], np.log(p[1:]), wrt=["a0"])
    assert np.isclose(log_target, pointwise[1:].sum() / 3, rtol=1e-12)


# ----------------------------------------------------------- cosines ---


def test_cosine_similarity_clamps_each_norm_at_eps_and_broadcasts_before_normalizing():
    a, b = np.array([[3.0, 4.0]]), np.array([[4.0, 3.0], [1e-9, 0.0]])
    value, _ = value_and_grads(lambda x, y: dg.cosine_similarity(x, y), a, b)
    np.testing.assert_allclose(value, [24 / 25, 3e-9 / 5 / 1e-8], rtol=1e-12)
    across, _ = value_and_grads(lambda x, y: dg.cosine_similarity(x, y), np.array([[2.0]]), np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(across, [1.0], rtol=1e-12)     # [2] broadcast to [2, 2] first, as PyTorch does


def test_cosine_embedding_pulls_similar_pairs_and_pushes_dissimilar_ones_past_the_margin():
    x1 = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    x2 = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    losses, grads = value_and_grads(lambda a, b, y: dg.cosine_embedding_loss(a, b, y, margin=0.5, reduction="none"),
                                    x1, x2, np.array([1, 1, -1, -1]))
    c = 1 / np.sqrt(2)
    np.testing.assert_allclose(losses, [1.0, 1 - c, c - 0.5, 0.0], rtol=1e-9)
    assert np.array_equal(grads["a0"][3], [0.0, 0.0])       # below the margin: no push


# ------------------------------------------------ binary cross-entropy ---


def test_bce_without_weights_keeps_the_old_op_and_with_them_matches_its_formula():
    logits, targets = RNG.normal(size=(4, 3)), RNG.uniform(size=(4, 3))
    w, pw = RNG.uniform(0.5, 2, size=(4, 1)), RNG.uniform(0.5, 3, size=3)
    g = dg.Graph()
    assert dg.nn.binary_cross_entropy(g.const(logits), targets).op == "binary_cross_entropy_with_logits"
    node = dg.nn.binary_cross_entropy(g.const(logits), targets, weight=w, pos_weight=pw, reduction="none", name="w")
    assert node.op == "weighted_binary_cross_entropy_with_logits"
    sigmoid = 1 / (1 + np.exp(-logits))
    expected = -w * (pw * targets * np.log(sigmoid) + (1 - targets) * np.log(1 - sigmoid))
    np.testing.assert_allclose(g.forward(node).value(node), expected, rtol=1e-12)
    ones, _ = value_and_grads(lambda x, t: dg.binary_cross_entropy_with_logits(x, t, pos_weight=1.0), logits, targets)
    plain, _ = value_and_grads(lambda x, t: dg.binary_cross_entropy_with_logits(x, t), logits, targets)
    assert np.isclose(ones, plain, rtol=1e-12)


def test_bce_with_pos_weight_is_stable_for_large_logits():
    value, grads = value_and_grads(lambda x, t: dg.binary_cross_entropy_with_logits(x, t, pos_weight=3.0, reduction="none"),
                                   np.array([800.0, -800.0]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(value, [800.0, 2400.0])
    np.testing.assert_allclose(grads["a0"], [1.0, -3.0])


# --------------------------------------------------------- reductions ---

CASES = {
    "cross_entropy": (lambda r: lambda x, t: dg.nn.cross_entropy(x, t, r, name=None), (LOGITS, LABELS), (6,)),
    "nll_loss": (lambda r: lambda x, t: dg.nn.nll_loss(x, t, r, name=None), (LOGITS, LABELS), (6,)),
    "l1_loss": (lambda r: lambda a, b: dg.nn.l1_loss(a, b, r, name=None), (PRED, TARGET), (5, 3)),
    "smooth_l1_loss": (lambda r: lambda a, b: dg.nn.smooth_l1_loss(a, b, r, name=None), (PRED, TARGET), (5, 3)),
    "huber_loss": (lambda r: lambda a, b: dg.nn.huber_loss(a, b, r, name=None), (PRED, TARGET), (5, 3)),
    "kl_div": (lambda r: lambda a, b: dg.nn.kl_div(a, b, r, name=None), (PRED, np.abs(TARGET)), (5, 3)),
    "cosine_embedding_loss": (lambda r: lambda a, b, y: dg.nn.cosine_embedding_loss(a, b, y, r, name=None),
                              (PRED, TARGET, np.array([1, -1, 1, -1, 1])), (5,)),
    "binary_cross_entropy": (lambda r: lambda x, t: dg.nn.binary_cross_entropy(x, t, r, pos_weight=2.0, name=None),
                             (PRED, np.abs(TARGET) / 3), (5, 3)),
}


@pytest.mark.parametrize("name", CASES)
def test_reductions_none_sum_and_mean_agree(name):
    build, arrays, shape = CASES[name]
    each, _ = value_and_grads(build("none"), *arrays)
    total, _ = value_and_grads(build("sum"), *arrays)
    mean, _ = value_and_grads(build("mean"), *arrays)
    assert each.shape == shape and np.isclose(total, each.sum(), rtol=1e-12)
    if name not in ("cross_entropy", "nll_loss"):               # those divide by the weight of labels that count
        assert np.isclose(mean, each.mean(), rtol=1e-12)
    with pytest.raises(dg.GraphError, match="reduction must be one of"):
        build("average")(*[dg.Graph().const(a) for a in arrays])
