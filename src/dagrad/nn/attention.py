"""Attention layers: multi-head attention and the pre-norm transformer block, as named scopes of a graph.

Like ``dense``, each is a function that writes params and nodes into the graph
of its input and returns the output Tensor; the scope names are how you find
a layer's parameters afterwards (``block1/attention/q/W``).

The heads are a batch axis of the ``scaled_dot_product_attention`` op: the
projections are einsums with weights of shape ``(features, heads, head_features)``,
``...ld,dhe->...hle``, so no reshape needs to know the batch size or the
sequence length, which may both be ``None``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

from ..errors import GraphError
from ..functions import einsum, scaled_dot_product_attention
from ..plugins import registry
from ..tensor import Tensor, apply
from . import init as _init
from .layers import Activation, _float_dtype, _last_dim, _rng_for, layer_norm, mlp
from .layers import dropout as _dropout_layer  # transformer_block's keyword ``dropout`` shadows the function

__all__ = ["multi_head_attention", "transformer_block", "gelu"]


def gelu(x: Tensor, *, name: Optional[str] = None) -> Tensor:
    """GELU: the ``gelu`` op of the activations pack when it is installed, else a composite of built-in ops.

    The pack's op is one node with its own VJP (and its default form, as in
    PyTorch's ``gelu``); the composite is GPT-2's tanh approximation
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, within 1e-3 of the
    exact function, so a model builds and trains without the pack too.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(3,))
    >>> y = dg.nn.gelu(x)
    >>> np.round(g.forward(y, {"x": np.array([-1.0, 1.0, 2.0])}).value(y), 2)    # either form
    array([-0.16,  0.84,  1.95])
    """
    if "gelu" in registry().ops:
        return apply("gelu", x, name=name)
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
    return 0.5 * x * (1.0 + apply("tanh", inner, name=name))


def _activation(activation: Activation) -> Activation:
    """``"gelu"`` is ``gelu`` above (so it works without the pack); anything else as ``dense`` takes it."""
    return gelu if activation == "gelu" else activation


def _projection(x: Tensor, heads: int, head_features: int, name: str, bias: bool, init, rng) -> Tensor:
    """``x`` (..., length, features) projected to (..., heads, length, head_features), in scope ``name/``."""
    g = x.graph
    features = _last_dim(x, name)
    dtype = _float_dtype(x)
    with g.scope(name) as prefix:
        # Initialised as the (features, heads * head_features) matrix it is, so the fans are the layer's.
        W = init((features, heads * head_features), _rng_for(rng, prefix), dtype)
        h = einsum("...ld,dhe->...hle", x, g.param("W", W.reshape(features, heads, head_features)))
        if bias:
            h = h + g.param("b", _init.zeros((heads, 1, head_features), dtype=dtype))
        return h


def multi_head_attention(
    query: Tensor,
    heads: int,
    *,
    key: Optional[Tensor] = None,
    value: Optional[Tensor] = None,
    head_features: Optional[int] = None,
    mask: Any = None,
    causal: bool = False,
    dropout: float = 0.0,
    training: Optional[Tensor] = None,
    bias: bool = True,
    name: str = "attention",
    init: Union[str, Callable, None] = None,
    rng: Any = None,
) -> Tensor:
    """Multi-head attention (PyTorch's ``nn.MultiheadAttention``, batch first) in scope ``name/``.

    Each head projects the query, key and value to ``head_features`` and runs
    ``scaled_dot_product_attention``; the heads' outputs are projected back to
    the query's features. The scope holds ``q/W`` ``(features, heads,
    head_features)`` and ``q/b``, the same for ``k`` and ``v``, and ``out/W``
    ``(heads, head_features, features)`` and ``out/b``.

    Parameters
    ----------
    query
        ``(batch..., length, features)``.
    heads
        Number of heads.
    key, value
        The sequence attended to, ``(batch..., keys, key_features)``: default
        ``query`` (self-attention); ``value`` defaults to ``key``.
    head_features
        Features per head; default ``features // heads`` (which must divide).
    mask
        As ``attn_mask`` of ``scaled_dot_product_attention``, broadcasting
        to ``(batch..., heads, length, keys)``: a padding mask of shape
        ``(batch, keys)`` is passed as ``(batch, 1, 1, keys)``.
    causal
        Position ``i`` attends to positions ``0..i`` only.
    dropout, training
        Dropout on the attention weights while ``training`` (the scalar input
        that ``dg.fit`` feeds) is nonzero.
    init, rng
        Initialiser of the weights (default Glorot-uniform) and its seed, as for ``dense``.

    Examples
    --------
    >>> import dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, None, 16), dtype="float32")   # batch and length fed later
    >>> y = dg.nn.multi_head_attention(x, heads=4, causal=True)
    >>> y.shape, y.dtype, g.value("attention/q/W").shape
    ((None, None, 16), dtype('float32'), (16, 4, 4))
    """
    features = _last_dim(query, name)
    heads = int(heads)
    if heads < 1:
        raise GraphError(f"layer {name!r}: heads must be at least 1, not {heads}")
    if head_features is None:
        if features % heads:
            raise GraphError(
                f"layer {name!r}: {features} features do not split into {heads} heads; "
                "pass head_features= or a number of heads that divides them"
            )
        head_features = features // heads
    if dropout and training is None:
        raise GraphError(f"layer {name!r}: dropout needs training=, the input that switches dropout on and off")
    key = query if key is None else key
    value = key if value is None else value
    initializer = _init.get(init, _init.glorot_uniform)
    g = query.graph
    rng = None if rng is None else _init.as_generator(rng)
    with g.scope(g.unused_scope(name)) as prefix:
        q = _projection(query, heads, head_features, "q", bias, initializer, rng)
        k = _projection(key, heads, head_features, "k", bias, initializer, rng)
        v = _projection(value, heads, head_features, "v", bias, initializer, rng)
        attended = scaled_dot_product_attention(q, k, v, mask, float(dropout), causal, training=training,
                                                name="attend")
        W = initializer((heads * head_features, features), _rng_for(rng, prefix + "out/"), _float_dtype(query))
        with g.scope("out"):
            out = einsum("...hle,hed->...ld", attended, g.param("W", W.reshape(heads, head_features, features)))
            if bias:
                out = out + g.param("b", _init.zeros((features,), dtype=_float_dtype(query)))
        return out


def transformer_block(
    x: Tensor,
    heads: int,
    *,
    hidden: Optional[int] = None,
    causal: bool = False,
    mask: Any = None,
    dropout: float = 0.0,
    training: Optional[Tensor] = None,
    activation: Activation = "gelu",
    eps: float = 1e-5,
    name: str = "block",
    rng: Any = None,
) -> Tensor:
    """A pre-norm transformer block (GPT-2's; PyTorch's ``TransformerEncoderLayer(norm_first=True)``).

    ``h = x + attention(layer_norm(x))``, then ``h + mlp(layer_norm(h))``, where
    the MLP is ``features -> hidden -> features`` with ``activation`` between,
    in scope ``name/``: ``norm1``, ``attention``, ``norm2`` and ``fc1``, ``fc2``.
    With ``dropout`` (and ``training``), dropout is applied to the attention
    weights, after the activation and to each branch before it joins the
    residual stream, as in PyTorch.

    Parameters
    ----------
    x
        ``(batch..., length, features)``.
    heads
        Attention heads (they must divide ``features``).
    hidden
        Width of the MLP; default ``4 * features``.
    causal, mask
        As for ``multi_head_attention``: a decoder (language model) block is ``causal=True``.
    activation
        ``"gelu"`` (default): the activations pack's ``gelu`` op if installed,
        else the composite ``dagrad.nn.gelu``; or any op name or callable.
    eps
        Of both layer norms.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 6, 8))
    >>> y = dg.nn.transformer_block(x, heads=2, causal=True)
    >>> y.shape, sorted({name.split("/")[1] for name in g.params})
    ((None, 6, 8), ['attention', 'fc1', 'fc2', 'norm1', 'norm2'])
    >>> sum(v.size for v in g.params.values())           # 4 * 8 * 8 + 4 * 8 (attention) + 2 * 8 * 32 + 32 + 8 + 2 * 16
    872
    """
    features = _last_dim(x, name)
    if dropout and training is None:
        raise GraphError(f"layer {name!r}: dropout needs training=, the input that switches dropout on and off")
    hidden = 4 * features if hidden is None else int(hidden)
    g = x.graph
    rng = None if rng is None else _init.as_generator(rng)

    def branch_dropout(t: Tensor, what: str) -> Tensor:
        return _dropout_layer(t, dropout, training, name=what) if dropout else t

    with g.scope(g.unused_scope(name)):
        attended = multi_head_attention(layer_norm(x, eps=eps, name="norm1"), heads, mask=mask, causal=causal,
                                        dropout=dropout, training=training, name="attention", rng=rng)
        h = x + branch_dropout(attended, "attention_dropout")
        mixed = mlp(layer_norm(h, eps=eps, name="norm2"), [hidden, features], _activation(activation), name="fc",
                    dropout=dropout, training=training, rng=rng)
        return h + branch_dropout(mixed, "fc_dropout")

