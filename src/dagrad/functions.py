"""numpy-style functions over Tensors, for ops whose attributes numpy passes positionally.

``dagrad.ops.NAME`` is the op itself (inputs positional, attributes by
keyword); these wrappers give the familiar signatures: ``dg.sum(x, 0)``,
``dg.reshape(x, (2, 3))``, ``dg.concatenate([a, b])``, ``dg.einsum("ij,jk", a, b)``.
"""

from __future__ import annotations

import zlib
from typing import Any, Optional, Sequence

from .errors import GraphError
from .tensor import Tensor, apply

__all__ = [
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax",
    "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze",
    "concatenate", "stack", "einsum", "take", "clip", "softmax_cross_entropy",
    "binary_cross_entropy_with_logits", "mse",
    "scaled_dot_product_attention", "attention_weights",
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


def binary_cross_entropy_with_logits(logits: Tensor, targets: Any, reduction: str = "mean", *, name: Optional[str] = None) -> Tensor:
    """Binary cross-entropy of ``targets`` under ``sigmoid(logits)``, stable."""
    return apply("binary_cross_entropy_with_logits", logits, targets, reduction=reduction, name=name)


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
