"""Every error a user can cause is a DagradError subclass naming the node, op or plugin at fault,
and a failed change leaves the graph exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg


def snapshot(g: dg.Graph):
    return [(n.name, n.op, n.inputs, n.shape, str(n.dtype)) for n in g.nodes()], sorted(g.nx.edges)


@pytest.fixture
def mlp():
    g = dg.Graph("mlp")
    x = g.input("x", shape=(None, 3))
    y = g.input("y", shape=(None,), dtype="int64")
    with g.scope("fc1"):
        logits = x @ g.param("W", np.ones((3, 4)))
    loss = dg.softmax_cross_entropy(logits, y)
    return g, x, y, logits, loss


def test_every_error_class_is_a_dagrad_error():
    for cls in (dg.GraphError, dg.CycleError, dg.ShapeError, dg.FeedError, dg.PluginError, dg.OpError,
                dg.GradientError, dg.AnomalyError, dg.FormatError, dg.RenderError):
        assert issubclass(cls, dg.DagradError)


def test_every_error_survives_pickling_with_its_attributes_as_between_processes():
    import pickle

    errors = [dg.CycleError("cycle", ["a", "b", "a"]), dg.AnomalyError("nan", "fc/W", "backward"),
              dg.NonFiniteError("inf", "loss", "loss", 7), dg.FormatError("bad", path="m.dagrad", part="header"),
              dg.ClusterError("gone", checkpoint="run.ckpt"), dg.SymbolicTensorError("float(t)")]
    for error in errors:
        error.add_note("a note")
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error), error
        assert vars(again) == vars(error), error


# ------------------------------------------------------------- building ---


def test_shape_mismatch_is_reported_when_the_node_is_added(mlp):
    g, x, *_ = mlp
    before = snapshot(g)
    with pytest.raises(dg.ShapeError, match=r"node 'matmul' \(op 'matmul' from builtins\).*\(\?, 3\), \(5, 2\).*3 versus 5"):
        x @ np.ones((5, 2))
    assert snapshot(g) == before  # the constant made for the array was taken back


def test_broadcast_mismatch_names_both_shapes(mlp):
    g, x, *_ = mlp
    with pytest.raises(dg.ShapeError, match=r"\(\?, 3\) and \(4,\) do not broadcast"):
        x + g.param("b", np.zeros(4))


def test_wrong_arity_is_a_graph_error(mlp):
    g, x, *_ = mlp
    before = snapshot(g)
    with pytest.raises(dg.GraphError, match=r"'tanh'.*takes 1 input\(s\), got 2"):
        g.apply("tanh", [x, x])
    assert snapshot(g) == before


def test_unknown_attribute_is_named_with_the_known_ones(mlp):
    g, x, *_ = mlp
    with pytest.raises(dg.GraphError, match=r"unknown attribute\(s\) \['axs'\].*known: axis, keepdims"):
        dg.ops.sum(x, axs=1)


def test_attributes_must_be_json_serialisable(mlp):
    g, x, *_ = mlp
    before = snapshot(g)
    with pytest.raises(dg.GraphError, match="not JSON-serialisable"):
        dg.ops.clip(x, low=object())
    assert snapshot(g) == before


def test_bad_dtype_in_an_expression_leaves_the_graph_unchanged(mlp):
    g, x, *_ = mlp
    before = snapshot(g)
    with pytest.raises(dg.ShapeError):
        x + np.array(["a", "b", "c"])
    assert snapshot(g) == before


def test_indexing_with_a_float_tensor_names_the_fix_and_leaves_the_graph_unchanged(mlp):
    g, x, y, *_ = mlp
    assert x[y].op == "index"                      # integer Tensors index, as numpy arrays do
    before = snapshot(g)
    with pytest.raises(dg.GraphError, match=r"integers or booleans; cast it \(`x.astype\('int64'\)`\)"):
        x[:, x]
    assert snapshot(g) == before


def test_out_of_range_static_index_is_a_shape_error():
    g = dg.Graph()
    x = g.input("x", shape=(2, 3))
    with pytest.raises(dg.ShapeError, match="node 'getitem'.*out of bounds"):
        x[:, 5]


def test_missing_node_names_suggest_close_names(mlp):
    g, *_ = mlp
    with pytest.raises(dg.GraphError, match="no node named 'fc1/w'.*'fc1/W'"):
        g.node("fc1/w")


# ---------------------------------------------------------------- feeds ---


def test_missing_feed_is_named(mlp):
    g, x, y, logits, loss = mlp
    with pytest.raises(dg.FeedError, match="input 'y' needs a feed"):
        g.backward(loss, feeds={"x": np.ones((2, 3))})


def test_unexpected_feed_is_named_with_the_inputs(mlp):
    g, x, y, logits, loss = mlp
    with pytest.raises(dg.FeedError, match=r"feed 'z' matches no input.*'x', 'y'"):
        g.forward(logits, feeds={"x": np.ones((2, 3)), "z": 1})
    with pytest.raises(dg.FeedError, match="'fc1/W' is not an input: it is a param"):
        g.forward(logits, feeds={"x": np.ones((2, 3)), "fc1/W": np.ones((3, 4))})


def test_ill_typed_feeds_are_refused(mlp):
    g, x, y, logits, loss = mlp
    with pytest.raises(dg.FeedError, match=r"feed 'x' has shape \(2, 4\); input 'x' expects \(\?, 3\)"):
        g.forward(logits, feeds={"x": np.ones((2, 4))})
    with pytest.raises(dg.FeedError, match="feed 'x' has dtype <U1"):
        g.forward(logits, feeds={"x": np.array([["a", "b", "c"]])})
    with pytest.raises(dg.FeedError, match="feed 'y' has dtype float64; input 'y' expects int64"):
        g.backward(loss, feeds={"x": np.ones((2, 3)), "y": np.array([0.5, 1.0])})


def test_feeds_are_cast_to_the_input_dtype_when_safe():
    g = dg.Graph()
    x = g.input("x", shape=(2,), dtype="float32")
    y = x * 2
    value = g.forward(y, {"x": [1, 2]}).value(y)
    assert value.dtype == np.float32


# ------------------------------------------------------------- running ---


def test_an_op_raising_inside_numpy_is_wrapped_with_the_node_name(mlp):
    g, x, y, logits, loss = mlp
    with pytest.raises(dg.OpError, match=r"node 'softmax_cross_entropy'.*label 7 is out of range for 4 classes") as err:
        g.backward(loss, feeds={"x": np.ones((2, 3)), "y": np.array([0, 7])})
    assert isinstance(err.value.__cause__, ValueError)


def _register(op, fresh):
    dg.register_ops(op, plugin="faulty")


@pytest.mark.parametrize(
    "returned, message",
    [
        (lambda g, x: (g, g), r"must return one gradient \(or None\) per input, 1 in all; it returned 2 values"),
        (lambda g, x: (np.ones((7,)),), r"gradient of shape \(7,\) for input 0 \('x'\).*shape \(2, 3\)"),
        (lambda g, x: (g.astype(np.float32),), r"returned a float32 gradient for input 0 \('x'\), whose value is float64"),
        (lambda g, x: ("nonsense",), "gradient"),
    ],
    ids=["count", "shape", "dtype", "type"],
)
def test_a_vjp_returning_the_wrong_gradients_names_the_op_and_its_plugin(fresh_registry, returned, message):
    @dg.op(shape=dg.shapes.same_as_first, saves=("inputs",))
    def faulty(x):
        "identity with a broken VJP"
        return x.copy()

    @faulty.vjp
    def _(g, x, out):
        return returned(g, x)

    dg.register_ops(faulty, plugin="faulty-pack")
    g = dg.Graph()
    x = g.param("x", np.ones((2, 3)))
    with pytest.raises(dg.DagradError, match=message) as err:
        g.backward(dg.ops.faulty(x).sum())
    assert "faulty" in str(err.value)
    if message != "gradient":
        assert isinstance(err.value, dg.GradientError)
        assert "plugin 'faulty-pack'" in str(err.value)


def test_anomaly_check_names_the_first_node_producing_nan_in_the_forward_pass():
    g = dg.Graph()
    x = g.input("x", shape=(3,))
    bad = dg.log(x)  # log(-1) is NaN
    loss = (dg.exp(bad) * 2).sum()
    feeds = {"x": np.array([1.0, -1.0, 2.0])}
    with np.errstate(invalid="ignore"):
        g.forward(loss, feeds)  # off by default: no error
        with pytest.raises(dg.AnomalyError, match=r"node 'log' \(op 'log'\) produced 1 NaN and 0 Inf of 3 entries in the forward pass, from finite inputs") as err:
            g.forward(loss, feeds, check=True)
    assert (err.value.node, err.value.phase) == ("log", "forward")


def test_anomaly_check_names_the_node_whose_vjp_produced_inf_in_the_backward_pass():
    g = dg.Graph()
    x = g.param("x", [0.0, 4.0])
    loss = dg.sqrt(x).sum()  # d sqrt(x)/dx is infinite at 0, the forward is finite
    with np.errstate(divide="ignore"), dg.check_anomalies(True):
        with pytest.raises(dg.AnomalyError, match=r"node 'sqrt'.*0 NaN and 1 Inf.*for its input 'x' in the backward pass") as err:
            g.backward(loss)
    assert err.value.phase == "backward"
    with np.errstate(divide="ignore"):
        g.backward(loss)  # the context manager restored the default


def test_invalid_requests_are_graph_errors(mlp):
    g, x, y, logits, loss = mlp
    with pytest.raises(dg.GraphError, match="keep must be 'all' or 'wrt'"):
        g.backward(loss, feeds={}, keep="some")
    with pytest.raises(dg.GraphError, match="dtype int64; gradients need a floating-point loss"):
        g.backward(y, feeds={})
    with pytest.raises(dg.GraphError, match="with respect to 'y': its dtype is int64"):
        g.backward(loss, feeds={}, wrt=[y])


def test_an_op_without_a_vjp_on_the_gradient_path_is_named(fresh_registry):
    @dg.op(shape=dg.shapes.same_as_first)
    def floor_like(x):
        "no gradient defined"
        return np.floor(x)

    dg.register_ops(floor_like, plugin="no-vjp")
    g = dg.Graph()
    x = g.param("x", [1.5])
    with pytest.raises(dg.GraphError, match="op 'floor_like' from no-vjp has no VJP"):
        g.backward(dg.ops.floor_like(x).sum())
    g.forward(dg.ops.floor_like(x))  # forward is fine


@pytest.mark.parametrize("attribute", ["out", "res", "needs"])
def test_an_attribute_named_like_a_keyword_every_vjp_is_passed_is_refused_when_the_op_is_defined(attribute):
    namespace: dict = {}
    exec(f"def scaled(x, *, {attribute}=2.0):\n    'x times the attribute'\n    return x * {attribute}\n",  # noqa: S102
         namespace)
    # Else the rule would be passed the output, the residuals or the needs tuple as this attribute: in the
    # interpreter a wrong gradient without a word, in generated code a SyntaxError (keyword repeated).
    with pytest.raises(TypeError, match=rf"op 'scaled': attribute\(s\) '{attribute}' would collide with the "
                                        r"keyword\(s\) a VJP rule is passed"):
        dg.op(shape=dg.shapes.same_as_first)(namespace["scaled"])
