"""Handwritten digits with a two-layer MLP: build, train, evaluate, save and load.

Run it with ``python examples/digits_mlp.py``; it needs scikit-learn
(``pip install 'dagrad[demo]'``) for the data set, which ships with it.
``dagrad demo`` is the same network with diagrams and a gradient table;
``dagrad render examples/digits_mlp.py:build`` draws one batch's backward pass.
"""

from __future__ import annotations

import os
import sys

import dagrad as dg
from dagrad.data import digits


def network(hidden: int = 64, seed: int = 0):
    """Two dense layers, 64 pixels to 10 logits; returns ``(graph, loss, accuracy)``."""
    g = dg.Graph("digits")
    x = g.input("x", shape=(None, 64), dtype="float32")
    y = g.input("y", shape=(None,), dtype="int64")
    h = dg.nn.dense(x, hidden, activation="relu", name="fc1", rng=seed)
    logits = dg.nn.dense(h, 10, name="fc2", rng=seed + 1)
    return g, dg.nn.cross_entropy(logits, y), dg.train.accuracy(logits, y)


def build(batch: int = 32, seed: int = 0) -> dg.Result:
    """A backward pass of the untrained network on ``batch`` held-out digits (``dagrad render`` draws it)."""
    data = digits(seed=seed)
    g, loss, _ = network(seed=seed)
    return g.backward(loss, {"x": data["X_test"][:batch], "y": data["y_test"][:batch]})


def main(epochs: int = 20, hidden: int = 64, batch_size: int = 32, out: str = "out", seed: int = 0,
         progress: bool | None = None) -> dict:
    data = digits(seed=seed)
    train = {"x": data["X_train"], "y": data["y_train"]}
    test = {"x": data["X_test"], "y": data["y_test"]}
    g, loss, accuracy = network(hidden, seed)

    history = dg.fit(g, loss, train, dg.optim.Adam(g, lr=2e-3), epochs, batch_size,
                     validation=test, metrics=accuracy, seed=seed, progress=progress)
    scores = dg.train.evaluate(g, test, loss=loss, metrics=accuracy)
    print(f"test accuracy {scores['accuracy']:.2%} after {len(history.epochs)} epochs")

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "digits_mlp.dagrad")
    dg.save(g, path)
    again = dg.load(path)
    reloaded = dg.train.evaluate(again, test, metrics=dg.train.accuracy("fc2/add", "y"))["accuracy"]
    print(f"saved to {path}; reloaded model scores {reloaded:.2%}")
    return {"accuracy": scores["accuracy"], "reloaded_accuracy": reloaded, "history": history, "model": path}


if __name__ == "__main__":
    main(epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 20)
