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
from .layers import activate, dense, dropout, embedding, layer_norm, mlp
from .losses import binary_cross_entropy, cross_entropy, mse

__all__ = [
    "init", "losses", "activate", "dense", "mlp", "dropout", "layer_norm", "embedding",
    "multi_head_attention", "transformer_block", "gelu",
    "cross_entropy", "binary_cross_entropy", "mse",
]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
