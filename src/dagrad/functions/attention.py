"""Attention: ``scaled_dot_product_attention`` (PyTorch's signature) and ``attention_weights``."""

from __future__ import annotations

import zlib
from typing import Any, Optional


from ..errors import GraphError
from ..tensor import Tensor, apply

__all__ = ["scaled_dot_product_attention", "attention_weights"]


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
