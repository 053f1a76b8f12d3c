"""MAML: learn an initialisation from which one gradient step fits a new sine wave.

Run it with ``python examples/maml.py``. Each task is a sine wave
``A sin(x + phase)`` with its own amplitude and phase (Finn et al., 2017, the
sinusoid regression of section 5.1); a task shows ``SHOTS`` points to adapt
on (the support set) and is judged on others (the query set). MAML trains
the initial weights ``theta`` so that after one inner step

    theta' = theta - ALPHA * grad_theta loss_support(theta)

the query loss ``loss_query(theta')`` is small. The meta-gradient
``d loss_query(theta') / d theta`` goes through the inner step's gradient,
so it needs second derivatives: ``dg.grad`` builds the inner gradient as
nodes, ``theta'`` is ordinary arithmetic on them, and ``Graph.backward`` of
the query loss differentiates all of it.

A batch of tasks is one graph: ``theta`` is broadcast to one copy per task
(a leading task axis), so the gradient of the summed support losses with
respect to the copies is every task's own inner gradient, and the query
losses use every task's own adapted weights through batched matmuls.
``dagrad render examples/maml.py:build`` draws one meta-step.
"""

from __future__ import annotations

import numpy as np

import dagrad as dg

SHOTS = 10     # support points per task (10-shot regression)
ALPHA = 0.01   # the inner learning rate
TASKS = 8      # tasks per meta-batch


def tasks(n: int, rng: np.random.Generator, shots: int = SHOTS) -> dict:
    """``n`` sine-wave tasks: support and query points, each ``(n, shots, 1)``."""
    amplitude = rng.uniform(0.1, 5.0, size=(n, 1, 1))
    phase = rng.uniform(0.0, np.pi, size=(n, 1, 1))
    xs, xq = rng.uniform(-5.0, 5.0, size=(2, n, shots, 1))
    return {"xs": xs, "ys": amplitude * np.sin(xs + phase), "xq": xq, "yq": amplitude * np.sin(xq + phase)}


def init_params(g: dg.Graph, hidden: int, seed: int) -> list:
    """``theta``: weights of a 1-hidden-hidden-1 tanh network."""
    rng = np.random.default_rng(seed)
    sizes = [1, hidden, hidden, 1]
    params = []
    with g.scope("theta"):
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            params.append(g.param(f"W{i}", dg.nn.init.glorot_uniform((n_in, n_out), rng, "float64")))
            params.append(g.param(f"b{i}", np.zeros((1, n_out))))
    return params


def predict(x: dg.Tensor, weights: list) -> dg.Tensor:
    """The network on ``x`` of shape ``(tasks, points, 1)``, with one set of weights per task (or shared ones)."""
    h = x
    for k in range(0, len(weights), 2):
        h = h @ weights[k] + weights[k + 1]
        if k < len(weights) - 2:
            h = dg.tanh(h)
    return h


def network(hidden: int = 40, n_tasks: int = TASKS, shots: int = SHOTS, alpha: float = ALPHA, seed: int = 0) -> dict:
    """One meta-step as a graph: the inner step on the support sets, the query loss after it."""
    g = dg.Graph("maml")
    xs, ys, xq, yq = (g.input(name, shape=(n_tasks, shots, 1)) for name in ("xs", "ys", "xq", "yq"))
    theta = init_params(g, hidden, seed)
    with g.scope("inner"):
        copies = [dg.broadcast_to(p, (n_tasks,) + p.shape) for p in theta]      # one copy of theta per task
        support = dg.sum(dg.mean((predict(xs, copies) - ys) ** 2, axis=(1, 2)))  # the tasks' losses, summed
        steps = dg.grad(support, copies)                                          # every task's own gradient
        adapted = [w - alpha * s for w, s in zip(copies, steps)]                  # theta', one per task
    before = dg.mean((predict(xq, theta) - yq) ** 2, name="query_before")         # without adapting
    after = dg.mean((predict(xq, adapted) - yq) ** 2, name="meta_loss")           # after one inner step
    return {"graph": g, "meta_loss": after, "before": before, "inputs": {"xs": xs, "ys": ys, "xq": xq, "yq": yq}}


def feeds_of(net: dict, batch: dict) -> dict:
    return {net["inputs"][k]: v for k, v in batch.items()}


def build(seed: int = 0) -> dg.Result:
    """One meta-step's backward pass, through the inner gradient (``dagrad render`` draws it)."""
    net = network(hidden=4, n_tasks=2, shots=3, seed=seed)
    return net["graph"].backward(net["meta_loss"], feeds_of(net, tasks(2, np.random.default_rng(seed), shots=3)))


def evaluate(net: dict, batch: dict) -> tuple[float, float]:
    """Query loss on held-out tasks before and after one inner step from the current ``theta``."""
    res = net["graph"].forward([net["before"], net["meta_loss"]], feeds_of(net, batch))
    return float(res.value(net["before"])), float(res.value(net["meta_loss"]))


def main(meta_steps: int = 2000, hidden: int = 40, lr: float = 3e-3, seed: int = 0, print_fn=print) -> dict:
    """Meta-train ``theta``; report the post-adaptation loss on held-out tasks before and after."""
    rng = np.random.default_rng(seed)
    net = network(hidden, seed=seed)
    g = net["graph"]
    held_out = tasks(TASKS, np.random.default_rng(seed + 1))
    optimizer = dg.optim.Adam(g, lr=lr)
    start = evaluate(net, held_out)
    print_fn(f"held-out tasks before meta-training: query loss {start[0]:.3f} unadapted, {start[1]:.3f} after one step")
    for step in range(1, meta_steps + 1):
        result = g.backward(net["meta_loss"], feeds_of(net, tasks(TASKS, rng)), keep="wrt")
        optimizer.step(result)
        if step % 500 == 0 or step == meta_steps:
            print_fn(f"meta-step {step:5d}  meta-loss {float(result.value(net['meta_loss'])):.3f}")
    end = evaluate(net, held_out)
    print_fn(f"held-out tasks after meta-training:  query loss {end[0]:.3f} unadapted, {end[1]:.3f} after one step")
    return {"start": start, "end": end}


if __name__ == "__main__":
    main()
