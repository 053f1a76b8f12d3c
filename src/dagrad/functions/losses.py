"""Losses with PyTorch's functional signatures (``torch.nn.functional.cross_entropy``, ...).

Options come after the tensors by keyword; the class axis defaults to the last axis, as
softmax's does (PyTorch's is 1).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import GraphError
from ..tensor import Tensor, apply
from .common import optional_inputs

__all__ = [
    "softmax_cross_entropy", "binary_cross_entropy_with_logits", "mse", "nll_loss", "cross_entropy", "l1_loss",
    "smooth_l1_loss", "huber_loss", "kl_div", "cosine_similarity", "cosine_embedding_loss"
]


def softmax_cross_entropy(logits: Tensor, labels: Any, reduction: str = "mean", *, name: Optional[str] = None) -> Tensor:
    """Cross-entropy of integer ``labels`` under ``softmax(logits)``, fused and stable."""
    return apply("softmax_cross_entropy", logits, labels, reduction=reduction, name=name)


def binary_cross_entropy_with_logits(logits: Tensor, targets: Any, reduction: str = "mean", *, weight: Any = None,
                                     pos_weight: Any = None, name: Optional[str] = None) -> Tensor:
    """Binary cross-entropy of ``targets`` under ``sigmoid(logits)``, stable.

    ``weight`` scales each entry's loss and ``pos_weight`` the positive term
    (both broadcast), as in PyTorch; with either, the node is a
    ``weighted_binary_cross_entropy_with_logits``.
    """
    if weight is None and pos_weight is None:
        return apply("binary_cross_entropy_with_logits", logits, targets, reduction=reduction, name=name)
    return apply("weighted_binary_cross_entropy_with_logits", logits, targets, 1.0 if weight is None else weight,
                 1.0 if pos_weight is None else pos_weight, reduction=reduction, name=name)


def mse(prediction: Tensor, target: Any, reduction: str = "mean", *, name: Optional[str] = None) -> Tensor:
    """Squared error, reduced."""
    return apply("mse", prediction, target, reduction=reduction, name=name)


def nll_loss(input: Tensor, target: Any, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean",
             axis: int = -1, name: Optional[str] = None) -> Tensor:
    """Negative log-likelihood of class indices ``target`` under log-probabilities ``input`` (classes on ``axis``)."""
    return apply("nll_loss", input, target, *optional_inputs(weight), axis=axis, ignore_index=ignore_index,
                 reduction=reduction, name=name)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, *, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0, axis: int = -1,
                  name: Optional[str] = None) -> Tensor:
    """Softmax cross-entropy of class indices (integer ``target``) or class probabilities (float ``target``).

    PyTorch's ``cross_entropy``: class ``weight``, ``ignore_index`` (class
    indices only) and ``label_smoothing``; integer targets make a
    ``cross_entropy`` node, probabilities (the input's shape) a ``soft_cross_entropy`` node.
    """
    dtype = target.dtype if isinstance(target, Tensor) else np.asarray(target).dtype
    if dtype.kind in "iu":
        return apply("cross_entropy", input, target, *optional_inputs(weight), axis=axis, ignore_index=ignore_index,
                     reduction=reduction, label_smoothing=label_smoothing, name=name)
    if ignore_index != -100:
        raise GraphError("cross_entropy: ignore_index applies to class-index targets, not to probabilities")
    return apply("soft_cross_entropy", input, target, *optional_inputs(weight), axis=axis, reduction=reduction,
                 label_smoothing=label_smoothing, name=name)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean", *, name: Optional[str] = None) -> Tensor:
    """Absolute error ``|input - target|``, reduced."""
    return apply("l1_loss", input, target, reduction=reduction, name=name)


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean", beta: float = 1.0, *,
                   name: Optional[str] = None) -> Tensor:
    """Squared error below ``beta`` (halved, over ``beta``), absolute error above, reduced."""
    return apply("smooth_l1_loss", input, target, reduction=reduction, beta=beta, name=name)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0, *,
               name: Optional[str] = None) -> Tensor:
    """Halved squared error below ``delta``, ``delta`` times the absolute error above, reduced."""
    return apply("huber_loss", input, target, reduction=reduction, delta=delta, name=name)


def kl_div(input: Tensor, target: Any, reduction: str = "mean", log_target: bool = False, *,
           name: Optional[str] = None) -> Tensor:
    """KL divergence of ``target`` from log-probabilities ``input``; ``reduction="batchmean"`` is per example."""
    return apply("kl_div", input, target, reduction=reduction, log_target=log_target, name=name)


def cosine_similarity(x1: Tensor, x2: Any, axis: int = -1, eps: float = 1e-8, *, name: Optional[str] = None) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``axis`` (norms clamped at ``eps``)."""
    return apply("cosine_similarity", x1, x2, axis=axis, eps=eps, name=name)


def cosine_embedding_loss(input1: Tensor, input2: Any, target: Any, margin: float = 0.0, reduction: str = "mean", *,
                          name: Optional[str] = None) -> Tensor:
    """``1 - cos`` for pairs labelled 1, ``max(0, cos - margin)`` for pairs labelled -1 (last axis), reduced."""
    return apply("cosine_embedding_loss", input1, input2, target, margin=margin, reduction=reduction, name=name)
