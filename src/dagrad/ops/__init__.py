"""Every registered op by name: the built-ins below, and any plugin's op through ``dagrad.ops.NAME``.

>>> import dagrad as dg
>>> dg.ops.tanh
<Op tanh from builtins>
"""

from __future__ import annotations

from . import plugin, samples  # submodules, bound before __getattr__ could be asked for them
from .elementwise import (abs, add, astype, clip, cos, div, exp, log, maximum, minimum, mul, neg, pow,
                          relu, sigmoid, sin, sqrt, sub, tanh, where)
from .layout import broadcast_to, concatenate, expand_dims, getitem, reshape, squeeze, stack, take, transpose
from .linalg import einsum, matmul
from .losses import binary_cross_entropy_with_logits, mse, softmax_cross_entropy
from .reductions import log_softmax, logsumexp, max, mean, min, softmax, sum

__all__ = [
    "abs", "add", "astype", "clip", "cos", "div", "exp", "log", "maximum", "minimum", "mul", "neg", "pow",
    "relu", "sigmoid", "sin", "sqrt", "sub", "tanh", "where",
    "broadcast_to", "concatenate", "expand_dims", "getitem", "reshape", "squeeze", "stack", "take", "transpose",
    "einsum", "matmul",
    "binary_cross_entropy_with_logits", "mse", "softmax_cross_entropy",
    "log_softmax", "logsumexp", "max", "mean", "min", "softmax", "sum",
]


def __getattr__(name: str):
    """Any op a plugin registered, looked up by name (``dagrad.ops.gelu``)."""
    if name.startswith("__"):
        raise AttributeError(name)
    from ..errors import GraphError
    from ..plugins import registry

    try:
        return registry().op(name)
    except GraphError as exc:
        raise AttributeError(str(exc)) from None


def __dir__():
    from ..plugins import registry

    return sorted(set(__all__) | set(registry().ops))
