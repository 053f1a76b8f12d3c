"""What runs on a Dask worker: the model it keeps, and the tasks of one training step.

The model reaches every worker once, as the bytes of a dagrad model file,
inside a Dask *worker plugin*. The scheduler keeps the plugin and installs it
on every worker that joins, so a worker the nanny restarts after a crash
loads the model again before it runs a task: this is what lets a step be
retried anywhere. The plugin loads the file through ``dagrad.load``, the same
safe path as a file from anyone, and refuses an op provided by another
plugin than on the client, so that every worker computes what the client
would.

Each step the client sends the current parameters once, and for each shard
a task ``shard_gradients`` that computes the loss, metrics and parameter
gradients of that shard's rows of the batch, weighted by the shard's share
of the batch; ``add_partials`` sums two shards' results, and a tree of such
sums runs on the cluster.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

import numpy as np

from ..io import load
from ..train.steps import StepSpec

__all__ = ["Request", "ModelPlugin", "Partial", "shard_gradients", "shard_evaluation", "add_partials"]

try:
    from distributed import WorkerPlugin, get_worker
except ImportError:  # pragma: no cover - the package imports without dask; using it needs dask (checked on use)
    WorkerPlugin = object
    get_worker = None


@dataclass(frozen=True)
class Request:
    """What the workers compute: the step (its ``StepSpec`` without the graph), the loss's reduction, the state updates.

    Each worker puts the graph it loaded from the model file into ``spec``.
    """

    spec: StepSpec
    reduction: str
    updates: tuple = ()


class ModelPlugin(WorkerPlugin):
    """Installs one fit's model on a worker: the graph loaded from model-file bytes, and a lock to run it under."""

    def __init__(self, name: str, model: bytes, request: Request):
        self.name = name
        self.model = model
        self.request = request
        self.spec: Optional[StepSpec] = None  # the request's, with the graph loaded here
        self.lock = threading.Lock()
        self.params_key: Optional[str] = None

    def __getstate__(self) -> dict:  # what travels to the workers: the file's bytes, never a live graph
        return {"name": self.name, "model": self.model, "request": self.request}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name"], state["model"], state["request"])

    def setup(self, worker: Any) -> None:
        """Load the model from its bytes, written to a file in the worker's own directory and removed at once."""
        directory = getattr(worker, "local_directory", None) or None
        path = os.path.join(directory or ".", f"{self.name}-{uuid.uuid4().hex}.dagrad")
        with open(path, "wb") as f:
            f.write(self.model)
        try:
            self.spec = replace(self.request.spec, graph=load(path, on_provider_change="error"))
        finally:
            os.unlink(path)

    def teardown(self, worker: Any) -> None:
        self.spec = None

    def use_params(self, key: str, params: dict) -> None:
        """Put this step's parameters into the graph, unless they are there already (several shards, one worker)."""
        if key != self.params_key:
            for name, value in params.items():
                self.spec.graph.set_value(name, value)
            self.params_key = key


@dataclass
class Partial:
    """One shard's (or a sum of shards') contribution to a step: weighted gradients, loss, metric sums, rows.

    ``loss`` and ``grads`` are already weighted by the shard's share of the
    batch, so that sums of partials are the batch's; ``scores`` are each
    metric times the shard's number of rows. ``updates`` are the values of the
    state update nodes (running statistics): floats times the share of rows,
    so that they add up to the shards' average, other dtypes the first
    shard's. ``shown`` is the first shard's unweighted ``keep="all"`` run, for
    callbacks that draw a step.
    """

    grads: dict
    loss: float
    scores: list
    rows: int
    shown: Optional[dict] = field(default=None)
    updates: dict = field(default_factory=dict)


def _partial_size(part: Partial) -> int:
    """Bytes a Partial holds, for Dask's memory accounting and its choice of worker (it would guess ~56)."""
    size = 64 + sum(a.nbytes for group in (part.grads, part.updates) for a in group.values()) + 8 * len(part.scores)
    if part.shown is not None:
        size += sum(a.nbytes for group in ("values", "grads") for a in part.shown[group].values())
    return size


try:
    from dask.sizeof import sizeof as _sizeof
except ImportError:  # pragma: no cover - without dask nothing asks
    pass
else:
    _sizeof.register(Partial)(_partial_size)


def _model(name: str) -> ModelPlugin:
    plugin = get_worker().plugins.get(name)
    if plugin is None or plugin.spec is None:
        raise RuntimeError(f"dagrad: this worker has no model {name!r}; the fit that installed it has ended")
    return plugin


def _feeds(chunks: Sequence[dict], rows: Sequence[np.ndarray]) -> dict:
    """The batch's rows of each input, from the chunks this task was given (in order)."""
    if len(chunks) == 1:
        return {name: a[rows[0]] for name, a in chunks[0].items()}
    return {name: np.concatenate([c[name][r] for c, r in zip(chunks, rows)]) for name in chunks[0]}


def shard_gradients(name: str, params_key: str, params: dict, share: float, key: float, show: bool,
                    rows: Sequence[np.ndarray], *chunks: dict) -> Partial:
    """Loss, metrics and parameter gradients over ``rows`` of ``chunks``, which are ``share`` of the batch's rows.

    ``key`` is the dropout noise key of this shard at this step; ``show``
    asks for the whole ``keep="all"`` run as well (unweighted), to draw it.
    """
    model = _model(name)
    spec = model.spec
    weight = share if model.request.reduction == "mean" else 1.0
    feeds = _feeds(chunks, rows)
    with model.lock:
        model.use_params(params_key, params)
        if spec.training is not None:
            feeds[spec.training] = key
        result = spec.plan(show).run(feeds, check=spec.check)
        wrt = spec.plan(False).wrt  # compiled once, then cached by the graph
    count = len(next(iter(feeds.values())))
    grads = {}
    for w in wrt:
        g = result.grads.get(w)
        if g is not None:
            grads[w] = g * g.dtype.type(weight)
    shown = None
    if show:
        shown = {"values": result.values, "grads": result.grads, "order": result.order, "wrt": result.wrt,
                 "edge_norms": result.edge_norms}
    updates = {}
    for node in model.request.updates:
        value = result.values[node]
        updates[node] = value * value.dtype.type(share) if value.dtype.kind == "f" else value
    scores = [score * count for score in spec.scores(result.values, feeds)]
    return Partial(grads, float(result.values[spec.loss]) * weight, scores, count, shown, updates)


def shard_evaluation(name: str, params_key: str, params: dict, *chunks: dict) -> Partial:
    """Loss and metrics summed over every row of ``chunks``, dropout off (``Partial.scores``: loss first)."""
    model = _model(name)
    spec = model.spec
    arrays = chunks[0] if len(chunks) == 1 else {n: np.concatenate([c[n] for c in chunks]) for n in chunks[0]}
    count = len(next(iter(arrays.values())))
    with model.lock:
        model.use_params(params_key, params)
        totals = spec.validation_totals(arrays, count)
    return Partial({}, 0.0, list(totals.values()), count)


def add_partials(a: Partial, b: Partial) -> Partial:
    """The sum of two partial results (one node of the reduction tree)."""
    grads = dict(a.grads)
    for name, g in b.grads.items():
        grads[name] = grads[name] + g if name in grads else g
    updates = dict(a.updates)
    for node, value in b.updates.items():
        if node not in updates:
            updates[node] = value
        elif value.dtype.kind == "f":
            updates[node] = updates[node] + value
    return Partial(grads, a.loss + b.loss, [x + y for x, y in zip(a.scores, b.scores)], a.rows + b.rows,
                   a.shown if a.shown is not None else b.shown, updates)
