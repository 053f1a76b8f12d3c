"""Training never goes on silently wrong: NaN steps, no-op calls, empty data and Ctrl-C are all explicit."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import dagrad as dg


def regression(n: int = 32):
    rng = np.random.default_rng(0)
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    y = g.input("y", shape=(None, 2))
    out = dg.nn.dense(x, 2, name="fc", rng=0)
    loss = dg.nn.mse(out, y)
    data = {"x": rng.normal(size=(n, 3)), "y": rng.normal(size=(n, 2))}
    return g, loss, out, data


class Grads:
    """Stands in for a backward Result."""

    def __init__(self, **grads):
        self.grads = grads


def params(**arrays):
    return {k: np.array(v, dtype=float) for k, v in arrays.items()}


# ------------------------------------------- item 12: non-finite steps --


@pytest.mark.parametrize("make", [lambda p: dg.optim.Adam(p, lr=0.1, clip_norm=1.0),
                                  lambda p: dg.optim.SGD(p, lr=0.1, momentum=0.9, clip_norm=1.0),
                                  lambda p: dg.optim.AdamW(p, lr=0.1)])
def test_one_nan_gradient_raises_naming_the_parameter_and_step_and_changes_nothing(make):
    p = params(a=[1.0, 2.0], b=[3.0, 4.0])
    opt = make(p)
    opt.step(Grads(a=np.array([0.1, 0.1]), b=np.array([0.2, 0.2])))
    before = {k: v.copy() for k, v in p.items()}
    state = {k: {s: (v.copy() if isinstance(v, np.ndarray) else v) for s, v in st.items()} for k, st in opt.state.items()}
    with pytest.raises(dg.NonFiniteError, match=r"gradient of 'b' holds 1 NaN and 0 Inf entries at step 2") as info:
        opt.step(Grads(a=np.array([0.1, 0.1]), b=np.array([np.nan, 0.2])))
    assert (info.value.node, info.value.phase, info.value.step) == ("b", "gradient", 2)
    assert isinstance(info.value, dg.AnomalyError)
    assert all(np.array_equal(before[k], p[k]) for k in p) and opt.steps == 1
    for k, st in opt.state.items():
        for s, v in st.items():
            if not s.startswith("_"):
                assert np.array_equal(v, state[k][s]), (k, s)


def test_skipping_non_finite_steps_leaves_parameters_and_counts_them():
    p = params(a=[1.0], b=[2.0])
    opt = dg.optim.Adam(p, lr=0.1, clip_norm=1.0, on_nonfinite="skip")
    opt.step(Grads(a=np.array([np.inf]), b=np.array([1.0])))
    assert p["a"] == [1.0] and p["b"] == [2.0] and opt.steps == 0 and opt.skipped == 1 and opt.state == {}
    opt.step(Grads(a=np.array([1.0]), b=np.array([1.0])))
    assert np.isfinite(p["a"]).all() and opt.steps == 1


def test_huge_but_finite_gradients_are_clipped_not_mistaken_for_nan():
    p = params(a=[1.0, 1.0])
    opt = dg.optim.SGD(p, lr=1.0, clip_norm=1.0)
    opt.step(Grads(a=np.array([1e200, 1e200])))  # the squared norm overflows; every entry is finite
    assert p["a"] == pytest.approx([1 - 0.5**0.5] * 2) and opt.last_grad_norm == pytest.approx(2**0.5 * 1e200)


def test_fit_raises_at_the_first_nan_loss_naming_the_step():
    g, loss, _, data = regression()
    data["y"][20, 0] = np.nan  # in the third batch of 8
    before = {k: v.copy() for k, v in g.params.items()}
    with pytest.raises(dg.NonFiniteError, match=r"loss 'loss' is nan at step 3 \(epoch 1\)") as info:
        dg.fit(g, loss, data, dg.optim.SGD(g, lr=0.1), epochs=2, batch_size=8, shuffle=False, progress=False)
    assert info.value.step == 3 and info.value.phase == "loss"
    assert len(info.value.history.steps) == 3
    assert not all(np.array_equal(before[k], g.params[k]) for k in before)  # steps 1 and 2 trained
    assert all(np.isfinite(v).all() for v in g.params.values())


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_fit_raises_at_a_nan_gradient_with_a_finite_loss():
    g, loss, _, data = regression()
    w = g.params["fc/W"]
    g2 = dg.Graph()
    x = g2.input("x", shape=(None, 3))
    W = g2.param("W", w.copy())
    loss2 = dg.sum(dg.sqrt(dg.abs(x @ W)) * 0.0)  # sqrt'(0) = inf times 0: a finite loss, a NaN gradient
    with pytest.raises(dg.NonFiniteError, match=r"fit: step 1 \(epoch 1\).*gradient of 'W'"):
        dg.fit(g2, loss2, {"x": np.zeros((4, 3))}, dg.optim.SGD(g2, lr=0.1), progress=False)


def test_fit_can_skip_nan_steps_and_records_them():
    g, loss, _, data = regression()
    data["y"][20, 0] = np.nan
    history = dg.fit(g, loss, data, dg.optim.Adam(g, lr=0.01), epochs=2, batch_size=8, shuffle=False,
                     progress=False, on_nonfinite="skip")
    assert history.skipped == [3, 7]
    assert all(np.isfinite(v).all() for v in g.params.values())
    assert np.isfinite(history.epochs[-1]["loss"])  # the epoch mean leaves the skipped batch out


# ----------------------------------------------- item 13: quiet no-ops --


def test_stepping_with_a_forward_result_raises_and_points_to_backward():
    g, loss, _, data = regression()
    opt = dg.optim.SGD(g, lr=0.1)
    with pytest.raises(dg.DagradError, match=r"holds no gradients.*g.backward\(loss, feeds\)"):
        opt.step(g.forward(loss, data))
    assert opt.steps == 0


def test_stepping_with_gradients_of_another_graph_raises():
    g, loss, _, data = regression()
    other = dg.Graph()
    v = other.param("v", [1.0])
    opt = dg.optim.SGD(g, lr=0.1)
    with pytest.raises(dg.DagradError, match=r"none of its parameters \('fc/W', 'fc/b'\) has a gradient.*'v'"):
        opt.step(other.backward(dg.sum(v * v)))


def test_assigning_into_graph_params_raises_and_points_to_set_value():
    g, _, _, _ = regression()
    with pytest.raises(dg.GraphError, match=r"use g.set_value\('fc/W', value\)"):
        g.params["fc/W"] = np.zeros((3, 2))
    with pytest.raises(dg.GraphError, match="read-only"):
        del g.params["fc/W"]
    live = g.params["fc/W"]
    g.params["fc/W"] *= 2  # in place: the same array is stored back, which is allowed
    g.params["fc/W"][...] = 1
    assert g.params["fc/W"] is live and (g.value("fc/W") == 1).all()
    assert dict(g.params).keys() == {"fc/W", "fc/b"} and len(g.params) == 2 and "fc/b" in g.params


def test_evaluate_and_fit_on_zero_examples_raise():
    g, loss, out, data = regression()
    empty = {k: v[:0] for k, v in data.items()}
    with pytest.raises(dg.FeedError, match="no examples"):
        dg.train.evaluate(g, empty, loss=loss)
    with pytest.raises(dg.FeedError, match="no examples"):
        dg.fit(g, loss, empty, dg.optim.SGD(g, lr=0.1), progress=False)
    with pytest.raises(dg.FeedError, match="leaves no batch"):
        dg.fit(g, loss, {k: v[:5] for k, v in data.items()}, dg.optim.SGD(g, lr=0.1), batch_size=8,
               drop_last=True, progress=False)


def test_predict_on_zero_rows_has_the_output_shape():
    g, _, out, data = regression()
    empty = {"x": data["x"][:0]}
    assert dg.train.predict(g, out, empty).shape == (0, 2)
    assert dg.train.predict(g, dg.sum(out, axis=1), empty).shape == (0,)
    assert dg.train.predict(g, out, {"x": data["x"][:3]}).shape == (3, 2)


# ---------------------------------------------------- item 14: Ctrl-C --


def test_ctrl_c_during_an_update_is_held_until_every_parameter_is_updated(monkeypatch):
    p = params(a=[1.0], b=[1.0], c=[1.0])
    opt = dg.optim.Adam(p, lr=0.1)
    update = dg.optim.Adam.update
    seen = []

    def update_then_press_ctrl_c(self, name, param, grad, lr, state):
        update(self, name, param, grad, lr, state)
        seen.append(name)
        if name == "a":
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(dg.optim.Adam, "update", update_then_press_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        opt.step(Grads(a=np.array([1.0]), b=np.array([1.0]), c=np.array([1.0])))
    assert seen == ["a", "b", "c"] and opt.steps == 1
    assert {st["t"] for st in opt.state.values()} == {1}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupted_fit_hands_its_history_to_the_caller():
    g, loss, _, data = regression()

    class CtrlC(dg.train.Callback):
        def on_step_end(self, state, result):
            if state.step == 5:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt) as info:
        dg.fit(g, loss, data, dg.optim.SGD(g, lr=0.1), epochs=3, batch_size=8, callbacks=[CtrlC()], progress=False)
    history = info.value.history
    assert history.interrupted and history.steps == [1, 2, 3, 4, 5] and len(history.epochs) == 1
    assert any("History so far" in note for note in getattr(info.value, "__notes__", ["History so far"]))


def test_any_error_that_ends_a_fit_carries_its_history():
    g, loss, _, data = regression()

    class Broken(dg.train.Callback):
        def on_epoch_end(self, state, logs):
            raise RuntimeError("a bug in my callback")

    with pytest.raises(RuntimeError) as info:
        dg.fit(g, loss, data, dg.optim.SGD(g, lr=0.1), epochs=3, batch_size=8, callbacks=[Broken()], progress=False)
    assert not info.value.history.interrupted and info.value.history.steps == [1, 2, 3, 4]
