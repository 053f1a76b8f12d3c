"""Regression: fit y = sin(3x) + noise with a small tanh MLP, mean squared error and SGD with momentum.

Run it with ``python examples/regression.py``. The learning rate follows a
cosine schedule, and gradients are clipped by their global norm.
``dagrad render examples/regression.py:build`` draws one batch's backward pass.
"""

from __future__ import annotations

import numpy as np

import dagrad as dg


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1.0, 1.0, size=(n, 1))
    return x, np.sin(3.0 * x) + 0.05 * rng.normal(size=(n, 1))


def network(hidden: int = 32, seed: int = 0):
    """A tanh MLP 1-hidden-hidden-1 with its mean squared error; returns ``(graph, x, y, loss)``."""
    g = dg.Graph("regression")
    x = g.input("x", shape=(None, 1))
    y = g.input("y", shape=(None, 1))
    prediction = dg.nn.mlp(x, [hidden, hidden, 1], "tanh", rng=seed)
    return g, x, y, dg.nn.mse(prediction, y)


def build(batch: int = 16, seed: int = 0) -> dg.Result:
    """A backward pass of the untrained network on ``batch`` points (``dagrad render`` draws it)."""
    x_data, y_data = make_data(batch, np.random.default_rng(seed))
    g, x, y, loss = network(seed=seed)
    return g.backward(loss, {x: x_data, y: y_data})


def main(n: int = 512, epochs: int = 150, hidden: int = 32, batch_size: int = 32, seed: int = 0,
         progress: bool | None = None) -> dict:
    rng = np.random.default_rng(seed)
    x_train, y_train = make_data(n, rng)
    x_test, y_test = make_data(max(n // 4, 1), rng)

    g, x, y, loss = network(hidden, seed)

    steps = epochs * -(-n // batch_size)
    schedule = dg.optim.cosine(0.1, total_steps=max(steps, 1))
    optimizer = dg.optim.SGD(g, lr=schedule, momentum=0.9, clip_norm=1.0)
    history = dg.fit(g, loss, {x: x_train, y: y_train}, optimizer, epochs, batch_size,
                     validation={x: x_test, y: y_test}, seed=seed, progress=progress, history_every=10)
    test_mse = dg.train.evaluate(g, {x: x_test, y: y_test}, loss=loss)["loss"]
    baseline = float(np.mean((y_test - y_train.mean()) ** 2))
    print(f"test MSE {test_mse:.4f} (predicting the mean: {baseline:.4f}) after {history.steps[-1]} steps")
    return {"test_mse": test_mse, "baseline_mse": baseline, "history": history}


if __name__ == "__main__":
    main()
