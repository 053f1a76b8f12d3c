"""Losses, fused for numerical stability: softmax cross-entropy, binary cross-entropy with logits, MSE.

Each takes ``reduction="mean" | "sum" | "none"``.
"""

from __future__ import annotations

import math

import numpy as np

from ..opdef import Sample, first_dtype, op
from ..shapes import broadcast_shapes, format_shape
from .adjoints import reduced_count
from .samples import away_from_zero, uniform

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.sum() / losses.size if losses.size else np.zeros((), losses.dtype)
    return losses


def _reduced_rule(shape, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, not {reduction!r}")
    return () if reduction != "none" else tuple(shape)


def _scale(g: np.ndarray, count: int, reduction: str) -> np.ndarray:
    """The upstream gradient of each of ``count`` elements before reduction."""
    if reduction == "mean":
        return np.asarray(g / max(count, 1))
    return np.asarray(g)


# ------------------------------------------------- softmax cross-entropy ---


def _sce_rule(logits, labels, *, reduction="mean"):
    if len(logits) < 1:
        raise ValueError("logits need a class axis")
    batch = tuple(logits[:-1])
    if len(labels) != len(batch) or any(a is not None and b is not None and a != b for a, b in zip(labels, batch)):
        raise ValueError(f"labels of shape {format_shape(labels)} do not match logits {format_shape(logits)} (expected {format_shape(batch)})")
    return _reduced_rule(batch, reduction)


def _sce_dtype(logits, labels, *, reduction="mean"):
    if labels.kind not in "iu":
        raise TypeError(f"labels must be integers, not {labels}")
    return np.dtype(logits) if np.dtype(logits).kind == "f" else np.dtype("float64")


def _sce_samples(rng):
    out = []
    for batch, classes, red in [((4,), 3, "mean"), ((2, 3), 5, "sum"), ((3,), 4, "none"), ((1,), 1, "mean"), ((0,), 3, "mean")]:
        logits = away_from_zero(rng, batch + (classes,))
        labels = rng.integers(0, classes, size=batch)
        out.append(Sample((logits, labels), {"reduction": red}, f"batch {batch}, {classes} classes, {red}"))
    return out


@op(shape=_sce_rule, dtype=_sce_dtype, saves=(), residuals=True, samples=_sce_samples,
    counterparts={"torch": "torch.nn.functional.cross_entropy"})
def softmax_cross_entropy(logits, labels, *, reduction="mean"):
    """Cross-entropy of integer ``labels`` under ``softmax(logits)`` along the last axis, fused and stable.

    The forward hands the softmax to the VJP as a residual, so the backward pass
    is one subtraction and one scaling.
    """
    if logits.dtype.kind not in "fc":
        logits = logits.astype(np.float64)  # the float64 the dtype rule declares, not uint8 arithmetic
    classes = logits.shape[-1]
    flat = logits.reshape(-1, classes)
    picks = labels.reshape(-1)
    if picks.size and (picks.min() < 0 or picks.max() >= classes):
        bad = picks[(picks < 0) | (picks >= classes)][0]
        raise ValueError(f"label {bad} is out of range for {classes} classes")
    rows = np.arange(picks.size)
    shifted = flat - flat.max(axis=1, keepdims=True) if flat.size else flat
    probs = np.exp(shifted)
    total = probs.sum(axis=1, keepdims=True)
    losses = (np.log(total[:, 0]) - shifted[rows, picks]).reshape(labels.shape)
    probs /= total
    return _reduce(losses, reduction), (probs, rows, picks)


@softmax_cross_entropy.vjp
def _(g, logits, labels, res, *, reduction):
    probs, rows, picks = res  # the softmax belongs to this VJP alone, so it is updated in place
    probs[rows, picks] -= 1
    probs *= _scale(g, picks.size, reduction).reshape(-1, 1)
    return probs.reshape(logits.shape), None


# ---------------------------------------------- binary cross-entropy ---


def _pair_rule(x, y, *, reduction="mean"):
    return _reduced_rule(broadcast_shapes(x, y), reduction)


# Either side may broadcast against the other (the targets may be the wider one), under every reduction.
_PAIR_SHAPES = [((4,), (4,)), ((2, 3), (3,)), ((3,), (2, 3)), ((3, 1), (1, 2)), ((2, 2), ()), ((0, 2), (0, 2)), ((1,), (1,))]


def _pair_samples(first, second):
    """Samples of a loss of two broadcasting inputs: every pairing of shapes under every reduction."""

    def samples(rng):
        out = []
        for s, t in _PAIR_SHAPES:
            for red in _REDUCTIONS:
                out.append(Sample((first(rng, s), second(rng, t)), {"reduction": red}, f"{s} against {t}, {red}"))
        return out

    return samples


def _soft_targets(rng, shape):
    """Targets in [0, 1]: hard 0/1 labels and soft probabilities."""
    return np.where(rng.random(shape) < 0.5, rng.integers(0, 2, size=shape), rng.uniform(0.1, 0.9, size=shape)).astype(np.float64)


def _bce_samples(rng):
    out = _pair_samples(away_from_zero, _soft_targets)(rng)
    out.append(Sample((away_from_zero(rng, (2, 3)), rng.integers(0, 2, size=(3,))), {"reduction": "mean"}, "integer targets"))
    return out


@op(shape=_pair_rule, dtype=first_dtype, saves=("inputs",), samples=_bce_samples,
    counterparts={"torch": "torch.nn.functional.binary_cross_entropy_with_logits"})
def binary_cross_entropy_with_logits(logits, targets, *, reduction="mean"):
    """Binary cross-entropy of ``targets`` in [0, 1] under ``sigmoid(logits)``, stable for large |logits|."""
    losses = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return _reduce(losses, reduction).astype(logits.dtype, copy=False)


@binary_cross_entropy_with_logits.vjp
def _(g, logits, targets, *, reduction, needs):
    shape = np.broadcast_shapes(logits.shape, targets.shape)
    up = _scale(g, math.prod(shape), reduction)
    grads = [None, None]
    # Each gradient has its own input's dtype (float32 logits may meet float64 targets), and the
    # broadcast shape: with a reduction, ``up`` is a scalar, and wider targets need the logits spread out.
    if needs[0]:
        e = np.exp(-np.abs(logits))
        probs = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
        grads[0] = (up * (probs - targets)).astype(logits.dtype, copy=False)
    if needs[1]:
        grads[1] = np.broadcast_to(-up * logits, shape).astype(targets.dtype, copy=False)
    return tuple(grads)


# ------------------------------------------------------------------ mse ---


def _mse_samples(rng):
    out = _pair_samples(uniform, uniform)(rng)
    x = uniform(rng, (2, 3))
    out.append(Sample((x, x), {"reduction": "mean"}, "the same input twice"))
    return out


@op(shape=_pair_rule, saves=("inputs",), samples=_mse_samples, counterparts={"torch": "torch.nn.functional.mse_loss"})
def mse(prediction, target, *, reduction="mean"):
    """Squared error ``(prediction - target) ** 2``, reduced."""
    diff = prediction - target
    return _reduce(diff * diff, reduction)


@mse.vjp
def _(g, prediction, target, *, reduction):
    diff = prediction - target
    up = 2 * _scale(g, diff.size, reduction) * diff
    return up, -up


@mse.graph_vjp
def _(g, prediction, target, *, reduction, needs):
    diff = prediction - target
    scaled = g / reduced_count(diff) if reduction == "mean" else g
    up = 2 * scaled * diff
    return (up if needs[0] else None), (-up if needs[1] else None)

