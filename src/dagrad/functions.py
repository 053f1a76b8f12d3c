"""numpy-style functions over Tensors, for ops whose attributes numpy passes positionally.

``dagrad.ops.NAME`` is the op itself (inputs positional, attributes by
keyword); these wrappers give the familiar signatures: ``dg.sum(x, 0)``,
``dg.reshape(x, (2, 3))``, ``dg.concatenate([a, b])``, ``dg.einsum("ij,jk", a, b)``.
"""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np

from .errors import GraphError, ShapeError
from .shapes import normalize_axes
from .tensor import Tensor, apply

__all__ = [
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax",
    "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze",
    "concatenate", "stack", "einsum", "take", "clip", "softmax_cross_entropy",
    "binary_cross_entropy_with_logits", "mse",
    # layout and indexing (issue 14)
    "pad", "flip", "roll", "tile", "repeat", "split", "chunk", "tril", "triu", "diagonal", "trace",
    "take_along_axis", "scatter_add", "index_add", "masked_fill", "one_hot",
    "scaled_dot_product_attention", "attention_weights",
    # normalization and losses (PyTorch's functional names)
    "layer_norm", "group_norm", "rms_norm", "batch_norm", "nll_loss", "cross_entropy", "l1_loss", "smooth_l1_loss",
    "huber_loss", "kl_div", "cosine_similarity", "cosine_embedding_loss",
    # ops-math
    "ValuesIndices", "round", "prod", "var", "std", "norm", "median", "quantile", "cumsum", "cumprod",
    "logcumsumexp", "argmax", "argmin", "any", "all", "argsort", "sort", "topk",
]

Axis = Optional[Any]


def sum(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Sum over ``axis`` (all axes by default)."""
    return apply("sum", x, axis=axis, keepdims=keepdims, name=name)


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Mean over ``axis`` (all axes by default)."""
    return apply("mean", x, axis=axis, keepdims=keepdims, name=name)


def max(x: Tensor, axis: Axis = None, keepdims: bool = False, *, return_indices: bool = False,
        name: Optional[str] = None) -> Any:
    """Largest entry over ``axis``; with ``return_indices``, ``ValuesIndices`` as ``torch.max(x, dim)``."""
    if return_indices:
        return _extreme_with_indices("max", "argmax", x, axis, keepdims, name)
    return apply("max", x, axis=axis, keepdims=keepdims, name=name)


def min(x: Tensor, axis: Axis = None, keepdims: bool = False, *, return_indices: bool = False,
        name: Optional[str] = None) -> Any:
    """Smallest entry over ``axis``; with ``return_indices``, ``ValuesIndices`` as ``torch.min(x, dim)``."""
    if return_indices:
        return _extreme_with_indices("min", "argmin", x, axis, keepdims, name)
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


# ------------------------------------------------------------ attention (ops-attn) ---


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: Optional[float] = None,
    *,
    training: Optional[Tensor] = None,
    seed: Optional[int] = None,
    name: Optional[str] = None,
) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value``: PyTorch's ``scaled_dot_product_attention``.

    One node of the op ``scaled_dot_product_attention``. A query that may
    attend to no key gets zero weights, and so a zero output and zero
    gradients (PyTorch 2.5+ does the same). See docs/attention.md.

    Parameters
    ----------
    query, key, value
        ``(batch..., queries, features)``, ``(batch..., keys, features)`` and
        ``(batch..., keys, value_features)``; the batch axes broadcast (heads
        are one of them).
    attn_mask
        None, a bool mask (True: the query may attend to the key) or a float
        mask added to the scores (``-inf`` forbids; it gets a gradient, so a
        learned bias works), broadcasting to ``(batch..., queries, keys)``.
    dropout_p
        Probability of zeroing each attention weight while training (kept
        weights are scaled by ``1 / (1 - dropout_p)``); needs ``training``.
    is_causal
        Query ``i`` attends to keys ``0..i`` only. Unlike PyTorch, it may be
        combined with ``attn_mask``: a key must be allowed by both.
    scale
        Multiplies the scores; default ``1 / sqrt(features)``.
    training
        The scalar input that switches dropout on (0 evaluates; ``dg.fit``
        feeds the step number while training), as for ``dagrad.nn.dropout``.
    seed
        Seeds this node's dropout stream; by default derived from the names.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 4, 8))                # (batch, positions, features)
    >>> out = dg.scaled_dot_product_attention(x, x, x, is_causal=True)
    >>> out.shape, out.op
    ((None, 4, 8), 'scaled_dot_product_attention')
    >>> first = g.forward(out, {"x": np.arange(64.0).reshape(2, 4, 8)}).value(out)[:, 0]
    >>> bool(np.array_equal(first, np.arange(64.0).reshape(2, 4, 8)[:, 0]))  # position 0 sees only itself
    True
    """
    extras: list = []
    if attn_mask is not None:
        extras.append(attn_mask)
    rate = float(dropout_p)
    if rate:
        if not isinstance(training, Tensor):
            raise GraphError(
                "scaled_dot_product_attention: dropout_p > 0 needs training=, the scalar input that switches "
                "dropout on (g.input('training', shape=())), not " + repr(training)
            )
        extras.append(training)
    if seed is None:
        seed = zlib.crc32(f"{getattr(query, 'name', '')}->{name or 'scaled_dot_product_attention'}".encode())
    return apply("scaled_dot_product_attention", query, key, value, *extras, has_mask=attn_mask is not None,
                 dropout_p=rate, is_causal=bool(is_causal), scale=None if scale is None else float(scale),
                 stream=int(seed) if rate else 0, name=name)


def attention_weights(
    query: Tensor,
    key: Tensor,
    attn_mask: Any = None,
    is_causal: bool = False,
    scale: Optional[float] = None,
    *,
    name: Optional[str] = None,
) -> Tensor:
    """The weights ``scaled_dot_product_attention`` averages the values with, ``(batch..., queries, keys)``.

    ``softmax(query @ key^T * scale + mask)`` over the keys, with the same
    mask, causal and scale rules; each row sums to 1 (or is 0 for a query
    that may attend to no key). For looking at what a model attends to.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(3, 2))
    >>> w = dg.attention_weights(x, x, is_causal=True)
    >>> np.round(g.forward(w, {"x": np.ones((3, 2))}).value(w), 3)
    array([[1.   , 0.   , 0.   ],
           [0.5  , 0.5  , 0.   ],
           [0.333, 0.333, 0.333]])
    """
    extras = () if attn_mask is None else (attn_mask,)
    return apply("attention_weights", query, key, *extras, has_mask=attn_mask is not None,
                 is_causal=bool(is_causal), scale=None if scale is None else float(scale), name=name)


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


# ------------------------------------------- layout and indexing (issue 14, ops-shape) ---
# Layout ops copy entries to new places (their gradients add the copies back up); the indexing
# ops take integer or bool index Tensors, computed or fed, which never receive gradients.


def pad(x: Tensor, pad_width: Any, mode: str = "constant", constant_values: float = 0.0, *,
        name: Optional[str] = None) -> Tensor:
    """``x`` padded as ``numpy.pad``: modes ``constant``, ``reflect``, ``symmetric``, ``edge`` and ``wrap``.

    ``pad_width`` is an int, a ``(before, after)`` pair for every axis, or one
    pair per axis, *first axis first*; ``torch.nn.functional.pad`` lists the
    last axis first and calls ``edge`` "replicate" and ``wrap`` "circular".

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.array([[1.0, 2.0, 3.0]]))
    >>> y = dg.pad(x, ((0, 0), (2, 1)), mode="reflect")
    >>> g.forward(y).value(y)
    array([[3., 2., 1., 2., 3., 2.]])
    >>> g.backward(dg.sum(y)).grad(x)            # each entry, plus the copies of it
    array([[1., 3., 2.]])
    """
    return apply("pad", x, pad_width=pad_width, mode=mode, constant_values=constant_values, name=name)


def flip(x: Tensor, axis: Axis = None, *, name: Optional[str] = None) -> Tensor:
    """The entries of ``x`` in reverse order along ``axis`` (all axes by default)."""
    return apply("flip", x, axis=axis, name=name)


def roll(x: Tensor, shift: Any, axis: Axis = None, *, name: Optional[str] = None) -> Tensor:
    """``x`` shifted cyclically by ``shift`` along ``axis`` (of the flattened ``x`` by default)."""
    return apply("roll", x, shift=shift, axis=axis, name=name)


def tile(x: Tensor, reps: Any, *, name: Optional[str] = None) -> Tensor:
    """``x`` repeated as a whole ``reps`` times along each axis, as ``numpy.tile``."""
    return apply("tile", x, reps=reps, name=name)


def repeat(x: Tensor, repeats: Any, axis: Optional[int] = None, *, name: Optional[str] = None) -> Tensor:
    """Each entry of ``x`` repeated ``repeats`` times along ``axis``, as ``numpy.repeat`` (``torch.repeat_interleave``).

    ``repeats`` is one count or one count per entry, known when the node is
    added (they decide the output's size).
    """
    if isinstance(repeats, Tensor):
        raise GraphError(
            f"repeat of {x.name!r}: repeats must be counts known when the node is added (an int or a list), "
            f"not Tensor {repeats.name!r}, since they decide the output's size"
        )
    return apply("repeat", x, repeats=repeats, axis=axis, name=name)


def split(x: Tensor, indices_or_sections: Any, axis: int = 0, *, name: Optional[str] = None) -> list:
    """``x`` cut along ``axis`` as ``numpy.split`` cuts it: a list of Tensors, one ``split`` node per piece.

    ``indices_or_sections`` is a number of equal pieces (which must divide the
    axis, or is checked when the graph runs if its size is unknown), or the
    indices to cut at. Each piece is a node of its own, so pieces can go
    different ways; the gradient of ``x`` gathers what comes back from each.
    Pieces are named ``name_0``, ``name_1``, ... when ``name`` is given.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.arange(6.0))
    >>> a, b, c = dg.split(x, [1, 4])
    >>> [t.shape for t in (a, b, c)]
    [(1,), (3,), (2,)]
    >>> g.backward(dg.sum(a) + 2 * dg.sum(c)).grad(x)     # b is not used: zeros there
    array([1., 0., 0., 0., 2., 2.])
    """
    sections = indices_or_sections
    if isinstance(sections, int) and sections <= 0:
        raise ShapeError(f"split of {x.name!r}: cannot cut an axis into {sections} pieces")
    if not isinstance(sections, int):
        sections = tuple(int(i) for i in sections)
    count = sections if isinstance(sections, int) else len(sections) + 1
    return [apply("split", x, sections=sections, axis=axis, part=i, name=None if name is None else f"{name}_{i}")
            for i in range(count)]


def chunk(x: Tensor, chunks: int, axis: int = 0, *, name: Optional[str] = None) -> list:
    """``x`` cut along ``axis`` into pieces of ``ceil(size / chunks)`` entries, as ``torch.chunk``.

    The last piece may be shorter, and there may be fewer than ``chunks``
    pieces (6 entries in 4 chunks are 3 pieces of 2), so the axis's size must
    be known; ``split(x, n)`` cuts an axis of unknown size into ``n`` equal pieces.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 5))
    >>> [t.shape for t in dg.chunk(x, 2, axis=1)]
    [(None, 3), (None, 2)]
    """
    shape = x.shape
    if shape is None or not isinstance(chunks, int) or chunks <= 0:
        raise ShapeError(f"chunk of {x.name!r}: chunks must be an int > 0 and x's shape known, got chunks={chunks!r}")
    (a,) = normalize_axes(axis, len(shape))
    size = shape[a]
    if size is None:
        raise ShapeError(
            f"chunk of {x.name!r}: axis {axis} has a size known only when fed, and the number of pieces depends "
            f"on it; split(x, {chunks}, axis={axis}) cuts it into {chunks} equal pieces instead"
        )
    if size == 0:
        return split(x, chunks, axis=axis, name=name)  # as torch: that many empty pieces
    step = -(-size // chunks)
    return split(x, list(range(step, size, step)), axis=axis, name=name)


def tril(x: Tensor, k: int = 0, *, name: Optional[str] = None) -> Tensor:
    """The lower triangle of the last two axes (on and below diagonal ``k``), zeros above."""
    return apply("tril", x, k=k, name=name)


def triu(x: Tensor, k: int = 0, *, name: Optional[str] = None) -> Tensor:
    """The upper triangle of the last two axes (on and above diagonal ``k``), zeros below."""
    return apply("triu", x, k=k, name=name)


def diagonal(x: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1, *, name: Optional[str] = None) -> Tensor:
    """Diagonal ``offset`` of the planes of ``axis1`` and ``axis2``, as a new last axis (``numpy.diagonal``)."""
    return apply("diagonal", x, offset=offset, axis1=axis1, axis2=axis2, name=name)


def trace(x: Tensor, offset: int = 0, axis1: int = 0, axis2: int = 1, *, name: Optional[str] = None) -> Tensor:
    """The sum of diagonal ``offset`` of the planes of ``axis1`` and ``axis2`` (``numpy.trace``)."""
    return apply("trace", x, offset=offset, axis1=axis1, axis2=axis2, name=name)


def take_along_axis(x: Tensor, indices: Any, axis: int = -1, *, name: Optional[str] = None) -> Tensor:
    """The entries of ``x`` at integer ``indices`` along ``axis`` (a gather; ``torch.take_along_dim``).

    ``indices`` has as many axes as ``x``, and the two broadcast on the other
    axes. The gradient adds up at repeated indices.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> scores = g.param("scores", np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]))
    >>> best = dg.take_along_axis(scores, np.array([[1], [0]]), axis=1)
    >>> g.forward(best).value(best)
    array([[0.7],
           [0.5]])
    """
    return apply("take_along_axis", x, indices, axis=axis, name=name)


def scatter_add(x: Tensor, indices: Any, values: Any, axis: int = -1, *, name: Optional[str] = None) -> Tensor:
    """``x`` with ``values`` added where ``take_along_axis(x, indices, axis)`` reads; repeats add up (``torch.scatter_add``)."""
    return apply("scatter_add", x, indices, values, axis=axis, name=name)


def index_add(x: Tensor, indices: Any, values: Any, axis: int = 0, *, name: Optional[str] = None) -> Tensor:
    """``x`` with ``values[..., i, ...]`` added at ``x[..., indices[i], ...]`` along ``axis``; repeats add up.

    ``torch.index_add(x, axis, indices, values)``. The ``index_add`` *op*
    (``dg.ops.index_add``) adds to zeros instead (it is ``take``'s gradient);
    this is ``x`` plus that op, so ``x`` and ``values`` both get gradients.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.zeros(3))
    >>> y = dg.index_add(x, np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]))
    >>> g.forward(y).value(y)
    array([4., 0., 2.])
    """
    return apply("add", x, apply("index_add", values, x, indices, axis=axis), name=name)


def masked_fill(x: Tensor, mask: Any, value: Any, *, name: Optional[str] = None) -> Tensor:
    """``x`` with ``value`` where the bool ``mask`` holds (broadcasting); filled entries get no gradient.

    ``value`` is a number (``-np.inf`` for attention scores is fine), or a
    Tensor or array that broadcasts against ``x``: then this is a ``where``
    node, and a Tensor value gets the gradient of the entries it fills.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> scores = g.param("scores", np.ones((2, 2)))
    >>> causal = dg.masked_fill(scores, np.triu(np.ones((2, 2), bool), k=1), -np.inf)
    >>> g.forward(causal).value(causal)
    array([[  1., -inf],
           [  1.,   1.]])
    """
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return apply("masked_fill", x, mask, value=float(value), name=name)
    kind = (mask.dtype if isinstance(mask, Tensor) else np.asarray(mask).dtype).kind
    if kind != "b":  # where() would take nonzero as true; masked_fill takes bool masks only, as its op does
        raise ShapeError(f"masked_fill of {x.name!r} needs a bool mask, not {kind!r} numbers; compare first (x > 0)")
    return apply("where", mask, value, x, name=name)


def one_hot(indices: Any, num_classes: int, dtype: Any = "float64", *, name: Optional[str] = None) -> Tensor:
    """A new last axis of ``num_classes`` entries: 1 at each integer index, 0 elsewhere, of ``dtype``."""
    return apply("one_hot", indices, num_classes=num_classes, dtype=np.dtype(dtype).name, name=name)


# ------------------------------------------- math, statistics, scans, selection (ops-math) ---
# numpy's signatures where numpy has the function, PyTorch's where only PyTorch does (topk); flags that
# numpy and PyTorch would read differently in the same position (ddof or unbiased?) are keyword-only.


class ValuesIndices(NamedTuple):
    """Values and their indices, two nodes (as ``torch.max(x, dim)`` and ``torch.topk`` return them).

    Unpack it (``values, indices = dg.topk(x, 3)``) or read ``.values`` and
    ``.indices``. The indices are int64 and have no gradient; the values'
    gradient flows back to the entries they came from.
    """

    values: Tensor
    indices: Tensor


def _suffixed(name: Optional[str], suffix: str) -> Optional[str]:
    return None if name is None else f"{name}_{suffix}"


def round(x: Tensor, decimals: int = 0, *, name: Optional[str] = None) -> Tensor:
    """Round to ``decimals`` places, halves to even; gradient 0."""
    return apply("round", x, decimals=decimals, name=name)


def prod(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Product over ``axis`` (all axes by default); exact gradients with zeros."""
    return apply("prod", x, axis=axis, keepdims=keepdims, name=name)


def var(x: Tensor, axis: Axis = None, *, ddof: int = 0, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Variance over ``axis``, dividing by ``N - ddof`` (numpy's ``ddof=0`` by default; ``ddof=1`` is PyTorch's)."""
    return apply("var", x, axis=axis, ddof=ddof, keepdims=keepdims, name=name)


def std(x: Tensor, axis: Axis = None, *, ddof: int = 0, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Standard deviation over ``axis``, dividing by ``N - ddof``; gradient 0 where all entries are equal."""
    return apply("std", x, axis=axis, ddof=ddof, keepdims=keepdims, name=name)


def norm(x: Tensor, ord: Any = None, axis: Axis = None, keepdims: bool = False, *,
         name: Optional[str] = None) -> Tensor:
    """Vector or matrix norm, as ``numpy.linalg.norm`` (``ord`` 2, 1, inf, -inf, p, 0; matrices 'fro', 1, inf)."""
    return apply("norm", x, ord=ord, axis=axis, keepdims=keepdims, name=name)


def median(x: Tensor, axis: Axis = None, *, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Median over ``axis``, as ``numpy.median`` (the mean of the two middle entries for an even count)."""
    return apply("median", x, axis=axis, keepdims=keepdims, name=name)


def quantile(x: Tensor, q: Any, axis: Axis = None, *, keepdims: bool = False, method: str = "linear",
             name: Optional[str] = None) -> Tensor:
    """The ``q``-th quantile(s) over ``axis``, as ``numpy.quantile``; a sequence ``q`` adds a leading axis."""
    q = tuple(float(v) for v in q) if isinstance(q, (list, tuple)) or getattr(q, "ndim", 0) else float(q)
    return apply("quantile", x, q=q, axis=axis, keepdims=keepdims, method=method, name=name)


def cumsum(x: Tensor, axis: Optional[int] = None, *, name: Optional[str] = None) -> Tensor:
    """Cumulative sum along ``axis`` (of the flattened input by default)."""
    return apply("cumsum", x, axis=axis, name=name)


def cumprod(x: Tensor, axis: Optional[int] = None, *, name: Optional[str] = None) -> Tensor:
    """Cumulative product along ``axis`` (of the flattened input by default); exact gradients with zeros."""
    return apply("cumprod", x, axis=axis, name=name)


def logcumsumexp(x: Tensor, axis: Optional[int] = None, *, name: Optional[str] = None) -> Tensor:
    """``log(cumsum(exp(x)))`` along ``axis`` (of the flattened input by default), stable."""
    return apply("logcumsumexp", x, axis=axis, name=name)


def argmax(x: Tensor, axis: Optional[int] = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Index (int64) of the largest entry along ``axis``, the first of ties; a flat index by default."""
    return apply("argmax", x, axis=axis, keepdims=keepdims, name=name)


def argmin(x: Tensor, axis: Optional[int] = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Index (int64) of the smallest entry along ``axis``, the first of ties; a flat index by default."""
    return apply("argmin", x, axis=axis, keepdims=keepdims, name=name)


def any(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Whether any entry over ``axis`` is true (nonzero)."""
    return apply("any", x, axis=axis, keepdims=keepdims, name=name)


def all(x: Tensor, axis: Axis = None, keepdims: bool = False, *, name: Optional[str] = None) -> Tensor:
    """Whether every entry over ``axis`` is true (nonzero)."""
    return apply("all", x, axis=axis, keepdims=keepdims, name=name)


def argsort(x: Tensor, axis: int = -1, *, descending: bool = False, name: Optional[str] = None) -> Tensor:
    """Indices (int64) that sort ``x`` along ``axis``; stable."""
    return apply("argsort", x, axis=axis, descending=descending, name=name)


def sort(x: Tensor, axis: int = -1, *, descending: bool = False, return_indices: bool = False,
         name: Optional[str] = None) -> Any:
    """Entries sorted along ``axis`` (stable); with ``return_indices``, ``ValuesIndices`` as ``torch.sort``."""
    values = apply("sort", x, axis=axis, descending=descending, name=name)
    if not return_indices:
        return values
    return ValuesIndices(values, argsort(x, axis, descending=descending, name=_suffixed(name, "indices")))


def topk(x: Tensor, k: int, axis: int = -1, largest: bool = True, *, name: Optional[str] = None) -> ValuesIndices:
    """The ``k`` largest entries along ``axis`` (smallest with ``largest=False``) and their indices, as ``torch.topk``.

    Two nodes: a ``topk`` node (the values, sorted, differentiable) and an
    ``argtopk`` node (their indices, int64). Of equal entries the earlier
    comes first.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.param("x", np.array([[0.5, 2.0, -1.0, 2.0]]))
    >>> values, indices = dg.topk(x, 2)
    >>> res = g.forward([values, indices])
    >>> res.value(values), res.value(indices)
    (array([[2., 2.]]), array([[1, 3]]))
    >>> g.backward(values.sum()).grad(x)
    array([[0., 1., 0., 1.]])
    """
    values = apply("topk", x, k=k, axis=axis, largest=largest, name=name)
    return ValuesIndices(values, apply("argtopk", x, k=k, axis=axis, largest=largest, name=_suffixed(name, "indices")))


def _extreme_with_indices(op_name: str, arg_name: str, x: Tensor, axis: Axis, keepdims: bool,
                          name: Optional[str]) -> ValuesIndices:
    values = apply(op_name, x, axis=axis, keepdims=keepdims, name=name)
    return ValuesIndices(values, apply(arg_name, x, axis=axis, keepdims=keepdims, name=_suffixed(name, "indices")))
