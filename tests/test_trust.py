"""dagrad never computes, shows or keeps something wrong without saying so (the engine's guarantees).

Each test is one guarantee of docs/graphs.md's "What you can rely on": a
Result is a snapshot of its run, a Plan never runs a graph that changed,
ops see read-only arrays and must return what they declare, feeds never
narrow silently, anomaly checking is per context, Tensors never cross graphs,
and an unsaved input read by a VJP is loud.
"""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

import dagrad as dg
from dagrad.scheduler import checking
from dagrad.scheduler.plan import CODEGEN_AFTER_RUNS
from test_executors import split

EXECUTORS = ["loop", "codegen", "parts"]


@pytest.fixture(params=EXECUTORS)
def executor(request, monkeypatch):
    """Each executor: the loop, generated code, and generated code split into parts of two instructions."""
    split(monkeypatch, 2 if request.param == "parts" else None)
    monkeypatch.setenv("DAGRAD_EXECUTOR", "loop" if request.param == "loop" else "codegen")
    return request.param


def register(fresh_registry, *ops, plugin="untrusted"):
    dg.register_ops(*ops, plugin=plugin)


# --------------------------------------------------------------- 1. snapshots ---


def test_a_result_keeps_the_values_of_its_run_after_an_optimizer_step(executor):
    g = dg.Graph()
    w = g.param("w", np.array([1.0, -2.0]))
    b = g.param("b", np.zeros(2))
    loss = dg.sum((w + b) ** 2, name="loss")
    res = g.backward(loss)
    before_w, before_b = res.value(w).copy(), res.value(b).copy()
    dg.optim.SGD(g, lr=0.5).step(res)
    assert not np.array_equal(g.value(w), before_w)               # the parameter did change
    np.testing.assert_array_equal(res.value(w), before_w)          # the result did not
    np.testing.assert_array_equal(res.value(b), before_b)


def test_a_result_does_not_change_when_the_caller_edits_the_fed_array(executor):
    g = dg.Graph()
    x = g.input("x", shape=(3,))
    loss = dg.sum(dg.tanh(x) * g.param("w", np.ones(3)), name="loss")
    feed = np.array([0.1, 0.2, 0.3])
    res = g.backward(loss, {"x": feed})
    feed[:] = 99.0
    np.testing.assert_array_equal(res.value(x), [0.1, 0.2, 0.3])


def test_views_of_parameters_are_copied_into_the_result(executor):
    g = dg.Graph()
    W = g.param("W", np.arange(6.0).reshape(2, 3))
    loss = dg.sum(W.T @ g.param("v", np.ones(2)), name="loss")     # W.T is a view of the live parameter
    res = g.backward(loss)
    kept = res.value("transpose").copy()
    g.value(W)[...] = 0.0                                            # in place, as an optimizer would
    assert kept.any()
    np.testing.assert_array_equal(res.value("transpose"), kept)


def test_a_result_does_not_change_when_the_caller_edits_the_buffer_a_fed_view_belongs_to(executor):
    g = dg.Graph()
    x = g.input("x", shape=(3,))
    flat = dg.reshape(x, (3, 1), name="flat")                          # numpy hands back a view of the feed
    loss = dg.sum(flat * g.param("w", np.ones((3, 1))), name="loss")
    buffer = np.array([0.0, 0.1, 0.2, 0.3, 0.0])
    res = g.backward(loss, {"x": buffer[1:4]})                         # the feed is itself a view
    buffer[:] = 99.0
    np.testing.assert_array_equal(res.value(x), [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(res.value(flat), [[0.1], [0.2], [0.3]])


def test_strided_window_views_of_params_and_feeds_are_copied_into_the_result(executor, fresh_registry):
    @dg.op(shape=lambda shape: (shape[0] - 1, 2), saves=())
    def pairs(x):
        "each entry with the next: a strided view (its base is numpy's DummyArray, not the array viewed)"
        return np.lib.stride_tricks.sliding_window_view(x, 2)

    pairs.vjp(lambda g, x: (np.concatenate([g[:, 0], [0.0]]) + np.concatenate([[0.0], g[:, 1]]),))
    register(fresh_registry, pairs, plugin="window-pack")
    g = dg.Graph()
    w = g.param("w", np.array([1.0, 2.0, 3.0]))
    x = g.input("x", shape=(3,))
    loss = dg.sum(dg.ops.pairs(w, name="pw") * dg.ops.pairs(x, name="px"), name="loss")
    feed = np.array([4.0, 5.0, 6.0])
    res = g.backward(loss, {"x": feed}, outputs=["pw", "px"], keep="wrt")
    feed[...] = 0.0                                                  # the caller reuses its buffer
    dg.optim.SGD(g, lr=1.0).step(res)                                # and the parameter changes in place
    np.testing.assert_array_equal(res.value("pw"), [[1.0, 2.0], [2.0, 3.0]])
    np.testing.assert_array_equal(res.value("px"), [[4.0, 5.0], [5.0, 6.0]])


def test_gradients_in_a_result_never_alias_each_other(executor):
    g = dg.Graph()
    a = g.param("a", [1.0, 2.0])
    b = g.param("b", [3.0, 4.0])
    loss = dg.sum(a + b, name="loss")                               # add's VJP hands both inputs the same array
    res = g.backward(loss)
    arrays = list(res.grads.values())
    for i, x in enumerate(arrays):
        for y in arrays[i + 1:]:
            assert not np.shares_memory(x, y)
    res.grad(a)[...] = 7.0
    np.testing.assert_array_equal(res.grad(b), [1.0, 1.0])
    assert all(gr.flags.writeable for gr in arrays)


def test_values_in_a_result_never_alias_each_other(executor):
    g = dg.Graph()
    w = g.param("w", np.arange(6.0))
    h = dg.tanh(w, name="h")
    r = dg.reshape(h, (2, 3), name="r")                             # a view of h's array
    t = dg.transpose(r, name="t")                                   # and a view of that
    loss = dg.sum(t * t, name="loss")
    res = g.backward(loss)
    kept = [res.value(n) for n in ("h", "r", "t")]
    for i, x in enumerate(kept):
        for y in kept[i + 1:]:
            assert not np.shares_memory(x, y)
    res.value("r")[...] = 0.0
    np.testing.assert_array_equal(res.value("h"), np.tanh(np.arange(6.0)))
    np.testing.assert_array_equal(res.value("t"), np.tanh(np.arange(6.0)).reshape(2, 3).T)


# --------------------------------------------------------- 2. stale plans ---


def test_a_plan_recompiles_before_running_a_graph_that_changed(executor):
    g = dg.Graph()
    a = g.param("a", [1.0, 2.0])
    b = g.param("b", [10.0, 20.0])
    h = dg.tanh(a, name="h")
    loss = dg.sum(h * 3.0, name="loss")
    plan = g.compile(loss, loss=loss)
    plan.run()
    plan.run()
    g.rewire(h, 0, b)                                               # h now reads b; a no longer feeds the loss
    res = plan.run()
    assert res.value(h) == pytest.approx(np.tanh([10.0, 20.0]))
    assert not res.has_grad("a") and res.has_grad("b")
    np.testing.assert_allclose(res.grad(b), 3 * (1 - np.tanh([10.0, 20.0]) ** 2))


def test_a_result_knows_when_its_graph_has_changed_since():
    g = dg.Graph()
    x = g.param("x", [1.0])
    res = g.backward(dg.sum(x * x))
    assert not res.stale
    dg.exp(x)
    assert res.stale


# ------------------------------------------------------- 3. read-only inputs ---


def _mutating_forward_op():
    @dg.op(shape=dg.shapes.same_as_first, saves=("inputs",))
    def doubles_in_place(x):
        "2x, computed by writing into its input (forbidden)"
        x *= 2
        return x

    @doubles_in_place.vjp
    def _(g, x):
        return (2 * g,)

    return doubles_in_place


def _mutating_vjp_op():
    @dg.op(shape=dg.shapes.same_as_first, saves=())
    def triple(x):
        "3x, whose VJP writes into the upstream gradient (forbidden)"
        return 3 * x

    @triple.vjp
    def _(g, x):
        g *= 3
        return (g,)

    return triple


def test_an_op_writing_into_its_input_is_stopped_before_it_changes_a_param_or_feed(executor, fresh_registry):
    register(fresh_registry, _mutating_forward_op(), plugin="sloppy-pack")
    g = dg.Graph()
    w = g.param("w", np.array([1.0, 2.0]))
    x = g.input("x", shape=(2,))
    loss = dg.sum(dg.ops.doubles_in_place(w) + dg.ops.doubles_in_place(x), name="loss")
    feed = np.array([5.0, 6.0])
    for _ in range(2):                                              # and again: the first left nothing changed
        with pytest.raises(dg.OpError, match=r"op 'doubles_in_place' from plugin 'sloppy-pack'.*read-only.*copy"):
            g.backward(loss, {"x": feed})
    np.testing.assert_array_equal(g.value(w), [1.0, 2.0])
    np.testing.assert_array_equal(feed, [5.0, 6.0])
    assert feed.flags.writeable and g.value(w).flags.writeable      # their own flags are untouched


def test_a_vjp_writing_into_the_upstream_gradient_is_stopped(executor, fresh_registry):
    register(fresh_registry, _mutating_vjp_op(), plugin="sloppy-pack")
    g = dg.Graph()
    w = g.param("w", np.array([1.0, 2.0]))
    t = dg.tanh(w)
    loss = dg.sum(dg.ops.triple(t) + t, name="loss")                # t's gradient arrives from two consumers
    with pytest.raises(dg.OpError, match=r"op 'triple' from plugin 'sloppy-pack'\) raised in its backward"):
        g.backward(loss)


def test_a_failing_vjp_is_described_with_the_stand_ins_it_got_by_every_executor(executor, fresh_registry):
    @dg.op(saves=())
    def shifted(x):
        "x + 1, whose VJP fails"
        return x + 1.0

    @shifted.vjp
    def _(g, x):
        raise ValueError("no gradient today")

    register(fresh_registry, shifted, plugin="failing-pack")
    g = dg.Graph()
    x = g.input("x", shape=(None, 2))
    w = g.param("w", np.ones(2))
    fed = dg.sum(dg.ops.shifted(x + w), name="fed")          # a sum's inputs are freed after the forward pass
    known = dg.sum(dg.ops.shifted(w + 1.0), name="known")    # and this one's shape is known when compiling
    for loss, shape in ((fed, r"\(3, 2\)"), (known, r"\(2,\)")):
        with pytest.raises(dg.OpError, match=r"raised in its backward \(VJP\) with inputs "
                                             rf"float64{shape}: ValueError: no gradient today"):
            g.backward(loss, {"x": np.ones((3, 2))})


def test_built_in_ops_never_write_into_their_inputs():
    """Why the engine trusts built-ins with writable arrays: every sample, forward and VJP, on read-only inputs."""
    rng = np.random.default_rng(0)
    for name in dg.registry().plugins["builtins"].ops:
        op = dg.registry().op(name)
        for sample in op.samples(rng) if op.samples else []:
            args = [np.array(a) for a in sample.args]
            for a in args:
                a.flags.writeable = False
            attrs = op.bind_attrs(sample.attrs)
            out = op.forward(*args, **attrs)
            res = None
            if op.residuals:
                out, res = out
            out = np.asarray(out)
            if not op.differentiable or out.dtype.kind not in "fc":
                continue
            g = np.ones_like(out)
            g.flags.writeable = False
            out.flags.writeable = False
            try:
                op.call_vjp(g, args, out, res=res, attrs=attrs)
            except dg.HigherOrderError:
                pass  # the 'vjp' op (a numpy VJP run as a node) is not differentiable, by design


# -------------------------------------------------- 4. declared outputs ---


@pytest.mark.parametrize("returned, message", [
    (lambda x: np.ones((3, 3), x.dtype), r"returned float32\(3, 3\), but its declared output is float32\(\?,\).*shape rule"),
    (lambda x: x.astype(np.float64), r"returned float64\(3,\), but its declared output is float32\(\?,\).*dtype rule"),
], ids=["shape", "dtype"])
def test_an_op_returning_another_shape_or_dtype_than_declared_is_named(executor, fresh_registry, returned, message):
    @dg.op(shape=dg.shapes.same_as_first, dtype=dg.extend.first_dtype, saves=())
    def liar(x):
        "claims to keep x's shape and dtype"
        return returned(x)

    @liar.vjp
    def _(g, x):
        return (g,)

    register(fresh_registry, liar, plugin="liars")
    g = dg.Graph()
    x = g.input("x", shape=(None,), dtype="float32")
    out = dg.ops.liar(x)
    for _ in range(2):
        with pytest.raises(dg.OpError, match=r"node 'liar' \(op 'liar' from plugin 'liars'\) " + message):
            g.forward(out, {"x": np.ones(3, np.float32)})


def _residual_op_returning(value):
    @dg.op(shape=dg.shapes.same_as_first, saves=(), residuals=True)
    def unpaired(x):
        "declares residuals=True, so it must return (out, residuals)"
        return value(x)

    @unpaired.vjp
    def _(g, x, res):
        return (g,)

    return unpaired


@pytest.mark.parametrize("value", [lambda x: x * 2.0, lambda x: (x, 1, 2), lambda x: None],
                         ids=["array", "triple", "None"])
def test_a_residuals_op_that_does_not_return_a_pair_is_named_by_every_executor(executor, fresh_registry, value):
    register(fresh_registry, _residual_op_returning(value), plugin="unpaired-pack")
    g = dg.Graph()
    x = g.input("x", shape=(3,))
    loss = dg.sum(dg.ops.unpaired(x), name="loss")
    with pytest.raises(dg.OpError, match=r"node 'unpaired' \(op 'unpaired' from plugin 'unpaired-pack'\) raised in its "
                                         r"forward"):
        g.backward(loss, {"x": np.ones(3)}, wrt=[x])


def test_a_forward_returning_what_numpy_cannot_make_an_array_of_is_named(executor, fresh_registry):
    @dg.op(shape=dg.shapes.same_as_first, saves=())
    def ragged(x):
        "returns a ragged list"
        return [[1.0], [1.0, 2.0]]

    register(fresh_registry, ragged, plugin="ragged-pack")
    g = dg.Graph()
    x = g.input("x", shape=(3,))
    with pytest.raises(dg.OpError, match=r"node 'ragged' \(op 'ragged' from plugin 'ragged-pack'\) returned a list "
                                         r"that is not an array"):
        g.forward(dg.ops.ragged(x), {"x": np.ones(3)})


@pytest.mark.parametrize("gradient, message", [
    (lambda g: [[1.0], [1.0, 2.0]], r"returned a list for input 0 \('tanh'\) that is not an array"),
    (lambda g: np.full((2, 3), "a"), r"returned a <U1 gradient for input 0 \('tanh'\), whose value is float64"),
], ids=["ragged", "strings"])
def test_a_vjp_returning_a_gradient_that_is_no_array_of_numbers_is_named(executor, fresh_registry, gradient, message):
    @dg.op(shape=dg.shapes.same_as_first, saves=())
    def odd(x):
        "x, whose VJP returns something that is not a gradient"
        return x * 1.0

    @odd.vjp
    def _(g, x):
        return (gradient(g),)

    register(fresh_registry, odd, plugin="odd-pack")
    g = dg.Graph()
    x = g.input("x", shape=(3,))
    loss = dg.sum(dg.ops.odd(dg.tanh(x)), name="loss")
    with pytest.raises(dg.GradientError, match=r"node 'odd': the VJP of op 'odd' from plugin 'odd-pack' " + message):
        g.backward(loss, {"x": np.ones(3)}, wrt=[x])


# ------------------------------------------------------------ 5. feeds ---


@pytest.mark.parametrize("value, dtype, shown", [
    (np.array([2**32 + 1, 3]), "int32", "4294967297 would become 1"),
    (np.array([1e300, 1.0]), "float32", "1e+300 would become inf"),
    (np.array([300, 1]), "uint8", "300 would become 44"),
], ids=["int64-to-int32", "float64-to-float32", "int-to-uint8"])
def test_a_feed_that_would_change_when_converted_is_refused(value, dtype, shown):
    g = dg.Graph()
    x = g.input("x", shape=(2,), dtype=dtype)
    out = dg.sum(x.astype("float64"))
    with pytest.raises(dg.FeedError, match=re.escape(f"feed 'x' holds values that {dtype} cannot represent: {shown}")):
        g.forward(out, {"x": value})


def test_a_cotangent_that_would_change_when_converted_to_the_losss_dtype_is_refused():
    g = dg.Graph()
    x = g.input("x", shape=(2,), dtype="float32")
    y = dg.tanh(x, name="y")
    with pytest.raises(dg.FeedError, match=re.escape("the cotangent holds values that float32 cannot represent: "
                                                     "1e+300 would become inf (at index (0,)); the loss 'y' is float32")):
        g.backward(y, {"x": np.ones(2, np.float32)}, wrt=[x], cotangent=np.array([1e300, 1.0]))
    res = g.backward(y, {"x": np.ones(2, np.float32)}, wrt=[x], cotangent=np.array([0.1, 1.0]))   # rounding is fine
    assert res.grad(x).dtype == np.float32


def test_feeds_that_only_round_are_converted():
    g = dg.Graph()
    x = g.input("x", shape=(2,), dtype="float32")
    res = g.forward(x * 1.0, {"x": np.array([0.1, 1e-50])})        # rounding and underflow are float rounding
    assert res.value("mul").dtype == np.float32
    np.testing.assert_array_equal(res.value("mul"), np.array([0.1, 0.0], np.float32))


# ------------------------------------------------- 6. anomaly checking ---


def test_anomaly_checking_is_per_thread_and_restored_by_with_blocks():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with dg.check_anomalies(True):
            inside.set()
            release.wait(5)
            seen["worker"] = checking()
        seen["worker_after"] = checking()

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(5)
    seen["main_while_worker_checks"] = checking()                    # another thread's block: no effect here
    release.set()
    thread.join(5)
    assert seen == {"worker": True, "worker_after": False, "main_while_worker_checks": False}
    assert checking() is False


def test_two_threads_blocks_never_leave_checking_on():
    def worker(n):
        for _ in range(n):
            with dg.check_anomalies(True):
                assert checking()
            assert not checking()

    threads = [threading.Thread(target=worker, args=(200,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert checking() is False


# -------------------------------------------------- 7. foreign Tensors ---


def test_tensors_of_another_graph_are_refused_everywhere_names_are_accepted():
    ga, gb = dg.Graph("same-name"), dg.Graph("same-name")
    xa = ga.param("x", [1.0, 2.0])
    la = dg.sum(xa * xa, name="loss")
    xb = gb.param("x", [5.0, 6.0])
    lb = dg.sum(xb * xb, name="loss")
    res = ga.backward(la)
    foreign = r"belongs to another graph \('same-name' at 0x[0-9a-f]+\), not to graph 'same-name' \(at 0x[0-9a-f]+\)"
    with pytest.raises(dg.GraphError, match=foreign):
        ga.backward(lb)
    with pytest.raises(dg.GraphError, match=foreign):
        res.grad(xb)
    with pytest.raises(dg.GraphError, match=foreign):
        res.value(lb)
    with pytest.raises(dg.GraphError, match=foreign):
        ga.backward(la, wrt=[xb])
    assert xb not in ga and xa in ga


# ----------------------------------------------- 10. unsaved inputs are loud ---


def test_a_vjp_reading_an_input_its_op_does_not_save_gives_nan_that_checking_names(executor, fresh_registry):
    @dg.op(shape=dg.shapes.same_as_first, saves=("out",))
    def sine(x):
        "sin x, with a saves= that forgets the input its VJP reads"
        return np.sin(x)

    @sine.vjp
    def _(g, x, out):
        return (g * np.cos(x),)

    register(fresh_registry, sine, plugin="forgetful")
    g = dg.Graph()
    w = g.param("w", np.array([0.3, 1.2]))
    loss = dg.sum(dg.ops.sine(w), name="loss")
    assert np.isnan(g.backward(loss).grad(w)).all()                  # never a plausible wrong number
    with pytest.raises(dg.AnomalyError, match=r"NaN placeholders for input\(s\) 0.*saves=\('inputs', \.\.\.\) on op 'sine'"):
        g.backward(loss, check=True)


def test_check_op_names_saves_as_the_cause_when_a_vjp_reads_an_unsaved_input():
    @dg.extend.float_unary_op(saves=("out",))
    def forgetful_sine(x):
        "sin x, with a saves= that forgets the input its VJP reads"
        return np.sin(x)

    @forgetful_sine.vjp
    def _(g, x, out):
        return (g * np.cos(x),)

    with pytest.raises(dg.testing.OpCheckFailure) as failure:
        dg.testing.check_op(forgetful_sine, generated=False)
    text = str(failure.value)
    assert "the VJP reads its inputs, but the op declares saves=('out',)" in text
    assert "likely cause: saves=: declare saves=('inputs', 'out')" in text


def test_fit_refuses_data_that_would_change_when_converted_to_the_inputs_dtype():
    g = dg.Graph()
    x = g.input("x", shape=(None, 1), dtype="float32")
    y = g.input("y", shape=(None,), dtype="int32")
    logits = dg.nn.dense(x, 2, name="fc")
    loss = dg.softmax_cross_entropy(logits, y)
    data = {"x": np.ones((4, 1)), "y": np.array([0, 1, 2**32 + 1, 0])}
    with pytest.raises(dg.FeedError, match=r"data: y.*int32 cannot represent: 4294967297 would become 1"):
        dg.fit(g, loss, data, dg.optim.SGD(g), epochs=1, progress=False)


@pytest.mark.parametrize("op_name, floats, other", [
    ("div", "float32", "int8"), ("div", "float16", "bool"), ("arctan2", "float32", "int8"),
    ("mse", "float32", "int8"), ("kl_div", "float32", "int8"), ("div", "float32", "int32"),
])
def test_float_input_ops_compute_in_the_dtype_they_declare_when_an_input_is_integer(op_name, floats, other):
    """An op with float_inputs casts integer inputs to its declared output dtype: float32 / int8 stays float32.

    Cast to float64 instead, the node computed float64 and failed its own output check at run time.
    """
    g = dg.Graph()
    p = g.param("p", np.array([0.5, 1.5, 2.5], dtype=floats))
    c = g.const(np.array([1, 2, 1], dtype=other) if other != "bool" else np.array([True, True, True]), name="c")
    y = g.apply(op_name, [p, c])
    res = g.backward(dg.sum(y))
    assert res.value(y).dtype == y.dtype == np.result_type(floats, other, np.float16)   # numpy's promotion, in float
    cast = np.asarray(g.value(c), dtype=y.dtype)
    expected = dg.registry().op(op_name).float_forward(g.value(p).astype(y.dtype), cast)
    np.testing.assert_allclose(res.value(y), expected, rtol=1e-3)
    assert res.grad(p).dtype == np.dtype(floats)


@pytest.mark.parametrize("executor", ["loop", "codegen"])
def test_a_plan_casts_integer_inputs_without_calling_the_dtype_rule_at_every_run(monkeypatch, executor):
    """The node's declared dtype is the cast's target: compiling knows it, so no run asks the rule again."""
    monkeypatch.setenv("DAGRAD_EXECUTOR", executor)
    g = dg.Graph()
    p = g.param("p", np.array([0.5, 1.5], dtype=np.float32))
    n = g.input("n", (2,), np.int8)
    y = dg.div(p, n, name="y")
    plan = g.compile([y], loss=dg.sum(y, name="loss"))
    div = dg.registry().op("div")
    assert plan.forward[0].fn is div.forward_for(np.dtype(np.float32))
    monkeypatch.setattr(div, "dtype_rule", None)                 # a run that called it would fail
    for _ in range(CODEGEN_AFTER_RUNS + 1):
        res = plan.run({"n": np.array([2, 4], dtype=np.int8)})
    np.testing.assert_array_equal(res.value(y), np.array([0.25, 0.375], dtype=np.float32))
    assert res.value(y).dtype == np.float32 and res.grad(p).dtype == np.float32
