"""Layers build named scopes with correct gradients; initialisers have the stated statistics; losses reduce."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg
from dagrad.testing import check_op
from dagrad.nn import init


def graph_with_input(features=4, dtype="float64"):
    g = dg.Graph("layers")
    return g, g.input("x", shape=(None, features), dtype=dtype)


X = np.random.default_rng(1).normal(size=(5, 4))


# ---------------------------------------------------------------- dense ---


def test_dense_adds_a_named_scope_with_W_and_b():
    g, x = graph_with_input()
    h = dg.nn.dense(x, 3, activation="tanh", name="fc1")
    assert sorted(g.params) == ["fc1/W", "fc1/b"]
    assert g.value("fc1/W").shape == (4, 3) and g.value("fc1/b").shape == (3,)
    assert h.name == "fc1/tanh" and h.shape == (None, 3)
    assert {n.scope for n in g.nodes() if n.name.startswith("fc1/")} == {"fc1"}


def test_dense_params_follow_the_input_dtype():
    g, x = graph_with_input(dtype="float32")
    h = dg.nn.dense(x, 3)
    assert g.value("dense/W").dtype == np.float32 and h.dtype == np.float32


def test_dense_names_are_numbered_when_taken():
    g, x = graph_with_input()
    dg.nn.dense(dg.nn.dense(x, 3), 2)
    assert sorted(g.params) == ["dense/W", "dense/b", "dense_1/W", "dense_1/b"]


def test_dense_initial_values_repeat_and_differ_between_layers():
    def build():
        g, x = graph_with_input()
        dg.nn.dense(dg.nn.dense(x, 4, name="a"), 4, name="b")
        return g

    one, two = build(), build()
    assert np.array_equal(one.value("a/W"), two.value("a/W"))
    assert not np.array_equal(one.value("a/W"), one.value("b/W"))


def test_dense_with_explicit_rng_and_init():
    g, x = graph_with_input()
    dg.nn.dense(x, 3, init="zeros", name="z")
    dg.nn.dense(x, 3, init=init.constant(0.5), name="c", bias=False)
    assert not g.value("z/W").any()
    assert np.all(g.value("c/W") == 0.5) and "c/b" not in g


@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid", dg.tanh])
def test_dense_gradients_match_finite_differences(activation):
    g, x = graph_with_input()
    h = dg.nn.dense(x, 3, activation=activation, name="fc", rng=2)
    loss = dg.sum(h * h)
    report = dg.gradcheck(g, loss=loss, feeds={"x": X})
    assert report, str(report)


def test_mlp_stacks_layers_and_its_gradients_check():
    g, x = graph_with_input()
    out = dg.nn.mlp(x, [6, 5, 2], "tanh", rng=0)
    assert sorted(g.params) == [f"fc{i}/{p}" for i in (1, 2, 3) for p in ("W", "b")]
    assert out.shape == (None, 2)
    y = g.input("y", shape=(None,), dtype="int64")
    loss = dg.nn.cross_entropy(out, y)
    report = dg.gradcheck(g, loss=loss, feeds={"x": X, "y": [0, 1, 1, 0, 1]})
    assert report, str(report)


def test_dense_needs_a_known_feature_size():
    g = dg.Graph()
    x = g.input("x", shape=(None, None))
    with pytest.raises(dg.GraphError, match="known size"):
        dg.nn.dense(x, 3)


def test_unknown_activation_is_reported_by_name():
    g, x = graph_with_input()
    with pytest.raises(dg.GraphError, match="relux"):
        dg.nn.dense(x, 3, activation="relux")


# --------------------------------------------------------------- dropout ---


def dropout_graph(rate=0.5):
    g = dg.Graph("dropout")
    x = g.input("x", shape=(None, 200))
    training = g.input("training", shape=())
    return g, dg.nn.dropout(x, rate, training)


def test_dropout_is_the_identity_when_training_is_zero():
    g, y = dropout_graph()
    ones = np.ones((3, 200))
    assert np.array_equal(g.forward(y, {"x": ones, "training": 0}).value(y), ones)


def test_dropout_zeroes_about_rate_and_scales_the_rest():
    g, y = dropout_graph(rate=0.25)
    out = g.forward(y, {"x": np.ones((50, 200)), "training": 1}).value(y)
    assert np.unique(out).tolist() == pytest.approx([0.0, 1 / 0.75])
    assert abs((out == 0).mean() - 0.25) < 0.02
    assert abs(out.mean() - 1.0) < 0.03  # expectation preserved


def test_dropout_mask_depends_on_the_step_key_and_repeats_for_the_same_key():
    g, y = dropout_graph()
    ones = np.ones((4, 200))
    a, b, c = (g.forward(y, {"x": ones, "training": k}).value(y) for k in (1, 2, 1))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, c)


def test_two_dropout_layers_draw_different_masks():
    g = dg.Graph()
    x = g.input("x", shape=(None, 200))
    training = g.input("training", shape=())
    first = dg.nn.dropout(x, 0.5, training, name="d1")
    second = dg.nn.dropout(x, 0.5, training, name="d2")
    res = g.forward([first, second], {"x": np.ones((2, 200)), "training": 3})
    assert not np.array_equal(res.value(first), res.value(second))


def test_dropout_gradient_is_the_mask():
    g, y = dropout_graph()
    w = g.param("w", np.ones(200))
    loss = dg.sum(dg.nn.dropout(g["x"] * w, 0.5, g["training"], name="inner"))
    feeds = {"x": np.ones((1, 200)), "training": 5}
    res = g.backward(loss, feeds)
    kept = res.value("inner") != 0
    assert np.array_equal(res.grad("w") != 0, kept[0])
    assert dg.gradcheck(g, loss=loss, feeds=feeds)


def test_dropout_op_passes_its_own_samples():
    assert check_op("dropout").cases


def test_dropout_rate_must_be_below_one():
    g, _ = dropout_graph()
    with pytest.raises(dg.GraphError, match="rate"):
        dg.nn.dropout(g["x"], 1.0, g["training"])


def test_mlp_with_dropout_needs_the_training_input():
    g, x = graph_with_input()
    with pytest.raises(dg.GraphError, match="training"):
        dg.nn.mlp(x, [3, 2], dropout=0.5)
    training = g.input("training", shape=())
    out = dg.nn.mlp(x, [3, 2], dropout=0.5, training=training)
    assert "fc1_dropout" in g and out.shape == (None, 2)


# ------------------------------------------------------------ layer norm ---


def test_layer_norm_rows_have_mean_zero_and_unit_variance():
    g, x = graph_with_input()
    y = dg.nn.layer_norm(x)
    out = g.forward(y, {"x": X * 10 + 3}).value(y)
    assert np.allclose(out.mean(axis=1), 0, atol=1e-12)
    assert np.allclose(out.var(axis=1), 1, atol=1e-4)
    assert sorted(g.params) == ["layer_norm/beta", "layer_norm/gamma"]


def test_layer_norm_gradients_match_finite_differences():
    g, x = graph_with_input()
    w = g.param("w", np.random.default_rng(3).normal(size=(4, 4)))
    y = dg.nn.layer_norm(x @ w)
    loss = dg.sum(y * g.const(np.random.default_rng(4).normal(size=(5, 4))))
    g.set_value("layer_norm/gamma", [1.0, 2.0, 0.5, -1.0])
    report = dg.gradcheck(g, loss=loss, feeds={"x": X})
    assert report, str(report)


# ------------------------------------------------------------- embedding ---


def test_embedding_looks_up_rows_and_only_they_get_gradient():
    g = dg.Graph()
    tokens = g.input("tokens", shape=(None, 3), dtype="int64")
    vectors = dg.nn.embedding(tokens, 10, 4, name="emb", dtype="float64")
    assert vectors.shape == (None, 3, 4)
    loss = dg.sum(vectors * vectors)
    feeds = {"tokens": np.array([[1, 2, 2], [7, 1, 1]])}
    res = g.backward(loss, feeds)
    table = g.value("emb/table")
    grad = res.grad("emb/table")
    assert np.allclose(grad[1], 3 * 2 * table[1])   # row 1 looked up three times
    assert np.allclose(grad[2], 2 * 2 * table[2])
    assert not grad[[0, 3, 4, 5, 6, 8, 9]].any()
    assert dg.gradcheck(g, loss=loss, feeds=feeds)


def test_embedding_needs_integer_indices():
    g, x = graph_with_input()
    with pytest.raises(dg.GraphError, match="integers"):
        dg.nn.embedding(x, 10, 4)


# ---------------------------------------------------------- initialisers ---

SHAPE = (400, 600)  # fan_in 400, fan_out 600: 240,000 draws, statistics within about 1%


@pytest.mark.parametrize(
    "fn, variance",
    [
        (init.glorot_uniform, 2 / (400 + 600)),
        (init.glorot_normal, 2 / (400 + 600)),
        (init.he_uniform, 2 / 400),
        (init.he_normal, 2 / 400),
    ],
)
def test_scaled_initialisers_have_the_stated_variance(fn, variance):
    w = fn(SHAPE, np.random.default_rng(0), "float64")
    assert abs(w.mean()) < 0.01 * np.sqrt(variance) * 5
    assert w.var() == pytest.approx(variance, rel=0.02)


def test_uniform_initialisers_stay_within_their_limits():
    assert np.abs(init.glorot_uniform(SHAPE, 0)).max() <= np.sqrt(6 / 1000)
    assert np.abs(init.he_uniform(SHAPE, 0)).max() <= np.sqrt(6 / 400)
    u = init.uniform((1000,), 0, low=2.0, high=3.0)
    assert u.min() >= 2.0 and u.max() < 3.0


def test_normal_initialiser_has_the_given_mean_and_std():
    w = init.normal((100_000,), 0, "float64", mean=1.0, std=0.5)
    assert w.mean() == pytest.approx(1.0, abs=0.01) and w.std() == pytest.approx(0.5, rel=0.01)


def test_initialisers_are_seeded_and_typed():
    assert np.array_equal(init.he_normal((3, 4), 7), init.he_normal((3, 4), np.random.default_rng(7)))
    assert not np.array_equal(init.he_normal((3, 4), 7), init.he_normal((3, 4), 8))
    assert init.glorot_uniform((3, 4), 0).dtype == np.float32
    assert init.glorot_uniform((3, 4), 0, "float64").dtype == np.float64
    assert not init.zeros((2, 2)).any() and init.ones((2,)).tolist() == [1.0, 1.0]


def test_initialiser_aliases_and_lookup_by_name():
    assert init.xavier_uniform is init.glorot_uniform and init.kaiming_normal is init.he_normal
    assert init.get("kaiming_uniform") is init.he_uniform
    with pytest.raises(dg.GraphError, match="unknown initialiser 'glorot'"):
        init.get("glorot")


def test_fans_of_vectors_and_matrices():
    assert init.fans((5,)) == (5, 5)
    assert init.fans((3, 4)) == (3, 4)
    assert init.fans((2, 3, 4)) == (6, 4)


# ---------------------------------------------------------------- losses ---


def test_losses_reduce_by_mean_or_sum():
    g = dg.Graph()
    logits = g.input("logits", shape=(None, 3))
    labels = g.input("labels", shape=(None,), dtype="int64")
    mean = dg.nn.cross_entropy(logits, labels, name="mean")
    total = dg.nn.cross_entropy(logits, labels, "sum", name="total")
    each = dg.nn.cross_entropy(logits, labels, "none", name="each")
    feeds = {"logits": np.random.default_rng(0).normal(size=(4, 3)), "labels": [0, 1, 2, 1]}
    res = g.forward([mean, total, each], feeds)
    assert res.value(total) == pytest.approx(4 * res.value(mean))
    assert res.value(each).shape == (4,) and res.value(each).sum() == pytest.approx(res.value(total))


def test_binary_cross_entropy_and_mse_values():
    g = dg.Graph()
    z = g.input("z", shape=(None,))
    t = g.input("t", shape=(None,))
    bce = dg.nn.binary_cross_entropy(z, t, name="bce")
    mse = dg.nn.mse(z, t, "sum", name="mse")
    res = g.forward([bce, mse], {"z": [0.0, 2.0], "t": [1.0, 0.0]})
    expected = (np.log(2) + np.log1p(np.exp(2.0))) / 2
    assert res.value(bce) == pytest.approx(expected)
    assert res.value(mse) == pytest.approx(1.0 + 4.0)


def test_unknown_reduction_is_refused():
    g, x = graph_with_input()
    with pytest.raises(dg.GraphError, match="reduction"):
        dg.nn.mse(x, x, "avg")


def test_a_model_with_dropout_round_trips_through_a_model_file(tmp_path):
    g, y = dropout_graph()
    dg.save(g, tmp_path / "drop.dagrad")
    loaded = dg.load(tmp_path / "drop.dagrad")
    feeds = {"x": np.ones((2, 200)), "training": 4}
    assert np.array_equal(loaded.forward(y.name, feeds).value(y.name), g.forward(y, feeds).value(y))
