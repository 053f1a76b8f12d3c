"""Normalization ops and layers, and running statistics: state updates that fit applies, files keep and
checkpoints restore exactly. (Finite differences and second derivatives of every op: test_op_gradients.py;
PyTorch comparisons: test_nn_torch.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg
from dagrad.checkpoint import load_checkpoint
from modelfiles import document, load_error, rewrite

RNG = np.random.default_rng(0)


def run(node, feeds=None):
    return node.graph.forward(node, feeds or {}).value(node)


def standardized(x, axes, eps=1e-5):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


# ------------------------------------------------------------------ values ---


def test_layer_norm_normalizes_the_trailing_axes_then_scales_and_shifts():
    x, w, b = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    g = dg.Graph()
    out = dg.layer_norm(g.const(x), (3, 4), g.const(w), g.const(b))
    np.testing.assert_allclose(run(out), standardized(x, (1, 2)) * w + b, rtol=1e-12)
    bias_only = dg.layer_norm(g.const(x), 4, bias=g.const(b[0]))   # no weight: the bias is added after
    np.testing.assert_allclose(run(bias_only), standardized(x, 2) + b[0], rtol=1e-12)


def test_group_norm_with_one_group_is_layer_norm_and_with_c_groups_is_instance_norm():
    x = RNG.normal(size=(2, 6, 5))
    g = dg.Graph()
    np.testing.assert_allclose(run(dg.group_norm(g.const(x), 1)), standardized(x, (1, 2)), rtol=1e-12)
    np.testing.assert_allclose(run(dg.group_norm(g.const(x), 6)), standardized(x, 2), rtol=1e-12)
    grouped = standardized(x.reshape(2, 3, 10), 2).reshape(x.shape)
    w = RNG.normal(size=6)
    np.testing.assert_allclose(run(dg.group_norm(g.const(x), 3, g.const(w))), grouped * w[:, None], rtol=1e-12)


def test_rms_norm_divides_by_the_root_mean_square_with_the_dtype_epsilon_by_default():
    x = np.array([[3.0, 4.0]], np.float32)
    g = dg.Graph()
    out = dg.rms_norm(g.const(x), 2)
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(run(out), x / np.sqrt(12.5 + eps), rtol=1e-6)
    assert run(out).dtype == np.float32


def test_batch_norm_uses_the_batch_while_training_and_the_running_statistics_otherwise():
    x, mean, var = RNG.normal(2, 3, size=(8, 3, 2)), RNG.normal(size=3), RNG.uniform(1, 2, 3)
    g = dg.Graph()
    training = g.input("training", shape=())
    out = dg.batch_norm(g.const(x), g.const(mean), g.const(var), training=training, momentum=0)
    np.testing.assert_allclose(run(out, {"training": 7}), standardized(x, (0, 2)), rtol=1e-12)
    evaluated = (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5)
    np.testing.assert_allclose(run(out, {"training": 0}), evaluated, rtol=1e-12)


def test_batch_norm_while_training_refuses_one_value_per_channel_naming_the_node():
    g = dg.Graph()
    x, training = g.input("x", shape=(None, 3)), g.input("training", shape=())
    y = dg.nn.batch_norm(x, training, name="bn")
    with pytest.raises(dg.OpError, match=r"node 'bn/batch_norm'.*more than one value per channel.*drop_last"):
        run(y, {"x": np.ones((1, 3)), "training": 1})
    assert run(y, {"x": np.ones((1, 3)), "training": 0}).shape == (1, 3)   # evaluation is fine


def test_float32_inputs_stay_float32_and_float64_parameters_promote():
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    g = dg.Graph()
    assert run(dg.layer_norm(g.const(x), 3)).dtype == np.float32
    assert dg.layer_norm(g.const(x), 3, g.const(np.ones(3))).dtype == np.float64


# ------------------------------------------------------------- shape rules ---


@pytest.mark.parametrize("build, message", [
    (lambda x: dg.layer_norm(x, (5,)), "trailing axes"),
    (lambda x: dg.layer_norm(x, ()), "at least one"),
    (lambda x: dg.layer_norm(x, 4, x.graph.const(np.ones(3))), "weight of shape"),
    (lambda x: dg.group_norm(x, 3), "do not split into 3 groups"),
    (lambda x: dg.rms_norm(x, 4, eps=None, weight=x.graph.const(np.ones(5))), "weight of shape"),
    (lambda x: dg.batch_norm(x, x.graph.const(np.zeros(3)), x.graph.const(np.ones(3)), momentum=0), "channels"),
])
def test_inputs_that_do_not_fit_are_refused_when_the_node_is_added(build, message):
    g = dg.Graph()
    x = g.input("x", shape=(None, 4))
    with pytest.raises(dg.ShapeError, match=message):
        build(x)
    assert len(g) == 1 or all(n.op in ("input", "const") for n in g)


def test_unknown_sizes_stay_unknown_and_a_needed_channel_count_is_asked_for():
    g = dg.Graph()
    x = g.input("x", shape=(None, None, 4))
    assert dg.layer_norm(x, 4).shape == (None, None, 4)
    with pytest.raises(dg.ShapeError, match="known number of channels"):
        dg.group_norm(x, 2)
    with pytest.raises(dg.GraphError, match="known number of channels"):
        dg.nn.group_norm(x, 2)


# ------------------------------------------------------------------ layers ---


def test_nn_layer_norm_is_one_fused_node_with_gamma_and_beta():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 4))
    y = dg.nn.layer_norm(x, (3, 4), name="ln")
    assert y.op == "layer_norm" and g.value("ln/gamma").shape == (3, 4)
    assert [n.op for n in g if n.kind == "op"] == ["layer_norm"]
    dg.nn.layer_norm(x, elementwise_affine=False, name="plain")
    dg.nn.layer_norm(x, bias=False, name="nobias")
    assert sorted(g.params) == ["ln/beta", "ln/gamma", "nobias/gamma"]


def test_nn_norm_layers_learn_per_channel_or_per_feature_parameters():
    g = dg.Graph()
    images = g.input("images", shape=(None, 4, 5, 5), dtype="float32")
    dg.nn.group_norm(images, 2, name="gn")
    dg.nn.rms_norm(images, (5, 5), name="rms")
    dg.nn.batch_norm(images, None, track_running_stats=False, name="bn")
    shapes = {name: value.shape for name, value in g.params.items()}
    assert shapes == {"gn/gamma": (4,), "gn/beta": (4,), "rms/gamma": (5, 5), "bn/gamma": (4,), "bn/beta": (4,)}
    assert all(value.dtype == np.float32 for value in g.params.values()) and g.updates == {}


def test_nn_batch_norm_needs_the_training_input():
    g = dg.Graph()
    with pytest.raises(dg.GraphError, match="training must be the scalar input"):
        dg.nn.batch_norm(g.input("x", shape=(None, 3)), True)


# -------------------------------------------------------- running statistics ---


def bn_model(momentum=0.1):
    g = dg.Graph("bn")
    x, y = g.input("x", shape=(None, 3)), g.input("y", shape=(None, 1))
    training = g.input("training", shape=())
    h = dg.nn.batch_norm(x, training, momentum=momentum, name="bn")
    loss = dg.nn.mse(dg.nn.dense(h, 1, name="fc", rng=0), y)
    return g, loss


DATA = {"x": RNG.normal(4, 3, size=(24, 3)), "y": RNG.normal(size=(24, 1))}


def expected_running(batches, momentum):
    """PyTorch's rule: running = (1 - m) running + m stat, the variance unbiased; m = 1/k for momentum=None."""
    mean, var = np.zeros(3), np.ones(3)
    for k, batch in enumerate(batches, 1):
        m = 1 / k if momentum is None else momentum
        mean = (1 - m) * mean + m * batch.mean(0)
        var = (1 - m) * var + m * batch.var(0, ddof=1)
    return mean, var


@pytest.mark.parametrize("momentum", [0.1, None])
def test_fit_moves_the_running_statistics_after_every_step_as_pytorch_does(momentum):
    g, loss = bn_model(momentum)
    dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.01), epochs=2, batch_size=8, shuffle=False, progress=False)
    batches = [DATA["x"][i:i + 8] for i in (0, 8, 16)] * 2
    mean, var = expected_running(batches, momentum)
    np.testing.assert_allclose(g.value("bn/running_mean"), mean, rtol=1e-12)
    np.testing.assert_allclose(g.value("bn/running_var"), var, rtol=1e-12)
    if momentum is None:
        assert g.value("bn/num_batches_tracked") == 6 and g.value("bn/num_batches_tracked").dtype == np.int64
    assert "bn/running_mean" not in g.params   # not trainable: the optimizer never touches them


def test_evaluate_and_predict_use_the_running_statistics_and_change_nothing():
    g, loss = bn_model()
    dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.01), epochs=1, batch_size=8, progress=False)
    before = g.value("bn/running_mean").copy()
    h = dg.train.predict(g, "bn/batch_norm", DATA)
    expected = (DATA["x"] - before) / np.sqrt(g.value("bn/running_var") + 1e-5) * g.value("bn/gamma") + g.value("bn/beta")
    np.testing.assert_allclose(h, expected, rtol=1e-12)
    dg.train.evaluate(g, DATA, loss=loss)
    assert np.array_equal(g.value("bn/running_mean"), before)


def test_a_skipped_step_leaves_the_running_statistics_alone():
    g, loss = bn_model()
    data = {"x": DATA["x"][:8].copy(), "y": DATA["y"][:8].copy()}
    data["y"][0] = np.nan
    hist = dg.fit(g, loss, data, dg.optim.SGD(g, lr=0.01), epochs=1, batch_size=8, on_nonfinite="skip", progress=False)
    assert hist.skipped == [1] and np.array_equal(g.value("bn/running_mean"), np.zeros(3))


def test_a_loop_of_your_own_applies_the_updates_it_computed():
    g, loss = bn_model()
    optimizer = dg.optim.SGD(g, lr=0.01)
    feeds = {"x": DATA["x"][:8], "y": DATA["y"][:8], "training": 1}
    with pytest.raises(dg.GraphError, match="outputs=list"):
        dg.train.apply_updates(g, g.backward(loss, feeds, keep="wrt"))
    result = g.backward(loss, feeds, keep="wrt", outputs=list(g.updates.values()))
    optimizer.step(result)
    dg.train.apply_updates(g, result)
    np.testing.assert_allclose(g.value("bn/running_mean"), 0.1 * DATA["x"][:8].mean(0), rtol=1e-12)


def test_the_updates_survive_save_and_load_and_keep_training(tmp_path):
    g, loss = bn_model(momentum=None)
    dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.01), epochs=1, batch_size=8, progress=False)
    dg.save(g, tmp_path / "bn.dagrad")
    assert document(tmp_path / "bn.dagrad")["format_version"] == 3
    h = dg.load(tmp_path / "bn.dagrad")
    assert h.updates == g.updates and len(h.updates) == 3
    for name in ("bn/running_mean", "bn/running_var", "bn/num_batches_tracked"):
        assert h.value(name).tobytes() == g.value(name).tobytes()
    dg.fit(h, "loss", DATA, dg.optim.SGD(h, lr=0.01), epochs=1, batch_size=8, progress=False)
    assert h.value("bn/num_batches_tracked") == 6


def test_a_file_whose_updates_name_no_node_or_a_trainable_param_is_refused(tmp_path):
    g, _ = bn_model()
    dg.save(g, tmp_path / "bn.dagrad")
    doc = document(tmp_path / "bn.dagrad")
    doc["updates"] = {"bn/running_mean": "nowhere"}
    assert "'nowhere', which is not a node" in str(load_error(rewrite(tmp_path / "bn.dagrad", tmp_path / "a.dagrad", doc)))
    doc["updates"] = {"fc/W": "bn/next/running_mean"}
    assert "only non-trainable params" in str(load_error(rewrite(tmp_path / "bn.dagrad", tmp_path / "b.dagrad", doc)))


def test_resuming_from_a_checkpoint_restores_the_running_statistics_exactly(tmp_path):
    def train(**options):
        g, loss = bn_model()
        dg.fit(g, loss, DATA, dg.optim.Adam(g, lr=0.01), batch_size=5, progress=False, **options)
        return g

    straight = train(epochs=3)
    train(epochs=1, checkpoint=tmp_path / "run.ckpt")
    assert load_checkpoint(tmp_path / "run.ckpt").graph.updates == straight.updates
    resumed = train(epochs=3, resume=tmp_path / "run.ckpt")
    for name in ("bn/running_mean", "bn/running_var", "bn/gamma", "fc/W"):
        assert resumed.value(name).tobytes() == straight.value(name).tobytes(), name


# ------------------------------------------------------------ add_update ---


def test_add_update_refuses_what_cannot_be_state_and_leaves_the_graph_as_it_was():
    g = dg.Graph()
    w = g.param("w", np.zeros(3))
    s = g.param("s", np.zeros(3), trainable=False)
    c = g.const(np.zeros(3), name="c")
    with pytest.raises(dg.GraphError, match="trainable param"):
        g.add_update(w, w + 1)
    with pytest.raises(dg.GraphError, match="a const"):
        g.add_update(c, s)
    with pytest.raises(dg.ShapeError, match="shape"):
        g.add_update(s, dg.sum(s))
    with pytest.raises(dg.ShapeError, match="complex128"):
        g.add_update(s, s * g.const(np.ones(3, complex)))
    assert g.updates == {}
    step = s + 1
    g.add_update(s, step)
    with pytest.raises(dg.GraphError, match="already updated"):
        g.add_update(s, s + 2)
    assert g.updates == {"s": step.name}


def test_an_atomic_block_that_fails_takes_its_updates_back():
    g = dg.Graph()
    x, training = g.input("x", shape=(None, 3)), g.input("training", shape=())
    with pytest.raises(dg.GraphError):
        with g.atomic():
            dg.nn.batch_norm(x, training, name="bn")
            raise dg.GraphError("a later layer failed")
    assert g.updates == {} and sorted(n.name for n in g) == ["training", "x"]


def test_functional_batch_norm_updates_only_non_trainable_params_and_only_when_it_can_train():
    g = dg.Graph()
    x, training = g.input("x", shape=(None, 2)), g.input("training", shape=())
    stats = g.const(np.zeros(2)), g.const(np.ones(2))
    with pytest.raises(dg.GraphError, match="non-trainable param.*momentum=0"):
        dg.batch_norm(x, *stats, training=training)
    dg.batch_norm(x, *stats, training=training, momentum=0)       # used as given, never updated
    dg.batch_norm(x, *stats, training=False)                       # evaluation only
    assert g.updates == {}
    with pytest.raises(dg.GraphError, match="training cannot be False"):
        dg.batch_norm(x, None, None, training=False)
    always = dg.batch_norm(x, None, None, training=True)
    X = np.array([[1.0, 2.0], [3.0, 6.0]])
    np.testing.assert_allclose(run(always, {"x": X}), standardized(X, 0), rtol=1e-12)


def test_a_checkpoint_does_not_restore_into_a_graph_with_other_updates(tmp_path):
    g, loss = bn_model()
    dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.01), epochs=1, batch_size=8, progress=False,
           checkpoint=tmp_path / "a.ckpt")
    doc = document(tmp_path / "a.ckpt")
    del doc["updates"]
    same_nodes = dg.load(rewrite(tmp_path / "a.ckpt", tmp_path / "no-updates.dagrad", doc))
    assert same_nodes.updates == {} and len(same_nodes) == len(g)
    with pytest.raises(dg.DagradError, match="state updates"):
        load_checkpoint(tmp_path / "a.ckpt").restore(same_nodes, dg.optim.SGD(same_nodes, lr=0.01))


def test_every_normalization_and_loss_op_can_be_differentiated_twice_or_says_why_not():
    twice = {"layer_norm", "group_norm", "rms_norm", "batch_norm", "nll_loss", "cross_entropy", "soft_cross_entropy",
             "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "cosine_similarity", "cosine_embedding_loss",
             "weighted_binary_cross_entropy_with_logits"}
    ops = dg.registry().ops
    assert all(ops[name].has_graph_vjp and ops[name].counterparts["torch"].startswith("torch.") for name in twice)
    # State and masks: not functions to differentiate, and their docstrings say so.
    assert not ops["batch_norm_update"].differentiable and "no gradient" in ops["batch_norm_update"].doc
    assert not ops["class_mask"].differentiable and "no gradient" in ops["class_mask"].doc
