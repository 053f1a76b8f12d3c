"""Where dagrad's MLP step spends its time, next to the numpy step (``run.py --profile``).

Each view is printed as markdown:

1. per node: the median seconds of each forward and VJP call (from the
   ``Result`` timings), their sum, and the rest of ``plan.run`` (the engine's
   own bookkeeping between ops);
2. per-node engine overhead on a tiny network, where the arithmetic is
   negligible and what remains is the cost of running a node;
3. what if the first layer's VJP skipped the gradient of the input batch;
4. the functions with the most own time under ``cProfile``.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import time

import mlp_step


def _median_ms(xs) -> float:
    return statistics.median(xs) * 1e3


def node_times(problem: mlp_step.Problem, steps: int) -> str:
    """Median forward/VJP time of each node and the time ``plan.run`` spends outside them."""
    engine = mlp_step.dagrad_engine(problem)
    plan, feeds = engine.extra["plan"], engine.extra["feeds"]
    reference = mlp_step.numpy_engine(problem)
    for _ in range(5):
        plan.run(feeds)
        reference.step()
    fwd: dict = {}
    bwd: dict = {}
    walls, outside, numpy_walls = [], [], []
    clock = time.perf_counter
    for _ in range(steps):
        t0 = clock()
        res = plan.run(feeds, profile=True)
        wall = clock() - t0
        t0 = clock()
        reference.step()
        numpy_walls.append(clock() - t0)
        for name, t in res.forward_times.items():
            fwd.setdefault(name, []).append(t)
        for name, t in res.backward_times.items():
            if plan.graph.node(name).kind == "op":
                bwd.setdefault(name, []).append(t)
        walls.append(wall)
        outside.append(wall - sum(res.forward_times.values()) - sum(res.backward_times.values()))
    lines = ["| node | forward ms | VJP ms |", "| --- | ---: | ---: |"]
    for name in fwd:
        vjp = f"{_median_ms(bwd[name]):.3f}" if name in bwd else "-"
        lines.append(f"| {name} | {_median_ms(fwd[name]):.3f} | {vjp} |")
    op_total = sum(_median_ms(v) for v in fwd.values()) + sum(_median_ms(v) for v in bwd.values())
    lines += [
        "",
        f"- `plan.run` (forward + backward, no SGD update): median {_median_ms(walls):.3f} ms; "
        f"inside op calls {op_total:.3f} ms; engine bookkeeping outside them {_median_ms(outside):.3f} ms",
        f"- numpy step by hand (forward + backward + update), same rounds: median {_median_ms(numpy_walls):.3f} ms",
    ]
    return "\n".join(lines)


def per_node_overhead(steps: int) -> str:
    """Engine cost per node, measured on a network so small that the arithmetic costs next to nothing."""
    tiny = mlp_step.make_problem(batch=2, sizes=(4, 4, 4, 2))
    engines = [mlp_step.numpy_engine(tiny), mlp_step.dagrad_engine(tiny)]
    samples = mlp_step.time_engines(engines, rounds=10, repeats=max(steps // 10, 1))
    numpy_ms, dagrad_ms = (_median_ms(samples[e.name]) for e in engines)
    graph = engines[1].extra["graph"]
    ops = sum(1 for n in graph.nodes() if n.kind == "op")
    per_node_us = (dagrad_ms - numpy_ms) * 1e3 / ops
    return (
        f"- tiny network (4-4-4-2, batch 2): numpy step {numpy_ms * 1e3:.1f} us, dagrad step "
        f"{dagrad_ms * 1e3:.1f} us for {ops} op nodes (each run forward and backward): "
        f"about {per_node_us:.1f} us of extra cost per op node"
    )


def _matmul_without_lhs_gradient():
    """``a @ b`` whose VJP skips ``a``'s gradient, as an engine that knew ``a`` needs none would."""
    import dagrad as dg

    name = "bench_matmul_wrt_rhs"
    if name not in dg.registry().ops:
        @dg.op(name=name, shape=dg.shapes.matmul_shape, saves=("inputs",))
        def matmul_wrt_rhs(a, b):
            """Matrix product; no gradient for ``a``."""
            return a @ b

        @matmul_wrt_rhs.vjp
        def _(g, a, b, out):
            return None, a.T @ g

        dg.register_ops(matmul_wrt_rhs, plugin="benchmark-what-if")
    return name


def what_if(problem: mlp_step.Problem, rounds: int, repeats: int) -> str:
    """The step again, with the first layer's unused input gradient skipped: how much of the gap that is."""
    engines = [
        mlp_step.numpy_engine(problem),
        mlp_step.dagrad_engine(problem),
        mlp_step.dagrad_engine(problem, _matmul_without_lhs_gradient(), name="dagrad, no dL/dx"),
    ]
    samples = mlp_step.time_engines(engines, rounds, repeats)
    base = statistics.median(samples[engines[0].name])
    cells = [f"{e.name} {_median_ms(samples[e.name]):.3f} ms ({statistics.median(samples[e.name]) / base:.2f}x)"
             for e in engines]
    return "- what if the VJP of `x @ W1` skipped dL/dx (x is an input; no one reads it): " + "; ".join(cells)


def top_functions(problem: mlp_step.Problem, steps: int, limit: int = 12) -> str:
    """cProfile of dagrad steps, sorted by own time."""
    engine = mlp_step.dagrad_engine(problem)
    engine.step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        engine.step()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(limit)
    text = out.getvalue()
    body = text[text.index("ncalls"):] if "ncalls" in text else text
    return f"cProfile, {steps} dagrad steps, by own time (profiling inflates small calls):\n\n```text\n{body.rstrip()}\n```"


def report(problem: mlp_step.Problem, steps: int = 300, *, what_ifs: bool = True) -> str:
    """All the views as one markdown text; ``what_ifs`` registers a variant op in the process's registry."""
    parts = [
        "Per node (median over %d steps):\n\n%s" % (steps, node_times(problem, steps)),
        per_node_overhead(steps),
    ]
    if what_ifs:
        parts.append(what_if(problem, rounds=max(steps // 20, 3), repeats=10))
    parts.append(top_functions(problem, steps))
    return "\n\n".join(parts)
