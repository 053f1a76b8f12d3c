"""Losses for training, as thin wrappers over the fused built-in loss ops (PyTorch's, by the same names).

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

__all__ = ["cross_entropy", "binary_cross_entropy", "mse", "nll_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
           "kl_div", "cosine_embedding_loss", "REDUCTIONS"]

REDUCTIONS = ("mean", "sum", "none")


def _checked(reduction: str, loss: str, allowed: tuple = REDUCTIONS) -> str:
    if reduction not in allowed:
        raise GraphError(f"{loss}: reduction must be one of {', '.join(map(repr, allowed))}, not {reduction!r}")
    return reduction


def cross_entropy(logits: Tensor, labels: Any, reduction: str = "mean", *, weight: Any = None, ignore_index: int = -100,
                  label_smoothing: float = 0.0, axis: int = -1, name: Optional[str] = "loss") -> Tensor:
    """Softmax cross-entropy of class ``labels`` given ``logits`` (classes on ``axis``, the last by default).

    Integer labels (``logits`` without the class axis: ``(batch,)`` for
    ``(batch, classes)``) or class probabilities (the logits' shape), with
    PyTorch's options: class ``weight`` (the mean then divides by the total
    weight), ``ignore_index`` (those labels count for nothing) and
    ``label_smoothing``. Pass ``axis=1`` for PyTorch's ``(N, C, d1, ...)`` layout.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> scores = dg.Graph().param("scores", np.zeros((2, 3)))
    >>> hard = dg.nn.cross_entropy(scores, np.array([1, -1]), ignore_index=-1, name="hard")
    >>> soft = dg.nn.cross_entropy(scores, np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]), name="soft")
    >>> hard.op, soft.op
    ('cross_entropy', 'soft_cross_entropy')
    >>> res = scores.graph.forward([hard, soft])
    >>> bool(np.isclose(res.value(hard), np.log(3)))     # the -1 label is left out of the mean
    True
    """
    return F.cross_entropy(logits, labels, weight, ignore_index=ignore_index,
                           reduction=_checked(reduction, "cross_entropy"), label_smoothing=label_smoothing, axis=axis,
                           name=name)


def binary_cross_entropy(logits: Tensor, targets: Any, reduction: str = "mean", *, weight: Any = None,
                         pos_weight: Any = None, name: Optional[str] = "loss") -> Tensor:
    """Binary cross-entropy of ``targets`` in [0, 1] given ``logits`` (before the sigmoid).

    ``weight`` scales each entry's loss, ``pos_weight`` the positive term (for
    a class with few positives, ``negatives / positives``); both broadcast.
    """
    return F.binary_cross_entropy_with_logits(logits, targets, _checked(reduction, "binary_cross_entropy"),
                                              weight=weight, pos_weight=pos_weight, name=name)


def mse(prediction: Tensor, target: Any, reduction: str = "mean", *, name: Optional[str] = "loss") -> Tensor:
    """Mean (or summed) squared error ``(prediction - target) ** 2``."""
    return F.mse(prediction, target, _checked(reduction, "mse"), name=name)


def nll_loss(log_probs: Tensor, labels: Any, reduction: str = "mean", *, weight: Any = None, ignore_index: int = -100,
             axis: int = -1, name: Optional[str] = "loss") -> Tensor:
    """Negative log-likelihood of integer ``labels`` given log-probabilities (after ``log_softmax``)."""
    return F.nll_loss(log_probs, labels, weight, ignore_index=ignore_index, reduction=_checked(reduction, "nll_loss"),
                      axis=axis, name=name)


def l1_loss(prediction: Tensor, target: Any, reduction: str = "mean", *, name: Optional[str] = "loss") -> Tensor:
    """Mean (or summed) absolute error ``|prediction - target|``."""
    return F.l1_loss(prediction, target, _checked(reduction, "l1_loss"), name=name)


def smooth_l1_loss(prediction: Tensor, target: Any, reduction: str = "mean", *, beta: float = 1.0,
                   name: Optional[str] = "loss") -> Tensor:
    """Squared error (halved, over ``beta``) for errors below ``beta``, absolute error above: robust to outliers."""
    return F.smooth_l1_loss(prediction, target, _checked(reduction, "smooth_l1_loss"), beta, name=name)


def huber_loss(prediction: Tensor, target: Any, reduction: str = "mean", *, delta: float = 1.0,
               name: Optional[str] = "loss") -> Tensor:
    """Halved squared error for errors below ``delta``, ``delta`` times the absolute error above."""
    return F.huber_loss(prediction, target, _checked(reduction, "huber_loss"), delta, name=name)


def kl_div(log_probs: Tensor, target: Any, reduction: str = "mean", *, log_target: bool = False,
           name: Optional[str] = "loss") -> Tensor:
    """KL divergence of ``target`` from the distribution with log-probabilities ``log_probs``.

    ``reduction="batchmean"`` gives the divergence per example (the sum over
    classes, averaged over axis 0), which is what KL means; the default
    ``"mean"`` averages over every entry, as PyTorch's default does.
    """
    return F.kl_div(log_probs, target, _checked(reduction, "kl_div", REDUCTIONS + ("batchmean",)), log_target,
                    name=name)


def cosine_embedding_loss(x1: Tensor, x2: Any, labels: Any, reduction: str = "mean", *, margin: float = 0.0,
                          name: Optional[str] = "loss") -> Tensor:
    """``1 - cos(x1, x2)`` for pairs labelled 1, ``max(0, cos - margin)`` for pairs labelled -1 (last axis)."""
    return F.cosine_embedding_loss(x1, x2, labels, margin, _checked(reduction, "cosine_embedding_loss"), name=name)
