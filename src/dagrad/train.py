"""The fit loop: batches, optimizer steps, a progress bar, validation, a gradient history and callbacks.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from .errors import DagradError, FeedError, GraphError
from .tensor import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph
    from .optim import Optimizer
    from .result import Result

__all__ = [
    "fit", "evaluate", "predict", "History", "TrainState", "Metric", "accuracy",
    "Callback", "EarlyStopping", "RenderEvery",
]

NodeRef = Union[str, Tensor]


def _name(ref: NodeRef) -> str:
    return getattr(ref, "name", ref)


# --------------------------------------------------------------- metrics ---


class Metric:
    """A number computed from a batch: ``fn(values, feeds) -> float``, averaged over examples.

    ``outputs`` are the nodes whose values ``fn`` reads from ``values`` (the fit
    loop keeps them even on its fast path); ``feeds`` holds the batch's inputs.
    """

    def __init__(self, name: str, outputs: Sequence[NodeRef], fn: Callable[[dict, dict], float]):
        self.name = name
        self.outputs = tuple(_name(o) for o in outputs)
        self.fn = fn

    def __call__(self, values: Mapping[str, np.ndarray], feeds: Mapping[str, np.ndarray]) -> float:
        return float(self.fn(values, feeds))

    def __repr__(self) -> str:
        return f"<Metric {self.name} of {', '.join(self.outputs)}>"


def accuracy(logits: NodeRef, labels: NodeRef, name: str = "accuracy") -> Metric:
    """Fraction of examples whose predicted class equals the label in input ``labels``.

    The class is the argmax of ``logits`` over the last axis; with one logit per
    example (shape ``(batch,)`` or ``(batch, 1)``), it is ``logit > 0``.
    """
    out, target = _name(logits), _name(labels)

    def fn(values, feeds):
        z, y = values[out], np.asarray(feeds[target])
        if z.ndim == y.ndim or z.shape[-1] == 1:
            predicted = (z.reshape(y.shape) > 0).astype(y.dtype)
        else:
            predicted = np.argmax(z, axis=-1)
        return float(np.mean(predicted == y)) if y.size else 0.0

    return Metric(name, [out], fn)


def _metric_list(metrics: Union[None, Metric, Iterable[Metric], Mapping[str, Metric]]) -> list[Metric]:
    if metrics is None:
        return []
    if isinstance(metrics, Metric):
        return [metrics]
    if isinstance(metrics, Mapping):
        return [Metric(key, m.outputs, m.fn) for key, m in metrics.items()]
    return list(metrics)


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


# ------------------------------------------------------------- history ---


@dataclass
class History:
    """What ``fit`` recorded.

    Attributes
    ----------
    steps, epoch_of_step, loss, lr : list
        One entry per recorded step (step 1 and every ``every``-th step, plus
        every step drawn by a callback): the 1-based step, its epoch, the batch
        loss and the learning rate used.
    grad_norms : dict[str, list[float]]
        For each parameter, the L2 norm of its gradient at each recorded step
        (0.0 when the parameter got no gradient).
    epochs : list[dict]
        One dict per finished epoch: ``epoch``, ``loss``, each metric, the
        ``val_`` versions with validation data, and ``seconds``.
    """

    every: int = 1
    steps: list = field(default_factory=list)
    epoch_of_step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    grad_norms: dict = field(default_factory=dict)
    epochs: list = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0

    def record(self, step: int, epoch: int, loss: float, lr: float, grads: Mapping[str, Optional[np.ndarray]]) -> None:
        self.steps.append(step)
        self.epoch_of_step.append(epoch)
        self.loss.append(loss)
        self.lr.append(lr)
        for name, g in grads.items():
            norm = 0.0 if g is None else float(np.sqrt(np.dot(g.reshape(-1), g.reshape(-1))))
            self.grad_norms.setdefault(name, []).append(norm)

    def __getitem__(self, key: str) -> list:
        """Per-epoch values of ``key``: ``history["val_accuracy"]``."""
        if not self.epochs or key not in self.epochs[-1]:
            known = ", ".join(self.epochs[-1]) if self.epochs else "none yet"
            raise KeyError(f"no per-epoch value {key!r} (known: {known})")
        return [e.get(key) for e in self.epochs]

    def grad_norms_at(self, step: int) -> dict[str, float]:
        """Every parameter's gradient norm at a recorded ``step``."""
        try:
            i = self.steps.index(step)
        except ValueError:
            raise KeyError(f"step {step} was not recorded (recorded every {self.every} steps)") from None
        return {name: norms[i] for name, norms in self.grad_norms.items()}

    def as_dict(self) -> dict:
        """Plain lists and dicts, ready for ``json.dump``."""
        return {
            "every": self.every, "steps": self.steps, "epoch_of_step": self.epoch_of_step, "loss": self.loss,
            "lr": self.lr, "grad_norms": self.grad_norms, "epochs": self.epochs,
            "stopped_early": self.stopped_early, "seconds": self.seconds,
        }


# ------------------------------------------------------------ callbacks ---


@dataclass
class TrainState:
    """What callbacks see of a running ``fit``; set ``stop = True`` to end it after this step or epoch."""

    graph: "Graph"
    loss: str
    optimizer: "Optimizer"
    history: History
    epochs: int
    steps_per_epoch: int
    epoch: int = 0
    step: int = 0
    stop: bool = False

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


class Callback:
    """Hooks into ``fit``; override any of them. Every method has a no-op default."""

    def wants_full_result(self, state: TrainState, step: int) -> bool:
        """True to run ``step`` with ``keep="all"`` (every value and gradient, for diagrams)."""
        return False

    def on_fit_start(self, state: TrainState) -> None:
        """Before the first step."""

    def on_step_end(self, state: TrainState, result: "Result") -> None:
        """After the optimizer step; ``result`` holds the step's values and gradients."""

    def on_epoch_end(self, state: TrainState, logs: dict) -> None:
        """After each epoch's validation; ``logs`` is the epoch's entry in ``History.epochs``."""

    def on_fit_end(self, state: TrainState) -> None:
        """After the last step, also when stopped early."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``mode`` is ``"min"`` or ``"max"``; ``"auto"`` picks ``"max"`` for names
    containing ``acc`` and ``"min"`` otherwise. With ``restore_best`` the
    parameters are put back (in place) to their values at the best epoch.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best: bool = True):
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise DagradError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', not {mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, int(patience), float(min_delta), mode
        self.restore_best = restore_best
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.stopped_epoch: Optional[int] = None
        self._wait = 0
        self._snapshot: dict[str, np.ndarray] = {}

    def on_fit_start(self, state: TrainState) -> None:
        self.best = self.best_epoch = self.stopped_epoch = None
        self._wait = 0
        self._snapshot = {}

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, state: TrainState, logs: dict) -> None:
        if self.monitor not in logs:
            raise DagradError(
                f"EarlyStopping: no {self.monitor!r} after epoch {logs.get('epoch')} "
                f"(have {', '.join(k for k in logs if k not in ('epoch', 'seconds'))}); "
                "monitoring val_... needs validation= data"
            )
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self._wait = value, logs["epoch"], 0
            if self.restore_best:
                self._snapshot = {name: p.copy() for name, p in state.graph.params.items()}
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = logs["epoch"]
            state.stop = True

    def on_fit_end(self, state: TrainState) -> None:
        if self.restore_best and self._snapshot and self.stopped_epoch is not None:
            live = state.graph.params
            for name, saved in self._snapshot.items():
                if name in live:
                    np.copyto(live[name], saved)


class RenderEvery(Callback):
    """Draw a gradient-flow diagram (through ``dagrad.render``) every ``every`` steps.

    Files go to ``directory/{prefix}{step:05d}.{format}``; ``first`` and
    ``last`` also draw step 1 and the final planned step; ``every=None`` draws
    only those. The paths written are in ``paths`` (and the results in
    ``results``, by step, with ``keep_results=True``). Extra keywords go to
    ``dagrad.render``.
    """

    def __init__(self, every: Optional[int] = 100, directory: Union[str, Path] = "diagrams", *, prefix: str = "step",
                 format: str = "svg", first: bool = True, last: bool = True, keep_results: bool = False,
                 **render_options: Any):
        if every is not None and every < 1:
            raise DagradError(f"RenderEvery: every must be a positive number of steps or None, not {every!r}")
        self.every, self.directory, self.prefix, self.format = every, Path(directory), prefix, format
        self.first, self.last, self.keep_results = first, last, keep_results
        self.render_options = render_options
        self.paths: list[Path] = []
        self.results: dict[int, "Result"] = {}

    def wants_full_result(self, state: TrainState, step: int) -> bool:
        return ((self.every is not None and step % self.every == 0) or (self.first and step == 1)
                or (self.last and step == state.total_steps))

    def on_fit_start(self, state: TrainState) -> None:
        self._render = _renderer()
        self.directory.mkdir(parents=True, exist_ok=True)

    def on_step_end(self, state: TrainState, result: "Result") -> None:
        if not self.wants_full_result(state, state.step):
            return
        path = self.directory / f"{self.prefix}{state.step:05d}.{self.format}"
        self._render(result, path, **self.render_options)
        self.paths.append(path)
        if self.keep_results:
            self.results[state.step] = result


def _renderer() -> Callable[..., Any]:
    """``dagrad.render``, imported when first needed (it needs Graphviz)."""
    try:
        from .render import render
    except ImportError as exc:
        from .errors import RenderError

        raise RenderError(f"diagrams need dagrad.render, which failed to import: {exc}") from exc
    return render


# -------------------------------------------------------------- running ---


class _Progress:
    """A tqdm bar when wanted, and the epoch log lines (through the bar, so they do not break it)."""

    def __init__(self, total: int, enabled: Optional[bool], log: Union[None, bool, Callable[[str], Any]]):
        stream = sys.stderr
        self.enabled = stream.isatty() if enabled is None else bool(enabled)
        self.log_fn = log if callable(log) else None
        self.log = self.enabled if log is None else bool(log)
        self.bar = None
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, leave=True, file=stream)

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
        Show a tqdm bar (default: when stderr is a terminal); print one line
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
