"""Two moons with a network small enough to draw neuron by neuron: 2 inputs, 3 tanh units, 1 output.

Every weight is its own scalar parameter and every neuron its own chain of
nodes (``h1 = tanh(w11*x1 + w21*x2 + b1)``), so the gradient-flow diagram of
one example reads like the textbook picture of backpropagation: each node
shows its number and its gradient, numbered in the order the backward pass
finished them. Run it with ``python examples/two_moons.py``; it writes
``out/two_moons.svg``. ``dagrad render examples/two_moons.py:build`` draws
one example's backward pass through the untrained network.
"""

from __future__ import annotations

import os

import numpy as np

import dagrad as dg


def moons(n: int, rng: np.random.Generator, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (as scikit-learn's ``make_moons``), labels 0 and 1."""
    top = n // 2
    angle = rng.uniform(0.0, np.pi, size=n)
    x = np.where(np.arange(n) < top, np.cos(angle), 1.0 - np.cos(angle))
    y = np.where(np.arange(n) < top, np.sin(angle), 0.5 - np.sin(angle))
    points = np.stack([x, y], axis=1) + noise * rng.normal(size=(n, 2))
    labels = (np.arange(n) >= top).astype(np.float64)
    order = rng.permutation(n)
    return points[order], labels[order]


def network(hidden: int = 3, seed: int = 0) -> tuple[dg.Graph, dg.Tensor, dg.Tensor]:
    """The network at scalar level; returns ``(graph, logit, loss)``."""
    rng = np.random.default_rng(seed)
    g = dg.Graph("two-moons")
    inputs = [g.input("x1", shape=(None,)), g.input("x2", shape=(None,))]
    label = g.input("label", shape=(None,))
    units = []
    for j in range(1, hidden + 1):
        with g.scope(f"h{j}"):
            total = g.param("b", 0.0)
            for i, x in enumerate(inputs, 1):
                total = total + g.param(f"w{i}", rng.normal(0.0, 1.0)) * x
            units.append(dg.tanh(total, name="tanh"))
    with g.scope("out"):
        logit = g.param("b", 0.0)
        for j, h in enumerate(units, 1):
            logit = logit + g.param(f"v{j}", rng.normal(0.0, 1.0)) * h
    loss = dg.nn.binary_cross_entropy(logit, label)
    return g, logit, loss


def build(seed: int = 0) -> dg.Result:
    """One example's forward and backward pass through the untrained network (``dagrad render`` draws it)."""
    points, labels = moons(1, np.random.default_rng(seed))
    g, _, loss = network(seed=seed)
    return g.backward(loss, {"x1": points[:, 0], "x2": points[:, 1], "label": labels})


def main(n: int = 400, epochs: int = 300, hidden: int = 3, out: str = "out", seed: int = 0,
         progress: bool | None = None) -> dict:
    rng = np.random.default_rng(seed)
    points, labels = moons(n, rng)
    g, logit, loss = network(hidden, seed)
    data = {"x1": points[:, 0], "x2": points[:, 1], "label": labels}
    history = dg.fit(g, loss, data, dg.optim.Adam(g, lr=0.05), epochs, batch_size=50, seed=seed,
                     metrics=dg.train.accuracy(logit, "label"), progress=progress, history_every=25)
    accuracy = dg.train.evaluate(g, data, metrics=dg.train.accuracy(logit, "label"))["accuracy"]
    print(f"training accuracy {accuracy:.1%} after {history.steps[-1]} steps")

    one = {name: values[:1] for name, values in data.items()}
    result = g.backward(loss, one)            # keep="all": every value and gradient, for the picture
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "two_moons.svg")
    dg.render(result, path)
    print(f"the gradient flow for one example: {path}")
    return {"accuracy": accuracy, "diagram": path, "history": history}


if __name__ == "__main__":
    main()
