"""``dagrad demo``: the main job, run by ``make demo``."""

from __future__ import annotations


def add(sub) -> None:
    p = sub.add_parser("demo", help="run the main job: a small network, its gradients, in reverse order")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    import dagrad as dg

    rng = np.random.default_rng(0)
    g = dg.Graph("demo")
    x = g.input("x", shape=(None, 3))
    y = g.input("y", shape=(None,), dtype="int64")
    with g.scope("fc1"):
        h = dg.tanh(x @ g.param("W", rng.normal(size=(3, 4)) * 0.5) + g.param("b", np.zeros(4)))
    with g.scope("fc2"):
        logits = h @ g.param("W", rng.normal(size=(4, 2)) * 0.5) + g.param("b", np.zeros(2))
    loss = dg.softmax_cross_entropy(logits, y, name="loss")
    res = g.backward(loss, feeds={"x": rng.normal(size=(8, 3)), "y": rng.integers(0, 2, size=8)})
    print(f"loss = {float(res.value(loss)):.4f}")
    print("gradients, in the order the backward pass finished them (#1 is the loss):")
    for step, name in enumerate(res.order, 1):
        grad = res.grad(name)
        print(f"  #{step:<2} {name:<12} |grad| = {np.linalg.norm(grad):.4f}  shape {grad.shape}")
    return 0
