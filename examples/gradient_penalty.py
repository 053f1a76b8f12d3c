"""Gradient penalty (WGAN-GP): a critic whose loss holds the norm of its own input gradient.

Run it with ``python examples/gradient_penalty.py``. A Wasserstein critic ``D``
scores samples of two 2-D distributions, "real" and "fake" (two Gaussian
blobs whose centres are ``DISTANCE`` apart; no generator, so the answer is
known): it maximises ``mean D(real) - mean D(fake)``, which estimates the
Wasserstein-1 distance between them when ``D`` is 1-Lipschitz. WGAN-GP
(Gulrajani et al., 2017) asks for that with a penalty
``LAMBDA * mean((|grad_x D(x)| - 1) ** 2)`` at random points ``x`` between a
real and a fake sample.

The penalty holds a gradient, so it is built with ``dg.grad``: the gradient
of the critic with respect to its input becomes nodes of the graph, and
training runs ``Graph.backward`` through them (a second derivative of the
critic, computed by the numpy VJPs of the gradient nodes). Without the
penalty nothing bounds the critic: its estimate and its gradients grow with
every step. With it, the gradient norm settles near 1 and the estimate near
the true distance. ``dagrad render examples/gradient_penalty.py:build``
draws the critic, its input gradient (purple) and the penalty.
"""

from __future__ import annotations

import numpy as np

import dagrad as dg

DISTANCE = 3.0  # the Wasserstein-1 distance between the two distributions: one is the other moved this far
LAMBDA = 10.0   # the penalty weight of the paper


def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` real samples, ``n`` fake ones, and a mixing weight per pair for the points in between."""
    real = rng.normal(size=(n, 2)) * 0.3 + [DISTANCE / 2, 0.0]
    fake = rng.normal(size=(n, 2)) * 0.3 - [DISTANCE / 2, 0.0]
    return real, fake, rng.uniform(size=(n, 1))


def critic_params(g: dg.Graph, hidden: int, seed: int) -> list:
    """The critic's weights: one set, applied to real, fake and mixed samples alike."""
    rng = np.random.default_rng(seed)
    sizes = [2, hidden, hidden, 1]
    params = []
    with g.scope("critic"):
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            W = g.param(f"W{i}", dg.nn.init.glorot_uniform((n_in, n_out), rng, "float64"))
            params.append((W, g.param(f"b{i}", np.zeros(n_out))))
    return params


def critic(x: dg.Tensor, params: list, name: str) -> dg.Tensor:
    """``D(x)``, one score per row, in scope ``name``."""
    with x.graph.scope(name):
        h = x
        for k, (W, b) in enumerate(params):
            h = h @ W + b
            if k < len(params) - 1:
                h = dg.tanh(h)
        return h


def network(hidden: int = 32, weight: float = LAMBDA, seed: int = 0) -> dict:
    """The critic's graph: its loss, the penalty, and the input gradient the penalty holds."""
    g = dg.Graph("gradient penalty")
    real = g.input("real", shape=(None, 2))
    fake = g.input("fake", shape=(None, 2))
    mix = g.input("mix", shape=(None, 1))
    params = critic_params(g, hidden, seed)
    estimate = dg.mean(critic(real, params, "on_real")) - dg.mean(critic(fake, params, "on_fake"))
    between = mix * real + (1 - mix) * fake
    scores = critic(between, params, "on_between")
    # Each row's score depends on that row alone, so the gradient of their sum is every row's own gradient.
    slope = dg.grad(dg.sum(scores), between)
    norm = dg.sqrt(dg.sum(slope * slope, axis=1) + 1e-12, name="grad_norm")
    penalty = dg.mean((norm - 1.0) ** 2, name="penalty")
    loss = dg.add(weight * penalty, -estimate, name="loss")  # maximise the estimate, keep |grad D| near 1
    return {"graph": g, "loss": loss, "estimate": estimate, "penalty": penalty, "norm": norm,
            "inputs": (real, fake, mix)}


def build(batch: int = 16, seed: int = 0) -> dg.Result:
    """One backward pass of the untrained critic, through its input gradient (``dagrad render`` draws it)."""
    net = network(hidden=8, seed=seed)
    feeds = dict(zip(net["inputs"], sample(batch, np.random.default_rng(seed))))
    return net["graph"].backward(net["loss"], feeds)


def main(steps: int = 400, batch: int = 64, hidden: int = 32, weight: float = LAMBDA, seed: int = 0,
         print_fn=print) -> dict:
    """Train the critic; report its estimate of the distance and its gradient norm, first and last."""
    rng = np.random.default_rng(seed)
    net = network(hidden, weight, seed)
    g, loss = net["graph"], net["loss"]
    optimizer = dg.optim.Adam(g, lr=1e-3, betas=(0.5, 0.9))  # the paper's Adam settings for the critic
    watched = [net["estimate"], net["penalty"], net["norm"]]
    trace = []
    for step in range(1, steps + 1):
        feeds = dict(zip(net["inputs"], sample(batch, rng)))
        result = g.backward(loss, feeds, keep="wrt", outputs=watched)
        optimizer.step(result)
        if step == 1 or step % 100 == 0 or step == steps:
            norms = result.value(net["norm"])
            trace.append({"step": step, "estimate": float(result.value(net["estimate"])),
                          "penalty": float(result.value(net["penalty"])), "mean_norm": float(norms.mean())})
            t = trace[-1]
            print_fn(f"step {step:4d}  estimate {t['estimate']:7.3f} (true {DISTANCE})  "
                     f"|grad D| {t['mean_norm']:6.3f}  penalty {t['penalty']:.4f}")
    # Judge the trained critic on fresh samples.
    feeds = dict(zip(net["inputs"], sample(1024, rng)))
    final = g.forward(watched, feeds)
    report = {"trace": trace, "estimate": float(final.value(net["estimate"])),
              "penalty": float(final.value(net["penalty"])), "mean_norm": float(final.value(net["norm"]).mean())}
    print_fn(f"trained: estimate {report['estimate']:.3f} of the true {DISTANCE}, mean |grad D| "
             f"{report['mean_norm']:.3f} (1-Lipschitz wants 1)")
    return report


if __name__ == "__main__":
    main()
    print("without the penalty the critic is unbounded:")
    main(weight=0.0)
