"""The fit loop: batches, optimizer steps, a progress bar and validation; ``evaluate`` and ``predict``.

``fit`` runs the graph's compiled training plan (``keep="wrt"``: only the
parameter gradients and the values asked for are kept, the fast path) at
every step, and a diagram plan (``keep="all"``: every value and gradient) only
at the steps a callback wants to draw. ``History`` records the loss and every
parameter's gradient norm as training goes, so plots and diagrams can show
how the gradient flow changes.

Examples
--------
>>> import numpy as np, dagrad as dg
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(64, 2)); Y = X @ np.array([[2.0], [-1.0]])
>>> g = dg.Graph()
>>> x, y = g.input("x", shape=(None, 2)), g.input("y", shape=(None, 1))
>>> loss = dg.nn.mse(dg.nn.dense(x, 1, name="fc"), y)
>>> hist = dg.fit(g, loss, {"x": X, "y": Y}, dg.optim.SGD(g, lr=0.1), epochs=20, batch_size=16, progress=False)
>>> bool(hist.loss[-1] < 1e-3), np.round(g.value("fc/W").ravel(), 2)
(True, array([ 2., -1.]))
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from ..errors import DagradError, FeedError, GraphError
from ..tensor import Tensor
from .callbacks import Callback
from .history import History, TrainState
from .metrics import Metric, _metric_list, _name
from .progress import in_notebook, progress_bar

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..optim import Optimizer

__all__ = ["fit", "evaluate", "predict"]

NodeRef = Union[str, Tensor]


# ------------------------------------------------------------------ data ---


def _prepare(graph: "Graph", data: Mapping, what: str) -> tuple[dict, int]:
    """The data as ``{input name: array in the input's dtype}`` and its number of examples."""
    if not isinstance(data, Mapping) or not data:
        raise FeedError(f"{what} must be a non-empty dict of input name -> array, not {type(data).__name__}")
    arrays = {}
    sizes = {}
    for key, value in data.items():
        name = _name(key)
        if name not in graph or graph.node(name).op != "input":
            raise FeedError(f"{what}: {name!r} is not an input of graph {graph.name!r} (inputs: {', '.join(graph.inputs)})")
        node = graph.node(name)
        array = np.asarray(value)
        if array.ndim == 0:
            raise FeedError(f"{what}: {name!r} must have a leading example axis, got a scalar")
        if array.dtype != node.dtype and np.can_cast(array.dtype, node.dtype, casting="same_kind"):
            array = array.astype(node.dtype)
        arrays[name] = array
        sizes[name] = len(array)
    if len(set(sizes.values())) != 1:
        raise FeedError(f"{what}: inputs have different numbers of examples: {sizes}")
    return arrays, next(iter(sizes.values()))


def _batches(n: int, batch_size: int, order: np.ndarray, drop_last: bool = False):
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def _training_input(graph: "Graph", training: Optional[NodeRef]) -> Optional[str]:
    """The input that switches training behaviour (dropout) on, if the graph has it."""
    if training is None:
        return None
    name = _name(training)
    if name not in graph:
        return None
    if graph.node(name).op != "input":
        raise GraphError(f"training={name!r} must name an input, but it is a {graph.node(name).kind}")
    return name


# -------------------------------------------------------------- running ---


class _Progress:
    """A tqdm bar when wanted, and the epoch log lines (through the bar, so they do not break it)."""

    def __init__(self, total: int, enabled: Optional[bool], log: Union[None, bool, Callable[[str], Any]]):
        stream = sys.stderr
        self.enabled = (stream.isatty() or in_notebook()) if enabled is None else bool(enabled)
        self.log_fn = log if callable(log) else None
        self.log = self.enabled if log is None else bool(log)
        self.bar = None
        if self.enabled:
            self.bar = progress_bar(total, stream)

    def epoch(self, epoch: int, epochs: int) -> None:
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch}/{epochs}", refresh=False)

    def step(self, postfix: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in postfix.items()}, refresh=False)
            self.bar.update(1)

    def write(self, line: str) -> None:
        if not self.log:
            return
        if self.log_fn is not None:
            if self.bar is not None:
                with self.bar.external_write_mode():
                    self.log_fn(line)
            else:
                self.log_fn(line)
        elif self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _format_logs(logs: dict, epochs: int) -> str:
    width = len(str(epochs))
    parts = [f"epoch {logs['epoch']:>{width}}/{epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in logs.items() if k not in ("epoch", "seconds")]
    parts.append(f"({logs['seconds']:.1f}s)")
    return "  ".join(parts)


def fit(
    graph: "Graph",
    loss: NodeRef,
    data: Mapping,
    optimizer: "Optimizer",
    epochs: int = 1,
    batch_size: int = 32,
    *,
    validation: Optional[Mapping] = None,
    metrics: Union[None, Metric, Iterable[Metric], Mapping[str, Metric]] = None,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    wrt: Optional[Sequence[NodeRef]] = None,
    training: Optional[NodeRef] = "training",
    history_every: int = 1,
    callbacks: Sequence[Callback] = (),
    progress: Optional[bool] = None,
    log: Union[None, bool, Callable[[str], Any]] = None,
    check: Optional[bool] = None,
) -> History:
    """Train ``graph`` by minimising ``loss`` over ``data`` in mini-batches.

    Parameters
    ----------
    graph, loss
        The network and its scalar loss node.
    data
        ``{input: array}``, every array with the same number of examples on axis 0.
    optimizer
        A ``dagrad.optim`` optimizer over the graph's parameters.
    epochs, batch_size
        Passes over the data, and examples per step (the last batch may be smaller).
    validation
        Data in the same form, evaluated after every epoch (``val_loss`` and ``val_<metric>``).
    metrics
        ``Metric`` objects (e.g. ``accuracy(logits, "y")``), shown in the progress bar and logs.
    shuffle, seed
        Reorder the examples every epoch, reproducibly.
    drop_last
        Skip the last, smaller batch of each epoch (its gradients are noisier,
        which shows in per-step gradient norms and diagrams).
    wrt
        Parameters to train (default: every trainable param).
    training
        The scalar input that switches dropout on: fed the step number while
        training and 0 while evaluating, when the graph has it.
    history_every
        Record loss and gradient norms at step 1 and every ``history_every``-th step.
    callbacks
        ``EarlyStopping``, ``RenderEvery`` or any ``Callback``.
    progress, log
        Show a tqdm bar (default: when stderr is a terminal, or in a Jupyter
        notebook, where it is a widget with ipywidgets installed); print one line
        per epoch (default: when the bar is shown), or pass each line to
        ``log`` if it is a function.
    check
        Check every value and gradient for NaN/Inf (``AnomalyError``).

    Returns
    -------
    History
    """
    loss_name = _name(loss)
    loss_node = graph.node(loss_name)
    if loss_node.shape is not None and loss_node.shape != ():
        raise GraphError(f"loss {loss_name!r} must be a scalar, but has shape {loss_node.shape}; use reduction='mean'")
    if epochs < 0 or batch_size < 1 or history_every < 1:
        raise DagradError(f"fit: need epochs >= 0, batch_size >= 1, history_every >= 1 (got {epochs}, {batch_size}, {history_every})")
    arrays, n = _prepare(graph, data, "data")
    val = _prepare(graph, validation, "validation")[0] if validation is not None else None
    metric_list = _metric_list(metrics)
    flag = _training_input(graph, training)
    outputs = [loss_name] + [o for m in metric_list for o in m.outputs if o != loss_name]
    fast = graph.compile(outputs, loss=loss_name, wrt=wrt, keep="wrt")
    wrt_names = fast.wrt
    steps_per_epoch = n // batch_size if drop_last else math.ceil(n / batch_size)
    history = History(every=history_every)
    state = TrainState(graph, loss_name, optimizer, history, epochs, steps_per_epoch)
    rng = np.random.default_rng(seed)
    bar = _Progress(state.total_steps, progress, log)
    started = time.perf_counter()
    try:
        for cb in callbacks:
            cb.on_fit_start(state)
        for epoch in range(1, epochs + 1):
            state.epoch = epoch
            bar.epoch(epoch, epochs)
            epoch_start = time.perf_counter()
            totals = {"loss": 0.0, **{m.name: 0.0 for m in metric_list}}
            seen = 0
            order = rng.permutation(n) if shuffle else np.arange(n)
            for idx in _batches(n, batch_size, order, drop_last):
                state.step += 1
                feeds = {name: a[idx] for name, a in arrays.items()}
                if flag is not None:
                    feeds[flag] = state.step
                full = any(cb.wants_full_result(state, state.step) for cb in callbacks)
                plan = graph.compile(outputs, loss=loss_name, wrt=wrt, keep="all") if full else fast
                result = plan.run(feeds, check=check)
                batch_loss = float(result.values[loss_name])
                if full or state.step == 1 or state.step % history_every == 0:
                    history.record(state.step, epoch, batch_loss, optimizer.lr,
                                   {w: result.grads.get(w) for w in wrt_names})
                optimizer.step(result)
                size = len(idx)
                seen += size
                totals["loss"] += batch_loss * size
                for m in metric_list:
                    totals[m.name] += m(result.values, feeds) * size
                bar.step({k: v / seen for k, v in totals.items()})  # this epoch's running means
                for cb in callbacks:
                    cb.on_step_end(state, result)
                if state.stop:
                    break
            logs = {"epoch": epoch, **{k: v / max(seen, 1) for k, v in totals.items()}}
            if val is not None:
                scores = evaluate(graph, val, loss=loss_name, metrics=metric_list, training=flag)
                logs.update({f"val_{k}": v for k, v in scores.items()})
            logs["seconds"] = time.perf_counter() - epoch_start
            history.epochs.append(logs)
            for cb in callbacks:
                cb.on_epoch_end(state, logs)
            bar.write(_format_logs(logs, epochs))
            if state.stop:
                history.stopped_early = True
                break
        for cb in callbacks:
            cb.on_fit_end(state)
    finally:
        bar.close()
        history.seconds = time.perf_counter() - started
    return history


def evaluate(
    graph: "Graph",
    data: Mapping,
    *,
    loss: Optional[NodeRef] = None,
    metrics: Union[None, Metric, Iterable[Metric], Mapping[str, Metric]] = None,
    batch_size: int = 512,
    training: Optional[NodeRef] = "training",
) -> dict[str, float]:
    """Mean ``loss`` and metrics over ``data``, in batches, with dropout off.

    Returns ``{"loss": ..., "<metric>": ...}`` (``loss`` only when given).
    """
    metric_list = _metric_list(metrics)
    arrays, n = _prepare(graph, data, "evaluation data")
    flag = _training_input(graph, training)
    outputs = ([_name(loss)] if loss is not None else []) + [o for m in metric_list for o in m.outputs]
    if not outputs:
        raise DagradError("evaluate needs a loss or at least one metric")
    plan = graph.compile(list(dict.fromkeys(outputs)), keep="wrt")
    totals = {**({"loss": 0.0} if loss is not None else {}), **{m.name: 0.0 for m in metric_list}}
    for idx in _batches(n, batch_size, np.arange(n)):
        feeds = {name: a[idx] for name, a in arrays.items()}
        if flag is not None:
            feeds[flag] = 0
        result = plan.run(feeds)
        if loss is not None:
            totals["loss"] += float(result.values[_name(loss)]) * len(idx)
        for m in metric_list:
            totals[m.name] += m(result.values, feeds) * len(idx)
    return {k: v / max(n, 1) for k, v in totals.items()}


def predict(graph: "Graph", output: NodeRef, data: Mapping, *, batch_size: int = 512,
            training: Optional[NodeRef] = "training") -> np.ndarray:
    """The value of ``output`` for every example of ``data``, computed in batches with dropout off."""
    arrays, n = _prepare(graph, data, "prediction data")
    flag = _training_input(graph, training)
    plan = graph.compile([_name(output)], keep="wrt")
    parts = []
    for idx in _batches(n, batch_size, np.arange(n)):
        feeds = {name: a[idx] for name, a in arrays.items()}
        if flag is not None:
            feeds[flag] = 0
        parts.append(plan.run(feeds).values[_name(output)])
    return np.concatenate(parts) if parts else np.zeros((0,))
