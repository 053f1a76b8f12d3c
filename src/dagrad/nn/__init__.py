"""Layers, initialisers and losses for building networks in a graph.

>>> import numpy as np, dagrad as dg
>>> g = dg.Graph()
>>> x = g.input("x", shape=(None, 64), dtype="float32")
>>> y = g.input("y", shape=(None,), dtype="int64")
>>> h = dg.nn.dense(x, 32, activation="relu", name="fc1")
>>> logits = dg.nn.dense(h, 10, name="fc2")
>>> loss = dg.nn.cross_entropy(logits, y)
>>> res = g.backward(loss, {"x": np.ones((4, 64)), "y": [0, 1, 2, 3]})
>>> res.grad("fc1/W").shape
(64, 32)
"""

from . import init, losses
from .attention import gelu, multi_head_attention, transformer_block
from .layers import activate, batch_norm, dense, dropout, embedding, group_norm, layer_norm, mlp, rms_norm
from .losses import (binary_cross_entropy, cosine_embedding_loss, cross_entropy, huber_loss, kl_div, l1_loss, mse,
                     nll_loss, smooth_l1_loss)

__all__ = [
    "init", "losses", "activate", "dense", "mlp", "dropout", "layer_norm", "rms_norm", "group_norm", "batch_norm",
    "embedding", "multi_head_attention", "transformer_block", "gelu",
    "cross_entropy", "binary_cross_entropy", "mse", "nll_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
    "cosine_embedding_loss",
]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
