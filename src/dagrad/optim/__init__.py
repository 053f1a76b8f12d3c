"""Optimizers: update a graph's parameters in place from the gradients of a backward ``Result``.

There is no ``zero_grad``: each ``graph.backward`` returns fresh gradients, so
a step never sees gradients left over from an earlier one.

>>> import numpy as np, dagrad as dg
>>> g = dg.Graph()
>>> w = g.param("w", np.array([3.0]))
>>> loss = dg.sum(w * w)
>>> opt = dg.optim.SGD(g, lr=0.25)
>>> for _ in range(3):
...     opt.step(g.backward(loss))     # w <- w - 0.25 * 2w = w / 2
>>> g.value("w")
array([0.375])
"""

from . import schedules
from .adam import Adam, AdamW
from .base import Optimizer, clip_by_global_norm, global_norm
from .schedules import constant, cosine, step_decay
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "schedules", "constant", "step_decay", "cosine",
           "global_norm", "clip_by_global_norm"]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
