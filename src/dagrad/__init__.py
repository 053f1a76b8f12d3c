"""dagrad: reverse-mode automatic differentiation over an explicit networkx DAG of plugin ops.

>>> import numpy as np, dagrad as dg
>>> g = dg.Graph()
>>> x = g.input("x", shape=(None, 3))
>>> W = g.param("W", np.ones((3, 2)))
>>> loss = dg.mean(dg.tanh(x @ W) ** 2)
>>> res = g.backward(loss, feeds={"x": np.zeros((5, 3))})
>>> res.grad("W").shape, res.order[0] == loss.name
((3, 2), True)
"""

from . import _compat, extend, linalg, nn, ops, optim, shapes, train
from ._version import __version__
from .autodiff import grad, hessian, hvp, jacobian
from .errors import (AnomalyError, ClusterError, CycleError, DagradError, FeedError, FormatError, GradientError,
                     GraphError, HigherOrderError, NonFiniteError, OpError, PluginError, PluginWarning, RenderError,
                     ShapeError, SymbolicTensorError)
from .functions import (binary_cross_entropy_with_logits, broadcast_to, clip, concatenate, einsum, expand_dims,
                        log_softmax, logsumexp, max, mean, min, mse, reshape, softmax, softmax_cross_entropy,
                        squeeze, stack, sum, take, transpose)
from .functions import (chunk, diagonal, flip, index_add, masked_fill, one_hot, pad, repeat, roll, scatter_add,
                        split, take_along_axis, tile, trace, tril, triu)  # layout and indexing (issue 14)
from .functions import (ValuesIndices, all, any, argmax, argmin, argsort, cumprod, cumsum, logcumsumexp, median, norm,
                        prod, quantile, round, sort, std, topk, var)
from .functions import (batch_norm, cosine_embedding_loss, cosine_similarity, cross_entropy, group_norm, huber_loss,
                        kl_div, l1_loss, layer_norm, nll_loss, rms_norm, smooth_l1_loss)
from .functions import attention_weights, scaled_dot_product_attention
from .gradcheck import GradcheckReport, gradcheck, gradgradcheck
from .graph import Graph
from .hookspecs import hookimpl
from .io import load, save
from .node import Node
from .opdef import Op, Sample, op
from .ops.compare import (equal, greater, greater_equal, isfinite, isinf, isnan, less, less_equal, logical_and,
                          logical_not, logical_or, logical_xor, not_equal)
from .ops.elementwise import (abs, add, astype, cos, div, exp, log, maximum, minimum, mul, neg, pow, relu,
                              sigmoid, sin, sqrt, sub, tanh, where)
from .ops.math import (arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, ceil, cosh, erf, erfc, expm1,
                       floor, log1p, log2, log10, reciprocal, rsqrt, sign, sinh, square, tan)
from .plugins import load_plugins, register, register_ops, registry
from .render import render, show
from .result import Result
from .scheduler import Plan, check_anomalies
from .tensor import Tensor, apply
from .train import fit

del _compat  # imported for its effect: ``from dagrad.op import ...`` keeps working, deprecated

__all__ = [
    "__version__", "ops", "shapes", "extend", "nn", "optim", "train", "fit", "linalg",
    "DagradError", "GraphError", "CycleError", "ShapeError", "FeedError", "PluginError", "OpError",
    "GradientError", "HigherOrderError", "AnomalyError", "NonFiniteError", "FormatError", "RenderError",
    "SymbolicTensorError", "ClusterError", "PluginWarning",
    "Graph", "Node", "Tensor", "Result", "Plan", "Op", "Sample", "op", "apply", "hookimpl",
    "gradcheck", "gradgradcheck", "GradcheckReport", "check_anomalies", "grad", "hvp", "hessian", "jacobian",
    "load_plugins", "register", "register_ops", "registry", "render", "show", "save", "load",
    "abs", "add", "astype", "cos", "div", "exp", "log", "maximum", "minimum", "mul", "neg", "pow", "relu",
    "sigmoid", "sin", "sqrt", "sub", "tanh", "where",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not", "isfinite", "isnan", "isinf",
    "binary_cross_entropy_with_logits", "broadcast_to", "clip", "concatenate", "einsum", "expand_dims",
    "log_softmax", "logsumexp", "max", "mean", "min", "mse", "reshape", "softmax", "softmax_cross_entropy",
    "squeeze", "stack", "sum", "take", "transpose",
    "pad", "flip", "roll", "tile", "repeat", "split", "chunk", "tril", "triu", "diagonal", "trace",
    "take_along_axis", "scatter_add", "index_add", "masked_fill", "one_hot",
    # math, statistics, scans, selection
    "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh", "arctanh", "log1p", "expm1",
    "log2", "log10", "erf", "erfc", "square", "reciprocal", "rsqrt", "sign", "floor", "ceil", "round",
    "prod", "var", "std", "norm", "median", "quantile", "cumsum", "cumprod", "logcumsumexp",
    "argmax", "argmin", "any", "all", "argsort", "sort", "topk", "ValuesIndices",
    "layer_norm", "group_norm", "rms_norm", "batch_norm", "nll_loss", "cross_entropy", "l1_loss", "smooth_l1_loss",
    "huber_loss", "kl_div", "cosine_similarity", "cosine_embedding_loss",
    "scaled_dot_product_attention", "attention_weights",
]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
