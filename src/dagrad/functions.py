"""numpy-style functions over Tensors, for ops whose attributes numpy passes positionally.

``dagrad.ops.NAME`` is the op itself (inputs positional, attributes by
keyword); these wrappers give the familiar signatures: ``dg.sum(x, 0)``,
``dg.reshape(x, (2, 3))``, ``dg.concatenate([a, b])``, ``dg.einsum("ij,jk", a, b)``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from .errors import GraphError
from .tensor import Tensor, apply

__all__ = [
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax",
    "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze",
    "concatenate", "stack", "einsum", "take", "clip", "softmax_cross_entropy",
    "binary_cross_entropy_with_logits", "mse",
    # normalization and losses (PyTorch's functional names)
    "layer_norm", "group_norm", "rms_norm", "batch_norm", "nll_loss", "cross_entropy", "l1_loss", "smooth_l1_loss",
    "huber_loss", "kl_div", "cosine_similarity", "cosine_embedding_loss",
]

Axis = Optional[Any]


def sum(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Sum over ``axis`` (all axes by default)."""
    return apply("sum", x, axis=axis, keepdims=keepdims, name=name)


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Mean over ``axis`` (all axes by default)."""
    return apply("mean", x, axis=axis, keepdims=keepdims, name=name)


def max(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Largest entry over ``axis``."""
    return apply("max", x, axis=axis, keepdims=keepdims, name=name)


def min(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Smallest entry over ``axis``."""
    return apply("min", x, axis=axis, keepdims=keepdims, name=name)


def logsumexp(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """``log(sum(exp(x)))`` over ``axis``, computed stably."""
    return apply("logsumexp", x, axis=axis, keepdims=keepdims, name=name)


def softmax(x: Tensor, axis: int = -1, *, name: Optional[str] = None) -> Tensor:
    """Softmax along ``axis``."""
    return apply("softmax", x, axis=axis, name=name)


def log_softmax(x: Tensor, axis: int = -1, *, name: Optional[str] = None) -> Tensor:
    """Log-softmax along ``axis``."""
    return apply("log_softmax", x, axis=axis, name=name)


def reshape(x: Tensor, shape: Sequence[int], *, name: Optional[str] = None) -> Tensor:
    """The same entries in ``shape`` (one size may be -1)."""
    return apply("reshape", x, shape=tuple(shape), name=name)


def transpose(x: Tensor, axes: Optional[Sequence[int]] = None, *, name: Optional[str] = None) -> Tensor:
    """Permute axes (reverse them by default)."""
    return apply("transpose", x, axes=None if axes is None else tuple(axes), name=name)


def broadcast_to(x: Tensor, shape: Sequence[int], *, name: Optional[str] = None) -> Tensor:
    """Repeat ``x`` along size-1 and new leading axes to ``shape``."""
    return apply("broadcast_to", x, shape=tuple(shape), name=name)


def expand_dims(x: Tensor, axis: Any, *, name: Optional[str] = None) -> Tensor:
    """Insert size-1 axes at ``axis``."""
    return apply("expand_dims", x, axis=axis, name=name)


def squeeze(x: Tensor, axis: Axis = None, *, name: Optional[str] = None) -> Tensor:
    """Remove size-1 axes."""
    return apply("squeeze", x, axis=axis, name=name)


def concatenate(xs: Sequence[Tensor], axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Join along an existing axis."""
    return apply("concatenate", *xs, axis=axis, name=name)


def stack(xs: Sequence[Tensor], axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Join along a new axis."""
    return apply("stack", *xs, axis=axis, name=name)


def einsum(subscripts: str, *xs: Tensor, name: Optional[str] = None) -> Tensor:
    """Einstein summation, as ``numpy.einsum``."""
    return apply("einsum", *xs, subscripts=subscripts, name=name)


def take(x: Tensor, indices: Any, axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Entries of ``x`` at integer ``indices`` along ``axis`` (an embedding lookup)."""
    return apply("take", x, indices, axis=axis, name=name)


def clip(x: Tensor, low: Optional[float] = None, high: Optional[float] = None, *, name: Optional[str] = None) -> Tensor:
    """Limit entries to ``[low, high]``."""
    return apply("clip", x, low=low, high=high, name=name)


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


# ====================================================== normalization and losses ===
# PyTorch's functional signatures (torch.nn.functional.layer_norm, ...), options after the tensors by keyword.
# Class, feature and normalized axes default to the last axis, as softmax's does; PyTorch's class axis is 1.


def _optional(*tensors: Any) -> list:
    """The optional inputs that are given, in order (a bias without a weight is handled by the caller)."""
    return [t for t in tensors if t is not None]


def _scaled(op_name: str, x: Tensor, weight: Any, bias: Any, name: Optional[str], **attrs: Any) -> Tensor:
    """A normalization op whose optional inputs are a weight and then a bias; a bias alone is added after it."""
    if weight is None and bias is not None:
        return apply(op_name, x, **attrs) + bias
    return apply(op_name, x, *_optional(weight, bias), name=name, **attrs)


def _sizes(normalized_shape: Union[int, Sequence[int]]) -> tuple:
    return (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)


def layer_norm(x: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Any = None, bias: Any = None,
               eps: float = 1e-5, *, name: Optional[str] = None) -> Tensor:
    """Normalize over the trailing axes ``normalized_shape`` (mean 0, variance 1), then scale and shift."""
    return _scaled("layer_norm", x, weight, bias, name, normalized_shape=_sizes(normalized_shape), eps=eps)


def group_norm(x: Tensor, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5, *,
               name: Optional[str] = None) -> Tensor:
    """Normalize each group of channels (axis 1) of each example of ``(N, C, ...)``, then scale and shift per channel."""
    return _scaled("group_norm", x, weight, bias, name, num_groups=int(num_groups), eps=eps)


def rms_norm(x: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Any = None, eps: Optional[float] = None,
             *, name: Optional[str] = None) -> Tensor:
    """Divide by the root mean square over the trailing axes ``normalized_shape``, then scale by ``weight``."""
    return apply("rms_norm", x, *_optional(weight), normalized_shape=_sizes(normalized_shape), eps=eps, name=name)


def batch_norm(x: Tensor, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
               training: Any = False, momentum: Optional[float] = 0.1, eps: float = 1e-5, *,
               num_batches_tracked: Optional[Tensor] = None, name: Optional[str] = None) -> Tensor:
    """Batch normalization of the channels (axis 1) of ``x``, and the updates of its running statistics.

    ``training`` is a scalar input Tensor (0 evaluates, as ``dropout``'s) or a
    Python bool. While training, each channel is normalized with the batch's
    statistics and, as PyTorch's ``F.batch_norm`` does in place, the running
    statistics move toward them by ``momentum``: here ``running_mean`` and
    ``running_var`` must be non-trainable params, and the graph records their
    next values as state updates (``Graph.add_update``) that ``fit`` applies
    after every step. ``momentum=None`` averages all batches so far, counted by
    the int64 param ``num_batches_tracked``; ``momentum=0`` leaves them alone.
    Without running statistics (``None``) the batch's are always used.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x, training = g.input("x", shape=(None, 2)), g.input("training", shape=())
    >>> mean = g.param("mean", np.zeros(2), trainable=False)
    >>> var = g.param("var", np.ones(2), trainable=False)
    >>> y = dg.batch_norm(x, mean, var, training=training)
    >>> sorted(g.updates)
    ['mean', 'var']
    >>> X = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> g.updates["mean"]
    'next/mean'
    >>> res = g.forward([y, "next/mean"], {"x": X, "training": 1})
    >>> res.value(y).round(4)
    array([[-1., -1.],
           [ 1.,  1.]])
    >>> res.value("next/mean")                        # 0.9 * 0 + 0.1 * the batch mean
    array([0.2, 2. ])
    """
    graph = x.graph
    affine = _optional(weight, bias) if weight is not None else []
    with graph.atomic():
        if running_mean is None or running_var is None:
            if running_mean is not None or running_var is not None:
                raise GraphError("batch_norm: give both running_mean and running_var, or neither")
            if training is False:
                raise GraphError("batch_norm without running statistics uses the batch's: training cannot be False")
            channels = x.shape[1] if x.shape is not None and len(x.shape) > 1 else None
            if channels is None:
                raise GraphError(f"batch_norm without running statistics needs a known channel count (axis 1 of "
                                 f"{x.name!r}, shape {x.shape})")
            dtype = x.dtype if x.dtype.kind == "f" else np.dtype("float64")
            out = apply("batch_norm", x, np.zeros(channels, dtype), np.ones(channels, dtype), 1, *affine, eps=eps,
                        name=name)
        else:
            flag = training if isinstance(training, Tensor) else int(bool(training))
            out = apply("batch_norm", x, running_mean, running_var, flag, *affine, eps=eps, name=name)
            if (isinstance(training, Tensor) or training) and momentum != 0:
                _update_running(x, running_mean, running_var, flag, momentum, num_batches_tracked)
        if weight is None and bias is not None:
            out = out + bias
    return out


def _update_running(x: Tensor, running_mean: Any, running_var: Any, training: Any, momentum: Optional[float],
                    count: Optional[Tensor]) -> None:
    """Record the next running mean and variance (and batch count) as state updates of the graph."""
    graph = x.graph
    for what, param in (("running_mean", running_mean), ("running_var", running_var)):
        if not isinstance(param, Tensor) or param.op != "param" or param.node.trainable:
            raise GraphError(
                f"batch_norm: {what} must be a non-trainable param (g.param(..., trainable=False)) so that training "
                f"can update it, not {getattr(param, 'name', param)!r}; pass momentum=0 to keep it fixed")
    if momentum is None and (not isinstance(count, Tensor) or count.dtype.kind not in "iu"):
        raise GraphError("batch_norm: momentum=None (a cumulative average) needs num_batches_tracked, an integer "
                         "non-trainable param counting the batches seen")
    counted = [count] if momentum is None else []
    stems = [t.name.rpartition("/")[2] for t in (running_mean, running_var, *counted)]
    distinct = len(set(stems)) == len(stems)
    with graph.scope(graph.unused_scope("next")):  # bn/next/running_mean: each state's next value
        for statistic, param, stem in (("mean", running_mean, stems[0]), ("var", running_var, stems[1])):
            new = apply("batch_norm_update", param, x, training, *counted, statistic=statistic, momentum=momentum,
                        name=stem if distinct else None)
            graph.add_update(param, new)
        if momentum is None:
            step = apply("astype", apply("not_equal", training, 0), dtype=count.dtype.name)
            graph.add_update(count, apply("add", count, step, name=stems[2] if distinct else None))


def nll_loss(input: Tensor, target: Any, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean",
             axis: int = -1, name: Optional[str] = None) -> Tensor:
    """Negative log-likelihood of class indices ``target`` under log-probabilities ``input`` (classes on ``axis``)."""
    return apply("nll_loss", input, target, *_optional(weight), axis=axis, ignore_index=ignore_index,
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
        return apply("cross_entropy", input, target, *_optional(weight), axis=axis, ignore_index=ignore_index,
                     reduction=reduction, label_smoothing=label_smoothing, name=name)
    if ignore_index != -100:
        raise GraphError("cross_entropy: ignore_index applies to class-index targets, not to probabilities")
    return apply("soft_cross_entropy", input, target, *_optional(weight), axis=axis, reduction=reduction,
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
