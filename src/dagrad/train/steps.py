"""How ``fit`` computes one training step: the step-executor protocol, and the local executor.

``fit`` owns the loop: the data order, the optimizer step, the History,
callbacks, checkpoints and the progress bar. A *step executor* owns where
and how the loss, metrics and parameter gradients of one batch are
computed. ``LocalSteps`` runs the graph's compiled plan in this process;
``dagrad.distributed`` runs the same plan on the workers of a Dask cluster,
each on its shard of the batch, and sums their gradients. Both hand the loop
the same ``StepOutcome``, so everything the loop does around a step (and
every test of it) holds for both.

The data helpers (checking feeds against the graph's inputs, cutting batches,
finding the dropout switch, summing losses and metrics over a data set) live
here too, because every executor needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import FeedError, GraphError
from ..scheduler.runtime import coerce_feed
from .metrics import Metric, NodeRef, _name

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..result import Result

__all__ = ["StepSpec", "StepOutcome", "LocalSteps", "prepare", "batches", "training_input", "evaluation_totals"]


# ------------------------------------------------------------------ data ---


def prepare(graph: "Graph", data: Mapping, what: str, *, allow_empty: bool = False,
            as_array: Callable[[Any], Any] = np.asarray) -> tuple[dict, int]:
    """The data as ``{input name: array in the input's dtype}`` and its number of examples (at least one).

    ``as_array`` turns each value into an array; the default makes numpy
    arrays, and ``dagrad.distributed`` passes one that keeps Dask arrays lazy
    (anything with ``ndim``, ``dtype`` and a leading length works).
    """
    if not isinstance(data, Mapping) or not data:
        raise FeedError(f"{what} must be a non-empty dict of input name -> array, not {type(data).__name__}")
    arrays = {}
    sizes = {}
    for key, value in data.items():
        name = _name(key)
        if name not in graph or graph.node(name).op != "input":
            raise FeedError(f"{what}: {name!r} is not an input of graph {graph.name!r} (inputs: {', '.join(graph.inputs)})")
        node = graph.node(name)
        array = as_array(value)
        if array.ndim == 0:
            raise FeedError(f"{what}: {name!r} must have a leading example axis, got a scalar")
        if array.dtype != node.dtype and isinstance(array, np.ndarray):
            # converted once for all batches, refused if values would change; a Dask array stays as it is, and
            # each worker converts its batches, with the same checks, as it feeds them
            array = coerce_feed(f"{what}: {name}", array, None, node.dtype)
        arrays[name] = array
        sizes[name] = len(array)
    if len(set(sizes.values())) != 1:
        raise FeedError(f"{what}: inputs have different numbers of examples: {sizes}")
    n = next(iter(sizes.values()))
    if n == 0 and not allow_empty:
        raise FeedError(f"{what} has no examples: a loss or metric over nothing has no value")
    return arrays, n


def batches(n: int, batch_size: int, order: np.ndarray, drop_last: bool = False):
    """The example indices of each batch, in ``order``: slices of ``batch_size`` (the last one may be smaller)."""
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def training_input(graph: "Graph", training: Optional[NodeRef]) -> Optional[str]:
    """The input that switches training behaviour (dropout) on, if the graph has it."""
    if training is None:
        return None
    name = _name(training)
    if name not in graph:
        return None
    if graph.node(name).op != "input":
        raise GraphError(f"training={name!r} must name an input, but it is a {graph.node(name).kind}")
    return name


def evaluation_totals(graph: "Graph", arrays: Mapping[str, np.ndarray], n: int, *, loss: Optional[str],
                      metrics: Sequence[Metric], training: Optional[str], batch_size: int) -> dict[str, float]:
    """The loss and each metric summed over all ``n`` examples (each batch's mean times its size), dropout off.

    Sums rather than means, so that parts of a data set (a cluster's shards)
    add up; ``evaluate`` divides by ``n``.
    """
    outputs = ([loss] if loss is not None else []) + [o for m in metrics for o in m.outputs]
    plan = graph.compile(list(dict.fromkeys(outputs)), keep="wrt")
    totals = {**({"loss": 0.0} if loss is not None else {}), **{m.name: 0.0 for m in metrics}}
    for idx in batches(n, batch_size, np.arange(n)):
        feeds = {name: a[idx] for name, a in arrays.items()}
        if training is not None:
            feeds[training] = 0
        result = plan.run(feeds)
        if loss is not None:
            totals["loss"] += float(result.values[loss]) * len(idx)
        for m in metrics:
            totals[m.name] += m(result.values, feeds) * len(idx)
    return totals


# ------------------------------------------------------------ executors ---


@dataclass(frozen=True)
class StepSpec:
    """What a training step computes, whoever runs it.

    Attributes
    ----------
    graph, loss
        The network (``None`` in the copy sent to cluster workers, which
        load their own) and the name of its scalar loss.
    outputs
        The values every step keeps: the loss and what the metrics read.
    wrt
        The parameters asked for (``None``: every trainable param).
    training
        The input fed the step's noise key (dropout), if the graph has one.
    metrics
        The metrics computed on every batch.
    check
        Check every value and gradient for NaN/Inf.
    """

    graph: Optional["Graph"]
    loss: str
    outputs: tuple
    wrt: Optional[tuple]
    training: Optional[str]
    metrics: tuple
    check: Optional[bool]

    def plan(self, full: bool):
        """The compiled plan of a step: ``keep="all"`` for a step a callback draws, else the fast ``keep="wrt"``."""
        return self.graph.compile(list(self.outputs), loss=self.loss, wrt=self.wrt, keep="all" if full else "wrt")

    def scores(self, values: Mapping, feeds: Mapping) -> list[float]:
        """Each metric on one batch."""
        return [m(values, feeds) for m in self.metrics]

    def validation_totals(self, arrays: Mapping[str, np.ndarray], n: int) -> dict[str, float]:
        """The loss and each metric summed over ``n`` validation examples (``evaluation_totals``, batches of 512).

        Locally over the whole validation set, on a cluster over one worker's chunks.
        """
        return evaluation_totals(self.graph, arrays, n, loss=self.loss, metrics=self.metrics, training=self.training,
                                 batch_size=512)


@dataclass
class StepOutcome:
    """What one step computed, for the fit loop.

    Attributes
    ----------
    loss, scores
        The batch's loss and each metric on it.
    gradients
        A ``Result`` whose ``grads`` are the batch's parameter gradients: what
        the optimizer steps with and the History records.
    result
        The ``Result`` callbacks receive in ``on_step_end``. Locally it is
        ``gradients`` itself; on a cluster, see ``dagrad.distributed``.
    """

    loss: float
    scores: list
    gradients: "Result"
    result: "Result"


class LocalSteps:
    """Runs every step in this process: the batch's rows through the graph's compiled plan.

    A step executor has ``examples`` (the number of training examples),
    ``wrt`` (the parameters that get gradients), ``run(rows, step, full)``
    returning a ``StepOutcome``, ``validate()`` returning the validation
    scores (or ``None`` without validation data) and ``close()``.
    """

    def __init__(self, spec: StepSpec, data: Mapping, validation: Optional[Mapping]):
        self.spec = spec
        self.arrays, self.examples = prepare(spec.graph, data, "data")
        self.validation = None
        if validation is not None:
            self.validation = prepare(spec.graph, validation, "validation")
        self.fast = spec.plan(full=False)
        self.wrt = self.fast.wrt

    def run(self, rows: np.ndarray, step: int, full: bool) -> StepOutcome:
        """Forward and backward over the examples ``rows``; the dropout key is ``step``."""
        spec = self.spec
        feeds = {name: a[rows] for name, a in self.arrays.items()}
        if spec.training is not None:
            feeds[spec.training] = step
        plan = spec.plan(full=True) if full else self.fast
        result = plan.run(feeds, check=spec.check)
        return StepOutcome(float(result.values[spec.loss]), spec.scores(result.values, feeds), result, result)

    def validate(self) -> Optional[dict[str, float]]:
        """Mean loss and metrics over the validation data, or ``None`` without it."""
        if self.validation is None:
            return None
        arrays, n = self.validation
        return {k: v / n for k, v in self.spec.validation_totals(arrays, n).items()}

    def close(self) -> None:
        """Nothing to release locally."""
