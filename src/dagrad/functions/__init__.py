"""numpy-style functions over Tensors, for ops whose attributes numpy passes positionally.

``dagrad.ops.NAME`` is the op itself (inputs positional, attributes by
keyword); these wrappers give the familiar signatures: ``dg.sum(x, 0)``,
``dg.reshape(x, (2, 3))``, ``dg.concatenate([a, b])``, ``dg.einsum("ij,jk", a, b)``.

One module per kind of op, after ``dagrad/ops``: ``reductions`` (with statistics and scans),
``selection``, ``math``, ``layout``, ``indexing``, ``losses``, ``normalization``, ``attention``;
``common`` holds what they share. This ``__init__`` only re-exports.
"""

from __future__ import annotations

from .reductions import (cumprod, cumsum, log_softmax, logcumsumexp, logsumexp, max, mean, median, min, norm, prod,
                         quantile, softmax, std, sum, var)
from .selection import all, any, argmax, argmin, argsort, sort, topk, ValuesIndices
from .math import clip, einsum, round
from .layout import (broadcast_to, chunk, concatenate, diagonal, expand_dims, flip, pad, repeat, reshape, roll, split,
                     squeeze, stack, tile, trace, transpose, tril, triu)
from .indexing import index_add, masked_fill, one_hot, scatter_add, take, take_along_axis
from .losses import (binary_cross_entropy_with_logits, cosine_embedding_loss, cosine_similarity, cross_entropy,
                     huber_loss, kl_div, l1_loss, mse, nll_loss, smooth_l1_loss, softmax_cross_entropy)
from .normalization import batch_norm, group_norm, layer_norm, rms_norm
from .attention import attention_weights, scaled_dot_product_attention

__all__ = [
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax", "reshape", "transpose", "broadcast_to",
    "expand_dims", "squeeze", "concatenate", "stack", "einsum", "take", "clip", "softmax_cross_entropy",
    "binary_cross_entropy_with_logits", "mse", "pad", "flip", "roll", "tile", "repeat", "split", "chunk",
    "tril", "triu", "diagonal", "trace", "take_along_axis", "scatter_add", "index_add", "masked_fill",
    "one_hot", "scaled_dot_product_attention", "attention_weights", "layer_norm", "group_norm", "rms_norm",
    "batch_norm", "nll_loss", "cross_entropy", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
    "cosine_similarity", "cosine_embedding_loss", "ValuesIndices", "round", "prod", "var", "std", "norm",
    "median", "quantile", "cumsum", "cumprod", "logcumsumexp", "argmax", "argmin", "any", "all", "argsort",
    "sort", "topk"
]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
