"""``ClusterSteps``: fit's step executor on a Dask cluster, the client's side of data-parallel training.

Per step the client sends the parameters once, submits one task per group
of data chunks and a tree of sums over their results, and waits for the
sum: the batch's loss, metrics and parameter gradients, which the fit loop
then uses exactly as it uses a local step's (the optimizer steps here, on the
client, so its state is never lost with a worker).

When something goes wrong while it waits, it tells the cases apart:

* a task ran on a worker that died: Dask re-runs it on another worker,
  and the nanny restarts the dead one (nothing to do here);
* the cluster lost data only the dead worker held (a chunk of numpy data,
  or the step's parameters): the chunks are sent again and the step is
  submitted again, up to ``retries`` times;
* the cluster cannot go on (no worker for ``worker_timeout`` seconds, a task
  that has killed several workers, the scheduler gone): ``ClusterError``,
  after which ``fit`` saves a checkpoint.

Errors raised by dagrad on a worker (a bad feed, a NaN with ``check=True``)
reach the caller as themselves.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import replace
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..errors import ClusterError, DagradError
from ..io import save
from ..result import Result
from ..train.steps import StepOutcome, StepSpec
from .cluster import DataParallel, require_dask
from .shards import Shards, distribute
from .worker import ModelPlugin, Partial, Request, add_partials, shard_evaluation, shard_gradients

__all__ = ["ClusterSteps", "cluster_steps"]

POLL_SECONDS = 0.5


def cluster_steps(client: Any, spec: StepSpec, data: Mapping, validation: Optional[Mapping]) -> "ClusterSteps":
    """The executor for ``fit(..., client=client)``: ``client`` is a ``distributed.Client`` or a ``DataParallel``."""
    require_dask("fit(..., client=...)")
    settings = client if isinstance(client, DataParallel) else DataParallel(client)
    return ClusterSteps(settings, spec, data, validation)


class ClusterSteps:
    """Runs each step on the cluster of ``settings.client``: shards' gradients on the workers, summed there.

    The ``Result`` that callbacks receive at a step is the sum's (the loss
    and the parameters' gradients over the whole batch), except at steps a
    callback asks to draw (``wants_full_result``): then it is the first
    shard's run with every value and gradient, unweighted, as a local step
    over that shard's rows would give it.
    """

    def __init__(self, settings: DataParallel, spec: StepSpec, data: Mapping, validation: Optional[Mapping]):
        self.settings = settings
        self.client = settings.client
        self.spec = spec
        self.fast = spec.plan(full=False)  # compiled here first: a bad request fails before the cluster is used
        self.wrt = self.fast.wrt
        self.name = f"dagrad-fit-{uuid.uuid4().hex[:12]}"
        self.data: Optional[Shards] = None
        self.validation: Optional[Shards] = None
        self.installed = False
        try:
            workers = self._workers()
            timeout = settings.worker_timeout
            self.data = distribute(self.client, spec.graph, data, "data", workers, timeout)
            self.examples = self.data.examples
            if validation is not None:
                self.validation = distribute(self.client, spec.graph, validation, "validation", workers, timeout)
            self._install()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------- setup --

    def _workers(self) -> list[str]:
        """The workers' addresses, sorted; waits up to ``worker_timeout`` for a first one."""
        deadline = time.monotonic() + self.settings.worker_timeout
        while True:
            workers = sorted(self._nthreads())
            if workers:
                return workers
            if time.monotonic() > deadline:
                raise ClusterError(f"the Dask cluster at {self.client.scheduler.address} has no workers "
                                   f"(waited {self.settings.worker_timeout:g}s); start some, or scale the cluster up")
            time.sleep(POLL_SECONDS)

    def _nthreads(self) -> dict:
        if self.client.status != "running":
            raise ClusterError(f"the Dask client is {self.client.status}: its scheduler is gone")
        try:
            return self.client.nthreads()
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"lost the Dask scheduler: {exc}") from None

    def _install(self) -> None:
        """Send the graph to every worker, as a model file, in a worker plugin (which every new worker gets too)."""
        spec = self.spec
        with tempfile.TemporaryDirectory(prefix="dagrad-") as tmp:
            path = os.path.join(tmp, "model.dagrad")
            save(spec.graph, path)
            with open(path, "rb") as f:
                model = f.read()
        request = Request(replace(spec, graph=None), self.settings.reduction, tuple(spec.graph.updates.values()))
        self.installed = True
        try:
            self.client.register_plugin(ModelPlugin(self.name, model, request), name=self.name)
        except DagradError as exc:
            raise ClusterError(f"a Dask worker cannot load graph {spec.graph.name!r}: {exc}. Every worker needs the "
                               "same dagrad and the same op plugins installed as this process") from None

    # ------------------------------------------------------------- steps --

    def run(self, rows: np.ndarray, step: int, full: bool) -> StepOutcome:
        """The batch ``rows`` computed on the cluster: each group of chunks its share, summed by a tree of tasks."""
        spec = self.spec
        total = len(rows)
        groups = len(self.data.groups)

        shown = None

        def pieces() -> list:
            nonlocal shown
            found = self.data.pieces(rows)  # anew each attempt: a chunk sent again is a new future
            shown = found[0].group if full else None
            return found

        def task(piece: Any, tag: str, params: Any) -> Any:
            key = (step - 1) * groups + piece.group + 1  # each shard its own dropout noise; with one shard, the step
            return self.client.submit(
                shard_gradients, self.name, tag, params, piece.count / total, key, piece.group == shown, piece.rows,
                *piece.chunks, key=f"{tag}-shard-{piece.group}", pure=False, **_where(piece))

        part = self._attempt(f"step {step}", pieces, task, self.data)
        self.settings.stats["steps"] += 1
        grads = part.grads
        self.settings.stats["received"] += sum(g.nbytes for g in grads.values())
        loss = np.asarray(part.loss, dtype=spec.graph.node(spec.loss).dtype)
        values = {spec.loss: loss, **part.updates}  # and the state updates' values, which fit then applies
        gradients = Result(spec.graph, values, grads, [], loss=spec.loss, wrt=tuple(self.wrt))
        result = gradients
        if part.shown is not None:
            s = part.shown
            result = Result(spec.graph, s["values"], s["grads"], s["order"], loss=spec.loss, wrt=s["wrt"],
                            edge_norms=s["edge_norms"])
        return StepOutcome(float(part.loss), [v / total for v in part.scores], gradients, result)

    def validate(self) -> Optional[dict[str, float]]:
        """Mean loss and metrics over the validation data, each worker evaluating its chunks.

        Called once per epoch, it also looks again where the training data
        is, in case Dask recomputed lost chunks on other workers.
        """
        self.data.find_homes()
        if self.validation is None:
            return None
        self.validation.find_homes()

        def task(piece: Any, tag: str, params: Any) -> Any:
            return self.client.submit(shard_evaluation, self.name, tag, params, *piece.chunks,
                                      key=f"{tag}-eval-{piece.group}", pure=False, **_where(piece))

        part = self._attempt("validation", self.validation.everything, task, self.validation)
        names = ["loss"] + [m.name for m in self.spec.metrics]
        return {name: value / part.rows for name, value in zip(names, part.scores)}

    def _attempt(self, what: str, pieces: Callable[[], list], task: Callable[[Any, str, Any], Any],
                 shards: Shards) -> Partial:
        """Send the parameters, submit a task per piece and their sum, and wait; again after a loss of data."""
        settings = self.settings
        lost: Optional[_Lost] = None
        for attempt in range(settings.retries + 1):
            tag = f"{self.name}-{what.replace(' ', '')}-{attempt}-{uuid.uuid4().hex[:6]}"
            try:
                if lost is not None:
                    settings.stats["retries"] += 1
                    self._workers()  # at least one worker, or ClusterError
                    settings.stats["resent"] += self._guarded(shards.recover)
                work = pieces()
                params = self._send_params([piece.home for piece in work], tag)
                parts = [task(piece, tag, params.get(piece.home, params[None])) for piece in work]
                return self._wait(self._sum(parts, tag), what)
            except _Lost as exc:
                lost = exc
        raise ClusterError(f"{what}: the cluster lost data the step needed {settings.retries + 1} times in a row "
                           f"({lost}); giving up")

    def _send_params(self, homes: list, tag: str) -> dict:
        """The parameters being trained, sent once, then spread over ``homes`` by a doubling tree on the cluster.

        Returns, for each worker in ``homes`` (and ``None``: anywhere), the
        future its tasks should read the parameters from. The client sends
        them to the first worker only; rather than every other worker
        fetching them from that one (``N - 1`` copies out of one machine),
        each worker that has them passes them on to one more each round, so
        they reach ``N`` workers in ``log2 N`` rounds. The last round's
        workers fetch them as their tasks' input, with no task of their own.
        """
        graph = self.spec.graph
        live = graph.params
        params = {name: live[name] for name in self.wrt if name in live}  # the others never change in this fit...
        params.update({name: graph.value(name) for name in graph.updates})  # ...but for the state updates
        targets = list(dict.fromkeys(h for h in homes if h is not None))
        first = targets[:1] or None
        try:
            sent = self._guarded(self.client.scatter, [params], workers=first, hash=False,
                                 timeout=self.settings.worker_timeout)[0]
        except KeyError as exc:  # the scheduler no longer knows that worker: it died since we looked
            raise _Lost(f"worker {exc} is gone") from None
        self.settings.stats["sent"] += sum(p.nbytes for p in params.values())
        at = {None: sent}
        if not targets:
            return at
        at[targets[0]] = sent
        have, waiting = targets[:1], targets[1:]
        while waiting:
            new, waiting = waiting[:len(have)], waiting[len(have):]
            for source, target in zip(have, new):
                at[target] = at[source] if not waiting else self.client.submit(
                    _same, at[source], key=f"{tag}-params-{target}", workers=[target], allow_other_workers=True)
            have = have + new
        return at

    def _guarded(self, send: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``send(...)``; failing to reach the workers is a loss (the step is tried again), the scheduler a ClusterError."""
        try:
            return send(*args, **kwargs)
        except (OSError, TimeoutError) as exc:
            self._nthreads()
            raise _Lost(f"could not send to the workers: {exc}") from None

    def _sum(self, parts: list, tag: str) -> Any:
        """A tree of pairwise sums over ``parts`` on the cluster, in a fixed order: its root."""
        level = 0
        while len(parts) > 1:
            pairs = [self.client.submit(add_partials, parts[i], parts[i + 1], key=f"{tag}-sum-{level}-{i // 2}")
                     for i in range(0, len(parts) - 1, 2)]
            parts = pairs + (parts[-1:] if len(parts) % 2 else [])
            level += 1
        return parts[0]

    def _wait(self, future: Any, what: str) -> Partial:
        """The future's result, watching the cluster while waiting; see the module's docstring for the cases."""
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError

        alone_since = None
        while True:
            try:
                return future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                pass
            except KilledWorker as exc:
                raise ClusterError(f"{what}: a task was running on each of several workers when they died, so Dask "
                                   f"gave up on it ({exc}); a worker running out of memory is the usual cause") from None
            except FutureCancelledError as exc:
                self._nthreads()  # the scheduler gone: ClusterError
                raise _Lost(str(exc)) from None
            except OSError as exc:
                self._nthreads()
                raise _Lost(str(exc)) from None
            if self._nthreads():
                alone_since = None
                continue
            alone_since = alone_since or time.monotonic()
            if time.monotonic() - alone_since > self.settings.worker_timeout:
                raise ClusterError(f"{what}: the Dask cluster has had no workers for "
                                   f"{self.settings.worker_timeout:g}s") from None

    # ----------------------------------------------------------- closing --

    def close(self) -> None:
        """Remove the model from the workers and free the data on the cluster (quietly, if the cluster is gone)."""
        for shards in (self.data, self.validation):
            if shards is not None:
                shards.release()
        if self.installed and self.client.status == "running":
            try:
                self.client.unregister_worker_plugin(self.name)
            except Exception:  # noqa: BLE001 - a cluster failing while we leave has nothing left to tell us
                pass
        self.installed = False


def _same(params: dict) -> dict:
    """A copy of the parameters on this worker, for the workers it passes them on to."""
    return params


def _where(piece: Any) -> dict:
    """Run a piece's task on the worker holding its data (or, if that worker is gone, anywhere)."""
    return {"workers": [piece.home], "allow_other_workers": True} if piece.home else {}


class _Lost(Exception):
    """The cluster lost something a step needed; the step can be sent again."""
