"""The fit loop learns, records what it promises, stops early, draws diagrams and feeds dropout's key."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import dagrad as dg
from dagrad.train import Callback, EarlyStopping, RenderEvery


def blobs(n=120, seed=0):
    """Two Gaussian blobs in 2-D, labels 0 and 1: separable by a line."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(size=(n, 2)) * 0.5 + np.where(y[:, None] == 1, 1.5, -1.5)
    return x, y


def classifier(hidden=8, seed=0):
    g = dg.Graph("blobs")
    x = g.input("x", shape=(None, 2))
    y = g.input("y", shape=(None,), dtype="int64")
    logits = dg.nn.mlp(x, [hidden, 2], "tanh", rng=seed)
    loss = dg.nn.cross_entropy(logits, y)
    return g, logits, loss


X, Y = blobs()
DATA = {"x": X, "y": Y}


def test_fit_learns_a_separable_problem():
    g, logits, loss = classifier()
    acc = dg.train.accuracy(logits, "y")
    before = dg.train.evaluate(g, DATA, loss=loss, metrics=acc)
    hist = dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.2), epochs=10, batch_size=16, metrics=acc, progress=False)
    after = dg.train.evaluate(g, DATA, loss=loss, metrics=acc)
    assert after["loss"] < before["loss"] / 4
    assert after["accuracy"] > 0.97
    assert hist["accuracy"][-1] > hist["accuracy"][0] or hist["accuracy"][0] > 0.97


def test_history_records_loss_and_every_gradient_norm_per_step():
    g, logits, loss = classifier()
    first = g.backward(loss, {"x": X[:16], "y": Y[:16]})   # what step 1 sees without shuffling
    hist = dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.1), epochs=2, batch_size=16, shuffle=False, progress=False)
    steps = 2 * int(np.ceil(len(X) / 16))
    assert hist.steps == list(range(1, steps + 1))
    assert hist.epoch_of_step == [1] * (steps // 2) + [2] * (steps // 2)
    assert set(hist.grad_norms) == set(g.params)
    assert all(len(v) == steps for v in hist.grad_norms.values())
    assert hist.loss[0] == pytest.approx(float(first.value(loss)))
    for name, norms in hist.grad_norms.items():
        assert norms[0] == pytest.approx(np.linalg.norm(first.grad(name)))
    assert hist.grad_norms_at(1)["fc1/W"] == hist.grad_norms["fc1/W"][0]
    assert hist.lr == [0.1] * steps
    assert [e["epoch"] for e in hist.epochs] == [1, 2]


def test_history_every_k_steps_keeps_step_one():
    g, _, loss = classifier()
    hist = dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.1), epochs=3, batch_size=10, history_every=10, progress=False)
    assert hist.steps == [1, 10, 20, 30]
    with pytest.raises(KeyError, match="step 5"):
        hist.grad_norms_at(5)


def test_shuffling_is_reproducible_by_seed():
    def trained(seed):
        g, _, loss = classifier()
        dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.1), epochs=2, batch_size=16, seed=seed, progress=False)
        return g.value("fc1/W").copy()

    assert np.array_equal(trained(3), trained(3))
    assert not np.array_equal(trained(3), trained(4))


def test_validation_metrics_are_recorded_per_epoch():
    g, logits, loss = classifier()
    Xv, Yv = blobs(40, seed=9)
    hist = dg.fit(g, loss, DATA, dg.optim.Adam(g, lr=0.05), epochs=3, batch_size=32, progress=False,
                  validation={"x": Xv, "y": Yv}, metrics=dg.train.accuracy(logits, "y"))
    assert set(hist.epochs[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    final = dg.train.evaluate(g, {"x": Xv, "y": Yv}, loss=loss, metrics=dg.train.accuracy(logits, "y"))
    assert hist["val_loss"][-1] == pytest.approx(final["loss"])
    assert hist["val_accuracy"][-1] == pytest.approx(final["accuracy"])


def test_early_stopping_stops_and_restores_the_best_parameters():
    # Training loss goes down every epoch, so with mode="max" epoch 1 stays the best.
    g, _, loss = classifier()
    stopper = EarlyStopping(monitor="loss", mode="max", patience=2)
    hist = dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.1), epochs=10, batch_size=16, callbacks=[stopper], progress=False)
    assert hist.stopped_early and len(hist.epochs) == 3
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 3
    reference, _, ref_loss = classifier()
    dg.fit(reference, ref_loss, DATA, dg.optim.SGD(reference, lr=0.1), epochs=1, batch_size=16, progress=False)
    for name in g.params:
        assert np.array_equal(g.value(name), reference.value(name))


def test_early_stopping_without_its_metric_says_what_is_there():
    g, _, loss = classifier()
    with pytest.raises(dg.DagradError, match="val_loss.*validation"):
        dg.fit(g, loss, DATA, dg.optim.SGD(g), epochs=2, callbacks=[EarlyStopping()], progress=False)


class Recorder(Callback):
    """Which kept values each step's Result had."""

    def __init__(self):
        self.kept = {}

    def on_step_end(self, state, result):
        self.kept[state.step] = set(result.values)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_every_draws_first_every_kth_and_last_step_with_everything_kept(tmp_path):
    g, _, loss = classifier()
    render = RenderEvery(3, tmp_path / "diagrams", keep_results=True)
    recorder = Recorder()
    dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.1), epochs=1, batch_size=16, callbacks=[render, recorder], progress=False)
    assert [p.name for p in render.paths] == ["step00001.svg", "step00003.svg", "step00006.svg", "step00008.svg"]
    assert all(p.stat().st_size > 1000 for p in render.paths)
    # Diagram steps ran with keep="all"; the others on the fast path kept only the loss.
    assert "fc1/matmul" in recorder.kept[1] and "fc1/matmul" in render.results[3].values
    assert recorder.kept[2] == {loss.name}
    assert render.results[1].edge_norms


def test_dropout_gets_the_step_number_while_training_and_zero_when_evaluating():
    g = dg.Graph()
    x = g.input("x", shape=(None, 50))
    y = g.input("y", shape=(None, 50))
    training = g.input("training", shape=())
    w = g.param("w", np.ones(50))
    out = dg.nn.dropout(x * w, 0.5, training)
    loss = dg.nn.mse(out, y)
    keys = []

    class Keys(Callback):
        def on_step_end(self, state, result):
            keys.append(state.step)
            dropped = result.grads["w"] == 0
            assert 0.2 < dropped.mean() < 0.8   # about half the units were dropped this step

    data = {"x": np.ones((2, 50)), "y": np.ones((2, 50))}
    dg.fit(g, loss, data, dg.optim.SGD(g, lr=0.0), epochs=2, batch_size=1, callbacks=[Keys()], progress=False)
    assert keys == [1, 2, 3, 4]
    assert dg.train.evaluate(g, data, loss=loss)["loss"] == 0.0    # identity when evaluating
    assert np.array_equal(dg.train.predict(g, out, data), data["x"])


def test_progress_is_quiet_unless_asked(capsys):
    g, _, loss = classifier()
    dg.fit(g, loss, DATA, dg.optim.SGD(g), epochs=2, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    dg.fit(g, loss, DATA, dg.optim.SGD(g), epochs=2, progress=True, metrics=dg.train.accuracy("fc2/add", "y"))
    captured = capsys.readouterr()
    assert "epoch 2/2" in captured.err and "loss=" in captured.err and "accuracy=" in captured.err


def test_log_prints_one_line_per_epoch_without_a_bar(capsys):
    g, _, loss = classifier()
    dg.fit(g, loss, DATA, dg.optim.SGD(g), epochs=2, progress=False, log=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  loss ")


def test_bad_data_is_a_feed_error_naming_the_input():
    g, _, loss = classifier()
    with pytest.raises(dg.FeedError, match="'z' is not an input"):
        dg.fit(g, loss, {"x": X, "z": Y}, dg.optim.SGD(g), progress=False)
    with pytest.raises(dg.FeedError, match="different numbers of examples"):
        dg.fit(g, loss, {"x": X, "y": Y[:-1]}, dg.optim.SGD(g), progress=False)


def test_the_loss_must_be_a_scalar():
    g, _, _ = classifier()
    each = dg.nn.cross_entropy(g["fc2/add"], g["y"], "none", name="each")
    with pytest.raises(dg.GraphError, match="scalar"):
        dg.fit(g, each, DATA, dg.optim.SGD(g), progress=False)


def test_wrt_trains_only_the_listed_parameters():
    g, _, loss = classifier()
    frozen = g.value("fc1/W").copy()
    dg.fit(g, loss, DATA, dg.optim.SGD(g, lr=0.1), epochs=1, wrt=["fc2/W", "fc2/b"], progress=False)
    assert np.array_equal(g.value("fc1/W"), frozen)


def test_drop_last_skips_the_smaller_final_batch():
    g, _, loss = classifier()
    seen = []

    class Sizes(Callback):
        def on_step_end(self, state, result):
            seen.append(state.step)

    hist = dg.fit(g, loss, DATA, dg.optim.SGD(g), epochs=2, batch_size=50, drop_last=True, callbacks=[Sizes()],
                  progress=False)
    assert seen == [1, 2, 3, 4]              # 120 examples: two batches of 50 per epoch, 20 left out
    assert hist.steps[-1] == 4
