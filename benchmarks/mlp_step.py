"""One MLP training step (784-256-128-10, ReLU, softmax cross-entropy, SGD) in dagrad, numpy and torch.

Every engine starts from the same data and the same initial parameters and
does the same work per step: forward, backward, and a plain SGD update
(``p -= lr * grad``, no momentum) of every parameter in place. The numpy
engine is the step written by hand, the way a careful person would: it is
the yardstick the others are compared against.

Timing interleaves the engines round by round (the order rotates each round),
so drift in the machine's speed hits them all alike; memory is the peak that
``tracemalloc`` sees during one step (numpy reports its buffers to it; torch
does not, so its memory is not measured).
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import dagrad as dg
from dagrad.scheduler.plan import CODEGEN_AFTER_RUNS

WARMUP = CODEGEN_AFTER_RUNS + 2
"""Steps run before timing: past the switch to generated code, the steady state of a training loop."""

SIZES = (784, 256, 128, 10)
BATCH = 128
LR = 0.1


@dataclass
class Problem:
    """One batch of data and the initial parameters, shared by every engine."""

    X: np.ndarray
    Y: np.ndarray
    params: dict          # "fc1/W", "fc1/b", ... -> float32 arrays (copied by each engine)
    sizes: tuple
    lr: float = LR


def make_problem(batch: int = BATCH, sizes: tuple = SIZES, seed: int = 0, lr: float = LR) -> Problem:
    """A random float32 batch with integer labels and He-initialised layers."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    Y = rng.integers(0, sizes[-1], size=batch).astype(np.int64)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        params[f"fc{i}/W"] = (rng.normal(size=(n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32)
        params[f"fc{i}/b"] = np.zeros(n_out, np.float32)
    return Problem(X, Y, params, tuple(sizes), lr)


@dataclass
class Engine:
    """A ready-to-run training step: ``step()`` does forward, backward and the SGD update."""

    name: str
    step: Callable[[], object]
    params: dict                     # the live parameter arrays this engine updates
    memory_visible: bool = True      # does tracemalloc see this engine's buffers?
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------- numpy --


def numpy_engine(problem: Problem) -> Engine:
    """The step written by hand in numpy."""
    p = {k: v.copy() for k, v in problem.params.items()}
    layers = len(problem.sizes) - 1
    Ws = [p[f"fc{i}/W"] for i in range(1, layers + 1)]
    bs = [p[f"fc{i}/b"] for i in range(1, layers + 1)]
    X, Y, lr = problem.X, problem.Y, problem.lr
    rows = np.arange(len(Y))

    def step():
        # Forward: keep each layer's input and pre-activation for the backward pass.
        acts, pre = [X], []
        h = X
        for i in range(layers):
            z = h @ Ws[i] + bs[i]
            pre.append(z)
            h = np.maximum(z, 0) if i < layers - 1 else z
            acts.append(h)
        logits = acts[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(total[:, 0]) - shifted[rows, Y])
        # Backward.
        grad = exp / total
        grad[rows, Y] -= 1
        grad /= len(Y)
        for i in reversed(range(layers)):
            if i < layers - 1:
                grad = grad * (pre[i] > 0)
            dW = acts[i].T @ grad
            db = grad.sum(axis=0)
            if i > 0:
                grad = grad @ Ws[i].T
            Ws[i] -= lr * dW
            bs[i] -= lr * db
        return loss

    return Engine("numpy (by hand)", step, p)


# ---------------------------------------------------------------- dagrad --


def build_graph(problem: Problem, first_matmul: str = "matmul") -> tuple[dg.Graph, dg.Tensor]:
    """The MLP with the raw Graph API: inputs, params, @, +, relu, softmax cross-entropy.

    ``first_matmul`` names the op of the first layer's product (the profile swaps in variants).
    """
    g = dg.Graph("mlp")
    h = g.input("x", shape=(None, problem.sizes[0]), dtype="float32")
    y = g.input("y", shape=(None,), dtype="int64")
    layers = len(problem.sizes) - 1
    for i in range(1, layers + 1):
        with g.scope(f"fc{i}"):
            W = g.param("W", problem.params[f"fc{i}/W"])
            b = g.param("b", problem.params[f"fc{i}/b"])
            h = (h @ W if i > 1 else g.apply(first_matmul, [h, W])) + b
            if i < layers:
                h = dg.relu(h)
    loss = dg.softmax_cross_entropy(h, y)
    return g, loss


def dagrad_engine(problem: Problem, first_matmul: str = "matmul", name: str = "dagrad") -> Engine:
    """dagrad: compile once, then ``plan.run(feeds)`` and an in-place SGD update per step."""
    g, loss = build_graph(problem, first_matmul)
    plan = g.compile([loss], loss=loss, keep="wrt")
    feeds = {"x": problem.X, "y": problem.Y}
    params = g.params
    lr = problem.lr
    loss_name = loss.name

    def step():
        res = plan.run(feeds)
        grads = res.grads
        for name, p in params.items():
            p -= lr * grads[name]
        return res.values[loss_name]

    return Engine(name, step, params, extra={"graph": g, "plan": plan, "loss": loss, "feeds": feeds})


# ----------------------------------------------------------------- torch --


def torch_engine(problem: Problem) -> Optional[Engine]:
    """PyTorch eager, if it is installed (it is never a dependency of dagrad)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in problem.params.items()}
    layers = len(problem.sizes) - 1
    X, Y, lr = torch.from_numpy(problem.X), torch.from_numpy(problem.Y), problem.lr
    F = torch.nn.functional

    def step():
        h = X
        for i in range(1, layers + 1):
            h = h @ p[f"fc{i}/W"] + p[f"fc{i}/b"]
            if i < layers:
                h = torch.relu(h)
        loss = F.cross_entropy(h, Y)
        loss.backward()
        with torch.no_grad():
            for t in p.values():
                t -= lr * t.grad
                t.grad = None
        return loss.detach()

    live = {k: t.detach().numpy() for k, t in p.items()}  # shares memory with the tensors
    return Engine(f"torch {torch.__version__} eager", step, live, memory_visible=False)


ENGINES = {"numpy": numpy_engine, "dagrad": dagrad_engine, "torch": torch_engine}


# ------------------------------------------------------------- measuring --


def check_agreement(problem: Problem, names, steps: int = 2) -> None:
    """Every engine must compute the same losses and parameters as numpy; else the timing means nothing."""
    reference = numpy_engine(problem)
    ref_losses = [float(reference.step()) for _ in range(steps)]
    for name in names:
        engine = ENGINES[name](problem)
        if engine is None or name == "numpy":
            continue
        losses = [float(engine.step()) for _ in range(steps)]
        if not np.allclose(losses, ref_losses, rtol=1e-4, atol=1e-5):
            raise AssertionError(f"{engine.name} losses {losses} differ from numpy's {ref_losses}")
        for k, v in reference.params.items():
            if not np.allclose(engine.params[k], v, rtol=1e-3, atol=1e-5):
                raise AssertionError(f"{engine.name} parameter {k} differs from numpy's after {steps} steps")


def time_rounds(calls: dict, rounds: int, repeats: int, warmup: int = WARMUP, gc_off: bool = False) -> dict:
    """Seconds per call of each ``{name: function}``, one sample per round; calls interleave, rotating each round.

    ``gc_off`` turns the collector off inside a round, as ``timeit`` does, for a
    step whose own garbage is not the question; a workload that builds graphs
    keeps it on, since collecting is part of what building costs a user. What
    exists before the rounds (the other workloads, PyTorch's modules) is frozen
    out of the collector's sight, so a collection costs what the timed work
    allocated, not what else this process happens to hold.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    names = list(calls)
    samples: dict = {name: [] for name in names}
    clock = time.perf_counter
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    if gc_off:
        gc.disable()
    try:
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                call = calls[name]
                t0 = clock()
                for _ in range(repeats):
                    call()
                samples[name].append((clock() - t0) / repeats)
            gc.collect()
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()
    return samples


def ratios(samples: dict, reference: str) -> dict:
    """Median over rounds of each engine's time divided by the reference's time in the same round.

    Pairing each round with the reference's in the same round cancels out a slow spell of the machine.
    """
    base = samples[reference]
    return {name: statistics.median(t / b for t, b in zip(s, base)) for name, s in samples.items()}


def time_engines(engines: list[Engine], rounds: int, repeats: int, warmup: int = WARMUP) -> dict:
    """Seconds per step of each engine (``time_rounds`` with the collector off inside a round)."""
    return time_rounds({e.name: e.step for e in engines}, rounds, repeats, warmup, gc_off=True)


def peak_memory(engine: Engine, repeats: int = 3) -> Optional[int]:
    """Bytes allocated at the peak of one step, above what was allocated before it (median of repeats)."""
    if not engine.memory_visible:
        return None
    engine.step()  # anything allocated once (caches) is not part of a step
    peaks = []
    tracemalloc.start()
    try:
        for _ in range(repeats):
            gc.collect()
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            engine.step()
            _, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - before)
    finally:
        tracemalloc.stop()
    return int(statistics.median(peaks))


@dataclass
class Row:
    name: str
    median: float          # seconds per step
    best: float
    time_ratio: float      # median over rounds of (this engine's time / numpy's time in the same round)
    peak: Optional[int]    # bytes
    memory_ratio: Optional[float]


def measure(problem: Problem, names=("numpy", "dagrad", "torch"), rounds: int = 30, repeats: int = 20,
            check: bool = True) -> list[Row]:
    """Check agreement, time the engines interleaved, measure peak memory; one ``Row`` per engine."""
    names = ["numpy"] + [n for n in names if n != "numpy"]
    engines = [e for e in (ENGINES[n](problem) for n in names) if e is not None]
    if check:
        check_agreement(problem, names)
    samples = time_engines(engines, rounds, repeats)
    peaks = {e.name: peak_memory(e) for e in engines}
    time_ratios = ratios(samples, engines[0].name)
    base_peak = peaks[engines[0].name]
    rows = []
    for e in engines:
        peak = peaks[e.name]
        rows.append(Row(e.name, statistics.median(samples[e.name]), min(samples[e.name]), time_ratios[e.name], peak,
                        None if peak is None or not base_peak else peak / base_peak))
    return rows


def table(rows: list[Row]) -> str:
    """The rows as a markdown table."""
    lines = ["| engine | median ms/step | best ms/step | time vs numpy | peak MiB/step | memory vs numpy |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        peak = "n/a" if r.peak is None else f"{r.peak / 2**20:.2f}"
        mem = "n/a" if r.memory_ratio is None else f"{r.memory_ratio:.2f}x"
        lines.append(f"| {r.name} | {r.median * 1e3:.3f} | {r.best * 1e3:.3f} | {r.time_ratio:.2f}x | {peak} | {mem} |")
    return "\n".join(lines)
