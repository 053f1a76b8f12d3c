"""Attention as PyTorch defines it (masks, causality, dropout, scale), its refusals, and the layers built on it.

The op's gradients are checked on its samples by tests/test_op_gradients.py
(finite differences, second order) and against PyTorch by
tests/test_torch_parity.py; these tests pin the behaviour.
"""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg

RNG = np.random.default_rng(3)
Q, K, V = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 5, 4)), RNG.standard_normal((2, 5, 6))


def reference(q, k, v, bias=0.0, scale=None):
    """softmax(q k^T * scale + bias) v, written out with numpy."""
    scores = q @ np.swapaxes(k, -1, -2) * (1 / np.sqrt(q.shape[-1]) if scale is None else scale) + bias
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)) @ v


def attend(*arrays, **kwargs):
    """Run ``dg.scaled_dot_product_attention`` on params holding ``arrays``; returns (graph, output node, value)."""
    g = dg.Graph()
    tensors = [g.param(f"a{i}", a) if np.asarray(a).dtype.kind == "f" else g.const(a) for i, a in enumerate(arrays)]
    out = dg.scaled_dot_product_attention(*tensors[:3], *tensors[3:], **kwargs)
    return g, out, g.forward(out).value(out)


# ------------------------------------------------------------------- values ---


def test_attention_is_softmax_of_scaled_scores_times_values():
    np.testing.assert_allclose(attend(Q, K, V)[2], reference(Q, K, V), rtol=1e-12)
    np.testing.assert_allclose(attend(Q, K, V, scale=0.3)[2], reference(Q, K, V, scale=0.3), rtol=1e-12)


def test_a_float_mask_is_added_to_the_scores_and_a_bool_mask_forbids_where_false():
    bias = RNG.standard_normal((3, 5))
    np.testing.assert_allclose(attend(Q, K, V, bias)[2], reference(Q, K, V, bias), rtol=1e-12)
    allowed = RNG.random((3, 5)) > 0.4
    allowed[:, 0] = True
    np.testing.assert_allclose(attend(Q, K, V, allowed)[2], reference(Q, K, V, np.where(allowed, 0, -np.inf)),
                               rtol=1e-12)


def test_causal_attention_sees_the_top_left_triangle_even_with_more_keys_than_queries():
    triangle = np.tril(np.ones((3, 5), bool))                     # query i sees keys 0..i, as in PyTorch
    np.testing.assert_allclose(attend(Q, K, V, is_causal=True)[2],
                               reference(Q, K, V, np.where(triangle, 0, -np.inf)), rtol=1e-12)


def test_a_causal_output_does_not_depend_on_later_positions():
    x = RNG.standard_normal((1, 4, 3))
    g = dg.Graph()
    xp = g.param("x", x)
    out = dg.scaled_dot_product_attention(xp, xp, xp, is_causal=True)
    grad = g.backward(dg.sum(out[:, 1]), keep="all").grad("x")      # position 1's output
    assert not grad[:, 2:].any() and grad[:, :2].all()


def test_causal_and_a_mask_combine_a_key_must_be_allowed_by_both():
    allowed = np.array([True, False, True, True, True])
    both = np.tril(np.ones((3, 5), bool)) & allowed
    np.testing.assert_allclose(attend(Q, K, V, allowed, is_causal=True)[2],
                               reference(Q, K, V, np.where(both, 0, -np.inf)), rtol=1e-12)


def test_a_query_allowed_no_key_gets_zero_output_and_zero_gradients():
    allowed = np.ones((3, 5), bool)
    allowed[1] = False
    g, out, value = attend(Q, K, V, allowed)
    assert not value[:, 1].any() and np.isfinite(value).all()
    res = g.backward(dg.sum(out * out), keep="all")
    assert not res.grad("a0")[:, 1].any()
    assert all(np.isfinite(res.grad(name)).all() for name in ("a0", "a1", "a2"))


def test_without_features_the_weights_are_uniform_as_in_pytorch():
    v = RNG.standard_normal((4, 2))
    value = attend(np.zeros((3, 0)), np.zeros((4, 0)), v)[2]
    np.testing.assert_allclose(value, np.broadcast_to(v.mean(0), (3, 2)))


def test_heads_are_a_batch_axis_that_broadcasts():
    q, k, v = RNG.standard_normal((2, 4, 3, 8)), RNG.standard_normal((2, 1, 5, 8)), RNG.standard_normal((5, 8))
    np.testing.assert_allclose(attend(q, k, v)[2], reference(q, k, v), rtol=1e-12)


def test_attention_weights_are_the_rows_attention_averages_with():
    g = dg.Graph()
    q, k, v = g.param("q", Q), g.param("k", K), g.param("v", V)
    w = dg.attention_weights(q, k, is_causal=True)
    out = dg.scaled_dot_product_attention(q, k, v, is_causal=True)
    res = g.forward([w, out])
    np.testing.assert_allclose(res.value(w).sum(-1), 1.0)
    np.testing.assert_allclose(res.value(w) @ V, res.value(out), rtol=1e-12)


def test_float32_stays_float32_and_integer_inputs_compute_in_float64():
    out32 = attend(*(a.astype(np.float32) for a in (Q, K, V)))[2]
    assert out32.dtype == np.float32
    g = dg.Graph()
    ints = [g.const(np.arange(12).reshape(3, 4) % 3) for _ in range(3)]
    y = dg.scaled_dot_product_attention(*ints)
    assert y.dtype == np.float64 and g.forward(y).value(y).dtype == np.float64


# ------------------------------------------------------------------ dropout ---


def dropout_graph(rate=0.5):
    g = dg.Graph()
    q, k, v = g.input("q", shape=(None, 3, 4)), g.input("k", shape=(None, 5, 4)), g.input("v", shape=(None, 5, 6))
    training = g.input("training", shape=(), dtype="int64")
    out = dg.scaled_dot_product_attention(q, k, v, dropout_p=rate, training=training)
    return g, out


def test_dropout_is_off_when_training_is_zero_and_repeats_for_the_same_step():
    g, out = dropout_graph()
    feeds = {"q": Q, "k": K, "v": V}
    evaluated = g.forward(out, {**feeds, "training": 0}).value(out)
    np.testing.assert_allclose(evaluated, reference(Q, K, V), rtol=1e-12)
    step7 = g.forward(out, {**feeds, "training": 7}).value(out)
    assert not np.allclose(step7, evaluated)
    np.testing.assert_array_equal(step7, g.forward(out, {**feeds, "training": 7}).value(out))
    assert not np.allclose(step7, g.forward(out, {**feeds, "training": 8}).value(out))


def test_dropout_zeroes_weights_and_scales_the_rest_keeping_the_mean():
    g = dg.Graph()
    q, k = g.param("q", np.zeros((1, 200, 1))), g.param("k", np.zeros((1, 200, 1)))
    v = g.param("v", np.ones((1, 200, 1)))          # uniform weights 1/200: the output is the kept share, rescaled
    out = dg.scaled_dot_product_attention(q, k, v, dropout_p=0.25, training=g.input("training", shape=()))
    value = g.forward(out, {"training": 3}).value(out)
    assert abs(value.mean() - 1.0) < 0.02 and value.std() > 0.01


def test_dropout_gradients_match_finite_differences():
    g, out = dropout_graph(0.3)
    loss = dg.sum(out * out)
    assert dg.gradcheck(g, loss=loss, feeds={"q": Q, "k": K, "v": V, "training": 5}, wrt=["q", "k", "v"])


def test_dropout_needs_the_training_input():
    g = dg.Graph()
    x = g.input("x", shape=(2, 3))
    with pytest.raises(dg.GraphError, match="training="):
        dg.scaled_dot_product_attention(x, x, x, dropout_p=0.1)


# ----------------------------------------------------------------- refusals ---


@pytest.mark.parametrize("shapes, mask, message", [
    (((3, 4), (5, 3), (5, 2)), None, "different feature sizes"),
    (((3, 4), (5, 4), (6, 2)), None, "different lengths"),
    (((4,), (5, 4), (5, 2)), None, "at least 2 axes"),
    (((3, 4), (5, 4), (5, 2)), np.ones((2, 3, 5), bool), "without widening"),
])
def test_shapes_that_do_not_fit_are_refused_naming_the_node(shapes, mask, message):
    g = dg.Graph()
    tensors = [g.input(name, shape=s) for name, s in zip("qkv", shapes)]
    with pytest.raises(dg.ShapeError, match=message) as caught:
        dg.scaled_dot_product_attention(*tensors, mask)
    assert "scaled_dot_product_attention" in str(caught.value)


def test_a_mask_that_does_not_fit_the_fed_sizes_is_refused_when_it_runs_with_dagrads_message():
    g = dg.Graph()
    q, kv = g.input("q", shape=(None, 4)), g.input("kv", shape=(None, 4))
    mask = g.input("mask", shape=(None, None), dtype="bool")
    out = dg.scaled_dot_product_attention(q, kv, kv, mask)
    feeds = {"q": np.ones((3, 4)), "kv": np.ones((5, 4)), "mask": np.ones((2, 5), bool)}
    with pytest.raises(dg.OpError, match=r"mask of shape \(2, 5\) does not broadcast to the scores' shape \(3, 5\)"):
        g.forward(out, feeds)


def test_an_integer_mask_is_refused_saying_what_a_mask_may_be():
    g = dg.Graph()
    x = g.input("x", shape=(3, 4))
    with pytest.raises(dg.DagradError, match="bool .* or float"):
        dg.scaled_dot_product_attention(x, x, x, np.ones((3, 3), np.int64))


def test_unknown_sizes_stay_unknown():
    g = dg.Graph()
    q = g.input("q", shape=(None, None, 8))
    kv = g.input("kv", shape=(None, None, 8))
    assert dg.scaled_dot_product_attention(q, kv, kv, is_causal=True).shape == (None, None, 8)
    assert dg.attention_weights(q, kv).shape == (None, None, None)


# ------------------------------------------------------------------- layers ---


def test_multi_head_attention_adds_projections_per_head_and_an_output_projection():
    g = dg.Graph()
    x = g.input("x", shape=(None, 5, 8))
    y = dg.nn.multi_head_attention(x, 2, causal=True, name="attn")
    assert y.shape == (None, 5, 8)
    shapes = {name: g.value(name).shape for name in g.params}
    assert shapes == {"attn/q/W": (8, 2, 4), "attn/q/b": (2, 1, 4), "attn/k/W": (8, 2, 4), "attn/k/b": (2, 1, 4),
                      "attn/v/W": (8, 2, 4), "attn/v/b": (2, 1, 4), "attn/out/W": (2, 4, 8), "attn/out/b": (8,)}
    assert [n.name for n in g.nodes() if n.op == "scaled_dot_product_attention"] == ["attn/attend"]


def test_multi_head_attention_attends_to_another_sequence_and_its_gradients_check():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 4))
    memory = g.input("memory", shape=(None, 6, 5))
    y = dg.nn.multi_head_attention(x, 2, key=memory, head_features=3)
    assert y.shape == (None, 3, 4) and g.value("attention/k/W").shape == (5, 2, 3)
    feeds = {"x": RNG.standard_normal((2, 3, 4)), "memory": RNG.standard_normal((2, 6, 5))}
    assert dg.gradcheck(g, loss=dg.sum(y * y), feeds=feeds)


def test_multi_head_attention_needs_heads_that_divide_the_features():
    g = dg.Graph()
    with pytest.raises(dg.GraphError, match="do not split into 3 heads"):
        dg.nn.multi_head_attention(g.input("x", shape=(None, 5, 8)), 3)


def test_a_transformer_block_is_pre_norm_residual_attention_then_mlp():
    g = dg.Graph()
    x = g.input("x", shape=(None, 4, 8))
    y = dg.nn.transformer_block(x, 2, hidden=16, causal=True, name="b")
    assert y.shape == (None, 4, 8)
    assert {name.split("/")[1] for name in g.params} == {"norm1", "attention", "norm2", "fc1", "fc2"}
    assert g.value("b/fc1/W").shape == (8, 16)
    feeds = {"x": RNG.standard_normal((2, 4, 8))}
    assert dg.gradcheck(g, loss=dg.sum(y * y), feeds=feeds)
    for name in ("b/attention/q/W", "b/attention/out/W", "b/fc1/W"):          # the residual path: zero weights ...
        g.set_value(name, np.zeros_like(g.value(name)))
    np.testing.assert_allclose(g.forward(y, feeds).value(y), feeds["x"] + g.value("b/fc2/b"))  # ... leave x


def test_transformer_block_dropout_needs_training_and_is_off_when_evaluating():
    g = dg.Graph()
    x = g.input("x", shape=(None, 4, 8))
    with pytest.raises(dg.GraphError, match="training="):
        dg.nn.transformer_block(x, 2, dropout=0.1)
    training = g.input("training", shape=())
    y = dg.nn.transformer_block(x, 2, dropout=0.5, training=training, name="dropped")
    plain = dg.nn.transformer_block(x, 2, name="dropped")             # the same seeds: the same weights
    feeds = {"x": RNG.standard_normal((2, 4, 8))}
    for name in [n for n in g.params if n.startswith("dropped/")]:
        g.set_value(name.replace("dropped/", "dropped_1/"), g.value(name))
    res = g.forward([y, plain], {**feeds, "training": 0})
    np.testing.assert_allclose(res.value(y), res.value(plain))
    assert not np.allclose(g.forward(y, {**feeds, "training": 1}).value(y), res.value(plain))


def test_without_the_activations_pack_gelu_is_a_composite_of_built_in_ops(fresh_registry):
    x = np.linspace(-3, 3, 13)

    def gelu_graph():
        g = dg.Graph()
        y = dg.nn.gelu(g.param("x", x))
        return g, y, g.forward(y).value(y)

    g, y, with_pack = gelu_graph()
    assert y.op == "gelu"
    fresh_registry.ops.pop("gelu")
    g, y, composite = gelu_graph()
    assert "gelu" not in {n.op for n in g.nodes()}
    np.testing.assert_allclose(composite, with_pack, atol=1e-3)   # the tanh form, against the pack's
    block = dg.nn.transformer_block(dg.Graph().input("seq", shape=(None, 3, 4)), 2)
    assert "gelu" not in {n.op for n in block.graph.nodes()} and "tanh" in {n.op for n in block.graph.nodes()}


def test_embedding_with_padding_idx_looks_up_zeros_there_and_never_trains_that_row():
    g = dg.Graph()
    tokens = g.input("tokens", shape=(None, 4), dtype="int64")
    vectors = dg.nn.embedding(tokens, 6, 3, padding_idx=-1, name="emb", dtype="float64")   # id 5
    assert not g.value("emb/table")[5].any()
    feeds = {"tokens": np.array([[1, 5, 5, 2]])}
    res = g.backward(dg.sum(vectors * 3.0), feeds)
    assert not res.value(vectors)[0, 1:3].any()
    grad = res.grad("emb/table")
    assert not grad[5].any() and grad[1].tolist() == [3.0, 3.0, 3.0]
    with pytest.raises(dg.GraphError, match="padding_idx 6"):
        dg.nn.embedding(tokens, 6, 3, padding_idx=6)
