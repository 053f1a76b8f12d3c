"""Initialisers: functions ``(shape, rng, dtype) -> array`` for the starting values of parameters.

Every initialiser takes a ``numpy.random.Generator`` (or an integer seed), so a
network built twice with the same seed starts from the same numbers. The
scaled ones keep the variance of activations roughly constant from layer to
layer, which is what lets gradients reach the first layer of a deep network:

* Glorot/Xavier (``Var(W) = 2 / (fan_in + fan_out)``) for tanh and sigmoid layers;
* He/Kaiming (``Var(W) = 2 / fan_in``) for ReLU layers.

For a weight matrix of shape ``(fan_in, fan_out)`` (dagrad multiplies ``x @ W``),
``fan_in`` is the product of all but the last axis and ``fan_out`` the last axis.

Examples
--------
>>> import numpy as np
>>> from dagrad.nn import init
>>> W = init.glorot_uniform((64, 32), np.random.default_rng(0))
>>> W.shape, W.dtype, bool(np.abs(W).max() <= np.sqrt(6 / 96))
((64, 32), dtype('float32'), True)
>>> init.get("he_normal") is init.he_normal
True
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..errors import GraphError

__all__ = [
    "Initializer", "zeros", "ones", "constant", "normal", "uniform",
    "glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal",
    "he_uniform", "he_normal", "kaiming_uniform", "kaiming_normal",
    "fans", "get", "as_generator",
]

Initializer = Callable[..., np.ndarray]
RngLike = Union[None, int, np.random.Generator]


def as_generator(rng: RngLike) -> np.random.Generator:
    """A Generator from a Generator, an integer seed, or None (seed 0, so results repeat)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a parameter of ``shape``; a vector's fans are both its length."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    return int(np.prod(shape[:-1])), shape[-1]


def _out(values: np.ndarray, dtype: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.dtype(dtype))


# ---------------------------------------------------------------- plain ---


def zeros(shape: Sequence[int], rng: RngLike = None, dtype: Any = "float32") -> np.ndarray:
    """All zeros: the usual start for biases (``rng`` is accepted and ignored)."""
    return np.zeros(tuple(shape), dtype=np.dtype(dtype))


def ones(shape: Sequence[int], rng: RngLike = None, dtype: Any = "float32") -> np.ndarray:
    """All ones: the usual start for the gain of a normalisation layer."""
    return np.ones(tuple(shape), dtype=np.dtype(dtype))


def constant(value: float) -> Initializer:
    """An initialiser filling every entry with ``value``."""

    def fill(shape: Sequence[int], rng: RngLike = None, dtype: Any = "float32") -> np.ndarray:
        return np.full(tuple(shape), value, dtype=np.dtype(dtype))

    fill.__name__ = f"constant({value!r})"
    return fill


def normal(shape: Sequence[int], rng: RngLike = None, dtype: Any = "float32", *, mean: float = 0.0,
           std: float = 0.01) -> np.ndarray:
    """Independent draws from ``N(mean, std**2)``."""
    return _out(as_generator(rng).normal(mean, std, size=tuple(shape)), dtype)


def uniform(shape: Sequence[int], rng: RngLike = None, dtype: Any = "float32", *, low: float = -0.05,
            high: float = 0.05) -> np.ndarray:
    """Independent draws from ``U(low, high)``."""
    return _out(as_generator(rng).uniform(low, high, size=tuple(shape)), dtype)


# --------------------------------------------------------------- scaled ---


def glorot_uniform(shape: Sequence[int], rng: RngLike = None, dtype: Any = "float32", *, gain: float = 1.0) -> np.ndarray:
    """``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    fan_in, fan_out = fans(shape)
    limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, rng, dtype, low=-limit, high=limit)


def glorot_normal(shape: Sequence[int], rng: RngLike = None, dtype: Any = "float32", *, gain: float = 1.0) -> np.ndarray:
    """``N(0, s**2)`` with ``s = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    return normal(shape, rng, dtype, std=gain * math.sqrt(2.0 / (fan_in + fan_out)))


def he_uniform(shape: Sequence[int], rng: RngLike = None, dtype: Any = "float32", *, gain: float = math.sqrt(2.0)) -> np.ndarray:
    """``U(-a, a)`` with ``a = gain * sqrt(3 / fan_in)``; the default gain suits ReLU (He et al., 2015)."""
    fan_in, _ = fans(shape)
    limit = gain * math.sqrt(3.0 / fan_in)
    return uniform(shape, rng, dtype, low=-limit, high=limit)


def he_normal(shape: Sequence[int], rng: RngLike = None, dtype: Any = "float32", *, gain: float = math.sqrt(2.0)) -> np.ndarray:
    """``N(0, s**2)`` with ``s = gain / sqrt(fan_in)``; the default gain suits ReLU."""
    fan_in, _ = fans(shape)
    return normal(shape, rng, dtype, std=gain / math.sqrt(fan_in))


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal

_BY_NAME = {
    "zeros": zeros, "ones": ones, "normal": normal, "uniform": uniform,
    "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
    "xavier_uniform": xavier_uniform, "xavier_normal": xavier_normal,
    "he_uniform": he_uniform, "he_normal": he_normal,
    "kaiming_uniform": kaiming_uniform, "kaiming_normal": kaiming_normal,
}


def get(init: Union[str, Initializer, None], default: Optional[Initializer] = None) -> Initializer:
    """The initialiser named ``init`` (or ``init`` itself if callable, or ``default`` if None)."""
    if init is None:
        if default is None:
            raise GraphError("no initialiser given and no default")
        return default
    if callable(init):
        return init
    try:
        return _BY_NAME[init]
    except KeyError:
        raise GraphError(f"unknown initialiser {init!r}; known: {', '.join(sorted(_BY_NAME))}") from None
