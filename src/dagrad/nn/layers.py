"""Layer builders: each adds a named scope of params and ops to the graph of its input.

A layer is not an object that owns state; it is a function that writes nodes
into the graph: ``dense(x, 32, name="fc1")`` adds ``fc1/W``, ``fc1/b``,
``fc1/matmul``, ``fc1/add`` (and ``fc1/relu`` with an activation) and returns
the output Tensor. The graph is the model; the names are how you find a
layer's parameters and gradients afterwards (``res.grad("fc1/W")``).

Parameters take the dtype of the layer's input, so a float32 network stays
float32. Without ``rng``, a layer seeds its initialiser from its own full
name, so a graph built twice is identical, and two layers never share values.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..errors import GraphError
from ..tensor import Tensor, apply
from . import init as _init

__all__ = ["dense", "mlp", "dropout", "layer_norm", "embedding", "activate"]

Activation = Union[None, str, Callable[[Tensor], Tensor]]


# ------------------------------------------------------------- helpers ---


def _rng_for(rng: Any, scope_prefix: str) -> np.random.Generator:
    if rng is not None:
        return _init.as_generator(rng)
    return np.random.default_rng(zlib.crc32(scope_prefix.encode()))


def _float_dtype(x: Tensor) -> np.dtype:
    return x.dtype if x.dtype.kind == "f" else np.dtype("float64")


def _last_dim(x: Tensor, layer: str) -> int:
    shape = x.shape
    if shape is None or not shape or shape[-1] is None:
        shown = "unknown" if shape is None else shape
        raise GraphError(f"layer {layer!r}: the last axis of input {x.name!r} must have a known size (shape {shown})")
    return int(shape[-1])


def activate(h: Tensor, activation: Activation, name: Optional[str] = None) -> Tensor:
    """Apply ``activation``: an op name (``"relu"``, ``"tanh"``, a plugin's ``"gelu"``), a callable, or None."""
    if activation is None or activation == "linear":
        return h
    if callable(activation):
        return activation(h)
    if isinstance(activation, str):
        return apply(activation, h, name=name)
    raise GraphError(f"activation must be an op name, a callable or None, not {activation!r}")


# --------------------------------------------------------------- layers ---


def dense(
    x: Tensor,
    units: int,
    activation: Activation = None,
    *,
    name: str = "dense",
    init: Union[str, Callable, None] = None,
    bias: bool = True,
    rng: Any = None,
) -> Tensor:
    """A fully connected layer ``activation(x @ W + b)`` in scope ``name/``.

    Parameters
    ----------
    x
        Input of shape ``(..., in_features)``.
    units
        Output features.
    activation
        Op name (``"relu"``, ``"tanh"``, ``"sigmoid"``...), callable, or None for a linear layer.
    name
        Scope of the layer's nodes; numbered (``dense_1``) if already taken.
    init
        Initialiser of ``W`` (name or function, see ``dagrad.nn.init``); the default is
        He-uniform for ``"relu"`` and Glorot-uniform otherwise. ``b`` starts at zero.
    rng
        ``numpy.random.Generator`` or seed for ``init``; default: seeded from the layer's name.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 4), dtype="float32")
    >>> h = dg.nn.dense(x, 3, activation="relu", name="fc1")
    >>> sorted(g.params), h.name, h.shape, h.dtype
    (['fc1/W', 'fc1/b'], 'fc1/relu', (None, 3), dtype('float32'))
    """
    fan_in = _last_dim(x, name)
    scope = x.graph.unused_scope(name)
    g = x.graph
    dtype = _float_dtype(x)
    default = _init.he_uniform if activation == "relu" else _init.glorot_uniform
    initializer = _init.get(init, default)
    with g.scope(scope) as prefix:
        W = g.param("W", initializer((fan_in, int(units)), _rng_for(rng, prefix), dtype))
        h = x @ W
        if bias:
            h = h + g.param("b", _init.zeros((int(units),), dtype=dtype))
        return activate(h, activation)


def mlp(
    x: Tensor,
    sizes: Sequence[int],
    activation: Activation = "relu",
    *,
    name: str = "fc",
    output_activation: Activation = None,
    init: Union[str, Callable, None] = None,
    dropout: float = 0.0,
    training: Optional[Tensor] = None,
    rng: Any = None,
) -> Tensor:
    """A stack of ``dense`` layers named ``fc1``, ``fc2``...; the last has ``output_activation``.

    ``sizes`` are the output sizes of the layers, so ``mlp(x, [32, 10])`` is
    ``in -> 32 -> 10``. With ``dropout > 0`` (and a ``training`` input) a dropout
    follows every hidden layer.

    Examples
    --------
    >>> import dagrad as dg
    >>> g = dg.Graph()
    >>> logits = dg.nn.mlp(g.input("x", shape=(None, 8)), [16, 16, 3], "tanh")
    >>> sorted(g.params)
    ['fc1/W', 'fc1/b', 'fc2/W', 'fc2/b', 'fc3/W', 'fc3/b']
    """
    sizes = list(sizes)
    if not sizes:
        raise GraphError("mlp needs at least one layer size")
    if dropout and training is None:
        raise GraphError("mlp with dropout needs training=, the input that switches dropout on and off")
    rng = None if rng is None else _init.as_generator(rng)
    h = x
    for i, units in enumerate(sizes, 1):
        last = i == len(sizes)
        h = dense(h, units, output_activation if last else activation, name=f"{name}{i}", init=init, rng=rng)
        if dropout and not last:
            h = _dropout_layer(h, dropout, training, name=f"{name}{i}_dropout")
    return h


def dropout(x: Tensor, rate: float, training: Tensor, *, seed: Optional[int] = None, name: Optional[str] = None) -> Tensor:
    """Randomly zero entries of ``x`` with probability ``rate`` while training; identity otherwise.

    ``training`` is a scalar graph input fed at every run: 0 to evaluate, or a
    nonzero key for the step's random mask (``dagrad.train.fit`` feeds the
    step number while training and 0 while evaluating). Kept entries are
    scaled by ``1 / (1 - rate)`` so the expected output equals ``x``.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 1000))
    >>> training = g.input("training", shape=())
    >>> y = dg.nn.dropout(x, 0.5, training)
    >>> ones = np.ones((1, 1000))
    >>> bool(np.all(g.forward(y, {"x": ones, "training": 0}).value(y) == 1))
    True
    >>> out = g.forward(y, {"x": ones, "training": 1}).value(y)
    >>> sorted(set(out.ravel().tolist())), 400 < int((out == 0).sum()) < 600
    ([0.0, 2.0], True)
    """
    if not isinstance(training, Tensor):
        raise GraphError(
            f"dropout: training must be a scalar input Tensor (g.input('training', shape=())), not {training!r}"
        )
    if not 0.0 <= float(rate) < 1.0:
        raise GraphError(f"dropout: rate must be in [0, 1), not {rate!r}")
    node_name = name or "dropout"
    if seed is None:
        seed = zlib.crc32(f"{x.name}->{node_name}".encode())
    return apply("dropout", x, training, rate=float(rate), stream=int(seed), name=name)


_dropout_layer = dropout  # mlp's keyword ``dropout`` shadows the function inside mlp


def layer_norm(x: Tensor, *, eps: float = 1e-5, name: str = "layer_norm") -> Tensor:
    """Normalise each row over its last axis to mean 0 and variance 1, then scale and shift.

    ``gamma * (x - mean) / sqrt(var + eps) + beta`` with ``gamma`` (ones) and
    ``beta`` (zeros) learned per feature, in scope ``name/``.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 4))
    >>> y = dg.nn.layer_norm(x)
    >>> out = g.forward(y, {"x": np.array([[1.0, 2.0, 3.0, 4.0]])}).value(y)
    >>> np.round(out, 3)
    array([[-1.342, -0.447,  0.447,  1.342]])
    """
    features = _last_dim(x, name)
    g = x.graph
    dtype = _float_dtype(x)
    with g.scope(x.graph.unused_scope(name)):
        gamma = g.param("gamma", _init.ones((features,), dtype=dtype))
        beta = g.param("beta", _init.zeros((features,), dtype=dtype))
        centred = x - apply("mean", x, axis=-1, keepdims=True, name="mean")
        variance = apply("mean", centred * centred, axis=-1, keepdims=True, name="variance")
        normalised = centred / apply("sqrt", variance + eps, name="std")
        return normalised * gamma + beta


def embedding(
    indices: Tensor,
    vocabulary: int,
    features: int,
    *,
    padding_idx: Optional[int] = None,
    name: str = "embedding",
    init: Union[str, Callable, None] = None,
    rng: Any = None,
    dtype: Any = "float32",
) -> Tensor:
    """Look up a learned ``features``-vector for each integer in ``indices``: ``table[indices]``.

    The table ``name/table`` has shape ``(vocabulary, features)`` and starts
    from ``N(0, 1)`` by default; its gradient is nonzero only in the rows looked up.
    With ``padding_idx`` (as PyTorch's), that id looks up zeros and its row
    starts at zero and receives no gradient, so padding never trains.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> tokens = g.input("tokens", shape=(None, 5), dtype="int64")
    >>> vectors = dg.nn.embedding(tokens, 100, 8)
    >>> vectors.shape
    (None, 5, 8)
    >>> padded = dg.nn.embedding(tokens, 100, 8, padding_idx=0, name="padded")
    >>> g.forward(padded, {"tokens": [[0, 0, 3, 4, 5]]}).value(padded)[0, :2].any()
    np.False_
    """
    if indices.dtype.kind not in "iu":
        raise GraphError(f"embedding {name!r}: indices {indices.name!r} must be integers, not {indices.dtype}")
    vocabulary = int(vocabulary)
    if padding_idx is not None:
        if not -vocabulary <= int(padding_idx) < vocabulary:
            raise GraphError(f"embedding {name!r}: padding_idx {padding_idx} is not an id of a vocabulary of {vocabulary}")
        padding_idx = int(padding_idx) % vocabulary
    g = indices.graph
    initializer = _init.get(init, _std_normal)
    with g.scope(indices.graph.unused_scope(name)) as prefix:
        table = initializer((vocabulary, int(features)), _rng_for(rng, prefix), dtype)
        if padding_idx is not None:
            table[padding_idx] = 0
        vectors = apply("take", g.param("table", table), indices, axis=0, name="lookup")
        if padding_idx is None:
            return vectors
        # ``where`` sends the padding positions' gradient nowhere, so the padding row never changes.
        real = apply("expand_dims", apply("not_equal", indices, padding_idx), axis=-1)
        return apply("where", real, vectors, 0.0, name="unpadded")


def _std_normal(shape, rng=None, dtype="float32"):
    return _init.normal(shape, rng, dtype, std=1.0)
