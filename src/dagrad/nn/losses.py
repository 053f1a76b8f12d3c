"""Losses for training, as thin wrappers over the fused built-in loss ops.

Each returns a scalar Tensor with ``reduction="mean"`` (the default) or
``"sum"``; ``"none"`` keeps one loss per example. The built-ins are fused
(softmax and log together, sigmoid and log together), so they neither
overflow for large logits nor lose the gradient to rounding.

Examples
--------
>>> import numpy as np, dagrad as dg
>>> g = dg.Graph()
>>> logits = g.input("logits", shape=(None, 3))
>>> labels = g.input("labels", shape=(None,), dtype="int64")
>>> loss = dg.nn.cross_entropy(logits, labels)
>>> res = g.forward(loss, {"logits": np.zeros((2, 3)), "labels": [0, 2]})
>>> bool(np.isclose(res.value(loss), np.log(3)))
True
"""

from __future__ import annotations

from typing import Any, Optional

from .. import functions as F
from ..errors import GraphError
from ..tensor import Tensor

__all__ = ["cross_entropy", "binary_cross_entropy", "mse", "REDUCTIONS"]

REDUCTIONS = ("mean", "sum", "none")


def _checked(reduction: str, loss: str) -> str:
    if reduction not in REDUCTIONS:
        raise GraphError(f"{loss}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, not {reduction!r}")
    return reduction


def cross_entropy(logits: Tensor, labels: Any, reduction: str = "mean", *, name: Optional[str] = "loss") -> Tensor:
    """Softmax cross-entropy of integer class ``labels`` (shape ``(batch,)``) given ``logits`` (``(batch, classes)``)."""
    return F.softmax_cross_entropy(logits, labels, _checked(reduction, "cross_entropy"), name=name)


def binary_cross_entropy(logits: Tensor, targets: Any, reduction: str = "mean", *, name: Optional[str] = "loss") -> Tensor:
    """Binary cross-entropy of ``targets`` in [0, 1] given ``logits`` (before the sigmoid)."""
    return F.binary_cross_entropy_with_logits(logits, targets, _checked(reduction, "binary_cross_entropy"), name=name)


def mse(prediction: Tensor, target: Any, reduction: str = "mean", *, name: Optional[str] = "loss") -> Tensor:
    """Mean (or summed) squared error ``(prediction - target) ** 2``."""
    return F.mse(prediction, target, _checked(reduction, "mse"), name=name)
