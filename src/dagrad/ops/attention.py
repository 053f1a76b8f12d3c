"""Attention: ``scaled_dot_product_attention`` and the weights it averages with, ``attention_weights``.

``scaled_dot_product_attention(q, k, v)`` is ``softmax(q @ k^T * scale + mask) @ v``
with PyTorch's semantics (``torch.nn.functional.scaled_dot_product_attention``):
``scale`` defaults to ``1 / sqrt(features)``; a bool mask says which keys a
query may attend to (``True`` attends), a float mask is added to the scores
(and receives a gradient, as a learned bias does); ``is_causal`` lets query
``i`` attend to keys ``0..i`` (the top-left triangle, also when there are
more keys than queries, as in PyTorch); a query that may attend to no key
gets zero weights, so its output and gradients are zero, as in PyTorch 2.5+.
Dropout on the weights uses the ``training`` input of ``dropout``: 0 evaluates,
any other value is the step's noise key.

It is one op, not a composition of ``matmul``, ``where``, ``softmax``, ``dropout``
and ``matmul``, for three reasons: a diagram shows one attention node (the
unit people reason about); the numpy VJP reuses the weights the forward
computed (a residual) instead of five nodes each saving their own copy of an
``L x S`` array per head; and the optional mask, causal triangle and dropout
are attributes of one node rather than nodes that only exist some of the time.

The inputs are ``query, key, value`` and then, in this order, ``mask`` if
``has_mask`` and ``training`` if ``dropout_p > 0``; ``dagrad.scaled_dot_product_attention``
assembles them. ``attention_weights`` (the softmax of the masked, scaled scores)
is an op of its own so that the graph VJP of attention, written with dagrad
ops, can recompute the weights as one node, and so that a model can show them.
"""

from __future__ import annotations

import math

import numpy as np

from ..opdef import Sample, float_dtype, op
from ..shapes import broadcast_shapes, broadcasts_to, dims_agree, format_shape
from ..tensor import apply
from .adjoints import broadcast_like, reduced_count
from .linalg import swap_last
from .random import keep_mask
from .samples import away_from_zero, uniform

__all__ = ["scaled_dot_product_attention", "attention_weights"]


# ---------------------------------------------------------------- rules ---


def _split_extras(extras: tuple, has_mask: bool, dropout_p: float, what: str = "inputs") -> tuple:
    """``(mask, training)`` out of the inputs after query, key (and value): each one or None."""
    want = int(bool(has_mask)) + int(dropout_p > 0)
    if len(extras) != want:
        names = ["mask"] * bool(has_mask) + ["training"] * (dropout_p > 0)
        listed = ", ".join(names) if names else "nothing"
        raise ValueError(
            f"with has_mask={has_mask} and dropout_p={dropout_p} the {what} after query, key and value "
            f"are: {listed} ({want}), but {len(extras)} were given"
        )
    mask = extras[0] if has_mask else None
    training = extras[-1] if dropout_p > 0 else None
    return mask, training


def _check_attrs(dropout_p: float, scale) -> None:
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), not {dropout_p!r}")
    if scale is not None and not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number or None (1 / sqrt(features)), not {scale!r}")


def _scores_shape(q, k, mask) -> tuple:
    """The shape of the scores ``q @ k^T``: the batch axes broadcast, then ``(L, S)``; the mask must fit it."""
    if len(q) < 2 or len(k) < 2:
        raise ValueError(
            f"query {format_shape(q)} and key {format_shape(k)} need at least 2 axes: (..., length, features)"
        )
    if not dims_agree(q[-1], k[-1]):
        raise ValueError(f"query {format_shape(q)} and key {format_shape(k)} have different feature sizes")
    scores = broadcast_shapes(q[:-2], k[:-2]) + (q[-2], k[-2])
    if mask is not None and not broadcasts_to(mask, scores):
        raise ValueError(
            f"the mask {format_shape(mask)} does not broadcast to the attention scores {format_shape(scores)} "
            "(batch..., queries, keys) without widening them"
        )
    return scores


def _weights_rule(q, k, *extras, has_mask=False, is_causal=False, scale=None):
    mask, _ = _split_extras(extras, has_mask, 0.0, "inputs after query and key")
    _check_attrs(0.0, scale)
    return _scores_shape(q, k, mask)


def _attention_rule(q, k, v, *extras, has_mask=False, dropout_p=0.0, is_causal=False, scale=None, stream=0):
    mask, training = _split_extras(extras, has_mask, dropout_p)
    _check_attrs(dropout_p, scale)
    if training is not None and len(training) != 0:
        raise ValueError(
            f"training must be a scalar (0 = evaluate, nonzero = the step's noise key), not {format_shape(training)}"
        )
    scores = _scores_shape(q, k, mask)
    if len(v) < 2:
        raise ValueError(f"value {format_shape(v)} needs at least 2 axes: (..., length, features)")
    if not dims_agree(k[-2], v[-2]):
        raise ValueError(f"key {format_shape(k)} and value {format_shape(v)} have different lengths")
    return broadcast_shapes(scores[:-2], v[:-2]) + (q[-2], v[-1])


def _mask_dtype(mask) -> None:
    if mask is not None and np.dtype(mask).kind not in "bf":
        raise TypeError(f"the mask must be bool (True attends) or float (added to the scores), not {np.dtype(mask)}")


def _weights_dtype(q, k, *extras, has_mask=False, is_causal=False, scale=None):
    _mask_dtype(extras[0] if has_mask and extras else None)
    return float_dtype(q, k)


def _attention_dtype(q, k, v, *extras, has_mask=False, dropout_p=0.0, is_causal=False, scale=None, stream=0):
    _mask_dtype(extras[0] if has_mask and extras else None)
    return float_dtype(q, k, v)


# -------------------------------------------------------------- forward ---


def _floats(*arrays: np.ndarray) -> list:
    """Integer and bool query, key and value computed in float64, as their dtype rule declares."""
    return [a if a.dtype.kind in "fc" else a.astype(np.float64) for a in arrays]


def _scale_of(q: np.ndarray, scale) -> float:
    """``scale``, or ``1 / sqrt(features)``; with no features the scores are 0 whatever the scale."""
    if scale is not None:
        return float(scale)
    features = q.shape[-1]
    return 1.0 / math.sqrt(features) if features else 1.0


def _weights(q, k, mask, is_causal, scale) -> np.ndarray:
    """Softmax over the keys of the scaled, masked scores; a query with no key allowed gets zero weights."""
    s = _scale_of(q, scale)
    scores = np.matmul(q * np.asarray(s, q.dtype), np.swapaxes(k, -1, -2))
    if mask is not None and not broadcasts_to(mask.shape, scores.shape):
        raise ValueError(f"the mask of shape {mask.shape} does not broadcast to the scores' shape {scores.shape}")
    allowed = None
    if is_causal:
        allowed = np.tri(scores.shape[-2], scores.shape[-1], dtype=bool)
    if mask is not None and mask.dtype == bool:
        allowed = mask if allowed is None else allowed & mask
    elif mask is not None:
        scores = scores + mask.astype(scores.dtype, copy=False)
    if allowed is not None:
        scores = np.where(allowed, scores, np.asarray(-np.inf, scores.dtype))
    if scores.size:
        peak = np.max(scores, axis=-1, keepdims=True)
        scores = scores - np.where(np.isfinite(peak), peak, 0)
    weights = np.exp(scores)
    total = np.sum(weights, axis=-1, keepdims=True)
    weights /= np.where(total > 0, total, 1)
    return weights


def _weights_backward(dw, q, k, mask, w, scale, needs) -> tuple:
    """Gradients of query, key and a float mask from ``dw``, the gradient of the weights ``w``."""
    need_q, need_k, need_mask = needs
    ds = w * (dw - np.sum(dw * w, axis=-1, keepdims=True))     # the softmax's VJP; zero where w is 0
    s = np.asarray(_scale_of(q, scale), ds.dtype)
    dq = (np.matmul(ds, k) * s).astype(q.dtype, copy=False) if need_q else None
    dk = np.matmul(np.swapaxes(ds, -1, -2), q * s).astype(k.dtype, copy=False) if need_k else None
    dmask = ds.astype(mask.dtype, copy=False) if need_mask and mask is not None and mask.dtype != bool else None
    return dq, dk, dmask


# ------------------------------------------------------- graph backward ---


def _weights_backward_graph(dw, q, k, mask, w, scale, needs) -> tuple:
    """``_weights_backward`` as nodes: the same maths with dagrad ops on Tensors."""
    need_q, need_k, need_mask = needs
    who = "attention"
    ds = w * (dw - apply("sum", dw * w, axis=-1, keepdims=True))
    s = scale
    if s is None:  # 1 / sqrt(features): a number when the features are known, else counted when the graph runs
        features = reduced_count(q, -1)
        s = 1.0 / math.sqrt(features) if isinstance(features, int) else 1.0 / apply("sqrt", features)
    dq = apply("matmul", ds, k) * s if need_q else None
    dk = apply("matmul", swap_last(ds, who), q * s) if need_k else None
    dmask = ds if need_mask and mask is not None and mask.dtype != np.dtype(bool) else None
    return dq, dk, dmask


# ------------------------------------------------------------- samples ---


def _qkv(rng, q, k, v):
    return away_from_zero(rng, q), away_from_zero(rng, k), away_from_zero(rng, v)


def _weights_samples(rng) -> list:
    x = away_from_zero(rng, (4, 3))
    some_keys = np.array([[True, False, True, True, False]] * 2 + [[False] * 5])  # the last query sees no key
    return [
        Sample((away_from_zero(rng, (2, 3, 4)), away_from_zero(rng, (2, 5, 4))), {}, "batch of 2, 3 queries, 5 keys"),
        Sample((away_from_zero(rng, (2, 1, 3, 4)), away_from_zero(rng, (4, 5, 4))), {"is_causal": True},
               "broadcast batch, causal, more keys than queries"),
        Sample((away_from_zero(rng, (3, 2)), away_from_zero(rng, (5, 2)), some_keys), {"has_mask": True},
               "bool mask, a query that sees no key"),
        Sample((away_from_zero(rng, (2, 3, 2)), away_from_zero(rng, (2, 5, 2)), uniform(rng, (1, 5))),
               {"has_mask": True, "scale": 0.7}, "float mask (a bias), given scale"),
        Sample((x, x), {"is_causal": True}, "the same input twice: self-attention, causal"),
        Sample((away_from_zero(rng, (0, 3, 2)), away_from_zero(rng, (1, 4, 2))), {}, "empty batch"),
        Sample((away_from_zero(rng, (1, 1)), away_from_zero(rng, (1, 1))), {}, "one query, one key, one feature"),
    ]


def _attention_samples(rng) -> list:
    x = away_from_zero(rng, (4, 3))
    some_keys = np.array([[True, False, True, True, False]] * 2 + [[False] * 5])  # the last query sees no key
    return [
        Sample(_qkv(rng, (2, 3, 4), (2, 5, 4), (2, 5, 6)), {}, "batch of 2, 3 queries, 5 keys"),
        Sample(_qkv(rng, (3, 4), (5, 4), (5, 2)), {}, "no batch axes"),
        Sample(_qkv(rng, (2, 1, 3, 4), (1, 2, 5, 4), (5, 3)), {"is_causal": True},
               "broadcast batch axes, causal with more keys than queries"),
        Sample((x, x, x), {"is_causal": True}, "the same input three times: causal self-attention"),
        Sample((*_qkv(rng, (3, 2), (5, 2), (5, 2)), some_keys), {"has_mask": True},
               "bool mask, a query that sees no key"),
        Sample((*_qkv(rng, (2, 3, 2), (2, 5, 2), (2, 5, 2)), uniform(rng, (1, 5))), {"has_mask": True, "scale": 0.7},
               "float mask (a learned bias), given scale"),
        Sample((*_qkv(rng, (2, 3, 2), (2, 5, 2), (2, 5, 3)), some_keys, np.asarray(7)),
               {"has_mask": True, "is_causal": True, "dropout_p": 0.3, "stream": 1},
               "bool mask and causal together, dropout at step 7"),
        Sample((*_qkv(rng, (2, 3, 2), (2, 5, 2), (5, 3)), np.asarray(0)), {"dropout_p": 0.5},
               "dropout, evaluating (training 0)"),
        Sample(_qkv(rng, (0, 3, 2), (1, 4, 2), (1, 4, 3)), {}, "empty batch"),
        Sample(_qkv(rng, (2, 3, 0), (2, 4, 0), (2, 4, 2)), {}, "no features: uniform weights"),
        Sample(_qkv(rng, (1, 1), (1, 1), (1, 1)), {}, "one query, one key, one feature"),
    ]


# ------------------------------------------------------------------ ops ---


@op(shape=_weights_rule, dtype=_weights_dtype, saves=("inputs", "out"), samples=_weights_samples)
def attention_weights(query, key, *mask, has_mask=False, is_causal=False, scale=None):
    """Softmax over the keys of ``query @ key^T * scale``, masked: the weights attention averages values with.

    ``mask`` (with ``has_mask``) is bool (True attends) or float (added to the
    scores); ``is_causal`` lets query ``i`` see keys ``0..i``; ``scale``
    defaults to ``1 / sqrt(features)``. A query that may see no key gets zero
    weights. The output has shape ``(batch..., queries, keys)``.
    """
    q, k = _floats(query, key)
    (m, _) = _split_extras(mask, has_mask, 0.0, "inputs after query and key")
    w = _weights(q, k, m, is_causal, scale)
    return w.astype(float_dtype(query.dtype, key.dtype), copy=False)


@attention_weights.vjp
def _(g, query, key, *mask, has_mask, is_causal, scale, out, needs):
    m = mask[0] if has_mask else None
    dq, dk, dm = _weights_backward(g, *_floats(query, key), m, out, scale, (needs[0], needs[1], has_mask and needs[2]))
    return (dq, dk) + ((dm,) if has_mask else ())


@attention_weights.graph_vjp
def _(g, query, key, *mask, has_mask, is_causal, scale, out, needs):
    """The softmax's VJP on ``out``, then the two matmuls; the masks enter through ``out``, which is 0 where masked."""
    m = mask[0] if has_mask else None
    dq, dk, dm = _weights_backward_graph(g, query, key, m, out, scale, (needs[0], needs[1], has_mask and needs[2]))
    return (dq, dk) + ((dm,) if has_mask else ())


@op(shape=_attention_rule, dtype=_attention_dtype, saves=("inputs",), residuals=True, samples=_attention_samples,
    counterparts={"torch": "torch.nn.functional.scaled_dot_product_attention"})
def scaled_dot_product_attention(query, key, value, *extras, has_mask=False, dropout_p=0.0, is_causal=False,
                                 scale=None, stream=0):
    """Attention: ``softmax(query @ key^T * scale + mask) @ value``, with a causal mask and dropout, as PyTorch's.

    Shapes are ``(batch..., queries, features)``, ``(batch..., keys, features)``
    and ``(batch..., keys, value_features)``, the batch axes broadcasting; the
    output is ``(batch..., queries, value_features)``. After the three inputs
    come ``mask`` (with ``has_mask``: bool, True attends, or float, added to
    the scores) and ``training`` (with ``dropout_p > 0``: 0 evaluates, nonzero is
    the step's noise key, combined with ``stream`` as in ``dropout``).
    """
    q, k, v = _floats(query, key, value)
    mask, training = _split_extras(extras, has_mask, dropout_p)
    w = _weights(q, k, mask, is_causal, scale)
    drop = None
    noise_key = training.item() if training is not None and training.size == 1 else 0
    if noise_key:  # one mask over the weights as the values see them: broadcast to the output's batch axes
        full = np.broadcast_shapes(w.shape[:-2], v.shape[:-2]) + w.shape[-2:]
        drop = keep_mask(full, noise_key, dropout_p, stream, w.dtype)
    out = np.matmul(w if drop is None else w * drop, v)
    return out.astype(float_dtype(query.dtype, key.dtype, value.dtype), copy=False), (w, drop)


@scaled_dot_product_attention.vjp
def _(g, query, key, value, *extras, has_mask, dropout_p, is_causal, scale, stream, res, needs):
    w, drop = res
    q, k, v = _floats(query, key, value)
    mask, _ = _split_extras(extras, has_mask, dropout_p)
    dropped = w if drop is None else w * drop
    dv = np.matmul(np.swapaxes(dropped, -1, -2), g).astype(value.dtype, copy=False) if needs[2] else None
    need_mask = has_mask and needs[3]
    dq = dk = dm = None
    if needs[0] or needs[1] or need_mask:
        dw = np.matmul(g, np.swapaxes(v, -1, -2))
        if drop is not None:
            dw = dw * drop
        dq, dk, dm = _weights_backward(dw, q, k, mask, w, scale, (needs[0], needs[1], need_mask))
    return (dq, dk, dv) + ((dm,) if has_mask else ()) + ((None,) if dropout_p > 0 else ())


@scaled_dot_product_attention.graph_vjp
def _(g, query, key, value, *extras, has_mask, dropout_p, is_causal, scale, stream, needs):
    """The weights recomputed as one ``attention_weights`` node; dropout's mask redrawn by ``dropout`` nodes with the
    same key, rate and stream, over the same (broadcast) shape, so it is the forward's mask."""
    mask, training = _split_extras(extras, has_mask, dropout_p)
    weight_inputs = (query, key) + ((mask,) if has_mask else ())
    w = attention_weights(*weight_inputs, has_mask=has_mask, is_causal=is_causal, scale=scale)
    dw = apply("matmul", g, swap_last(value, "attention"))

    def dropped(t):
        return t if dropout_p == 0 else apply("dropout", t, training, rate=dropout_p, stream=stream)

    dv = apply("matmul", swap_last(dropped(broadcast_like(w, dw) if dropout_p else w), "attention"), g) \
        if needs[2] else None
    need_mask = has_mask and needs[3]
    dq = dk = dm = None
    if needs[0] or needs[1] or need_mask:
        dq, dk, dm = _weights_backward_graph(dropped(dw), query, key, mask, w, scale, (needs[0], needs[1], need_mask))
    return (dq, dk, dv) + ((dm,) if has_mask else ()) + ((None,) if dropout_p > 0 else ())
