"""Checkpoints: stop training anywhere, resume it, and get bit for bit the parameters of a run never stopped."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

import dagrad as dg
from dagrad.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from modelfiles import document, load_error, parts, rewrite

EPOCHS, BATCH = 3, 8


def build(dropout: bool = True):
    """A small classifier with dropout (its masks follow the step number) and two metrics."""
    g = dg.Graph("clf")
    x = g.input("x", shape=(None, 3))
    y = g.input("y", shape=(None,), dtype="int64")
    training = g.input("training", shape=())
    h = dg.nn.dense(x, 8, activation="relu", name="fc1", rng=0)
    if dropout:
        h = dg.nn.dropout(h, 0.2, training=training)
    logits = dg.nn.dense(h, 3, name="fc2", rng=1)
    return g, dg.nn.cross_entropy(logits, y), [dg.train.accuracy(logits, y)]


def data(n: int = 50) -> dict:
    rng = np.random.default_rng(5)
    return {"x": rng.normal(size=(n, 3)), "y": rng.integers(0, 3, n)}


def make_optimizer(g, kind: str):
    if kind == "adam":
        return dg.optim.Adam(g, lr=dg.optim.cosine(0.02, total_steps=40, warmup=3), clip_norm=1.0)
    return dg.optim.SGD(g, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)


def train(kind="adam", epochs=EPOCHS, **options):
    g, loss, metrics = build()
    opt = make_optimizer(g, kind)
    history = dg.fit(g, loss, data(), opt, epochs=epochs, batch_size=BATCH, metrics=metrics, progress=False,
                     validation=data(20), **options)
    return g, opt, history


def same_run(a, b) -> None:
    """Parameters, optimizer state and History are identical (bit for bit; seconds aside)."""
    (ga, oa, ha), (gb, ob, hb) = a, b
    assert set(ga.params) == set(gb.params)
    for name in ga.params:
        assert ga.params[name].tobytes() == gb.params[name].tobytes(), name
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["steps"] == sb["steps"] and sa["lr"] == sb["lr"]
    for name, entries in sa["state"].items():
        for key, value in entries.items():
            other = sb["state"][name][key]
            assert (value.tobytes() == other.tobytes()) if isinstance(value, np.ndarray) else value == other
    assert (ha.steps, ha.loss, ha.lr, ha.grad_norms, ha.skipped) == (hb.steps, hb.loss, hb.lr, hb.grad_norms, hb.skipped)
    strip = lambda epochs: [{k: v for k, v in e.items() if k != "seconds"} for e in epochs]  # noqa: E731
    assert strip(ha.epochs) == strip(hb.epochs)


class StopAt(dg.train.Callback):
    """Presses Ctrl-C (a real SIGINT) at the end of a given step."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, state, result):
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(scope="module")
def reference():
    return {kind: train(kind) for kind in ("adam", "sgd")}


# --------------------------------------------------------- exact resume --


@pytest.mark.parametrize("kind", ["adam", "sgd"])
@pytest.mark.parametrize("stop", [1, 5, 7, 13, 14, 21])  # first step, mid-epoch, epoch ends (7 steps each), last
def test_ctrl_c_then_resume_gives_the_parameters_of_a_run_never_stopped(tmp_path, reference, kind, stop):
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt) as info:
        train(kind, checkpoint=path, callbacks=[StopAt(stop)])
    assert info.value.history.interrupted and info.value.history.steps[-1] == stop
    resumed = train(kind, resume=path)
    same_run(reference[kind], resumed)


def test_checkpoints_every_k_steps_each_resume_exactly(tmp_path, reference):
    path = tmp_path / "run.ckpt"
    snapshots = []

    class Copy(dg.train.Callback):
        def on_step_end(self, state, result):
            if state.step % 4 == 0:
                snapshots.append(path.read_bytes())

    train("adam", checkpoint=path, checkpoint_every=4, callbacks=[Copy()])
    assert len(snapshots) == 5
    for i, blob in enumerate(snapshots[:3]):
        earlier = tmp_path / f"step{4 * (i + 1)}.ckpt"
        earlier.write_bytes(blob)
        assert load_checkpoint(earlier).loop["position"]["step"] == 4 * (i + 1)
        same_run(reference["adam"], train("adam", resume=earlier))


def test_a_run_can_be_extended_by_resuming_with_more_epochs(tmp_path):
    path = tmp_path / "run.ckpt"
    train("adam", epochs=2, checkpoint=path)
    extended = train("adam", epochs=EPOCHS + 1, resume=path)
    straight = train("adam", epochs=EPOCHS + 1)
    same_run(straight, extended)


def test_ctrl_c_at_random_moments_never_splits_an_update_and_always_resumes_exactly(tmp_path, reference):
    """SIGINT from a timer, anywhere in fit: params stay at one Adam step, and the checkpoint resumes exactly."""
    rng = np.random.default_rng(0)
    _, _, probe = train("adam")
    duration = probe.seconds
    resumed_runs = 0
    for i in range(8):
        path = tmp_path / f"random{i}.ckpt"
        g, loss, metrics = build()
        opt = make_optimizer(g, "adam")
        timer = threading.Timer(rng.uniform(0.1, 0.9) * duration, os.kill, (os.getpid(), signal.SIGINT))
        try:
            timer.start()
            dg.fit(g, loss, data(), opt, epochs=EPOCHS, batch_size=BATCH, metrics=metrics, progress=False,
                   validation=data(20), checkpoint=path)
            timer.join()
            time.sleep(1)  # a signal sent after fit returned lands here, inside the try, never in pytest
        except KeyboardInterrupt:
            timer.join()
        steps = {name: state.get("t") for name, state in opt.state.items()}
        assert set(steps.values()) <= {opt.steps}, steps  # every parameter at the optimizer's step
        if path.exists():
            resumed_runs += 1
            same_run(reference["adam"], train("adam", resume=path))
    assert resumed_runs >= 4


# ----------------------------------------------------- what is checked --


def test_resuming_with_other_batches_or_data_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    train("adam", epochs=1, checkpoint=path)
    g, loss, metrics = build()
    with pytest.raises(dg.DagradError, match=r"batch_size 16 \(checkpoint: 8\)"):
        dg.fit(g, loss, data(), make_optimizer(g, "adam"), epochs=2, batch_size=16, metrics=metrics,
               progress=False, resume=path)
    with pytest.raises(dg.DagradError, match=r"examples 40 \(checkpoint: 50\)"):
        dg.fit(g, loss, data(40), make_optimizer(g, "adam"), epochs=2, batch_size=BATCH, metrics=metrics,
               progress=False, resume=path)


def test_resuming_into_another_graph_or_optimizer_is_refused_before_anything_changes(tmp_path):
    path = tmp_path / "run.ckpt"
    train("adam", epochs=1, checkpoint=path)
    g, loss, metrics = build(dropout=False)
    before = {k: v.copy() for k, v in g.params.items()}
    with pytest.raises(dg.DagradError, match="does not match the checkpoint"):
        dg.fit(g, loss, data(), make_optimizer(g, "adam"), epochs=2, batch_size=BATCH, metrics=metrics,
               progress=False, resume=path)
    g, loss, metrics = build()
    before = {k: v.copy() for k, v in g.params.items()}
    with pytest.raises(dg.DagradError, match="cannot continue from the state of a 'Adam'"):
        dg.fit(g, loss, data(), make_optimizer(g, "sgd"), epochs=2, batch_size=BATCH, metrics=metrics,
               progress=False, resume=path)
    assert all(np.array_equal(before[k], g.params[k]) for k in before)


def test_a_different_learning_rate_on_resume_is_allowed_but_warned_about(tmp_path):
    g = dg.Graph()
    w = g.param("w", np.array([1.0, 2.0]))
    opt = dg.optim.Adam(g, lr=0.1)
    opt.step(g.backward(dg.sum(w * w)))
    save_checkpoint(tmp_path / "c.ckpt", g, opt)
    with pytest.warns(UserWarning, match=r"lr=0.5 at step 1 \(saved 0.1\)"):
        load_checkpoint(tmp_path / "c.ckpt").restore(g, dg.optim.Adam(g, lr=0.5))


def test_a_checkpoint_is_a_model_file_and_a_model_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    g, _, _ = train("adam", epochs=1, checkpoint=path)
    loaded = dg.load(path)
    assert all(loaded.value(n).tobytes() == g.value(n).tobytes() for n in g.params)
    model = tmp_path / "model.dagrad"
    dg.save(g, model)
    with pytest.raises(dg.FormatError, match="model file without training state"):
        load_checkpoint(model)


def test_optimizer_state_is_stored_under_keys_dagrad_chooses(tmp_path):
    path = tmp_path / "run.ckpt"
    train("adam", epochs=1, checkpoint=path)
    doc, table, _ = parts(path)
    assert all(key.split("/")[0] in ("values", "optimizer", "loop") and key.split("/")[1].isdigit() for key in table)
    state = doc["training"]["optimizer"]["state"]["fc1/W"]
    assert set(state) == {"t", "m", "v"} and state["t"] == 7  # no scratch space saved


def test_a_damaged_training_section_is_a_format_error(tmp_path):
    path = tmp_path / "run.ckpt"
    train("adam", epochs=1, checkpoint=path)
    doc = document(path)
    doc["training"]["optimizer"]["state"]["fc1/W"]["m"] = {"array": "values/0"}  # an array used twice
    bad = rewrite(path, tmp_path / "bad.ckpt", doc)
    with pytest.raises(dg.FormatError, match="training: is malformed"):
        load_checkpoint(bad)
    doc = document(path)
    doc["training"]["loop"]["position"]["rng"]["state"] = "9" * 60
    bad = rewrite(path, tmp_path / "rng.ckpt", doc)
    g, loss, metrics = build()
    with pytest.raises(dg.FormatError, match="not written by fit, or is damaged"):
        dg.fit(g, loss, data(), make_optimizer(g, "adam"), epochs=2, batch_size=BATCH, metrics=metrics,
               progress=False, resume=bad)


def test_history_survives_a_checkpoint_exactly(tmp_path):
    path = tmp_path / "run.ckpt"
    _, _, history = train("adam", epochs=2, checkpoint=path)
    ckpt = load_checkpoint(path)
    again = dg.train.History.from_state(ckpt.loop["history"], ckpt.arrays)
    assert again.as_dict() == {**history.as_dict(), "seconds": again.seconds, "interrupted": False}
    assert json.dumps(ckpt.loop)  # plain JSON


def test_save_checkpoint_refuses_optimizer_state_it_cannot_store(tmp_path):
    g = dg.Graph()
    g.param("w", np.array([1.0]))
    opt = dg.optim.SGD(g, lr=0.1)
    opt.state["w"] = {"custom": object()}
    with pytest.raises(dg.DagradError, match="arrays and plain numbers only"):
        save_checkpoint(tmp_path / "c.ckpt", g, opt)
    assert not (tmp_path / "c.ckpt").exists()
    assert isinstance(Checkpoint, type)
