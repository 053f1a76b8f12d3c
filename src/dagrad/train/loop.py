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
import tempfile
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

from ..errors import ClusterError, DagradError, FeedError, FormatError, GraphError, NonFiniteError
from ..interrupts import deferred_interrupt
from ..optim.base import NONFINITE_POLICIES
from .callbacks import Callback
from .history import History, TrainState
from .metrics import Metric, NodeRef, _metric_list, _name
from .progress import in_notebook, progress_bar
from .steps import LocalSteps, StepSpec, batches, evaluation_totals, prepare, training_input

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..optim import Optimizer

__all__ = ["fit", "evaluate", "predict", "apply_updates"]


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
    client: Any = None,
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
    client
        Train data-parallel on a Dask cluster: a ``distributed.Client`` (or a
        ``dagrad.distributed.DataParallel`` holding one, with its settings).
        Every worker computes the gradients of its shard of each batch, the
        cluster sums them, and the optimizer steps here, so the result equals
        training in this process. ``data`` may then hold Dask arrays, which
        stay on the cluster. Needs ``pip install 'dagrad[dask]'``; see
        ``docs/distributed.md``.

    Returns
    -------
    History

    Raises
    ------
    NonFiniteError
        A NaN or Inf loss or gradient, with ``on_nonfinite="raise"``.
    ClusterError
        The Dask cluster could not go on (no workers left, a task that kills
        its workers, the scheduler gone). The last finished step is saved
        first, to ``checkpoint`` or else to a new file in the temporary
        directory: the error's ``checkpoint`` attribute, to resume from.
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
    metric_list = _metric_list(metrics)
    updates = graph.updates  # state the step sets after the optimizer (running statistics): computed by the plan
    outputs = list(dict.fromkeys([loss_name] + [o for m in metric_list for o in m.outputs] + list(updates.values())))
    wrt_names = None if wrt is None else tuple(_name(w) for w in (wrt if isinstance(wrt, (list, tuple)) else [wrt]))
    spec = StepSpec(graph, loss_name, tuple(outputs), wrt_names, training_input(graph, training), tuple(metric_list),
                    check)
    steps = LocalSteps(spec, data, validation) if client is None else _cluster_steps(client, spec, data, validation)
    try:
        n = steps.examples
        steps_per_epoch = n // batch_size if drop_last else math.ceil(n / batch_size)
        if steps_per_epoch == 0:
            raise FeedError(f"fit: drop_last=True with {n} examples and batch_size={batch_size} leaves no batch to "
                            "train on")
        return _loop(steps, optimizer, epochs, batch_size, steps_per_epoch, shuffle=shuffle, seed=seed,
                     drop_last=drop_last, history_every=history_every, callbacks=callbacks, progress=progress, log=log,
                     on_nonfinite=on_nonfinite, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                     resume=resume)
    finally:
        steps.close()


def _cluster_steps(client: Any, spec: StepSpec, data: Mapping, validation: Optional[Mapping]) -> Any:
    """The step executor of ``dagrad.distributed`` (imported only when a fit is given a ``client``)."""
    from ..distributed import cluster_steps

    return cluster_steps(client, spec, data, validation)


def _loop(steps: Any, optimizer: "Optimizer", epochs: int, batch_size: int, steps_per_epoch: int, *,
          shuffle: bool, seed: int, drop_last: bool, history_every: int, callbacks: Sequence[Callback],
          progress: Optional[bool], log: Union[None, bool, Callable[[str], Any]], on_nonfinite: str,
          checkpoint: Any, checkpoint_every: Optional[int], resume: Any) -> History:
    """fit's loop over epochs and batches, each step computed by the executor ``steps``."""
    spec = steps.spec
    graph, loss_name, metric_list, n = spec.graph, spec.loss, list(spec.metrics), steps.examples
    updates = graph.updates
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
            for idx in list(batches(n, batch_size, order, drop_last))[at.batch:]:
                step = state.step + 1
                full = any(cb.wants_full_result(state, step) for cb in callbacks)
                done = steps.run(idx, step, full)
                # The step is committed whole: Ctrl-C lands before or after it, so a checkpoint is exact.
                with deferred_interrupt():
                    if full or step == 1 or step % history_every == 0:
                        history.record(step, epoch, done.loss, optimizer.lr,
                                       {w: done.gradients.grads.get(w) for w in steps.wrt})
                    if _update(optimizer, done.gradients, done.loss, loss_name, step, epoch, on_nonfinite):
                        apply_updates(graph, done.gradients, updates)
                        at.add(done.loss, done.scores, len(idx), metric_list)
                    else:
                        history.skipped.append(step)
                    at.batch += 1
                    at.step = state.step = step
                if saver.due(step):
                    saver.save(at)
                bar.step(at.means())  # this epoch's running means
                for cb in callbacks:
                    cb.on_step_end(state, done.result)
                if state.stop:
                    break
            logs = {"epoch": epoch, **at.means()}
            scores = steps.validate()
            if scores is not None:
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
        saved = None
        if history.interrupted:
            saver.save(at)
            saved = saver.path
        elif isinstance(exc, ClusterError):  # the cluster cannot go on: keep what it trained, to resume from
            saved = exc.checkpoint = saver.rescue(at, exc)
        _attach(exc, history, saved)
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

    def rescue(self, at: _Position, exc: BaseException) -> Optional[str]:
        """Save to the checkpoint path, or to a new file in the temporary directory when fit has none; its path.

        A failure to write is noted on ``exc`` (the error that ended the fit, which the caller re-raises).
        """
        path = self.path
        if path is None:
            stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.graph.name)[:64] or "graph"
            path = os.path.join(tempfile.gettempdir(), f"dagrad-{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.ckpt")
        try:
            self._write(path, at)
        except Exception as failure:  # noqa: BLE001 - the cluster's error stays the one raised
            if hasattr(exc, "add_note"):
                exc.add_note(f"no checkpoint was written to {os.fspath(path)!r}: {failure}")
            return None
        return os.fspath(path)

    def save(self, at: _Position) -> None:
        if self.path is not None:
            self._write(self.path, at)

    def _write(self, path: Any, at: _Position) -> None:
        from ..checkpoint import save_checkpoint

        info, series = self.history.state()
        loop = {"fit": self.settings, "position": at.as_json(), "history": info}
        save_checkpoint(path, self.graph, self.optimizer, loop=loop, arrays=series)


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
    arrays, n = prepare(graph, data, "evaluation data")
    if loss is None and not any(m.outputs for m in metric_list):
        raise DagradError("evaluate needs a loss or at least one metric")
    totals = evaluation_totals(graph, arrays, n, loss=None if loss is None else _name(loss), metrics=metric_list,
                               training=training_input(graph, training), batch_size=batch_size)
    return {k: v / n for k, v in totals.items()}


def predict(graph: "Graph", output: NodeRef, data: Mapping, *, batch_size: int = 512,
            training: Optional[NodeRef] = "training") -> np.ndarray:
    """The value of ``output`` for every example of ``data``, computed in batches with dropout off.

    Zero examples give an empty array of the output's shape, ``(0, k)`` for
    ``k`` outputs per example.
    """
    arrays, n = prepare(graph, data, "prediction data", allow_empty=True)
    flag = training_input(graph, training)
    out_name = _name(output)
    plan = graph.compile([out_name], keep="wrt")
    node = graph.node(out_name)
    if n == 0 and node.shape is not None and node.shape[:1] == (None,) and None not in node.shape[1:]:
        return np.empty((0, *node.shape[1:]), node.dtype)
    parts = []
    for idx in batches(max(n, 1), batch_size, np.arange(n)):  # zero rows: one empty batch, run for its shape
        feeds = {name: a[idx] for name, a in arrays.items()}
        if flag is not None:
            feeds[flag] = 0
        parts.append(plan.run(feeds).values[out_name])
    return np.concatenate(parts)
