"""Data-parallel fit on a real Dask LocalCluster (worker processes on 127.0.0.1): the same training as one process.

The clusters here are small (two single-threaded workers) and every one is
closed by its fixture; the tests that kill workers or the whole cluster get
a cluster of their own.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import dagrad as dg  # noqa: E402
from dagrad.distributed import DataParallel, local_cluster  # noqa: E402

EXAMPLES, BATCH, EPOCHS = 240, 24, 5  # 50 steps


def build(hidden: int = 16):
    """A float64 MLP 8-16-4 with a softmax cross-entropy loss and an accuracy metric."""
    g = dg.Graph("mlp")
    x = g.input("x", shape=(None, 8))
    y = g.input("y", shape=(None,), dtype="int64")
    logits = dg.nn.mlp(x, [hidden, 4], "relu", rng=0)
    return g, dg.nn.cross_entropy(logits, y), dg.train.accuracy(logits, y)


def data(n: int = EXAMPLES, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    return {"x": X, "y": (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 0)}


def train(client=None, train_data=None, **options):
    """(graph, History) after fitting ``build()`` with Adam, locally or on ``client``."""
    g, loss, accuracy = build()
    settings = dict(epochs=EPOCHS, batch_size=BATCH, metrics=accuracy, progress=False, seed=3)
    settings.update(options)
    history = dg.fit(g, loss, data() if train_data is None else train_data, dg.optim.Adam(g, lr=1e-2),
                     client=client, **settings)
    return g, history


def assert_same_params(g, h, rtol=1e-6):
    for name, value in g.params.items():
        np.testing.assert_allclose(h.params[name], value, rtol=rtol, atol=1e-12, err_msg=name)


@pytest.fixture(scope="module")
def client():
    with local_cluster(2) as c:
        yield c


@pytest.fixture(scope="module")
def local():
    """The reference: the same fit in this process, with validation."""
    return train(validation=data(60, seed=2))


def test_fit_on_two_workers_equals_fit_in_one_process(client, local):
    g, history = train(client, validation=data(60, seed=2))
    ref_graph, ref = local
    assert history.steps == ref.steps == list(range(1, 51))
    assert_same_params(ref_graph, g)
    np.testing.assert_allclose(history.loss, ref.loss, rtol=1e-9)
    for name in ref.grad_norms:
        np.testing.assert_allclose(history.grad_norms[name], ref.grad_norms[name], rtol=1e-9)
    for mine, theirs in zip(history.epochs, ref.epochs):
        assert mine.keys() == theirs.keys()
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-9), key


def test_three_workers_with_uneven_shards_train_the_same():
    # 50 examples in batches of 7 over 3 workers: shards of 2 and 3 rows, a last batch of 1 row on one worker;
    # the parameters pass through a copy on the second worker to reach the third, the sum tree is uneven
    small = data(50)
    ref_graph, _ = train(train_data=small, batch_size=7, epochs=2)
    with local_cluster(3) as three, distributed.get_task_stream(three) as tasks:
        settings = DataParallel(three)
        g, _ = train(settings, small, batch_size=7, epochs=2)
    assert settings.stats["steps"] == 16
    ran = [t["key"] for t in tasks.data]
    assert any("-params-" in k for k in ran)                  # a copy of the parameters was passed on
    assert_same_params(ref_graph, g)


def test_dask_arrays_stay_on_the_cluster_and_train_the_same(client):
    arrays, held_out = data(), data(60, seed=2)
    lazy = {"x": da.from_array(arrays["x"], chunks=((70, 50, 120), (8,))),
            "y": da.from_array(arrays["y"], chunks=100)}   # other chunks than x: aligned to x's on the cluster
    g, history = train(client, lazy, epochs=2, validation={"x": da.from_array(held_out["x"], chunks=25),
                                                           "y": held_out["y"]})
    ref_graph, ref = train(epochs=2, validation=held_out)
    assert_same_params(ref_graph, g)
    assert history.epochs[-1]["val_accuracy"] == pytest.approx(ref.epochs[-1]["val_accuracy"])


def test_progress_bar_history_and_callbacks_run_on_the_client(client, capsys):
    class Watch(dg.train.Callback):
        def __init__(self):
            self.steps, self.drawn, self.epochs = [], {}, []

        def wants_full_result(self, state, step):
            return step == 2

        def on_step_end(self, state, result):
            self.steps.append(state.step)
            if state.step == 2:
                self.drawn = result
            else:
                assert set(result.grads) == {"fc1/W", "fc1/b", "fc2/W", "fc2/b"}

        def on_epoch_end(self, state, logs):
            self.epochs.append(logs["epoch"])

    watch = Watch()
    lines = []
    _, history = train(client, epochs=2, progress=True, log=lines.append, callbacks=[watch])
    err = capsys.readouterr().err
    assert "20/20" in err                                      # the tqdm bar went to the end
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "accuracy" in lines[0]
    assert watch.steps == list(range(1, 21)) and watch.epochs == [1, 2]
    # the drawn step is the first shard's whole run: every node's value and gradient over its rows of the batch
    rows = len(watch.drawn.value("x"))
    assert 0 < rows < BATCH and watch.drawn.grad("fc1/relu").shape == (rows, 16)
    assert watch.drawn.rank(watch.drawn.loss) == 1
    assert sorted(history.grad_norms) == ["fc1/W", "fc1/b", "fc2/W", "fc2/b"]
    assert all(n > 0 for n in history.grad_norms["fc1/W"])


def test_a_worker_killed_mid_step_costs_a_retry_and_changes_nothing(tmp_path):
    killer = KillOnce(str(tmp_path / "killed"), step=7)
    with local_cluster(2) as client:
        client.register_plugin(killer, name="kill-once")
        settings = DataParallel(client, worker_timeout=20)
        g, history = train(client=settings, epochs=2, validation=data(60, seed=2))
    assert (tmp_path / "killed").exists()                      # a worker did die, while running step 7
    assert settings.stats["retries"] >= 1 and settings.stats["resent"] >= 1
    ref_graph, ref = train(epochs=2, validation=data(60, seed=2))
    assert history.steps == ref.steps
    assert_same_params(ref_graph, g)


def test_a_cluster_that_cannot_go_on_raises_after_writing_a_checkpoint_to_resume_from(tmp_path, monkeypatch):
    class LoseTheWorkers(dg.train.Callback):
        def on_step_end(self, state, result):
            if state.step == 13:
                lost.cluster.scale(0)

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # fit was given no checkpoint path: it makes one here
    with local_cluster(2) as lost:
        settings = DataParallel(lost, worker_timeout=1.0, retries=1)
        with pytest.raises(dg.ClusterError, match="no workers") as info:
            train(client=settings, callbacks=[LoseTheWorkers()])
    path = info.value.checkpoint
    assert os.path.dirname(path) == str(tmp_path) and path.endswith(".ckpt") and os.path.exists(path)
    assert info.value.history.steps[-1] == 13 and "resume=" in "".join(info.value.__notes__)
    # resume in this process: the same parameters as a fit that never stopped
    g, history = train(resume=path)
    ref_graph, _ = train()
    assert history.steps[-1] == 50
    assert_same_params(ref_graph, g)


def test_a_worker_without_the_graphs_ops_is_refused_naming_the_op(client, fresh_registry):
    @dg.op(shape=dg.shapes.same_as_first)
    def only_here(x):
        """An op registered in this process only, as a script's own op would be."""
        return x * 2.0

    @only_here.vjp
    def _(g, x):
        return (g * 2.0,)

    dg.register_ops(only_here, plugin="this-process-only")

    g = dg.Graph("custom")
    x = g.input("x", shape=(None, 8))
    y = g.input("y", shape=(None,), dtype="int64")
    loss = dg.nn.cross_entropy(dg.nn.dense(only_here(x), 4, name="fc"), y)
    with pytest.raises(dg.ClusterError, match="only_here"):
        dg.fit(g, loss, data(), dg.optim.SGD(g, lr=0.1), progress=False, client=client)


def test_running_statistics_are_the_shards_average_weighted_by_rows(client):
    def fit_bn(client=None):
        g = dg.Graph("bn")
        x, y = g.input("x", shape=(None, 8)), g.input("y", shape=(None,), dtype="int64")
        training = g.input("training", shape=())
        logits = dg.nn.dense(dg.nn.batch_norm(x, training, name="bn"), 4, name="fc")
        dg.fit(g, dg.nn.cross_entropy(logits, y), data(), dg.optim.SGD(g, lr=0.1), epochs=1, batch_size=EXAMPLES,
               progress=False, client=client)
        return g

    here, there = fit_bn(), fit_bn(client)
    # one step over all the rows: the running mean moved to 0.1 x the batch's mean, here and on the shards' average
    np.testing.assert_allclose(there.value("bn/running_mean"), 0.1 * data()["x"].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(there.value("bn/running_mean"), here.value("bn/running_mean"), rtol=1e-12)
    assert not np.allclose(there.value("bn/running_var"), 1.0)


def test_an_error_raised_on_a_worker_reaches_the_caller_as_itself(client):
    bad = data()
    bad["x"][5, 0] = np.nan
    with pytest.raises(dg.AnomalyError) as here:
        train(train_data=bad, epochs=1, check=True, shuffle=False)
    with pytest.raises(dg.AnomalyError) as there:
        train(client, bad, epochs=1, check=True, shuffle=False)
    assert (there.value.node, there.value.phase) == (here.value.node, here.value.phase)


def test_settings_are_checked_before_the_cluster_is_used(client):
    with pytest.raises(dg.DagradError, match="reduction"):
        DataParallel(client, reduction="median")
    with pytest.raises(dg.DagradError, match="distributed.Client"):
        train(client="tcp://127.0.0.1:8786")
    with pytest.raises(dg.FeedError, match="different numbers of examples"):
        train(client, {"x": data()["x"], "y": data()["y"][:10]})


class KillOnce(distributed.WorkerPlugin):
    """Kills the worker process that starts running a shard task of ``step``, once in the whole cluster.

    The marker file is created exclusively, so the worker the task moves to
    (or the one the nanny restarts) lets it run.
    """

    def __init__(self, marker: str, step: int):
        self.marker, self.step = marker, step

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or f"-step{self.step}-" not in str(key) or "-shard-" not in str(key):
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(1)


def test_the_demo_on_two_workers_reaches_the_local_demos_accuracy(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from dagrad.cli import main

    def accuracy(*extra):
        out_dir = tmp_path / ("cluster" if extra else "local")
        args = ["demo", "--epochs", "2", "--hidden", "32", "--batch-size", "64", "--lr", "1e-2", "--out", str(out_dir),
                "--no-progress"]
        assert main(args + list(extra)) == 0
        out = capsys.readouterr().out
        return out, float(out.split("held-out accuracy ")[1].split("%")[0])

    out, on_cluster = accuracy("--workers", "2")
    assert "on a Dask cluster of 2 worker processes" in out
    assert on_cluster == pytest.approx(accuracy()[1], abs=0.5)   # percent: the same training, to rounding


def test_the_benchmark_measures_steps_and_bytes(client, monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "distributed_fit.py"
    spec = importlib.util.spec_from_file_location("distributed_fit", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "distributed_fit", bench)  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    model = bench.Model("tiny MLP", (8, 6, 3), 16, 64, dtype="float64")
    measured = bench.run_fit(model, model.data(), 3, client)
    assert measured["steps"] == 3 and measured["step"] > 0
    assert measured["sent"] == measured["received"] == 8 * model.parameters   # float64 parameters, each way
    assert measured["workers_sent"] >= measured["received"]
    row = {"model": "tiny", "where": "2 workers", "rate": 1 / measured["step"], "low": 1.0, "high": 2.0,
           "overhead": 1.0, "setup": measured["setup"], **measured}
    assert "| tiny | 2 workers |" in bench.table([row])
