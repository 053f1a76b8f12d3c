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

from .. import functions as F
from ..errors import GraphError
from ..tensor import Tensor, apply
from . import init as _init

__all__ = ["dense", "mlp", "dropout", "layer_norm", "rms_norm", "group_norm", "batch_norm", "embedding", "activate"]

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


def layer_norm(
    x: Tensor,
    normalized_shape: Union[None, int, Sequence[int]] = None,
    *,
    eps: float = 1e-5,
    elementwise_affine: bool = True,
    bias: bool = True,
    name: str = "layer_norm",
) -> Tensor:
    """Normalize over the trailing axes to mean 0 and variance 1, then scale and shift: one ``layer_norm`` node.

    ``gamma * (x - mean) / sqrt(var + eps) + beta`` over ``normalized_shape``
    (the last axis by default), with ``gamma`` (ones) and ``beta`` (zeros) of
    that shape learned, in scope ``name/`` (PyTorch's ``LayerNorm`` calls them
    ``weight`` and ``bias``). ``elementwise_affine=False`` learns neither,
    ``bias=False`` no ``beta``.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 4))
    >>> y = dg.nn.layer_norm(x)
    >>> out = g.forward(y, {"x": np.array([[1.0, 2.0, 3.0, 4.0]])}).value(y)
    >>> np.round(out, 3)
    array([[-1.342, -0.447,  0.447,  1.342]])
    >>> y.op, sorted(g.params)
    ('layer_norm', ['layer_norm/beta', 'layer_norm/gamma'])
    """
    sizes = _normalized_shape(x, normalized_shape, name)
    with x.graph.scope(x.graph.unused_scope(name)):
        gamma, beta = _gain_and_shift(x, sizes, elementwise_affine, elementwise_affine and bias)
        return F.layer_norm(x, sizes, gamma, beta, eps)


def rms_norm(
    x: Tensor,
    normalized_shape: Union[None, int, Sequence[int]] = None,
    *,
    eps: Optional[float] = None,
    elementwise_affine: bool = True,
    name: str = "rms_norm",
) -> Tensor:
    """Divide by the root mean square over the trailing axes, then scale by a learned ``gamma``: one ``rms_norm`` node.

    ``gamma * x / sqrt(mean(x ** 2) + eps)`` over ``normalized_shape`` (the last
    axis by default) as PyTorch's ``RMSNorm``; ``eps`` defaults to the dtype's
    machine epsilon.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x = g.input("x", shape=(None, 2))
    >>> y = dg.nn.rms_norm(x)
    >>> g.forward(y, {"x": np.array([[3.0, 4.0]])}).value(y).round(4)       # divided by sqrt(12.5)
    array([[0.8485, 1.1314]])
    """
    sizes = _normalized_shape(x, normalized_shape, name)
    with x.graph.scope(x.graph.unused_scope(name)):
        gamma, _ = _gain_and_shift(x, sizes, elementwise_affine, False)
        return F.rms_norm(x, sizes, gamma, eps)


def group_norm(
    x: Tensor,
    num_groups: int,
    *,
    eps: float = 1e-5,
    affine: bool = True,
    name: str = "group_norm",
) -> Tensor:
    """Normalize each group of ``C / num_groups`` channels (axis 1) of each example, then scale and shift per channel.

    As PyTorch's ``GroupNorm`` on ``(N, C, ...)``, with ``gamma`` and ``beta`` of
    shape ``(C,)`` in scope ``name/``. It does not depend on the batch, so it
    behaves the same in training and evaluation.

    Examples
    --------
    >>> import dagrad as dg
    >>> g = dg.Graph()
    >>> y = dg.nn.group_norm(g.input("images", shape=(None, 8, 5, 5)), 4)
    >>> y.shape, g.value("group_norm/gamma").shape
    ((None, 8, 5, 5), (8,))
    """
    channels = _channels(x, name)
    with x.graph.scope(x.graph.unused_scope(name)):
        gamma, beta = _gain_and_shift(x, (channels,), affine, affine)
        return F.group_norm(x, num_groups, gamma, beta, eps)


def batch_norm(
    x: Tensor,
    training: Optional[Tensor],
    *,
    momentum: Optional[float] = 0.1,
    eps: float = 1e-5,
    affine: bool = True,
    track_running_stats: bool = True,
    name: str = "batch_norm",
) -> Tensor:
    """Batch normalization of the channels (axis 1) of ``(N, C, ...)``, with running statistics, as PyTorch's ``BatchNorm``.

    ``training`` is the scalar input that switches dropout too (``fit`` feeds
    the step number, ``evaluate`` and ``predict`` feed 0). While training, each
    channel is normalized with the batch's mean and variance, and the running
    statistics ``name/running_mean`` and ``name/running_var`` (non-trainable
    params, so they are saved with the model and in checkpoints) move toward
    them by ``momentum`` after every step of ``fit``, the running variance
    with the unbiased batch variance; in evaluation they are used instead.
    ``momentum=None`` averages all batches, counted by ``name/num_batches_tracked``.
    ``gamma`` and ``beta`` (``(C,)``) are learned unless ``affine=False``.
    With ``track_running_stats=False`` the batch's statistics are used always,
    and ``training`` may be None.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> x, training = g.input("x", shape=(None, 3)), g.input("training", shape=())
    >>> y = dg.nn.batch_norm(x, training, name="bn")
    >>> sorted(g.params), g.updates
    (['bn/beta', 'bn/gamma'], {'bn/running_mean': 'bn/next/running_mean', 'bn/running_var': 'bn/next/running_var'})
    """
    channels = _channels(x, name)
    if track_running_stats and not isinstance(training, Tensor):
        raise GraphError(f"batch_norm {name!r}: training must be the scalar input that switches training on "
                         f"(g.input('training', shape=())), not {training!r}")
    g = x.graph
    dtype = _float_dtype(x)
    with g.scope(g.unused_scope(name)):
        gamma, beta = _gain_and_shift(x, (channels,), affine, affine)
        if not track_running_stats:
            return F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
        mean = g.param("running_mean", _init.zeros((channels,), dtype=dtype), trainable=False)
        var = g.param("running_var", _init.ones((channels,), dtype=dtype), trainable=False)
        count = g.param("num_batches_tracked", np.array(0, np.int64), trainable=False) if momentum is None else None
        return F.batch_norm(x, mean, var, gamma, beta, training=training, momentum=momentum, eps=eps,
                            num_batches_tracked=count)


def _gain_and_shift(x: Tensor, shape: tuple, gain: bool, shift: bool) -> tuple:
    """The learned ``gamma`` (ones) and ``beta`` (zeros) of a normalization layer, or None where not wanted."""
    g, dtype = x.graph, _float_dtype(x)
    return (g.param("gamma", _init.ones(shape, dtype=dtype)) if gain else None,
            g.param("beta", _init.zeros(shape, dtype=dtype)) if shift else None)


def _normalized_shape(x: Tensor, normalized_shape: Union[None, int, Sequence[int]], layer: str) -> tuple:
    if normalized_shape is None:
        return (_last_dim(x, layer),)
    return (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(map(int, normalized_shape))


def _channels(x: Tensor, layer: str) -> int:
    shape = x.shape
    if shape is None or len(shape) < 2 or shape[1] is None:
        raise GraphError(f"layer {layer!r}: input {x.name!r} must have shape (N, C, ...) with a known number of "
                         f"channels C on axis 1 (shape {'unknown' if shape is None else shape})")
    return int(shape[1])


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
