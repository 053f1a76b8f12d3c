"""Benchmark entry point (``make bench``): every workload, dagrad against numpy by hand (and PyTorch).

Prints one markdown table: for each workload (a chain of small ops, a wide
graph, the MLP training step, define-compile-run-once, keep="all", and deep
chains of 10^5 and 10^6 nodes) the time per node or step of each engine, the
ratios to numpy measured in the same rounds, and the target; then the MLP's
peak memory. With ``--profile``, also where dagrad's MLP step spends its time.

BLAS runs on one thread (threadpoolctl when installed; otherwise the
``*_NUM_THREADS`` variables are set and the script restarts itself, since they
must be set before numpy loads).

    python benchmarks/run.py            # full run (a few minutes)
    python benchmarks/run.py --quick    # smoke run (under a minute)
    python benchmarks/run.py --only chain,mlp
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")

try:
    import threadpoolctl
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    threadpoolctl = None
    if any(os.environ.get(v) != "1" for v in _THREAD_VARS):
        os.environ.update({v: "1" for v in _THREAD_VARS})
        os.execv(sys.executable, [sys.executable, *sys.argv])

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402  (after the thread variables)

import mlp_step  # noqa: E402
import workloads  # noqa: E402
from dagrad.scheduler.plan import CODEGEN_AFTER_RUNS  # noqa: E402

WORKLOADS = ("chain", "wide", "mlp", "build", "keep-all", "deep")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, small deep chains: a smoke run")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated, of {', '.join(WORKLOADS)}")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 30; 4 with --quick)")
    parser.add_argument("--batch", type=int, default=mlp_step.BATCH)
    parser.add_argument("--sizes", default=",".join(map(str, mlp_step.SIZES)), help="MLP layer sizes, comma-separated")
    parser.add_argument("--engines", default="numpy,dagrad,torch", help="MLP engines; torch is skipped if absent")
    parser.add_argument("--profile", action="store_true", help="also show where dagrad's MLP step spends its time")
    args = parser.parse_args(argv)
    chosen = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; known: {', '.join(WORKLOADS)}")
    rounds = args.rounds or (4 if args.quick else 30)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    unknown = set(names) - set(mlp_step.ENGINES)
    if unknown:
        parser.error(f"unknown engine(s) {sorted(unknown)}; known: {', '.join(mlp_step.ENGINES)}")

    with _one_blas_thread():
        print(_environment(args, sizes, rounds))
        rows, notes = [], []
        if "chain" in chosen:
            rows.append(_per_node("chain: 2,000 ops (x*c, x+c, tanh) on float64[16], fwd+bwd, plan reused",
                                  workloads.chain_engines(), workloads.CHAIN_OPS, rounds, 5, "<= 2.0x numpy"))
        if "wide" in chosen:
            rows.append(_per_node("wide: 1,000 independent 16x16 matmuls (tanh, summed), grads of all W",
                                  workloads.wide_engines(), workloads.WIDE, rounds, 3, "<= 1.5x numpy", unit="matmul"))
        if "mlp" in chosen:
            problem = mlp_step.make_problem(batch=args.batch, sizes=sizes)
            mlp_rows = mlp_step.measure(problem, names, rounds=rounds, repeats=3 if args.quick else 20)
            rows.append(_mlp_row(mlp_rows, sizes, args.batch))
            notes.append("MLP step, time and peak memory per step (tracemalloc):\n\n" + mlp_step.table(mlp_rows))
        if "build" in chosen:
            rows.append(_per_node("define, compile, run once: the 2,000-op chain from scratch, then g.backward",
                                  workloads.build_engines(), workloads.CHAIN_OPS, max(3, rounds // 3), 5,
                                  "<= 8x numpy's fwd+bwd"))  # 5 graphs a round: freeing them is timed too
        if "keep-all" in chosen:
            rows.append(_keep_all(rounds))
        if "deep" in chosen:
            for n in ((10_000, 100_000) if args.quick else (100_000, 1_000_000)):
                rows.extend(_deep_rows(workloads.deep(n)))
        print(_table(rows))
        for note in notes:
            print()
            print(note)
        if args.profile:
            import profile_step

            print()
            print(profile_step.report(mlp_step.make_problem(batch=args.batch, sizes=sizes),
                                      steps=50 if args.quick else 300))
    return 0


def _per_node(label, engines, nodes, rounds, repeats, target, unit="node") -> dict:
    """A row of times per ``unit`` (``nodes`` of them per run) and ratios paired by round."""
    workloads.check(engines)
    samples = workloads.time_paired(engines, rounds, repeats)
    ratio = mlp_step.ratios(samples, "numpy")
    cells = {e.name: f"{statistics.median(samples[e.name]) / nodes * 1e6:.2f} us/{unit}" for e in engines}
    return {"workload": label, **cells, "dagrad": cells["dagrad"], "ratio": f"{ratio['dagrad']:.2f}x",
            "torch ratio": f"{ratio['torch']:.2f}x" if "torch" in ratio else "n/a", "target": target}


def _mlp_row(mlp_rows, sizes, batch) -> dict:
    by = {r.name.split()[0]: r for r in mlp_rows}
    dagrad = by["dagrad"]
    torch = next((r for r in mlp_rows if r.name.startswith("torch")), None)
    return {"workload": f"MLP {'-'.join(map(str, sizes))}, batch {batch}, float32, SGD step",
            "numpy": f"{by['numpy'].median * 1e3:.3f} ms", "dagrad": f"{dagrad.median * 1e3:.3f} ms",
            "torch": f"{torch.median * 1e3:.3f} ms" if torch else "n/a", "ratio": f"{dagrad.time_ratio:.2f}x",
            "torch ratio": f"{torch.time_ratio:.2f}x" if torch else "n/a", "target": "<= 1.05x numpy; memory <= 1.3x"}


def _keep_all(rounds) -> dict:
    engines = workloads.keep_all_engines()
    workloads.check(engines)
    samples = workloads.time_paired(engines, rounds, 5)
    ratio = mlp_step.ratios(samples, engines[0].name)
    nodes = workloads.CHAIN_OPS
    return {"workload": "g.backward(loss) with the default keep='all' (plan cached), chain",
            "numpy": "", "dagrad": f"{statistics.median(samples[engines[1].name]) / nodes * 1e6:.2f} us/node",
            "torch": "", "ratio": f"{ratio[engines[1].name]:.2f}x a reused keep='wrt' plan", "torch ratio": "",
            "target": "<= 2x"}


def _deep_rows(d) -> list:
    """The chain's first runs (the loop), and its runs as generated code when its size allows it."""
    storage = f" (its nodes and edges alone in a bare DiGraph: {d.storage:.1f} s)" if d.storage is not None else ""
    rows = [{"workload": f"chain of {d.nodes:,} op nodes: build {d.build:.1f} s{storage}, compile {d.compile:.1f} s; "
                         f"first runs",
             "numpy": f"{d.numpy / d.nodes * 1e6:.2f} us/node", "dagrad": f"{d.run / d.nodes * 1e6:.2f} us/node",
             "torch": "", "ratio": f"{d.run / d.numpy:.2f}x", "torch ratio": "",
             "target": "build + compile <= 10 s (10^6); run <= 3x numpy"}]
    if d.run_code is not None:
        rows.append({"workload": f"the same after {CODEGEN_AFTER_RUNS} runs, as generated code "
                                 f"(writing and compiling it: {d.code:.1f} s, once)",
                     "numpy": f"{d.numpy / d.nodes * 1e6:.2f} us/node",
                     "dagrad": f"{d.run_code / d.nodes * 1e6:.2f} us/node", "torch": "",
                     "ratio": f"{d.run_code / d.numpy:.2f}x", "torch ratio": "", "target": "run <= 3x numpy"})
    return rows


def _table(rows) -> str:
    lines = ["| workload | numpy by hand | dagrad | torch eager | dagrad / numpy | torch / numpy | target |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r.get('numpy', '')} | {r['dagrad']} | {r.get('torch', 'n/a')} | "
                     f"{r['ratio']} | {r['torch ratio']} | {r['target']} |")
    return "\n".join(lines)


def _one_blas_thread():
    if threadpoolctl is not None:
        return threadpoolctl.threadpool_limits(limits=1)
    import contextlib

    return contextlib.nullcontext()


def _environment(args, sizes, rounds) -> str:
    """What was measured, and on what, as a few markdown lines."""
    import platform

    blas = "BLAS threads from *_NUM_THREADS=1"
    if threadpoolctl is not None:
        info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        blas = "; ".join(
            f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}), {i.get('num_threads')} thread(s)"
            for i in info
        ) or "no BLAS found by threadpoolctl"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    import dagrad

    return "\n".join([
        f"dagrad {dagrad.__version__}; {rounds} interleaved rounds per workload"
        f"{' (--quick: a smoke run, not a measurement)' if args.quick else ''}",
        f"- PyTorch: {torch_version}",
        f"- machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}",
        f"- BLAS: {blas}",
        f"- OPENBLAS_CORETYPE: {coretype if coretype else 'not set'}; load average before the run: {load}",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
