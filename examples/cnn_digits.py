"""Handwritten digits with a small CNN built from the dagrad-conv op pack.

The same data as ``examples/digits_mlp.py``, seen as 1x8x8 images: two
3x3 convolutions with max pooling, then a dense layer. The conv ops come
from a plugin distribution (``pip install -e plugins/dagrad-conv``), found
through its entry point; nothing in dagrad itself knows about convolution.
The gradient-flow diagram labels them ``[plugin conv]``.

Run it with ``python examples/cnn_digits.py [EPOCHS]``; it needs scikit-learn.
``dagrad render examples/cnn_digits.py:build`` draws one batch's backward pass.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Optional, Sequence

import numpy as np

import dagrad as dg
from dagrad.data import digits


def conv_block(x: dg.Tensor, channels: int, name: str, rng: np.random.Generator) -> dg.Tensor:
    """3x3 convolution (same padding) + bias + relu + 2x2 max pooling, in scope ``name/``."""
    in_channels = x.shape[1]
    fan_in = in_channels * 9
    g = x.graph
    with g.scope(name):
        w = g.param("w", (rng.standard_normal((channels, in_channels, 3, 3)) * np.sqrt(2 / fan_in)).astype(np.float32))
        b = g.param("b", np.zeros((channels, 1, 1), np.float32))
        h = dg.relu(dg.ops.conv2d(x, w, padding=1) + b)
        return dg.ops.max_pool2d(h, kernel_size=2)


def network(channels: Sequence[int] = (16, 32), seed: int = 0):
    """The CNN: ``(None, 64)`` pixels in, ``(None, 10)`` logits out; returns graph, loss, logits, accuracy."""
    rng = np.random.default_rng(seed)
    g = dg.Graph("digits_cnn")
    x = g.input("x", shape=(None, 64), dtype="float32")
    y = g.input("y", shape=(None,), dtype="int64")
    h = dg.reshape(x, (-1, 1, 8, 8))
    for i, c in enumerate(channels, 1):
        h = conv_block(h, c, f"conv{i}", rng)
    logits = dg.nn.dense(dg.ops.flatten(h), 10, name="fc", rng=seed)
    loss = dg.nn.cross_entropy(logits, y)
    return g, loss, logits, dg.train.accuracy(logits, y)


def build(batch: int = 8, seed: int = 0) -> dg.Result:
    """A backward pass of the untrained CNN on ``batch`` held-out digits (``dagrad render`` draws it)."""
    data = digits(seed=seed)
    g, loss, _, _ = network(seed=seed)
    return g.backward(loss, {"x": data["X_test"][:batch], "y": data["y_test"][:batch]})


def main(epochs: int = 20, channels: Sequence[int] = (16, 32), batch_size: int = 32, limit: Optional[int] = None,
         lr: float = 2e-3, out: str = "out", seed: int = 0, progress: Optional[bool] = None,
         render: bool = True) -> dict:
    """Train, evaluate on the held-out quarter and draw one step's gradient flow.

    ``limit`` trains on the first ``limit`` examples only (for quick tests).
    """
    data = digits(seed=seed)
    train = {"x": data["X_train"][:limit], "y": data["y_train"][:limit]}
    test = {"x": data["X_test"], "y": data["y_test"]}
    g, loss, logits, accuracy = network(channels, seed)

    started = time.perf_counter()
    history = dg.fit(g, loss, train, dg.optim.Adam(g, lr=lr), epochs, batch_size,
                     metrics=accuracy, seed=seed, progress=progress)
    seconds = time.perf_counter() - started
    score = dg.train.evaluate(g, test, metrics=accuracy)["accuracy"]
    print(f"CNN test accuracy {score:.2%} after {len(history.epochs)} epochs ({seconds:.1f} s of training)")

    diagram = None
    if render and hasattr(dg, "render"):
        os.makedirs(out, exist_ok=True)
        batch = {"x": test["x"][:8], "y": test["y"][:8]}
        diagram = os.path.join(out, "cnn_digits.svg")
        try:
            dg.render(g.backward(loss, batch, keep="all"), diagram)
        except dg.RenderError as exc:  # Graphviz's dot missing: the model is still fine
            print(f"no diagram: {exc}")
            diagram = None
        else:
            print(f"gradient flow of one step: {diagram}")
    return {"accuracy": score, "seconds": seconds, "history": history, "diagram": diagram, "graph": g}


if __name__ == "__main__":
    main(epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 20)
