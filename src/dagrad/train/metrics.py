"""Metrics: numbers computed from a batch's values and feeds, averaged over examples by the fit loop."""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence, Union

import numpy as np

from ..tensor import Tensor

__all__ = ["Metric", "accuracy"]

NodeRef = Union[str, Tensor]


def _name(ref: NodeRef) -> str:
    return getattr(ref, "name", ref)


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
