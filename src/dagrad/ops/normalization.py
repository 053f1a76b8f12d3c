"""Normalization ops: ``layer_norm``, ``group_norm``, ``rms_norm``, ``batch_norm`` and its running statistics.

Each op is fused: one node computes the statistics, the normalized values and
the optional per-feature ``weight`` and ``bias`` (inputs after ``x``, absent
when not given), and its VJP is the closed-form three-term formula instead of
a dozen nodes of means and differences. The formulas are written once over a
``mean`` function and used on numpy arrays by the forward and numpy VJP, and
on Tensors by the graph VJP, so the two VJPs are the same maths.

Running statistics cannot live in an op, which is a pure function: they are
non-trainable params, ``batch_norm`` reads them, and ``batch_norm_update``
computes their next values, which ``dagrad.train.fit`` stores after each
training step (``Graph.add_update``; see docs/training.md). Both take the
``training`` scalar input that ``dropout`` takes: nonzero while training.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..opdef import Sample, float_dtype, op
from ..shapes import format_shape, shapes_agree
from ..tensor import apply
from .adjoints import is_nonzero, reduced_count, reshape_like, static_rank, vector_on_axis
from .samples import away_from_zero, positive

__all__ = ["layer_norm", "group_norm", "rms_norm", "batch_norm", "batch_norm_update"]

_NORM = "torch.nn.functional."


# ------------------------------------------------ shared formulas ---
# ``mean(t)`` averages over the entries normalized together and keeps their axes (size 1), so the result
# broadcasts against ``t``; ``rsqrt`` is 1/sqrt. Both exist for arrays (below) and for Tensors (``_graph_*``).


def _standardize(x, mean: Callable, rsqrt: Callable, eps: float):
    """``((x - mean(x)) * rstd, rstd)`` with ``rstd = 1 / sqrt(var + eps)`` and the biased variance."""
    centred = x - mean(x)
    rstd = rsqrt(mean(centred * centred) + eps)
    return centred * rstd, rstd


def _standardize_vjp(dxhat, xhat, rstd, mean: Callable):
    """The gradient of ``x`` given that of the standardized ``xhat``: ``rstd * (dxhat - E[dxhat] - xhat E[dxhat xhat])``."""
    return rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))


def _rms_scale(x, mean: Callable, rsqrt: Callable, eps: float):
    """``(x * rstd, rstd)`` with ``rstd = 1 / sqrt(mean(x ** 2) + eps)``."""
    rstd = rsqrt(mean(x * x) + eps)
    return x * rstd, rstd


def _rms_scale_vjp(dxhat, xhat, rstd, mean: Callable):
    return rstd * (dxhat - xhat * mean(dxhat * xhat))


def _array_mean(axes: tuple) -> Callable:
    """Mean over ``axes`` with kept axes; 0 (not NaN with a warning) over no entries, whose results are empty."""

    def mean(a: np.ndarray) -> np.ndarray:
        count = math.prod(a.shape[i] for i in axes)
        return np.add.reduce(a, axis=axes, keepdims=True) / max(count, 1)

    return mean


def _array_rsqrt(a: np.ndarray) -> np.ndarray:
    return 1 / np.sqrt(a)


def _graph_mean(axes: tuple) -> Callable:
    """As ``_array_mean``, with nodes: a sum divided by the count of at least 1 (no NaN over no entries)."""
    return lambda t: apply("sum", t, axis=axes, keepdims=True) / reduced_count(t, axes)


def _graph_rsqrt(t):
    return 1 / apply("sqrt", t)


def _graph_sum(t, axes: tuple):
    return apply("sum", t, axis=axes) if axes else t


def _channel_axes(ndim: int) -> tuple:
    """The axes a per-channel statistic reduces: all but the channel axis 1."""
    return (0,) + tuple(range(2, ndim))


def _scale_shift(xhat, affine: tuple, ndim: int, per_channel: bool):
    """``xhat * weight + bias`` for the affine inputs given (none, weight, or weight and bias)."""
    out = xhat
    for k, param in enumerate(affine):
        param = vector_on_axis(param, 1, ndim) if per_channel else param
        out = out * param if k == 0 else out + param
    return out


# -------------------------------------------------------- shape rules ---


def _check_affine(affine: tuple, expected: tuple, op_name: str, what: str) -> None:
    if len(affine) > 2:
        raise ValueError(f"{op_name} takes x and then at most a weight and a bias, not {len(affine)} more inputs")
    for name, shape in zip(("weight", "bias"), affine):
        if not shapes_agree(shape, expected):
            raise ValueError(f"{name} of shape {format_shape(shape)} does not match {what} {format_shape(expected)}")


def _normalized_axes(normalized_shape, ndim: int, op_name: str) -> tuple:
    """The trailing axes ``normalized_shape`` names, checked; a ValueError says what is wrong."""
    if normalized_shape is None or not isinstance(normalized_shape, tuple) or not normalized_shape:
        raise ValueError(f"{op_name} needs normalized_shape, the sizes of the trailing axes to normalize "
                         f"(at least one), not {normalized_shape!r}")
    if not all(isinstance(d, int) and d >= 0 for d in normalized_shape):
        raise ValueError(f"normalized_shape {normalized_shape!r} must hold sizes (integers >= 0)")
    k = len(normalized_shape)
    if ndim < k:
        raise ValueError(f"an input of {ndim} axes cannot be normalized over the {k} trailing axes {normalized_shape}")
    return tuple(range(ndim - k, ndim))


def _trailing_rule(op_name: str):
    def rule(x, *affine, normalized_shape=None, eps=None):
        _normalized_axes(normalized_shape, len(x), op_name)
        k = len(normalized_shape)
        if not shapes_agree(x[len(x) - k:], normalized_shape):
            raise ValueError(f"the trailing axes of x {format_shape(x)} are not normalized_shape {normalized_shape}")
        _check_affine(affine, normalized_shape, op_name, "normalized_shape")
        if op_name == "rms_norm" and len(affine) > 1:
            raise ValueError("rms_norm takes x and at most a weight (it has no bias)")
        return tuple(x)

    return rule


def _check_trailing(x: np.ndarray, normalized_shape: tuple, op_name: str) -> tuple:
    """The axes to normalize, with the fed sizes checked (the shape rule may have seen unknown ones)."""
    axes = _normalized_axes(normalized_shape, x.ndim, op_name)
    if x.shape[x.ndim - len(axes):] != normalized_shape:
        raise ValueError(f"the trailing axes of x {x.shape} are not normalized_shape {normalized_shape}")
    return axes


def _out_dtype(*arrays) -> np.dtype:
    return np.result_type(*arrays)


# --------------------------------------------------------- layer_norm ---


def _layer_norm_samples(rng) -> list:
    x = away_from_zero(rng, (4,))
    return [
        Sample((away_from_zero(rng, (4, 5)), away_from_zero(rng, (5,)), away_from_zero(rng, (5,))),
               {"normalized_shape": (5,)}, "rows of 5, weight and bias"),
        Sample((away_from_zero(rng, (2, 3, 4)), away_from_zero(rng, (3, 4))), {"normalized_shape": (3, 4), "eps": 1e-3},
               "two trailing axes, weight only"),
        Sample((away_from_zero(rng, (3,)),), {"normalized_shape": (3,)}, "one row, no affine"),
        Sample((away_from_zero(rng, (0, 4)), away_from_zero(rng, (4,)), away_from_zero(rng, (4,))),
               {"normalized_shape": (4,)}, "an empty batch"),
        Sample((away_from_zero(rng, (2, 1)),), {"normalized_shape": (1,)}, "one entry per row: all zeros"),
        Sample((x, x, away_from_zero(rng, (4,))), {"normalized_shape": (4,)}, "the same input as x and weight"),
    ]


@op(shape=_trailing_rule("layer_norm"), dtype=float_dtype, float_inputs=True, saves=(), residuals=True,
    samples=_layer_norm_samples, counterparts={"torch": _NORM + "layer_norm"})
def layer_norm(x, *affine, normalized_shape=None, eps=1e-5):
    """Normalize over the trailing ``normalized_shape`` axes to mean 0 and variance 1, then scale and shift.

    ``(x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance,
    as PyTorch's ``layer_norm``; ``weight`` and ``bias`` (of shape
    ``normalized_shape``) are optional inputs after ``x``: none, a weight, or both.
    """
    axes = _check_trailing(x, normalized_shape, "layer_norm")
    xhat, rstd = _standardize(x, _array_mean(axes), _array_rsqrt, eps)
    out = _scale_shift(xhat, affine, x.ndim, per_channel=False)
    return out.astype(_out_dtype(x, *affine), copy=False), (xhat, rstd, affine[0] if affine else None)


def _trailing_grads(g, xhat, rstd, weight, count: int, needs, mean: Callable, backward: Callable) -> tuple:
    """Gradients of x and of the ``count`` affine inputs (weight, bias) of a norm over trailing axes."""
    dxhat = g * weight if weight is not None else g
    grads = [backward(dxhat, xhat, rstd, mean) if needs[0] else None]
    # The weight and bias span the trailing axes: the engine sums their gradients over the leading ones.
    return tuple(grads + [(g * xhat if k == 0 else g) if needs[k + 1] else None for k in range(count)])


def _trailing_vjps(norm_op, scale: Callable, backward: Callable, eps_of: Callable) -> None:
    """Give a norm over trailing axes (``layer_norm``, ``rms_norm``) its VJPs, which differ only in the formulas.

    ``scale`` and ``backward`` are the forward and gradient formulas above;
    ``eps_of(eps, dtype)`` is the ``eps`` the forward used for an output of ``dtype``.
    """

    @norm_op.vjp
    def _(g, x, *affine, res, normalized_shape, eps, needs):
        xhat, rstd, weight = res
        mean = _array_mean(tuple(range(x.ndim - len(normalized_shape), x.ndim)))
        return _trailing_grads(g, xhat, rstd, weight, len(affine), needs, mean, backward)

    @norm_op.graph_vjp
    def _(g, x, *affine, normalized_shape, eps, needs):
        mean = _graph_mean(tuple(range(-len(normalized_shape), 0)))
        xhat, rstd = scale(x, mean, _graph_rsqrt, eps_of(eps, float_dtype(x.dtype, *[a.dtype for a in affine])))
        return _trailing_grads(g, xhat, rstd, affine[0] if affine else None, len(affine), needs, mean, backward)


_trailing_vjps(layer_norm, _standardize, _standardize_vjp, lambda eps, dtype: eps)


# ----------------------------------------------------------- rms_norm ---


def _rms_norm_samples(rng) -> list:
    x = away_from_zero(rng, (4,))
    return [
        Sample((away_from_zero(rng, (3, 5)), away_from_zero(rng, (5,))), {"normalized_shape": (5,)}, "rows, weight"),
        Sample((away_from_zero(rng, (2, 3, 4)),), {"normalized_shape": (3, 4), "eps": 1e-3}, "two axes, no weight"),
        Sample((away_from_zero(rng, (0, 3)), away_from_zero(rng, (3,))), {"normalized_shape": (3,)}, "an empty batch"),
        Sample((away_from_zero(rng, (2, 1)),), {"normalized_shape": (1,), "eps": 0.1}, "one entry per row"),
        Sample((x, x), {"normalized_shape": (4,)}, "the same input as x and weight"),
    ]


@op(shape=_trailing_rule("rms_norm"), dtype=float_dtype, float_inputs=True, saves=(), residuals=True,
    samples=_rms_norm_samples, counterparts={"torch": _NORM + "rms_norm"})
def rms_norm(x, *weight, normalized_shape=None, eps=None):
    """Divide by the root mean square over the trailing ``normalized_shape`` axes, then scale by ``weight``.

    ``x / sqrt(mean(x ** 2) + eps) * weight`` as PyTorch's ``rms_norm``; ``eps``
    defaults to the machine epsilon of the output's dtype, and ``weight`` is optional.
    """
    axes = _check_trailing(x, normalized_shape, "rms_norm")
    dtype = _out_dtype(x, *weight)
    xhat, rstd = _rms_scale(x, _array_mean(axes), _array_rsqrt, _rms_eps(eps, dtype))
    out = _scale_shift(xhat, weight, x.ndim, per_channel=False)
    return out.astype(dtype, copy=False), (xhat, rstd, weight[0] if weight else None)


def _rms_eps(eps, dtype) -> float:
    return float(np.finfo(dtype).eps) if eps is None else eps


_trailing_vjps(rms_norm, _rms_scale, _rms_scale_vjp, _rms_eps)


# --------------------------------------------------------- group_norm ---


def _channels(x, others, op_name: str):
    """The channel count (axis 1 of ``x``, or the size of a per-channel input), or None if unknown."""
    if len(x) < 2:
        raise ValueError(f"{op_name} needs an input of shape (N, C, ...) with channels on axis 1, not {format_shape(x)}")
    sizes = {d for d in [x[1], *(s[0] for s in others if len(s) == 1)] if d is not None}
    for shape in others:
        if len(shape) != 1:
            raise ValueError(f"a per-channel input must have one axis, not shape {format_shape(shape)}")
    if len(sizes) > 1:
        raise ValueError(f"x {format_shape(x)} has channels on axis 1 that do not match the per-channel inputs "
                         f"{', '.join(format_shape(s) for s in others)}")
    return sizes.pop() if sizes else None


def _group_norm_shape(x, *affine, num_groups=None, eps=1e-5):
    if len(affine) > 2:
        raise ValueError(f"group_norm takes x and then at most a weight and a bias, not {len(affine)} more inputs")
    channels = _channels(x, affine, "group_norm")
    if not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"num_groups must be a positive integer, not {num_groups!r}")
    if channels is None:
        raise ValueError("group_norm needs a known number of channels (axis 1 of x, or the weight's size)")
    if channels % num_groups:
        raise ValueError(f"{channels} channels do not split into {num_groups} groups of equal size")
    return tuple(x)


def _group_norm_samples(rng) -> list:
    w = away_from_zero(rng, (4,))
    return [
        Sample((away_from_zero(rng, (2, 4, 3)), away_from_zero(rng, (4,)), away_from_zero(rng, (4,))),
               {"num_groups": 2}, "2 groups of 2 channels, weight and bias"),
        Sample((away_from_zero(rng, (3, 6)),), {"num_groups": 3}, "no spatial axes, no affine"),
        Sample((away_from_zero(rng, (2, 4, 2, 2)), away_from_zero(rng, (4,))), {"num_groups": 1, "eps": 1e-3},
               "one group (layer norm over C, H, W), weight only"),
        Sample((away_from_zero(rng, (1, 4, 3)),), {"num_groups": 4}, "a group per channel (instance norm)"),
        Sample((away_from_zero(rng, (0, 4, 3)), away_from_zero(rng, (4,)), away_from_zero(rng, (4,))),
               {"num_groups": 2}, "an empty batch"),
        Sample((away_from_zero(rng, (2, 2, 1)),), {"num_groups": 2}, "one entry per group: all zeros"),
        Sample((away_from_zero(rng, (2, 4, 3)), w, w), {"num_groups": 2}, "the same input as weight and bias"),
    ]


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """``(N, C, ...)`` viewed as ``(N, groups, entries per group)``."""
    n, c = a.shape[:2]
    return a.reshape(n, groups, (c // groups) * math.prod(a.shape[2:]))


_LAST = _array_mean((2,))


@op(shape=_group_norm_shape, dtype=float_dtype, float_inputs=True, saves=(), residuals=True,
    samples=_group_norm_samples, counterparts={"torch": _NORM + "group_norm"})
def group_norm(x, *affine, num_groups=None, eps=1e-5):
    """Normalize each group of ``C / num_groups`` channels (axis 1) of each example, then scale and shift per channel.

    As PyTorch's ``group_norm``: ``x`` is ``(N, C, ...)``; ``weight`` and ``bias``
    (shape ``(C,)``) are optional inputs after ``x``. One group is a layer norm
    over ``(C, ...)``; ``C`` groups is an instance norm.
    """
    if x.shape[1] % num_groups:
        raise ValueError(f"{x.shape[1]} channels do not split into {num_groups} groups of equal size")
    xhat, rstd = _standardize(_grouped(x, num_groups), _LAST, _array_rsqrt, eps)
    xhat = xhat.reshape(x.shape)
    out = _scale_shift(xhat, affine, x.ndim, per_channel=True)
    return out.astype(_out_dtype(x, *affine), copy=False), (xhat, rstd, affine[0] if affine else None)


@group_norm.vjp
def _(g, x, *affine, res, num_groups, eps, needs):
    xhat, rstd, weight = res
    dxhat = g * vector_on_axis(weight, 1, x.ndim) if weight is not None else g
    grads = [None] * (1 + len(affine))
    if needs[0]:
        grouped = _standardize_vjp(_grouped(dxhat, num_groups), _grouped(xhat, num_groups), rstd, _LAST)
        grads[0] = grouped.reshape(x.shape)
    _channel_param_grads(grads, 1, g, xhat, affine, needs, np.add.reduce)
    return tuple(grads)


def _channel_param_grads(grads: list, first: int, g, xhat, affine: tuple, needs, total: Callable) -> None:
    """Put the gradients of a per-channel weight and bias (inputs ``first`` and ``first + 1``) into ``grads``."""
    axes = _channel_axes(len(xhat.shape))
    for k in range(len(affine)):
        if needs[first + k]:
            grads[first + k] = total(g * xhat if k == 0 else g, axes)


def _graph_group_mean(groups: int, channels: int, ndim: int) -> Callable:
    """Mean over each group of channels and the spatial axes, shaped ``(N, C, 1, ...)``; only N may be unknown."""
    spatial = tuple(range(2, ndim))
    per = channels // groups

    def mean(t):
        m = apply("mean", t, axis=spatial, keepdims=True) if spatial else t    # (N, C, 1, ...)
        groupwise = apply("mean", apply("reshape", m, shape=(-1, groups, per)), axis=2, keepdims=True)
        return reshape_like(groupwise * np.ones((1, 1, per), t.dtype), m)      # each group's mean, per channel

    return mean


@group_norm.graph_vjp
def _(g, x, *affine, num_groups, eps, needs):
    ndim = static_rank(x, "group_norm")
    channels = _channels(x.shape, [a.shape for a in affine], "group_norm")
    mean = _graph_group_mean(num_groups, channels, ndim)
    xhat, rstd = _standardize(x, mean, _graph_rsqrt, eps)
    dxhat = g * vector_on_axis(affine[0], 1, ndim) if affine else g
    grads = [_standardize_vjp(dxhat, xhat, rstd, mean) if needs[0] else None] + [None] * len(affine)
    _channel_param_grads(grads, 1, g, xhat, affine, needs, _graph_sum)
    return tuple(grads)


# --------------------------------------------------------- batch_norm ---


def _check_training(training) -> None:
    if len(training) != 0:
        raise ValueError(f"training must be a scalar (0 = evaluate, nonzero = train), not {format_shape(training)}")


def _batch_norm_shape(x, running_mean, running_var, training, *affine, eps=1e-5):
    _check_training(training)
    if len(affine) > 2:
        raise ValueError(f"batch_norm takes x, the running mean and variance, training, and then at most a weight "
                         f"and a bias, not {len(affine)} more inputs")
    _channels(x, [running_mean, running_var, *affine], "batch_norm")
    return tuple(x)


def _batch_norm_dtype(x, running_mean, running_var, training, *affine, eps=1e-5):
    if np.dtype(training).kind not in "biuf":
        raise TypeError(f"training must be a number, not {training}")
    return float_dtype(x, running_mean, running_var, *affine)


def _batch_norm_samples(rng) -> list:
    stats = away_from_zero(rng, (3,))
    return [
        Sample((away_from_zero(rng, (4, 3)), away_from_zero(rng, (3,)), positive(rng, (3,)), np.asarray(5),
                away_from_zero(rng, (3,)), away_from_zero(rng, (3,))), {}, "training: batch statistics, weight and bias"),
        Sample((away_from_zero(rng, (4, 3)), away_from_zero(rng, (3,)), positive(rng, (3,)), np.asarray(0),
                away_from_zero(rng, (3,)), away_from_zero(rng, (3,))), {}, "evaluation: running statistics"),
        Sample((away_from_zero(rng, (2, 3, 4)), away_from_zero(rng, (3,)), positive(rng, (3,)), np.asarray(1)),
               {"eps": 1e-3}, "training over a length axis, no affine"),
        Sample((away_from_zero(rng, (2, 2, 2, 3)), away_from_zero(rng, (2,)), positive(rng, (2,)), np.asarray(0),
                away_from_zero(rng, (2,))), {}, "evaluation of images, weight only"),
        Sample((away_from_zero(rng, (1, 2, 2)), away_from_zero(rng, (2,)), positive(rng, (2,)), np.asarray(3)),
               {}, "training on one example of length 2"),
        Sample((away_from_zero(rng, (0, 3)), away_from_zero(rng, (3,)), positive(rng, (3,)), np.asarray(2),
                away_from_zero(rng, (3,)), away_from_zero(rng, (3,))), {}, "training on an empty batch"),
        Sample((away_from_zero(rng, (2, 3)), stats, positive(rng, (3,)), np.asarray(0), stats), {},
               "evaluation, the same input as running mean and weight"),
    ]


def _values_per_channel(x: np.ndarray) -> int:
    return x.size // x.shape[1] if x.shape[1] else 0


def _check_batch(x: np.ndarray, op_name: str) -> None:
    if _values_per_channel(x) == 1:
        raise ValueError(f"{op_name}: training needs more than one value per channel, but the input has shape "
                         f"{x.shape}: use batches of two or more (fit(..., drop_last=True) drops a last batch of one)")


@op(shape=_batch_norm_shape, dtype=_batch_norm_dtype, float_inputs=True, saves=(), residuals=True,
    samples=_batch_norm_samples, counterparts={"torch": _NORM + "batch_norm"})
def batch_norm(x, running_mean, running_var, training, *affine, eps=1e-5):
    """Normalize each channel (axis 1) with the batch's statistics when ``training``, the running ones otherwise.

    As PyTorch's ``batch_norm`` on ``x`` of shape ``(N, C, ...)``: while training
    (``training`` nonzero) each channel is standardized with the mean and biased
    variance over the batch and the other axes, and ``running_mean`` and
    ``running_var`` are not read; in evaluation (0) they are used instead. The
    optional ``weight`` and ``bias`` (``(C,)``) follow. This op does not change
    the running statistics: ``batch_norm_update`` computes their next values.
    """
    dtype = _out_dtype(x, running_mean, running_var, *affine)
    train = bool(training.item())
    if train:
        _check_batch(x, "batch_norm")
        xhat, rstd = _standardize(x, _array_mean(_channel_axes(x.ndim)), _array_rsqrt, eps)
    else:
        rstd = _array_rsqrt(vector_on_axis(running_var, 1, x.ndim) + eps)
        xhat = (x - vector_on_axis(running_mean, 1, x.ndim)) * rstd
    out = _scale_shift(xhat, affine, x.ndim, per_channel=True)
    return out.astype(dtype, copy=False), (xhat, rstd, affine[0] if affine else None, train)


@batch_norm.vjp
def _(g, x, running_mean, running_var, training, *affine, res, eps, needs):
    xhat, rstd, weight, train = res
    axes = _channel_axes(x.ndim)
    dxhat = g * vector_on_axis(weight, 1, x.ndim) if weight is not None else g
    grads = [None] * (4 + len(affine))
    if train:  # the running statistics are not read
        if needs[0]:
            grads[0] = _standardize_vjp(dxhat, xhat, rstd, _array_mean(axes))
    else:
        scaled = dxhat * rstd
        grads[0] = scaled if needs[0] else None
        if needs[1]:
            grads[1] = -np.add.reduce(scaled, axes)
        if needs[2]:  # d/dvar of (x - mean) / sqrt(var + eps) is -xhat / (2 (var + eps))
            grads[2] = np.add.reduce(dxhat * xhat, axes) * (-0.5 * rstd.reshape(-1) ** 2)
    _channel_param_grads(grads, 4, g, xhat, affine, needs, np.add.reduce)
    return tuple(grads)


@batch_norm.graph_vjp
def _(g, x, running_mean, running_var, training, *affine, eps, needs):
    """Both modes are built and ``where`` picks one by the ``training`` input, a boolean mask never differentiated."""
    ndim = static_rank(x, "batch_norm")
    axes = _channel_axes(ndim)
    training_now = is_nonzero(training)
    mean = _graph_mean(axes)
    dxhat = g * vector_on_axis(affine[0], 1, ndim) if affine else g
    batch_xhat, batch_rstd = _standardize(x, mean, _graph_rsqrt, eps)
    rstd = _graph_rsqrt(vector_on_axis(running_var, 1, ndim) + eps)
    running_xhat = (x - vector_on_axis(running_mean, 1, ndim)) * rstd
    xhat = apply("where", training_now, batch_xhat, running_xhat)
    grads = [None] * (4 + len(affine))
    if needs[0]:
        grads[0] = apply("where", training_now, _standardize_vjp(dxhat, batch_xhat, batch_rstd, mean), dxhat * rstd)
    if needs[1]:
        grads[1] = apply("where", training_now, 0.0, -_graph_sum(dxhat * rstd, axes))
    if needs[2]:
        flat = apply("reshape", rstd, shape=(-1,))
        grads[2] = apply("where", training_now, 0.0, _graph_sum(dxhat * running_xhat, axes) * (-0.5 * flat * flat))
    _channel_param_grads(grads, 4, g, xhat, affine, needs, _graph_sum)
    return tuple(grads)


# ----------------------------------------------- batch_norm_update ---


_STATISTICS = ("mean", "var")


def _update_shape(running, x, training, *count, statistic="mean", momentum=0.1):
    _check_training(training)
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be 'mean' or 'var', not {statistic!r}")
    if momentum is None:
        if len(count) != 1 or len(count[0]) != 0:
            raise ValueError("momentum=None (a cumulative average) needs the scalar count of batches seen as an input")
    elif count:
        raise ValueError("a count of batches is an input only with momentum=None")
    elif not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], or None for a cumulative average, not {momentum!r}")
    _channels(x, [running], "batch_norm_update")
    return tuple(running)


def _update_dtype(running, x, training, *count, statistic="mean", momentum=0.1):
    if np.dtype(running).kind != "f" or np.dtype(x).kind not in "biuf":
        raise TypeError(f"running statistics must be floating point (not {running}) and the batch numbers (not {x})")
    if count and np.dtype(count[0]).kind not in "iu":
        raise TypeError(f"the count of batches must be an integer, not {count[0]}")
    return np.dtype(running)


def _update_samples(rng) -> list:
    samples = []
    for x, statistic, training, momentum in [
        (away_from_zero(rng, (5, 3)), "mean", 4, 0.1),
        (away_from_zero(rng, (5, 3)), "var", 4, 0.1),
        (away_from_zero(rng, (2, 3, 4)), "var", 0, 0.3),
        (away_from_zero(rng, (0, 3)), "mean", 1, 0.1),
        (away_from_zero(rng, (1, 3, 2)), "var", 2, 0.5),
    ]:
        samples.append(Sample((positive(rng, (3,)), x, np.asarray(training)),
                              {"statistic": statistic, "momentum": momentum},
                              f"{statistic} of {x.shape}, training={training}, momentum={momentum}"))
    samples.append(Sample((positive(rng, (3,)), away_from_zero(rng, (4, 3)), np.asarray(1), np.asarray(4)),
                          {"statistic": "var", "momentum": None}, "cumulative average after 4 batches"))
    return samples


@op(shape=_update_shape, dtype=_update_dtype, saves=(), samples=_update_samples,
    counterparts={"torch": _NORM + "batch_norm"})
def batch_norm_update(running, x, training, *count, statistic="mean", momentum=0.1):
    """The next value of a running mean or variance of the channels (axis 1) of ``x``, as ``batch_norm`` keeps it.

    While ``training``, ``(1 - momentum) * running + momentum * s`` where ``s``
    is the batch's mean, or its unbiased variance (``statistic="var"``), per
    channel, as PyTorch updates ``running_mean`` and ``running_var``;
    ``momentum=None`` takes the cumulative average, with the number of batches
    seen before as a last input. In evaluation, or for an empty batch, it is
    ``running`` unchanged. It has no gradient: running statistics are state,
    set after each step (``Graph.add_update``), not a function to differentiate.
    """
    per_channel = _values_per_channel(x)
    if not training.item() or per_channel == 0:
        return running.copy()
    factor = momentum if momentum is not None else 1.0 / (int(count[0]) + 1)
    axes = _channel_axes(x.ndim)
    x = x if x.dtype.kind == "f" else x.astype(np.float64)
    mean = np.add.reduce(x, axis=axes, keepdims=True) / per_channel
    if statistic == "mean":
        stat = mean.reshape(-1)
    else:
        _check_batch(x, "batch_norm_update")
        centred = x - mean
        stat = np.add.reduce(centred * centred, axis=axes) / (per_channel - 1)
    return (factor * stat + (1 - factor) * running).astype(running.dtype, copy=False)
