"""The speed workloads beside the MLP step: a chain of small ops, a wide graph, building from
scratch, keeping everything for diagrams, and very deep chains.

Each workload builds engines that do the same work: dagrad, numpy written by
hand (the yardstick), and PyTorch eager when it is installed (never a
dependency). Before timing, every engine's result is checked against numpy's,
so a fast wrong engine cannot win. Times are per op node (per matmul for the
wide graph), measured in interleaved rounds with ratios paired by round, as the
MLP benchmark does (``mlp_step.time_rounds`` and ``mlp_step.ratios``); the deep
chains, too long to repeat many times, are run three times each, in the
interpreter loop and then as generated code.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

import networkx as nx
import numpy as np

import dagrad as dg
from dagrad.scheduler.plan import CODEGEN_AFTER_RUNS, CODEGEN_MAX_INSTRUCTIONS
from mlp_step import WARMUP, time_rounds

CHAIN_OPS = 2000          # x*c, x+c, tanh repeated: 2,000 op nodes
CHAIN_WIDTH = 16
WIDE = 1000               # independent 16x16 matmuls
C1, C2 = 0.9, 0.1


@dataclass
class Engine:
    name: str
    run: Callable[[], object]      # one unit of work; returns something to check
    check: Callable[[object], np.ndarray] = lambda out: np.asarray(out)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


# ------------------------------------------------------------------- chain ---


def chain_graph(n_ops: int = CHAIN_OPS, width: int = CHAIN_WIDTH):
    """``h = tanh(h * c1 + c2)`` repeated: n_ops op nodes (a third each of mul, add, tanh), then a sum."""
    g = dg.Graph("chain")
    x = g.param("x", np.linspace(-1, 1, width))
    h = x
    for _ in range(n_ops // 3):
        h = dg.tanh(h * C1 + C2)
    return g, dg.sum(h, name="loss"), x


def chain_numpy(n_ops: int = CHAIN_OPS, width: int = CHAIN_WIDTH) -> Callable[[], np.ndarray]:
    """Forward and backward of the chain, by hand: the gradient of ``sum(h)`` with respect to x."""
    x = np.linspace(-1, 1, width)
    c1, c2 = np.float64(C1), np.float64(C2)
    steps = n_ops // 3

    def run():
        hs = []
        h = x
        for _ in range(steps):
            h = np.tanh(h * c1 + c2)
            hs.append(h)
        g = np.ones_like(h)
        for h in reversed(hs):
            g = g * (1 - h * h) * c1
        return g

    return run


def chain_torch(n_ops: int = CHAIN_OPS, width: int = CHAIN_WIDTH) -> Optional[Callable[[], np.ndarray]]:
    torch = _torch()
    if torch is None:
        return None
    x0 = torch.linspace(-1, 1, width, dtype=torch.float64)

    def run():
        x = x0.clone().requires_grad_(True)
        h = x
        for _ in range(n_ops // 3):
            h = torch.tanh(h * C1 + C2)
        h.sum().backward()
        return x.grad.numpy()

    return run


def chain_engines() -> list[Engine]:
    g, loss, x = chain_graph()
    plan = g.compile(loss, loss=loss, keep="wrt")
    engines = [Engine("numpy", chain_numpy()),
               Engine("dagrad", lambda: plan.run(), lambda res: res.grad("x"))]
    torch_run = chain_torch()
    if torch_run is not None:
        engines.append(Engine("torch", torch_run))
    return engines


# -------------------------------------------------------------------- wide ---


def wide_problem(n: int = WIDE, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(16, 16)) * 0.3, [rng.normal(size=(16, 16)) * 0.3 for _ in range(n)]


def wide_engines(n: int = WIDE) -> list[Engine]:
    """``loss = sum_i sum(tanh(x @ W_i))``: n independent matmuls; the gradients of all n W.

    The n partial sums are stacked and summed (one node), as a person writing it
    with dagrad would, rather than chained through n - 1 scalar additions.
    """
    x0, Ws0 = wide_problem(n)
    g = dg.Graph("wide")
    x = g.const(x0, name="x")
    Ws = [g.param(f"W{i}", w) for i, w in enumerate(Ws0)]
    total = dg.sum(dg.stack([dg.sum(dg.tanh(x @ W)) for W in Ws]))  # the n sums stacked, then summed
    plan = g.compile(total, loss=total, keep="wrt")

    def numpy_run():
        xT = x0.T
        grads = []
        total = 0.0
        for W in Ws0:
            t = np.tanh(x0 @ W)
            total += t.sum()
            grads.append(xT @ (1 - t * t))
        return grads[-1]

    engines = [Engine("numpy", numpy_run),
               Engine("dagrad", lambda: plan.run(), lambda res: res.grad(f"W{n - 1}"))]
    torch = _torch()
    if torch is not None:
        xt = torch.from_numpy(x0)
        Wt = [torch.tensor(w, requires_grad=True) for w in Ws0]

        def torch_run():
            total = torch.tanh(xt @ Wt[0]).sum()
            for W in Wt[1:]:
                total = total + torch.tanh(xt @ W).sum()
            total.backward()
            last = Wt[-1].grad.numpy().copy()
            for W in Wt:
                W.grad = None
            return last

        engines.append(Engine("torch", torch_run))
    return engines


# ------------------------------------------------------------------- build ---


def build_engines() -> list[Engine]:
    """Define, compile and run once: the chain built from scratch, then ``g.backward`` (keep="all")."""
    def dagrad_run():
        g, loss, x = chain_graph()
        return g.backward(loss)

    engines = [Engine("numpy", chain_numpy()), Engine("dagrad", dagrad_run, lambda res: res.grad("x"))]
    torch_run = chain_torch()
    if torch_run is not None:
        engines.append(Engine("torch", torch_run))  # eager: it records its tape while running
    return engines


def keep_all_engines() -> list[Engine]:
    """``g.backward(loss)`` with the default keep="all" (cached plan) against a reused keep="wrt" plan."""
    g, loss, x = chain_graph()
    plan = g.compile(loss, loss=loss, keep="wrt")
    return [Engine("dagrad keep='wrt'", lambda: plan.run(), lambda res: res.grad("x")),
            Engine("dagrad keep='all'", lambda: g.backward(loss), lambda res: res.grad("x"))]


# -------------------------------------------------------------------- deep ---


@dataclass
class Deep:
    nodes: int
    build: float     # seconds
    compile: float
    run: float       # seconds per run (median) of the plan's first runs, in the interpreter loop
    numpy: float     # seconds per numpy run (median)
    code: Optional[float] = None       # seconds to write and compile its code, once, after CODEGEN_AFTER_RUNS runs
    run_code: Optional[float] = None   # seconds per run (median) of that code; None: the plan stays in the loop
    storage: Optional[float] = None    # seconds to store the same nodes and edges in a bare DiGraph (storage_floor)


def storage_floor(n_ops: int = CHAIN_OPS) -> float:
    """Seconds to store the chain's nodes and edges in a bare ``networkx.DiGraph``, with nothing else done.

    The floor under building with networkx as the graph's representation (which
    issue 11 keeps): see ``stored_chain``. The garbage collector is on, as it is
    for a user building a graph; its full collections rescan every dict stored
    so far, and on a million-node graph they are most of this time.
    """
    t0 = time.perf_counter()
    G = stored_chain(n_ops)
    elapsed = time.perf_counter() - t0
    del G
    gc.collect()
    return elapsed


def stored_chain(n_ops: int = CHAIN_OPS) -> nx.DiGraph:
    """The chain's nodes and edges, under the names ``Graph`` gives them, stored as ``Graph`` stores them.

    One ``Node`` record per node in networkx's node-attribute dict and the
    adjacency dicts for the edges, written directly (``Graph._add_node``'s
    fastest path); no shape or dtype rule, no name check, no Tensor.
    """
    from dagrad.node import Node

    dtype = np.dtype(np.float64)
    G = nx.DiGraph()
    node, succ, pred = G._node, G._succ, G._pred

    def store(name: str, op: str, inputs: tuple, shape: tuple) -> str:
        node[name] = {"node": Node(name, op, inputs, {}, shape, dtype, len(node))}
        succ[name] = {}
        preds = pred[name] = {}
        for source in inputs:
            if source not in preds:
                preds[source] = succ[source][name] = {}
        return name

    def numbered(stem: str, k: int) -> str:
        return stem if k == 0 else f"{stem}_{k}"

    width = (CHAIN_WIDTH,)
    h = store("x", "param", (), width)
    for k in range(n_ops // 3):
        c1 = store(numbered("const", 2 * k), "const", (), ())
        m = store(numbered("mul", k), "mul", (h, c1), width)
        c2 = store(numbered("const", 2 * k + 1), "const", (), ())
        a = store(numbered("add", k), "add", (m, c2), width)
        h = store(numbered("tanh", k), "tanh", (a,), width)
    store("loss", "sum", (h,), ())
    return G


def deep(n_ops: int, runs: int = 3) -> Deep:
    """Build, compile and run a chain of ``n_ops`` op nodes (runs repeated), and numpy's; then its generated code.

    A plan's first ``CODEGEN_AFTER_RUNS`` runs go through the interpreter loop;
    rather than run it that many times, the count is set, so the next run writes
    and compiles the code (timed), and the runs after it are timed again.
    """
    clock = time.perf_counter
    storage = storage_floor(n_ops)
    t0 = clock()
    g, loss, x = chain_graph(n_ops)
    t1 = clock()
    plan = g.compile(loss, loss=loss, keep="wrt")
    t2 = clock()
    numpy_run = chain_numpy(n_ops)
    expected = numpy_run()

    def checked(result) -> None:
        if not np.allclose(result.grad("x"), expected, rtol=1e-9, atol=1e-12):
            raise AssertionError(f"deep chain of {n_ops}: dagrad's gradient differs from numpy's")

    def timed(plan) -> tuple:
        times, numpy_times = [], []
        for _ in range(runs):
            t = clock()
            plan.run()
            times.append(clock() - t)
            t = clock()
            numpy_run()
            numpy_times.append(clock() - t)
        return statistics.median(times), numpy_times

    checked(plan.run())
    loop_run, numpy_times = timed(plan)
    result = Deep(n_ops, t1 - t0, t2 - t1, loop_run, statistics.median(numpy_times), storage=storage)
    if len(plan.forward) + len(plan.backward) <= CODEGEN_MAX_INSTRUCTIONS:
        plan.runs = CODEGEN_AFTER_RUNS
        t = clock()
        checked(plan.run())
        first = clock() - t
        if plan.program.code is None:
            raise AssertionError("the deep chain did not switch to generated code: is DAGRAD_EXECUTOR=loop set, "
                                 "or anomaly checking on?")
        result.run_code, more = timed(plan)
        result.code = first - result.run_code
        result.numpy = statistics.median(numpy_times + more)
    del plan, g, loss, x  # the Tensors hold the graph too: free it all before collecting
    gc.collect()
    return result


# ----------------------------------------------------------------- measure ---


def check(engines: list[Engine]) -> None:
    """Every engine must give the reference's (the first engine's) numbers, to a relative 1e-6.

    Relative, with no absolute slack: a long chain's gradient is tiny, and an
    engine returning zeros must not pass for one that computes it.
    """
    reference = np.asarray(engines[0].check(engines[0].run()))
    if not np.any(reference):
        raise AssertionError(f"{engines[0].name}'s result is all zeros: the check would prove nothing")
    for e in engines[1:]:
        got = e.check(e.run())
        if not np.allclose(got, reference, rtol=1e-6, atol=0):
            raise AssertionError(f"{e.name} computes something else than {engines[0].name}")


def time_paired(engines: list[Engine], rounds: int, repeats: int, warmup: int = WARMUP) -> dict:
    """Seconds per run of each engine, one sample per round; rounds interleave engines, rotating the order."""
    return time_rounds({e.name: e.run for e in engines}, rounds, repeats, warmup)

