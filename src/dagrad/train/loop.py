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
import os
import sys
import time
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterable,
    Mapping,
    Optional,
    Sequence,
    Union,
)

import numpy as np

from ..errors import DagradError, FeedError, FormatError, GraphError, NonFiniteError
from ..interrupts import deferred_interrupt
from ..optim.base import NONFINITE_POLICIES
from ..scheduler.runtime import coerce_feed
from ..tensor import Tensor
from .callbacks import Callback
from .history import History, TrainState
from .metrics import Metric, _metric_list, _name
from .progress import in_notebook, progress_bar

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..optim import Optimizer

__all__ = ["fit", "evaluate", "predict", "apply_updates"]

NodeRef = Union[str, Tensor]


# ------------------------------------------------------------------ data ---


def _prepare(graph: "Graph", data: Mapping, what: str, *, allow_empty: bool = False) -> tuple[dict, int]:
    """The data as ``{input name: array in the input's dtype}`` and its number of examples (at least one)."""
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
        if array.dtype != node.dtype:  # converted once for all batches, refused if values would change
            array = coerce_feed(f"{what}: {name}", array, None, node.dtype)
        arrays[name] = array
        sizes[name] = len(array)
    if len(set(sizes.values())) != 1:
        raise FeedError(f"{what}: inputs have different numbers of examples: {sizes}")
    n = next(iter(sizes.values()))
    if n == 0 and not allow_empty:
        raise FeedError(f"{what} has no examples: a loss or metric over nothing has no value")
    return arrays, n


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

    def skip(self, steps: int) -> None:
        """Count steps done before this fit started (a resumed fit)."""
        if self.bar is not None and steps:
            self.bar.update(steps)

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
    on_nonfinite: str = "raise",
    checkpoint: Union[None, str, "os.PathLike[str]"] = None,
    checkpoint_every: Optional[int] = None,
    resume: Union[None, str, "os.PathLike[str]"] = None,
) -> History:
    """Train ``graph`` by minimising ``loss`` over ``data`` in mini-batches.

    Parameters
    ----------
    graph, loss
        The network and its scalar loss node.
    data
        ``{input: array}``, every array with the same number (at least one) of examples on axis 0.
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
        The scalar input that switches dropout and batch normalization to
        training: fed the step number while training and 0 while evaluating,
        when the graph has it. After every optimizer step, the graph's state
        updates (``Graph.add_update``: running statistics) are applied.
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
    on_nonfinite
        A step whose loss or gradients hold NaN or Inf: ``"raise"`` (the
        default) a ``NonFiniteError`` naming the step and the loss or
        parameter, before any parameter changes; ``"skip"`` leave the
        parameters as they are, record the step in ``History.skipped`` and go on.
    checkpoint, checkpoint_every
        Write a checkpoint to this path (atomically, replacing the last one)
        at the end of every epoch, every ``checkpoint_every`` steps if given,
        and when Ctrl-C stops the fit.
    resume
        Continue from this checkpoint: the parameters, the optimizer's state,
        the History and the position in the data order are restored, so the
        result is bit for bit that of a fit never stopped. ``graph`` and
        ``optimizer`` must be built as before; ``epochs`` may be larger.

    Returns
    -------
    History

    Raises
    ------
    NonFiniteError
        A NaN or Inf loss or gradient, with ``on_nonfinite="raise"``.
    KeyboardInterrupt, or any error
        After every parameter finished its update: the History so far is the
        exception's ``history`` attribute (``history.interrupted`` is True
        for Ctrl-C), and with ``checkpoint`` the last finished step is saved.
    """
    loss_name = _name(loss)
    loss_node = graph.node(loss_name)
    if loss_node.shape is not None and loss_node.shape != ():
        raise GraphError(f"loss {loss_name!r} must be a scalar, but has shape {loss_node.shape}; use reduction='mean'")
    if epochs < 0 or batch_size < 1 or history_every < 1 or (checkpoint_every is not None and checkpoint_every < 1):
        raise DagradError(f"fit: need epochs >= 0, batch_size >= 1, history_every >= 1, checkpoint_every >= 1 "
                          f"(got {epochs}, {batch_size}, {history_every}, {checkpoint_every})")
    if on_nonfinite not in NONFINITE_POLICIES:
        raise DagradError(f"fit: on_nonfinite must be 'raise' or 'skip', not {on_nonfinite!r}")
    arrays, n = _prepare(graph, data, "data")
    val = _prepare(graph, validation, "validation")[0] if validation is not None else None
    steps_per_epoch = n // batch_size if drop_last else math.ceil(n / batch_size)
    if steps_per_epoch == 0:
        raise FeedError(f"fit: drop_last=True with {n} examples and batch_size={batch_size} leaves no batch to train on")
    metric_list = _metric_list(metrics)
    flag = _training_input(graph, training)
    updates = graph.updates  # state the step sets after the optimizer (running statistics): computed by the plan
    outputs = list(dict.fromkeys([loss_name] + [o for m in metric_list for o in m.outputs] + list(updates.values())))
    fast = graph.compile(outputs, loss=loss_name, wrt=wrt, keep="wrt")
    wrt_names = fast.wrt
    settings = {"loss": loss_name, "examples": n, "batch_size": batch_size, "shuffle": shuffle, "drop_last": drop_last,
                "metrics": [m.name for m in metric_list]}
    rng = np.random.default_rng(seed)
    if resume is not None:
        history, at = _resume(resume, graph, optimizer, settings, rng)
    else:
        history, at = History(every=history_every), _Position.start(rng, metric_list)
    saver = _Checkpointer(checkpoint, checkpoint_every, graph, optimizer, history, settings)
    state = TrainState(graph, loss_name, optimizer, history, epochs, steps_per_epoch, step=at.step)
    bar = _Progress(state.total_steps, progress, log)
    bar.skip(at.step)
    started = time.perf_counter()
    try:
        for cb in callbacks:
            cb.on_fit_start(state)
        for epoch in range(at.epoch, epochs + 1):
            state.epoch = epoch
            bar.epoch(epoch, epochs)
            epoch_start = time.perf_counter()
            rng.bit_generator.state = at.rng  # this epoch's order, also when resuming in its middle
            order = rng.permutation(n) if shuffle else np.arange(n)
            for idx in list(_batches(n, batch_size, order, drop_last))[at.batch:]:
                step = state.step + 1
                feeds = {name: a[idx] for name, a in arrays.items()}
                if flag is not None:
                    feeds[flag] = step
                full = any(cb.wants_full_result(state, step) for cb in callbacks)
                plan = graph.compile(outputs, loss=loss_name, wrt=wrt, keep="all") if full else fast
                result = plan.run(feeds, check=check)
                batch_loss = float(result.values[loss_name])
                scores = [m(result.values, feeds) for m in metric_list]
                # The step is committed whole: Ctrl-C lands before or after it, so a checkpoint is exact.
                with deferred_interrupt():
                    if full or step == 1 or step % history_every == 0:
                        history.record(step, epoch, batch_loss, optimizer.lr,
                                       {w: result.grads.get(w) for w in wrt_names})
                    if _update(optimizer, result, batch_loss, loss_name, step, epoch, on_nonfinite):
                        apply_updates(graph, result, updates)
                        at.add(batch_loss, scores, len(idx), metric_list)
                    else:
                        history.skipped.append(step)
                    at.batch += 1
                    at.step = state.step = step
                if saver.due(step):
                    saver.save(at)
                bar.step(at.means())  # this epoch's running means
                for cb in callbacks:
                    cb.on_step_end(state, result)
                if state.stop:
                    break
            logs = {"epoch": epoch, **at.means()}
            if val is not None:
                scores = evaluate(graph, val, loss=loss_name, metrics=metric_list, training=flag)
                logs.update({f"val_{k}": v for k, v in scores.items()})
            logs["seconds"] = time.perf_counter() - epoch_start
            for cb in callbacks:
                cb.on_epoch_end(state, logs)
            with deferred_interrupt():
                history.epochs.append(logs)
                history.stopped_early = state.stop
                at = at.next_epoch(rng, metric_list)
            bar.write(_format_logs(logs, epochs))
            saver.save(at)
            if state.stop:
                break
        for cb in callbacks:
            cb.on_fit_end(state)
    except BaseException as exc:
        history.interrupted = isinstance(exc, KeyboardInterrupt)
        if history.interrupted:
            saver.save(at)
        _attach(exc, history, saver.path if history.interrupted else None)
        raise
    finally:
        bar.close()
        history.seconds += time.perf_counter() - started
    return history


def _update(optimizer: "Optimizer", result: Any, batch_loss: float, loss_name: str, step: int, epoch: int,
            on_nonfinite: str) -> bool:
    """One optimizer step, or none for a NaN/Inf loss or gradient: True when the parameters changed."""
    if not math.isfinite(batch_loss):
        if on_nonfinite == "skip":
            return False
        raise NonFiniteError(
            f"fit: the loss {loss_name!r} is {batch_loss} at step {step} (epoch {epoch}); no parameter was changed. "
            "Find the node that produced it with check=True, or skip such steps with on_nonfinite='skip'",
            loss_name, "loss", step,
        )
    skipped = optimizer.skipped
    try:
        optimizer.step(result)
    except NonFiniteError as exc:
        if on_nonfinite == "skip":
            return False
        raise NonFiniteError(f"fit: step {step} (epoch {epoch}): {exc}", exc.node, exc.phase, step) from None
    return optimizer.skipped == skipped


def apply_updates(graph: "Graph", result: Any, updates: Optional[Mapping[str, str]] = None) -> None:
    """Set each param with a state update (``Graph.add_update``) to its node's value in ``result``: all or none.

    ``fit`` calls it after every optimizer step. A loop of your own asks for the
    update nodes as outputs of the step and calls it after ``optimizer.step``::

        result = g.backward(loss, feeds, keep="wrt", outputs=list(g.updates.values()))
        optimizer.step(result)
        dg.train.apply_updates(g, result)

    Raises
    ------
    GraphError
        ``result`` lacks an update's value, or holds one of the wrong shape
        or dtype; no param changed.
    """
    updates = graph.updates if updates is None else updates
    values = {}
    for param, node in updates.items():
        value = result.values.get(node)
        if value is None:
            raise GraphError(f"apply_updates: the result has no value of {node!r}, the update of {param!r}: run the "
                             "step with outputs=list(g.updates.values()) (fit does)")
        current = graph.value(param)
        if np.shape(value) != current.shape or not np.can_cast(np.asarray(value).dtype, current.dtype, "same_kind"):
            raise GraphError(f"apply_updates: node {node!r} holds a {np.asarray(value).dtype} value of shape "
                             f"{np.shape(value)}, which cannot update param {param!r} ({current.dtype}, {current.shape})")
        values[param] = value
    for param, value in values.items():
        graph.set_value(param, value)


def _attach(exc: BaseException, history: History, checkpoint: Any) -> None:
    """Hand the History so far to the caller on the exception that ended the fit."""
    try:
        exc.history = history  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        return
    done = history.steps[-1] if history.steps else 0
    note = f"dagrad.fit stopped; its History so far is this exception's .history (last recorded step {done})"
    if checkpoint is not None:
        note += f"; continue with fit(..., resume={os.fspath(checkpoint)!r})"
    if hasattr(exc, "add_note"):
        exc.add_note(note)


# ------------------------------------------------------ checkpoints ---


@dataclass
class _Position:
    """Where a fit is: the epoch under way, its batches done and what they added up to, and its data order.

    ``rng`` is the data-order generator's state at the start of ``epoch``, so
    that resuming in the middle of an epoch draws the same order again.
    """

    epoch: int
    batch: int
    step: int
    rng: dict
    sums: dict
    seen: int

    @classmethod
    def start(cls, rng: np.random.Generator, metrics: list) -> "_Position":
        return cls(1, 0, 0, rng.bit_generator.state, _zero_sums(metrics), 0)

    def next_epoch(self, rng: np.random.Generator, metrics: list) -> "_Position":
        return _Position(self.epoch + 1, 0, self.step, rng.bit_generator.state, _zero_sums(metrics), 0)

    def add(self, loss: float, scores: list, size: int, metrics: list) -> None:
        self.sums["loss"] += loss * size
        for m, score in zip(metrics, scores):
            self.sums[m.name] += score * size
        self.seen += size

    def means(self) -> dict:
        return {k: v / max(self.seen, 1) for k, v in self.sums.items()}

    def as_json(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "step": self.step, "rng": _rng_json(self.rng),
                "sums": self.sums, "seen": self.seen}

    @classmethod
    def from_json(cls, saved: Mapping) -> "_Position":
        return cls(int(saved["epoch"]), int(saved["batch"]), int(saved["step"]), _rng_state(saved["rng"]),
                   {str(k): float(v) for k, v in saved["sums"].items()}, int(saved["seen"]))


def _zero_sums(metrics: list) -> dict:
    return {"loss": 0.0, **{m.name: 0.0 for m in metrics}}


def _rng_json(state: dict) -> dict:
    """A PCG64 state as JSON: its 128-bit integers as decimal strings."""
    if state.get("bit_generator") != "PCG64":
        raise DagradError(f"fit: cannot checkpoint a {state.get('bit_generator')!r} generator's state")
    return {"bit_generator": "PCG64", "state": str(state["state"]["state"]), "inc": str(state["state"]["inc"]),
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def _rng_state(saved: Mapping) -> dict:
    if saved["bit_generator"] != "PCG64" or not all(len(saved[k]) <= 40 for k in ("state", "inc")):
        raise ValueError("the data-order generator's state is not a PCG64 state")
    return {"bit_generator": "PCG64", "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
            "has_uint32": int(saved["has_uint32"]), "uinteger": int(saved["uinteger"])}


class _Checkpointer:
    """Writes fit's checkpoints, when asked for, to one path (each write replaces the last, atomically)."""

    def __init__(self, path: Any, every: Optional[int], graph: "Graph", optimizer: "Optimizer", history: History,
                 settings: dict):
        self.path, self.every = path, every
        self.graph, self.optimizer, self.history, self.settings = graph, optimizer, history, settings

    def due(self, step: int) -> bool:
        return self.path is not None and self.every is not None and step % self.every == 0

    def save(self, at: _Position) -> None:
        if self.path is None:
            return
        from ..checkpoint import save_checkpoint

        info, series = self.history.state()
        loop = {"fit": self.settings, "position": at.as_json(), "history": info}
        save_checkpoint(self.path, self.graph, self.optimizer, loop=loop, arrays=series)


def _resume(path: Any, graph: "Graph", optimizer: "Optimizer", settings: dict,
            rng: np.random.Generator) -> tuple[History, _Position]:
    """Restore parameters and optimizer from a checkpoint; the History and position to go on from."""
    from ..checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    where = f"fit(resume={os.fspath(path)!r})"
    try:
        saved = ckpt.loop["fit"]
        history = History.from_state(ckpt.loop["history"], ckpt.arrays)
        at = _Position.from_json(ckpt.loop["position"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{where}: the checkpoint was not written by fit, or is damaged ({exc})",
                          path=os.fspath(path), part="training") from None
    changed = [f"{k} {settings[k]!r} (checkpoint: {saved.get(k)!r})" for k in settings if saved.get(k) != settings[k]]
    if changed:
        raise DagradError(f"{where}: resuming needs the same data and batches as the run that wrote the checkpoint; "
                          f"changed: {', '.join(changed)}")
    ckpt.restore(graph, optimizer)
    rng.bit_generator.state = at.rng
    return history, at


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
    return {k: v / n for k, v in totals.items()}


def predict(graph: "Graph", output: NodeRef, data: Mapping, *, batch_size: int = 512,
            training: Optional[NodeRef] = "training") -> np.ndarray:
    """The value of ``output`` for every example of ``data``, computed in batches with dropout off.

    Zero examples give an empty array of the output's shape, ``(0, k)`` for
    ``k`` outputs per example.
    """
    arrays, n = _prepare(graph, data, "prediction data", allow_empty=True)
    flag = _training_input(graph, training)
    out_name = _name(output)
    plan = graph.compile([out_name], keep="wrt")
    node = graph.node(out_name)
    if n == 0 and node.shape is not None and node.shape[:1] == (None,) and None not in node.shape[1:]:
        return np.empty((0, *node.shape[1:]), node.dtype)
    parts = []
    for idx in _batches(max(n, 1), batch_size, np.arange(n)):  # zero rows: one empty batch, run for its shape
        feeds = {name: a[idx] for name, a in arrays.items()}
        if flag is not None:
            feeds[flag] = 0
        parts.append(plan.run(feeds).values[out_name])
    return np.concatenate(parts)
