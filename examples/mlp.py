"""The small MLP of docs/how-gradients-flow.md: 3 inputs, a tanh layer of 4, 2 logits, softmax cross-entropy.

``build()`` returns the graph, to run on your own arrays from the shell::

    dagrad render examples/mlp.py:build -o flow.svg --feed x=x.npy --feed y=y.npy

and ``result()`` a backward pass on a random batch, ready to draw as it is::

    dagrad render examples/mlp.py:result -o flow.html --open
"""

from __future__ import annotations

import numpy as np

import dagrad as dg


def build(seed: int = 0) -> dg.Graph:
    """The network, with inputs ``x`` (batch x 3, float64) and ``y`` (batch, int64) and the scalar node ``loss``."""
    rng = np.random.default_rng(seed)
    g = dg.Graph("small MLP")
    x = g.input("x", shape=(None, 3))
    y = g.input("y", shape=(None,), dtype="int64")
    with g.scope("layer1"):
        h = dg.tanh(x @ g.param("W", rng.normal(size=(3, 4))) + g.param("b", np.zeros(4)))
    with g.scope("layer2"):
        logits = h @ g.param("W", rng.normal(size=(4, 2))) + g.param("b", np.zeros(2))
    dg.softmax_cross_entropy(logits, y, name="loss")
    return g


def result(batch: int = 8, seed: int = 0) -> dg.Result:
    """A backward pass of ``build()`` on a random batch."""
    rng = np.random.default_rng(seed)
    return build(seed).backward("loss", {"x": rng.normal(size=(batch, 3)), "y": rng.integers(0, 2, size=batch)})


if __name__ == "__main__":
    res = result()
    dg.render(res, "mlp.svg")
    print("wrote mlp.svg; the loss is #1 and layer2's gradients come before layer1's:",
          res.rank("layer2/W") < res.rank("layer1/W"))
