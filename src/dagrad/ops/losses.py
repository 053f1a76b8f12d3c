"""Losses, fused for numerical stability: softmax cross-entropy, binary cross-entropy with logits, MSE.

Each takes ``reduction="mean" | "sum" | "none"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..opdef import Sample, float_dtype, op
from ..shapes import broadcast_shapes, format_shape, normalize_axes, shapes_agree
from ..tensor import apply
from .adjoints import broadcast_count, broadcast_like, reduced_count, static_rank, vector_on_axis, zeros_like
from .samples import away_from_zero, positive, uniform

_REDUCTIONS = ("mean", "sum", "none")


def _reduced_rule(shape, reduction):
    _check_reduction(reduction)
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
    if not shapes_agree(labels, batch):
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
    return _torch_reduce(losses, reduction, losses.dtype), (probs, rows, picks)


@softmax_cross_entropy.vjp
def _(g, logits, labels, res, *, reduction):
    probs, rows, picks = res  # the softmax belongs to this VJP alone, so it is updated in place
    probs[rows, picks] -= 1
    probs *= _scale(g, picks.size, reduction).reshape(-1, 1)
    return probs.reshape(logits.shape), None


@softmax_cross_entropy.graph_vjp
def _(g, logits, labels, *, reduction):
    """``g * (softmax(logits) - one_hot(labels))`` (the one-hot a ``class_mask``), divided by the batch size for the mean; labels are integers (no gradient)."""
    if reduction == "mean":
        g = g / reduced_count(labels, dtype=g.dtype)
    elif reduction == "none":
        g = apply("expand_dims", g, axis=-1)  # one loss per row: spread it over the row's classes
    return g * (apply("softmax", logits, axis=-1) - _as_mask(class_mask(labels, logits), logits.dtype)), None


# ---------------------------------------------- binary cross-entropy ---


def _pair_rule(x, y, *, reduction="mean"):
    return _reduced_rule(broadcast_shapes(x, y), reduction)


# Either side may broadcast against the other (the targets may be the wider one), under every reduction.
_PAIR_SHAPES = [((4,), (4,)), ((2, 3), (3,)), ((3,), (2, 3)), ((3, 1), (1, 2)), ((2, 2), ()), ((0, 2), (0, 2)), ((1,), (1,))]


def _pair_samples(first, second, attrs: dict = None):
    """Samples of a loss of two broadcasting inputs: every pairing of shapes under every reduction."""

    def samples(rng):
        out = []
        for s, t in _PAIR_SHAPES:
            for red in _REDUCTIONS:
                out.append(Sample((first(rng, s), second(rng, t)), {**(attrs or {}), "reduction": red},
                                  f"{s} against {t}, {red}"))
        return out

    return samples


def _soft_targets(rng, shape):
    """Targets in [0, 1]: hard 0/1 labels and soft probabilities."""
    return np.where(rng.random(shape) < 0.5, rng.integers(0, 2, size=shape), rng.uniform(0.1, 0.9, size=shape)).astype(np.float64)


def _bce_samples(rng):
    out = _pair_samples(away_from_zero, _soft_targets)(rng)
    out.append(Sample((away_from_zero(rng, (2, 3)), rng.integers(0, 2, size=(3,))), {"reduction": "mean"}, "integer targets"))
    return out


def _logits_dtype(logits, *rest, **attrs):
    """A loss of logits has the logits' floating-point dtype (float64 for integer logits, computed in it)."""
    return float_dtype(logits)


@op(shape=_pair_rule, dtype=_logits_dtype, float_inputs=True, saves=("inputs",), samples=_bce_samples,
    counterparts={"torch": "torch.nn.functional.binary_cross_entropy_with_logits"})
def binary_cross_entropy_with_logits(logits, targets, *, reduction="mean"):
    """Binary cross-entropy of ``targets`` in [0, 1] under ``sigmoid(logits)``, stable for large |logits|."""
    losses = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return _torch_reduce(losses, reduction, logits.dtype)


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


@binary_cross_entropy_with_logits.graph_vjp
def _(g, logits, targets, *, reduction, needs):
    """``g * (sigmoid(logits) - targets)`` and ``-g * logits``, each over the broadcast shape, divided by its size for the mean."""
    if reduction == "mean":
        g = g / broadcast_count(logits, targets, dtype=g.dtype)
    grad_logits = g * (apply("sigmoid", logits) - targets) if needs[0] else None
    # After a reduction g is a scalar: starting from zeros shaped like the targets, every target gets its share.
    grad_targets = (zeros_like(targets) - g) * logits if needs[1] else None
    return grad_logits, grad_targets


# ------------------------------------------------------------------ mse ---


def _mse_samples(rng):
    out = _pair_samples(uniform, uniform)(rng)
    x = uniform(rng, (2, 3))
    out.append(Sample((x, x), {"reduction": "mean"}, "the same input twice"))
    return out


@op(shape=_pair_rule, dtype=float_dtype, float_inputs=True, saves=("inputs",), samples=_mse_samples,
    counterparts={"torch": "torch.nn.functional.mse_loss"})
def mse(prediction, target, *, reduction="mean"):
    """Squared error ``(prediction - target) ** 2``, reduced."""
    diff = prediction - target
    return _torch_reduce(diff * diff, reduction, diff.dtype)


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



# ======================================================================
# PyTorch's losses (issue 14): class-index and probability cross-entropy, nll, l1, smooth l1 and Huber,
# KL divergence, cosine similarity and embedding, weighted binary cross-entropy. Each matches the
# torch.nn.functional loss of the same name, including a mean over no entries (or no weight) being NaN.
# ======================================================================

_TORCH = "torch.nn.functional."


def _torch_reduce(losses: np.ndarray, reduction: str, dtype) -> np.ndarray:
    """Reduce elementwise losses as PyTorch does: the mean of no entries is NaN, not 0."""
    if reduction == "none":
        return losses.astype(dtype, copy=False)
    total = np.add.reduce(losses, axis=None)
    if reduction == "mean":
        total = total / losses.size if losses.size else np.nan
    return np.asarray(total, dtype)


def _upstream(g: np.ndarray, shape: tuple, reduction: str) -> np.ndarray:
    """The gradient of each elementwise loss, broadcast to ``shape``, from the gradient of the reduced loss."""
    return np.broadcast_to(_scale(g, math.prod(shape), reduction), shape)


def _graph_upstream(g, elementwise, reduction: str):
    """As ``_upstream``, with nodes: ``elementwise`` is a Tensor of the unreduced losses' shape (its values unread)."""
    if reduction == "mean":
        g = g / reduced_count(elementwise)
    return broadcast_like(g, elementwise)


def _as_float(a: np.ndarray) -> np.ndarray:
    return a if a.dtype.kind in "fc" else a.astype(np.float64)


def _as_mask(t, dtype):
    """A boolean Tensor as 0/1 numbers of ``dtype`` (a constant in the gradient, never differentiated)."""
    return apply("astype", t, dtype=np.dtype(dtype).name)


def _check_reduction(reduction: str, allowed: tuple = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, not {reduction!r}")


# --------------------------------------------------------- class_mask ---


def _class_shape(input_shape, target_shape, axis, who: str) -> int:
    """The class axis of ``input_shape``; a ValueError unless ``target_shape`` is the input's shape without it."""
    if len(input_shape) < 1:
        raise ValueError(f"{who} needs an input with a class axis, not a scalar")
    (a,) = normalize_axes(axis, len(input_shape))
    batch = tuple(input_shape[:a]) + tuple(input_shape[a + 1:])
    if not shapes_agree(target_shape, batch):
        raise ValueError(f"class-index targets of shape {format_shape(target_shape)} do not match input "
                         f"{format_shape(input_shape)} without its class axis {a} (expected {format_shape(batch)})")
    return a


def _class_mask_shape(target, like, *, axis=-1, ignore_index=-100):
    _class_shape(like, target, axis, "class_mask")
    return tuple(like)


def _integer_targets(dtype) -> None:
    if np.dtype(dtype).kind not in "iu":
        raise TypeError(f"class-index targets must be integers, not {dtype}")


def _class_mask_dtype(target, like, *, axis=-1, ignore_index=-100):
    _integer_targets(target)
    return np.dtype(bool)


def _class_mask_samples(rng) -> list:
    return [
        Sample((np.array([0, 2, 1, -100]), uniform(rng, (4, 3))), {}, "rows, one ignored"),
        Sample((np.array([[1, 0], [2, 2]]), uniform(rng, (2, 3, 2))), {"axis": 1}, "classes on axis 1"),
        Sample((np.array(1), uniform(rng, (3,))), {"ignore_index": 0}, "one example"),
        Sample((np.zeros((0,), np.int64), uniform(rng, (0, 5))), {}, "an empty batch"),
    ]


@op(shape=_class_mask_shape, dtype=_class_mask_dtype, saves=(), samples=_class_mask_samples,
    counterparts={"torch": _TORCH + "one_hot"})
def class_mask(target, like, *, axis=-1, ignore_index=-100):
    """The boolean one-hot mask of class-index ``target`` along ``axis``, shaped like ``like`` (values unread).

    Entries whose target is ``ignore_index`` (or outside the classes) have an
    all-false row. Graph VJPs of the class-index losses gather and scatter with
    it; it is a comparison, so it has no gradient.
    """
    (a,) = normalize_axes(axis, like.ndim)
    classes = vector_on_axis(np.arange(like.shape[a]), a, like.ndim)
    hits = (np.expand_dims(target, a) == classes) & np.expand_dims(target != ignore_index, a)
    return np.broadcast_to(hits, like.shape)


# ------------------------------------------- nll_loss, cross_entropy ---


def _class_rule(who: str):
    def rule(input, target, *weight, axis=-1, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        _check_reduction(reduction)
        a = _class_shape(input, target, axis, who)
        _class_weight_rule(weight, input[a])
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], not {label_smoothing!r}")
        return () if reduction != "none" else tuple(target)

    return rule


def _class_weight_rule(weight: tuple, classes) -> None:
    if len(weight) > 1:
        raise ValueError(f"takes at most one class-weight input, not {len(weight)}")
    if weight and not shapes_agree(weight[0], (classes,)):
        raise ValueError(f"class weights of shape {format_shape(weight[0])} do not match {classes} classes")


def _class_dtype(input, target, *weight, **attrs):
    _integer_targets(target)
    return float_dtype(input, *weight)


@dataclass
class _Picks:
    """Where the class-index targets point: the gather index, which entries count, and their class weights."""

    index: np.ndarray       # the target along the class axis (kept, size 1), 0 where ignored
    valid: np.ndarray       # bool, target's shape: not ignore_index
    weight: np.ndarray      # each entry's class weight, 0 where ignored

    @classmethod
    def of(cls, input: np.ndarray, target: np.ndarray, weight: tuple, a: int, ignore_index: int) -> "_Picks":
        classes = input.shape[a]
        valid = target != ignore_index
        bad = valid & ((target < 0) | (target >= classes))
        if bad.any():
            raise ValueError(f"target {target[bad].flat[0]} is out of range for {classes} classes "
                             f"(and is not ignore_index={ignore_index})")
        safe = np.where(valid, target, 0)
        if weight:
            per_entry = np.where(valid, weight[0][safe] if classes else 0, 0).astype(weight[0].dtype, copy=False)
        else:
            per_entry = valid.astype(input.dtype)
        return cls(np.expand_dims(safe, a), valid, per_entry)

    def gather(self, values: np.ndarray, a: int) -> np.ndarray:
        """``values`` at the targets along axis ``a`` (target's shape; 0 where ignored)."""
        if values.shape[a] == 0:
            return np.zeros(self.valid.shape, values.dtype)
        return np.where(self.valid, np.take_along_axis(values, self.index, axis=a).squeeze(a), 0)

    def class_totals(self, per_entry: np.ndarray, classes: int) -> np.ndarray:
        """Sum of ``per_entry`` over the counted entries of each class: a ``(classes,)`` array."""
        index = self.index.reshape(-1)[self.valid.reshape(-1)] if self.index.size else self.index.reshape(-1)
        chosen = per_entry.reshape(-1)[self.valid.reshape(-1)] if per_entry.size else per_entry.reshape(-1)
        return np.bincount(index, weights=chosen, minlength=classes).astype(per_entry.dtype, copy=False)


def _weighted_reduce(losses: np.ndarray, picks: _Picks, reduction: str, dtype) -> np.ndarray:
    """PyTorch's reduction of class-index losses: the mean divides by the total class weight of the counted entries."""
    if reduction != "mean":
        return _torch_reduce(losses, reduction, dtype)
    with np.errstate(invalid="ignore", divide="ignore"):  # no weight at all: NaN, as in PyTorch
        return np.asarray(np.add.reduce(losses, axis=None) / np.add.reduce(picks.weight, axis=None), dtype)


def _class_upstream(g: np.ndarray, picks: _Picks, reduction: str) -> np.ndarray:
    """The gradient of each entry's loss (target's shape) from that of the reduced loss."""
    if reduction == "mean":  # no weight at all: no entry counts, and every gradient is 0 (not NaN), as in PyTorch
        total = np.add.reduce(picks.weight, axis=None)
        return np.broadcast_to(g / total if total else np.zeros_like(g), picks.valid.shape)
    return np.broadcast_to(g, picks.valid.shape)


def _nll_samples(rng) -> list:
    x = uniform(rng, (4,))
    return [
        Sample((uniform(rng, (5, 3)), np.array([0, 2, 1, 1, -100]), positive(rng, (3,))), {},
               "weighted mean, one ignored"),
        Sample((uniform(rng, (4, 3)), np.array([0, 2, 1, 0])), {"reduction": "sum"}, "sum"),
        Sample((uniform(rng, (2, 3, 2)), np.array([[1, 0], [2, 2]]), positive(rng, (3,))),
               {"axis": 1, "reduction": "none"}, "classes on axis 1 (PyTorch's layout), none"),
        Sample((uniform(rng, (3, 4)), np.array([1, 3, 3])), {"ignore_index": 3, "reduction": "mean"},
               "a class index as ignore_index"),
        Sample((x, np.array(2), x), {}, "one example, the same input as weight"),
        Sample((uniform(rng, (0, 3)), np.zeros((0,), np.int64)), {"reduction": "sum"}, "an empty batch"),
        Sample((uniform(rng, (1, 1)), np.array([0])), {"reduction": "mean"}, "one class"),
    ]


@op(shape=_class_rule("nll_loss"), dtype=_class_dtype, saves=("out",), residuals=True, samples=_nll_samples,
    counterparts={"torch": _TORCH + "nll_loss"})
def nll_loss(input, target, *weight, axis=-1, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of class-index ``target`` under log-probabilities ``input``, classes on ``axis``.

    Each entry's loss is ``-weight[t] * input[..., t, ...]`` (``weight`` is an
    optional ``(C,)`` input); entries whose target is ``ignore_index`` count for
    nothing, and ``"mean"`` divides by the total weight of the others, NaN if
    that is 0, as PyTorch's ``nll_loss``. PyTorch puts classes on axis 1; the
    default here is the last axis, as for ``log_softmax`` (the same for 2-D input).
    """
    input, weight = _as_float(input), tuple(_as_float(w) for w in weight)
    (a,) = normalize_axes(axis, input.ndim)
    picks = _Picks.of(input, target, weight, a, ignore_index)
    picked = picks.gather(input, a)
    dtype = np.result_type(input, *weight)
    return _weighted_reduce(-picks.weight * picked, picks, reduction, dtype), (picks, picked, a)


@nll_loss.vjp
def _(g, input, target, *weight, out, res, axis, ignore_index, reduction, needs):
    picks, picked, a = res
    up = _class_upstream(g, picks, reduction)
    grads = [None, None] + [None] * len(weight)
    if needs[0]:
        grads[0] = np.zeros(input.shape, np.result_type(input, g))
        if input.size:
            np.put_along_axis(grads[0], picks.index, np.expand_dims(-picks.weight * up, a), axis=a)
    if weight and needs[2]:
        per_entry = -picked - out if reduction == "mean" else -picked  # the mean's divisor depends on the weights
        grads[2] = picks.class_totals(per_entry * up, weight[0].shape[0])
    return tuple(grads)


def _other_axes(a: int, ndim: int) -> tuple:
    return tuple(i for i in range(ndim) if i != a)


def _graph_class_sum(t, a: int, ndim: int):
    """Sum a Tensor shaped like the input over every axis but the class axis: a ``(C,)`` Tensor."""
    others = _other_axes(a, ndim)
    return apply("sum", t, axis=others) if others else t


def _graph_picks(input, target, weight: tuple, a: int, ndim: int, ignore_index: int):
    """The one-hot mask of the targets (numbers, shaped like the input), the weight along ``a``, and each entry's weight."""
    onehot = _as_mask(class_mask(target, input, axis=a, ignore_index=ignore_index), input.dtype)
    along = vector_on_axis(weight[0], a, ndim) if weight else None
    per_entry = apply("sum", onehot * along if weight else onehot, axis=a)
    return onehot, along, per_entry


def _graph_class_upstream(g, per_entry, reduction: str):
    """``g`` over the total weight for a mean; with no weight, no entry counts, so any finite divisor (1) does."""
    if reduction != "mean":
        return g
    total = apply("sum", per_entry)
    return g / apply("where", apply("equal", total, 0.0), 1.0, total)


@nll_loss.graph_vjp
def _(g, input, target, *weight, out, axis, ignore_index, reduction, needs):
    """The one-hot mask of the targets is a comparison: the gradient is linear in the input, to any order."""
    ndim = static_rank(input, "nll_loss")
    (a,) = normalize_axes(axis, ndim)
    onehot, along, per_entry = _graph_picks(input, target, weight, a, ndim, ignore_index)
    up = _graph_class_upstream(g, per_entry, reduction)
    up_along = apply("expand_dims", up, axis=a) if reduction == "none" else up
    grads = [None, None] + [None] * len(weight)
    if needs[0]:
        grads[0] = -(onehot * along if weight else onehot) * up_along
    if weight and needs[2]:
        picked = apply("sum", onehot * input, axis=a)
        per = (-picked - out) if reduction == "mean" else -picked
        grads[2] = _graph_class_sum(onehot * apply("expand_dims", per * up, axis=a), a, ndim)
    return tuple(grads)


def _shifted_exp(x: np.ndarray, a: int) -> tuple:
    """``x - max`` along ``a``, its exponential and their sums (kept axis), each a fresh array."""
    if not x.size:
        return x.copy(), x.copy(), np.ones(x.shape[:a] + (1,) + x.shape[a + 1:], x.dtype)
    shifted = x - x.max(axis=a, keepdims=True)
    exps = np.exp(shifted)
    return shifted, exps, np.add.reduce(exps, axis=a, keepdims=True)


def _log_softmax(x: np.ndarray, a: int) -> np.ndarray:
    """``log(softmax(x))`` along ``a``, stable, in a fresh array."""
    shifted, _, total = _shifted_exp(x, a)
    shifted -= np.log(total)
    return shifted


def _cross_entropy_samples(rng) -> list:
    x = uniform(rng, (4,))
    return [
        Sample((uniform(rng, (5, 3)), np.array([0, 2, 1, 1, -100])), {}, "mean, one ignored"),
        Sample((uniform(rng, (5, 3)), np.array([0, 2, 1, 1, -100]), positive(rng, (3,))),
               {"label_smoothing": 0.2}, "weighted, smoothed mean, one ignored"),
        Sample((uniform(rng, (2, 3, 2)), np.array([[1, 0], [2, 2]]), positive(rng, (3,))),
               {"axis": 1, "reduction": "none", "label_smoothing": 0.1}, "classes on axis 1, none"),
        Sample((uniform(rng, (4, 3)), np.array([0, 2, 1, 0])), {"reduction": "sum", "label_smoothing": 0.3}, "sum"),
        Sample((x, np.array(1), x), {"label_smoothing": 0.1}, "one example, the same input as weight"),
        Sample((uniform(rng, (0, 3)), np.zeros((0,), np.int64)), {"reduction": "sum"}, "an empty batch"),
        Sample((uniform(rng, (2, 1)), np.array([0, 0])), {"label_smoothing": 0.5}, "one class"),
    ]


@op(shape=_class_rule("cross_entropy"), dtype=_class_dtype, saves=("out",), residuals=True,
    samples=_cross_entropy_samples, counterparts={"torch": _TORCH + "cross_entropy"})
def cross_entropy(input, target, *weight, axis=-1, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of class-index ``target`` under ``softmax(input)`` along ``axis``, fused and stable.

    PyTorch's ``cross_entropy`` with class indices: optional ``(C,)`` class
    ``weight``, ``ignore_index`` (those entries count for nothing, and
    ``"mean"`` divides by the total weight of the others) and
    ``label_smoothing`` (the target mixes ``1 - label_smoothing`` of the one-hot
    class with ``label_smoothing`` spread evenly over the ``C`` classes, each
    weighted). PyTorch puts classes on axis 1; the default here is the last axis.
    """
    input, weight = _as_float(input), tuple(_as_float(w) for w in weight)
    (a,) = normalize_axes(axis, input.ndim)
    picks = _Picks.of(input, target, weight, a, ignore_index)
    dtype = np.result_type(input, *weight)
    if not weight and not label_smoothing:
        # The common case, as fast as softmax_cross_entropy: the VJP needs the softmax only, which it may consume.
        shifted, softmax, total = _shifted_exp(input, a)
        losses = picks.weight * (np.log(total).squeeze(a) - picks.gather(shifted, a))
        softmax /= total
        return _weighted_reduce(losses, picks, reduction, dtype), (picks, a, None, softmax, None)
    logp = _log_softmax(input, a)
    losses = -picks.weight * picks.gather(logp, a)
    if label_smoothing:
        classes = input.shape[a]
        weighted = logp * vector_on_axis(weight[0], a, input.ndim) if weight else logp
        smooth = np.where(picks.valid, -np.add.reduce(weighted, axis=a), 0)
        losses = (1 - label_smoothing) * losses + smooth * (label_smoothing / max(classes, 1))
    return _weighted_reduce(losses, picks, reduction, dtype), (picks, a, weight[0] if weight else None, None, logp)


@cross_entropy.vjp
def _(g, input, target, *weight, out, res, axis, ignore_index, reduction, label_smoothing, needs):
    # Each entry's loss is -sum_c q_c log p_c for the (weighted, smoothed) target distribution q, so its
    # gradient is p * sum(q) - q: the weighted one-hot part at the target, and the smoothing part everywhere.
    picks, a, w, softmax, logp = res
    classes = input.shape[a]
    up = np.expand_dims(_class_upstream(g, picks, reduction), a)
    keep, spread = 1 - label_smoothing, label_smoothing / max(classes, 1)
    along = vector_on_axis(w, a, input.ndim) if weight else None
    valid = np.expand_dims(picks.valid, a).astype(picks.weight.dtype)
    grads = [None, None] + [None] * len(weight)
    if needs[0]:
        target_mass = keep * np.expand_dims(picks.weight, a)
        if label_smoothing:
            target_mass = target_mass + spread * valid * (np.add.reduce(w) if weight else classes)
        grad = softmax if softmax is not None else np.exp(logp)  # this rule's own array: updated in place
        if weight or label_smoothing or not picks.valid.all():
            grad *= target_mass
        if input.size:
            hit = np.take_along_axis(grad, picks.index, axis=a) - keep * np.expand_dims(picks.weight, a)
            np.put_along_axis(grad, picks.index, hit, axis=a)
        if label_smoothing:
            grad -= spread * valid * (along if weight else 1)
        grad *= up
        grads[0] = grad
    if weight and needs[2]:
        per_entry = -picks.gather(logp, a) * keep
        if reduction == "mean":
            per_entry = per_entry - out
        total = picks.class_totals(per_entry * up.squeeze(a), classes)
        if label_smoothing:
            total = total - spread * np.add.reduce(logp * (valid * up), axis=_other_axes(a, input.ndim))
        grads[2] = total
    return tuple(grads)


@cross_entropy.graph_vjp
def _(g, input, target, *weight, out, axis, ignore_index, reduction, label_smoothing, needs):
    """The one-hot mask of the targets is a comparison, never differentiated."""
    ndim = static_rank(input, "cross_entropy")
    (a,) = normalize_axes(axis, ndim)
    onehot, along, per_entry = _graph_picks(input, target, weight, a, ndim, ignore_index)
    up = apply("expand_dims", _graph_class_upstream(g, per_entry, reduction), axis=a) if reduction == "none" else \
        _graph_class_upstream(g, per_entry, reduction)
    logp = apply("log_softmax", input, axis=a)
    keep = 1 - label_smoothing
    share = onehot * keep                      # of each entry's class mass, before the class weights
    if label_smoothing:
        valid = apply("sum", onehot, axis=a, keepdims=True)
        share = share + valid * (label_smoothing / reduced_count(input, a))
    q = share * along if weight else share
    grads = [None, None] + [None] * len(weight)
    if needs[0]:
        grads[0] = (apply("softmax", input, axis=a) * apply("sum", q, axis=a, keepdims=True) - q) * up
    if weight and needs[2]:
        per = -share * logp * up
        if reduction == "mean":
            per = per - onehot * out * up
        grads[2] = _graph_class_sum(per, a, ndim)
    return tuple(grads)


# ------------------------------------------------- soft_cross_entropy ---


def _soft_rule(input, target, *weight, axis=-1, reduction="mean", label_smoothing=0.0):
    _check_reduction(reduction)
    if len(input) < 1:
        raise ValueError("soft_cross_entropy needs an input with a class axis, not a scalar")
    (a,) = normalize_axes(axis, len(input))
    if not shapes_agree(target, input):
        raise ValueError(f"probability targets of shape {format_shape(target)} must have the input's shape "
                         f"{format_shape(input)}")
    _class_weight_rule(weight, input[a] if input[a] is not None else target[a])
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], not {label_smoothing!r}")
    return () if reduction != "none" else tuple(input[:a]) + tuple(input[a + 1:])


def _soft_samples(rng) -> list:
    def probabilities(shape, a=-1):
        p = positive(rng, shape)
        return p / p.sum(axis=a, keepdims=True) if p.size else p

    x = uniform(rng, (3, 4))
    return [
        Sample((uniform(rng, (4, 3)), probabilities((4, 3))), {}, "mean"),
        Sample((uniform(rng, (4, 3)), probabilities((4, 3)), positive(rng, (3,))), {"label_smoothing": 0.2},
               "weighted, smoothed mean"),
        Sample((uniform(rng, (2, 3, 2)), probabilities((2, 3, 2), 1), positive(rng, (3,))),
               {"axis": 1, "reduction": "none"}, "classes on axis 1, none"),
        Sample((uniform(rng, (3,)), probabilities((3,))), {"reduction": "sum", "label_smoothing": 0.1}, "one example"),
        Sample((uniform(rng, (0, 3)), probabilities((0, 3))), {"reduction": "sum"}, "an empty batch"),
        Sample((uniform(rng, (2, 1)), probabilities((2, 1))), {"reduction": "none"}, "one class"),
        Sample((x, x), {"reduction": "sum"}, "the same input as logits and targets"),
    ]


@op(shape=_soft_rule, dtype=float_dtype, float_inputs=True, saves=("inputs",), residuals=True,
    samples=_soft_samples, counterparts={"torch": _TORCH + "cross_entropy"})
def soft_cross_entropy(input, target, *weight, axis=-1, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of probability ``target`` (the input's shape) under ``softmax(input)`` along ``axis``.

    PyTorch's ``cross_entropy`` with class probabilities as targets: each
    entry's loss is ``-sum_c weight_c * q_c * log_softmax(input)_c`` with
    ``q = target * (1 - label_smoothing) + label_smoothing / C``, and ``"mean"``
    divides by the number of entries (not by the weights), NaN for none.
    """
    (a,) = normalize_axes(axis, input.ndim)
    logp = _log_softmax(input, a)
    q = _smoothed(target, label_smoothing, input.shape[a])
    wq = q * vector_on_axis(weight[0], a, input.ndim) if weight else q
    losses = -np.add.reduce(wq * logp, axis=a)
    return _torch_reduce(losses, reduction, np.result_type(input, target, *weight)), logp


def _smoothed(target, label_smoothing: float, classes):
    return target * (1 - label_smoothing) + label_smoothing / classes if label_smoothing else target


@soft_cross_entropy.vjp
def _(g, input, target, *weight, res, axis, reduction, label_smoothing, needs):
    logp = res
    (a,) = normalize_axes(axis, input.ndim)
    up = np.expand_dims(_upstream(g, logp.shape[:a] + logp.shape[a + 1:], reduction), a)
    along = vector_on_axis(weight[0], a, input.ndim) if weight else 1
    q = _smoothed(target, label_smoothing, input.shape[a])
    grads = [None, None] + [None] * len(weight)
    if needs[0]:
        wq = q * along
        grads[0] = (np.exp(logp) * np.add.reduce(wq, axis=a, keepdims=True) - wq) * up
    if needs[1]:
        grads[1] = -(1 - label_smoothing) * along * logp * up
    if weight and needs[2]:
        grads[2] = -np.add.reduce(q * logp * up, axis=_other_axes(a, input.ndim))
    return tuple(grads)


@soft_cross_entropy.graph_vjp
def _(g, input, target, *weight, axis, reduction, label_smoothing, needs):
    ndim = static_rank(input, "soft_cross_entropy")
    (a,) = normalize_axes(axis, ndim)
    logp = apply("log_softmax", input, axis=a)
    losses = apply("sum", logp, axis=a)                       # only its shape is read
    up = apply("expand_dims", _graph_upstream(g, losses, reduction), axis=a)
    along = vector_on_axis(weight[0], a, ndim) if weight else None
    q = _smoothed(target, label_smoothing, reduced_count(input, a))
    wq = q * along if weight else q
    grads = [None, None] + [None] * len(weight)
    if needs[0]:
        grads[0] = (apply("softmax", input, axis=a) * apply("sum", wq, axis=a, keepdims=True) - wq) * up
    if needs[1]:
        grads[1] = -(1 - label_smoothing) * (logp * along if weight else logp) * up
    if weight and needs[2]:
        grads[2] = -_graph_class_sum(q * logp * up, a, ndim)
    return tuple(grads)


# ------------------------------------------- l1, smooth l1 and Huber ---


def _wide(rng, shape):
    """Differences well beyond beta and delta (0.8 and 0.7 in the samples), so both pieces of each loss are checked."""
    return uniform(rng, shape, -2, 2)


def _pair_float_samples(rng, attrs: dict = None) -> list:
    out = _pair_samples(_wide, _wide, attrs)(rng)
    x = uniform(rng, (2, 3))
    out.append(Sample((x, x), {**(attrs or {}), "reduction": "mean"}, "the same input twice"))
    return out


def _pair_rule_with(check):
    def rule(x, y, *, reduction="mean", **attrs):
        check(**attrs)
        return _reduced_rule(broadcast_shapes(x, y), reduction)

    return rule


@op(shape=_pair_rule, dtype=float_dtype, float_inputs=True, saves=("inputs",),
    samples=_pair_float_samples, counterparts={"torch": _TORCH + "l1_loss"})
def l1_loss(input, target, *, reduction="mean"):
    """Absolute error ``|input - target|``, reduced; its gradient at a tie is 0, as PyTorch's ``l1_loss``."""
    return _torch_reduce(np.abs(input - target), reduction, np.result_type(input, target))


@l1_loss.vjp
def _(g, input, target, *, reduction):
    diff = input - target
    up = _upstream(g, diff.shape, reduction) * np.sign(diff)
    return up, -up


@l1_loss.graph_vjp
def _(g, input, target, *, reduction):
    """The ``sign`` op is piecewise constant (its gradient is zero), and zero at a tie."""
    diff = input - target
    up = _graph_upstream(g, diff, reduction) * apply("sign", diff)
    return up, -up


def _beta_check(beta=1.0):
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, not {beta!r}")


def _smooth_l1_samples(rng) -> list:
    out = _pair_float_samples(rng, {"beta": 0.8})
    out.append(Sample((uniform(rng, (3, 2), -2, 2), uniform(rng, (3, 2), -2, 2)), {"beta": 0.0}, "beta 0: l1"))
    return out


@op(shape=_pair_rule_with(_beta_check), dtype=float_dtype, float_inputs=True, saves=("inputs",),
    samples=_smooth_l1_samples, counterparts={"torch": _TORCH + "smooth_l1_loss"})
def smooth_l1_loss(input, target, *, reduction="mean", beta=1.0):
    """``0.5 * d ** 2 / beta`` where ``|d| < beta`` and ``|d| - 0.5 * beta`` elsewhere, for ``d = input - target``.

    PyTorch's ``smooth_l1_loss``: quadratic near zero, linear in the tails;
    ``beta=0`` is the l1 loss. ``huber_loss`` is ``beta`` times it (with ``delta = beta``).
    """
    diff = input - target
    size = np.abs(diff)
    if beta:
        losses = np.where(size < beta, 0.5 * diff * diff / beta, size - 0.5 * beta)
    else:
        losses = size
    return _torch_reduce(losses, reduction, np.result_type(input, target))


@smooth_l1_loss.vjp
def _(g, input, target, *, reduction, beta):
    diff = input - target
    slope = np.where(np.abs(diff) < beta, diff / beta, np.sign(diff)) if beta else np.sign(diff)
    up = _upstream(g, diff.shape, reduction) * slope
    return up, -up


@smooth_l1_loss.graph_vjp
def _(g, input, target, *, reduction, beta):
    """Which piece applies is a comparison, never differentiated."""
    diff = input - target
    slope = apply("sign", diff)
    if beta:
        slope = apply("where", apply("less", apply("abs", diff), beta), diff / beta, slope)
    up = _graph_upstream(g, diff, reduction) * slope
    return up, -up


def _delta_check(delta=1.0):
    if not delta > 0:
        raise ValueError(f"delta must be > 0, not {delta!r}")


@op(shape=_pair_rule_with(_delta_check), dtype=float_dtype, float_inputs=True, saves=("inputs",),
    samples=lambda rng: _pair_float_samples(rng, {"delta": 0.7}), counterparts={"torch": _TORCH + "huber_loss"})
def huber_loss(input, target, *, reduction="mean", delta=1.0):
    """``0.5 * d ** 2`` where ``|d| < delta`` and ``delta * (|d| - 0.5 * delta)`` elsewhere, for ``d = input - target``.

    PyTorch's ``huber_loss``: the squared error near zero and the absolute error
    (scaled by ``delta``) in the tails, so outliers pull linearly.
    """
    diff = input - target
    size = np.abs(diff)
    losses = np.where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta))
    return _torch_reduce(losses, reduction, np.result_type(input, target))


@huber_loss.vjp
def _(g, input, target, *, reduction, delta):
    diff = input - target
    up = _upstream(g, diff.shape, reduction) * np.clip(diff, -delta, delta)
    return up, -up


@huber_loss.graph_vjp
def _(g, input, target, *, reduction, delta):
    """The clip's inside is a comparison, never differentiated."""
    diff = input - target
    up = _graph_upstream(g, diff, reduction) * apply("clip", diff, low=-delta, high=delta)
    return up, -up


# ---------------------------------------------------------------- kl_div ---

_KL_REDUCTIONS = _REDUCTIONS + ("batchmean",)


def _kl_rule(input, target, *, reduction="mean", log_target=False):
    _check_reduction(reduction, _KL_REDUCTIONS)
    shape = broadcast_shapes(input, target)
    return tuple(shape) if reduction == "none" else ()


def _kl_samples(rng) -> list:
    out = []
    for (s, t), red in zip(_PAIR_SHAPES, ["batchmean", "mean", "sum", "none", "batchmean", "mean", "none"]):
        out.append(Sample((uniform(rng, s, -3, 0), positive(rng, t)), {"reduction": red}, f"{s} against {t}, {red}"))
        out.append(Sample((uniform(rng, s, -3, 0), uniform(rng, t, -3, 0)), {"reduction": red, "log_target": True},
                          f"{s} against log-targets {t}, {red}"))
    x = positive(rng, (2, 3))
    out.append(Sample((x, x), {"reduction": "sum"}, "the same input twice"))
    return out


def _kl_divisor(shape: tuple, reduction: str):
    """What the summed divergence is divided by: every entry (mean), the batch (batchmean, axis 0), or 1."""
    if reduction == "mean":
        return math.prod(shape)
    if reduction == "batchmean" and shape:
        return shape[0]
    return 1


@op(shape=_kl_rule, dtype=float_dtype, float_inputs=True, saves=("inputs",), samples=_kl_samples,
    counterparts={"torch": _TORCH + "kl_div"})
def kl_div(input, target, *, reduction="mean", log_target=False):
    """The Kullback-Leibler divergence of ``target`` from the distribution whose log-probabilities are ``input``.

    PyTorch's ``kl_div``, pointwise ``target * (log(target) - input)`` (0
    where ``target`` is 0), or ``exp(target) * (target - input)`` with
    ``log_target=True``. ``"batchmean"`` divides the sum by the batch size
    (axis 0), which is the divergence per example; ``"mean"`` divides by every entry.
    """
    if log_target:
        losses = np.exp(target) * (target - input)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            losses = np.where(target == 0, 0, target * np.log(target)) - target * input
    dtype = np.result_type(input, target)
    if reduction in ("none", "sum"):
        return _torch_reduce(losses, reduction, dtype)
    divisor = _kl_divisor(losses.shape, reduction)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.add.reduce(losses, axis=None) / divisor, dtype)


@kl_div.vjp
def _(g, input, target, *, reduction, log_target, needs):
    shape = np.broadcast_shapes(input.shape, target.shape)
    up = np.broadcast_to(g / max(_kl_divisor(shape, reduction), 1) if reduction != "none" else g, shape)
    p = np.exp(target) if log_target else target
    grads = [-p * up if needs[0] else None, None]
    if needs[1]:
        with np.errstate(divide="ignore"):  # the derivative of t log t at t = 0 is -inf
            grads[1] = p * (target - input + 1) * up if log_target else (np.log(target) + 1 - input) * up
    return tuple(grads)


@kl_div.graph_vjp
def _(g, input, target, *, reduction, log_target, needs):
    losses = input - target  # only its shape is read
    if reduction == "mean":
        g = g / reduced_count(losses)
    elif reduction == "batchmean" and static_rank(losses, "kl_div"):
        g = g / reduced_count(losses, 0)
    up = broadcast_like(g, losses)
    p = apply("exp", target) if log_target else target
    grads = [-p * up if needs[0] else None, None]
    if needs[1]:
        grads[1] = p * (target - input + 1) * up if log_target else (apply("log", target) + 1 - input) * up
    return tuple(grads)


# ------------------------------------------------ cosine similarity ---


def _cosine_rule(x1, x2, *, axis=-1, eps=1e-8):
    shape = broadcast_shapes(x1, x2)
    if not shape:
        raise ValueError("cosine_similarity needs inputs with at least one axis")
    (a,) = normalize_axes(axis, len(shape))
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, not {eps!r}")
    return tuple(shape[:a]) + tuple(shape[a + 1:])


def _cosine_samples(rng) -> list:
    x = away_from_zero(rng, (2, 3))
    return [
        Sample((away_from_zero(rng, (4, 3)), away_from_zero(rng, (4, 3))), {}, "rows"),
        Sample((away_from_zero(rng, (2, 3, 4)), away_from_zero(rng, (3, 4))), {"axis": 1}, "axis 1, broadcast"),
        Sample((away_from_zero(rng, (3, 1)), away_from_zero(rng, (1, 4))), {}, "the reduced axis broadcast"),
        Sample((away_from_zero(rng, (3,)), away_from_zero(rng, (3,))), {}, "two vectors: a scalar"),
        Sample((away_from_zero(rng, (0, 3)), away_from_zero(rng, (0, 3))), {}, "no rows"),
        Sample((0.1 * away_from_zero(rng, (2, 3)), away_from_zero(rng, (2, 3))), {"eps": 0.5}, "a norm clamped at eps"),
        Sample((x, x), {}, "the same input twice"),
    ]


def _unit(x: np.ndarray, a: int, eps: float):
    """``(x / max(|x|, eps), max(|x|, eps), |x| > eps)`` along axis ``a`` (kept)."""
    norm = np.sqrt(np.add.reduce(x * x, axis=a, keepdims=True))
    clamped = np.maximum(norm, eps)
    return x / clamped, clamped, norm > eps


@op(shape=_cosine_rule, dtype=float_dtype, float_inputs=True, saves=("inputs", "out"),
    samples=_cosine_samples, counterparts={"torch": _TORCH + "cosine_similarity"})
def cosine_similarity(x1, x2, *, axis=-1, eps=1e-8):
    """``sum(x1 * x2) / (max(|x1|, eps) * max(|x2|, eps))`` along ``axis``, after broadcasting the two.

    As PyTorch's ``cosine_similarity``, which clamps each norm at ``eps``; a
    clamped norm is a constant for the gradient. PyTorch's default axis is 1,
    this one's is the last (the same for 2-D input).
    """
    x1, x2 = np.broadcast_arrays(x1, x2)
    (a,) = normalize_axes(axis, x1.ndim)
    u1, u2 = _unit(x1, a, eps)[0], _unit(x2, a, eps)[0]
    return np.add.reduce(u1 * u2, axis=a).astype(np.result_type(x1, x2), copy=False)


@cosine_similarity.vjp
def _(g, x1, x2, *, out, axis, eps, needs):
    x1, x2 = np.broadcast_arrays(x1, x2)
    (a,) = normalize_axes(axis, x1.ndim)
    (u1, n1, free1), (u2, n2, free2) = _unit(x1, a, eps), _unit(x2, a, eps)
    g, out = np.expand_dims(g, a), np.expand_dims(out, a)
    return (g * (u2 - free1 * out * u1) / n1 if needs[0] else None,
            g * (u1 - free2 * out * u2) / n2 if needs[1] else None)


def _graph_unit(x, a: int, eps: float):
    norm = apply("sqrt", apply("sum", x * x, axis=a, keepdims=True))
    clamped = apply("maximum", norm, eps)
    return x / clamped, clamped, _as_mask(apply("greater", norm, eps), x.dtype)


@cosine_similarity.graph_vjp
def _(g, x1, x2, *, out, axis, eps, needs):
    """Whether a norm is clamped is a comparison, never differentiated."""
    x1, x2 = x1 + zeros_like(x2), x2 + zeros_like(x1)  # broadcast each to the common shape
    ndim = static_rank(x1, "cosine_similarity")
    (a,) = normalize_axes(axis, ndim)
    (u1, n1, free1), (u2, n2, free2) = _graph_unit(x1, a, eps), _graph_unit(x2, a, eps)
    g, out = apply("expand_dims", g, axis=a), apply("expand_dims", out, axis=a)
    return (g * (u2 - free1 * out * u1) / n1 if needs[0] else None,
            g * (u1 - free2 * out * u2) / n2 if needs[1] else None)


# ------------------------------------------------- cosine embedding ---

_EMBEDDING_EPS = 1e-12  # PyTorch's, added to each squared norm


def _embedding_rule(x1, x2, y, *, margin=0.0, reduction="mean"):
    _check_reduction(reduction)
    shape = broadcast_shapes(x1, x2)
    if not shape:
        raise ValueError("cosine_embedding_loss needs inputs with a feature axis (the last)")
    batch = broadcast_shapes(shape[:-1], y)
    if len(batch) != len(shape) - 1:
        raise ValueError(f"targets of shape {format_shape(y)} have more axes than the batch {format_shape(shape[:-1])}")
    return tuple(batch) if reduction == "none" else ()


def _embedding_dtype(x1, x2, y, **attrs):
    if np.dtype(y).kind not in "biuf":
        raise TypeError(f"targets must be numbers 1 and -1, not {y}")
    return float_dtype(x1, x2)


def _embedding_samples(rng) -> list:
    out = []
    for (s, t, y), red, margin in zip(
            [((4, 3), (4, 3), (4,)), ((2, 3), (3,), (2,)), ((3,), (3,), ()), ((0, 2), (0, 2), (0,)),
             ((1, 4), (1, 4), (1,)), ((3, 2), (3, 2), ())],
            ["mean", "sum", "none", "mean", "none", "sum"], [0.0, 0.3, -0.2, 0.1, 0.5, 0.0]):
        labels = rng.choice([1, -1], size=y)
        out.append(Sample((away_from_zero(rng, s), away_from_zero(rng, t), np.asarray(labels)),
                          {"margin": margin, "reduction": red}, f"{s} against {t}, targets {y}, {red}"))
    x = away_from_zero(rng, (3, 2))
    out.append(Sample((x, x, np.array([1, -1, 1])), {"margin": -0.5}, "the same input twice"))
    return out


def _embedding_cosine(x1, x2):
    """PyTorch's cosine for this loss: ``sum(x1 x2) / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12))`` on the last axis."""
    m1 = np.add.reduce(x1 * x1, axis=-1) + _EMBEDDING_EPS
    m2 = np.add.reduce(x2 * x2, axis=-1) + _EMBEDDING_EPS
    denom = np.sqrt(m1 * m2)
    return np.add.reduce(x1 * x2, axis=-1) / denom, denom, m1, m2


@op(shape=_embedding_rule, dtype=_embedding_dtype, float_inputs=True, saves=("inputs",),
    samples=_embedding_samples, counterparts={"torch": _TORCH + "cosine_embedding_loss"})
def cosine_embedding_loss(x1, x2, y, *, margin=0.0, reduction="mean"):
    """``1 - cos(x1, x2)`` where ``y`` is 1 and ``max(0, cos(x1, x2) - margin)`` where ``y`` is -1, on the last axis.

    PyTorch's ``cosine_embedding_loss``: pull pairs labelled 1 together and push
    pairs labelled -1 below ``margin``; other labels count 0. The cosine adds
    1e-12 to each squared norm, as PyTorch's does.
    """
    x1, x2 = np.broadcast_arrays(x1, x2)
    cos = _embedding_cosine(x1, x2)[0]
    losses = np.where(y == 1, 1 - cos, 0) + np.where(y == -1, np.maximum(cos - margin, 0), 0)
    return _torch_reduce(np.asarray(losses), reduction, np.result_type(x1, x2))


@cosine_embedding_loss.vjp
def _(g, x1, x2, y, *, margin, reduction, needs):
    x1, x2 = np.broadcast_arrays(x1, x2)
    cos, denom, m1, m2 = _embedding_cosine(x1, x2)
    slope = np.where(y == -1, (cos > margin).astype(cos.dtype), 0) - (y == 1)   # d loss / d cos
    k = np.expand_dims(_upstream(g, np.broadcast_shapes(cos.shape, np.shape(y)), reduction) * slope, -1)
    denom, cos, m1, m2 = (np.expand_dims(a, -1) for a in (denom, cos, m1, m2))
    return (k * (x2 / denom - cos * x1 / m1) if needs[0] else None,
            k * (x1 / denom - cos * x2 / m2) if needs[1] else None, None)


@cosine_embedding_loss.graph_vjp
def _(g, x1, x2, y, *, margin, reduction, needs):
    """Which label and whether the margin is passed are comparisons, never differentiated."""
    x1, x2 = x1 + zeros_like(x2), x2 + zeros_like(x1)
    m1 = apply("sum", x1 * x1, axis=-1, keepdims=True) + _EMBEDDING_EPS
    m2 = apply("sum", x2 * x2, axis=-1, keepdims=True) + _EMBEDDING_EPS
    denom = apply("sqrt", m1 * m2)
    cos = apply("sum", x1 * x2, axis=-1, keepdims=True) / denom
    labels = apply("expand_dims", y, axis=-1)
    pushed = _as_mask(apply("equal", labels, -1), cos.dtype) * _as_mask(apply("greater", cos, margin), cos.dtype)
    slope = pushed - _as_mask(apply("equal", labels, 1), cos.dtype)
    losses = apply("sum", cos, axis=-1) + apply("astype", y, dtype=cos.dtype.name)  # only its shape is read
    k = apply("expand_dims", _graph_upstream(g, losses, reduction), axis=-1) * slope
    return (k * (x2 / denom - cos * x1 / m1) if needs[0] else None,
            k * (x1 / denom - cos * x2 / m2) if needs[1] else None, None)


# ---------------------------------- weighted binary cross-entropy ---


def _weighted_bce_rule(logits, targets, weight, pos_weight, *, reduction="mean"):
    return _reduced_rule(broadcast_shapes(logits, targets, weight, pos_weight), reduction)


def _weighted_bce_dtype(logits, targets, weight, pos_weight, **attrs):
    return float_dtype(logits)


def _weighted_bce_samples(rng) -> list:
    out = []
    for (s, t, w, p), red in zip(
            [((4, 3), (4, 3), (), (3,)), ((2, 3), (3,), (2, 1), ()), ((3,), (2, 3), (3,), (3,)),
             ((0, 2), (0, 2), (2,), (2,)), ((1,), (1,), (1,), (1,))],
            ["mean", "sum", "none", "sum", "mean"]):
        out.append(Sample((away_from_zero(rng, s), _soft_targets(rng, t), positive(rng, w), positive(rng, p)),
                          {"reduction": red}, f"logits {s}, targets {t}, weight {w}, pos_weight {p}, {red}"))
    w = positive(rng, (3,))
    out.append(Sample((away_from_zero(rng, (2, 3)), _soft_targets(rng, (2, 3)), w, w), {"reduction": "mean"},
                      "the same input as weight and pos_weight"))
    return out


def _softplus_neg(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(-x))``, stable for large |x|."""
    return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


@op(shape=_weighted_bce_rule, dtype=_weighted_bce_dtype, float_inputs=True, saves=("inputs",),
    samples=_weighted_bce_samples, counterparts={"torch": _TORCH + "binary_cross_entropy_with_logits"})
def weighted_binary_cross_entropy_with_logits(logits, targets, weight, pos_weight, *, reduction="mean"):
    """Binary cross-entropy with logits, each entry scaled by ``weight`` and its positive term by ``pos_weight``.

    PyTorch's ``binary_cross_entropy_with_logits`` with ``weight`` and
    ``pos_weight``: ``weight * ((1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x)))``,
    computed stably; all four inputs broadcast, and the output has the logits'
    dtype (``binary_cross_entropy_with_logits`` is the unweighted op).
    """
    losses = ((1 - targets) * logits + (1 + (pos_weight - 1) * targets) * _softplus_neg(logits)) * weight
    return _torch_reduce(losses, reduction, logits.dtype)


@weighted_binary_cross_entropy_with_logits.vjp
def _(g, logits, targets, weight, pos_weight, *, reduction, needs):
    shape = np.broadcast_shapes(logits.shape, targets.shape, weight.shape, pos_weight.shape)
    up = _upstream(g, shape, reduction)
    softplus = _softplus_neg(logits)
    e = np.exp(-np.abs(logits))
    sigmoid_neg = np.where(logits >= 0, e / (1 + e), 1 / (1 + e))      # sigmoid(-x), stable
    grads = []
    for k, (array, grad) in enumerate([
            (logits, lambda: weight * ((1 - targets) - (1 + (pos_weight - 1) * targets) * sigmoid_neg)),
            (targets, lambda: weight * ((pos_weight - 1) * softplus - logits)),
            (weight, lambda: (1 - targets) * logits + (1 + (pos_weight - 1) * targets) * softplus),
            (pos_weight, lambda: weight * targets * softplus)]):
        # Each gradient in the full broadcast shape (the engine sums it back) and its own input's dtype.
        grads.append(np.broadcast_to(up * grad(), shape).astype(array.dtype, copy=False) if needs[k] else None)
    return tuple(grads)


@weighted_binary_cross_entropy_with_logits.graph_vjp
def _(g, logits, targets, weight, pos_weight, *, reduction, needs):
    softplus = apply("relu", -logits) + apply("log", 1 + apply("exp", -apply("abs", logits)))
    log_weight = 1 + (pos_weight - 1) * targets
    losses = ((1 - targets) * logits + log_weight * softplus) * weight
    up = _graph_upstream(g, losses, reduction)
    grads = [
        lambda: weight * ((1 - targets) - log_weight * apply("sigmoid", -logits)),
        lambda: weight * ((pos_weight - 1) * softplus - logits),
        lambda: (1 - targets) * logits + log_weight * softplus,
        lambda: weight * targets * softplus,
    ]
    return tuple(up * grad() if needs[k] else None for k, grad in enumerate(grads))
