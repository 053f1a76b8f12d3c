"""History plots itself with matplotlib: gradient norms over steps, metrics over epochs, gradient flow per layer."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import dagrad as dg

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'dagrad[plot]')")
import matplotlib  # noqa: E402

matplotlib.use("Agg")


def trained(dead: bool = False, epochs: int = 3):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    Y = (X[:, 0] > 0).astype(np.int64)
    g = dg.Graph("plots")
    x, y = g.input("x", shape=(None, 3)), g.input("y", shape=(None,), dtype="int64")
    h = dg.nn.dense(x, 4, activation="relu", name="fc1", rng=0)
    if dead:
        g.value("fc1/b")[:] = -100.0  # every unit of fc1 is dead: its gradient is exactly zero
    logits = dg.nn.dense(h, 2, name="fc2", rng=1)
    loss = dg.nn.cross_entropy(logits, y)
    return dg.fit(g, loss, {x: X, y: Y}, dg.optim.SGD(g, lr=0.1), epochs=epochs, batch_size=16,
                  validation={x: X[:16], y: Y[:16]}, metrics=dg.train.accuracy(logits, y), progress=False)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_gradient_norm_per_layer_over_steps_on_a_log_axis():
    history = trained()
    ax = history.plot_grad_norms()
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "training step"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"fc1", "fc2"}
    fc2 = [np.hypot(w, b) for w, b in zip(history.grad_norms["fc2/W"], history.grad_norms["fc2/b"])]
    np.testing.assert_allclose(lines["fc2"].get_ydata(), fc2)
    assert {line.get_label() for line in history.plot_grad_norms(layers=False).get_lines()} == set(history.grad_norms)


def test_loss_and_metrics_per_epoch_with_validation_dashed():
    history = trained()
    ax = history.plot_metrics()
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(lines)
    assert lines["val_loss"].get_linestyle() == "--" and list(lines["loss"].get_xdata()) == [1, 2, 3]


def test_grad_flow_bars_mark_a_dead_layer():
    history = trained(dead=True)
    assert max(history.grad_maxes["fc1/W"]) == 0.0
    ax = history.plot_grad_flow()
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("dead") == 2  # fc1, at the first and at the last step
    assert "step 1" in texts
    assert "dead layer (zero gradient)" in ax.get_legend().get_texts()[-1].get_text()
    heights = [p.get_height() for p in ax.patches if np.isfinite(p.get_height())]
    last = history.steps.index(history.steps[-1])
    assert pytest.approx(max(history.grad_maxes["fc2/W"][last], history.grad_maxes["fc2/b"][last])) in heights


def test_grad_flow_marks_an_exploding_layer_and_refuses_unrecorded_steps():
    history = trained()
    ax = history.plot_grad_flow(steps=[1], exploding=1e-9)
    assert [t.get_text() for t in ax.texts].count("exploding") == 2
    with pytest.raises(dg.RenderError, match="not recorded"):
        history.plot_grad_flow(steps=[10_000])


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # import fails as if it were not installed
    with pytest.raises(dg.RenderError, match=r"pip install 'dagrad\[plot\]'"):
        trained(epochs=1).plot_grad_norms()


def test_short_reprs_for_long_histories():
    history = trained(epochs=40)
    assert len(repr(history)) < 300 and "40 epochs" in repr(history)
    table = history._repr_html_()
    assert table.count("<tr>") == 1 + 3 + 1 + 5 and "more epochs" in table
