"""Benchmark entry point (``make bench``): the MLP training step, dagrad against numpy by hand.

Prints a markdown table of the median time per step and the peak memory
allocated during one step, each also as a ratio to the numpy step; with
``--profile``, also where dagrad's step spends its time.

BLAS runs on one thread (threadpoolctl when installed; otherwise the
``*_NUM_THREADS`` variables are set and the script restarts itself, since they
must be set before numpy loads).

    python benchmarks/run.py            # full run (about half a minute)
    python benchmarks/run.py --quick    # smoke run (a few seconds)
"""

from __future__ import annotations

import argparse
import os
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds: a smoke run, not a measurement")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 40; 5 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="steps per round (default 20; 3 with --quick)")
    parser.add_argument("--batch", type=int, default=mlp_step.BATCH)
    parser.add_argument("--sizes", default=",".join(map(str, mlp_step.SIZES)), help="layer sizes, comma-separated")
    parser.add_argument("--engines", default="numpy,dagrad,torch", help="comma-separated; torch is skipped if absent")
    parser.add_argument("--profile", action="store_true", help="also show where dagrad's step spends its time")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 40)
    repeats = args.repeats or (3 if args.quick else 20)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    problem = mlp_step.make_problem(batch=args.batch, sizes=sizes)
    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    unknown = set(names) - set(mlp_step.ENGINES)
    if unknown:
        parser.error(f"unknown engine(s) {sorted(unknown)}; known: {', '.join(mlp_step.ENGINES)}")

    with _one_blas_thread():
        print(_environment(args, sizes, rounds, repeats))
        rows = mlp_step.measure(problem, names, rounds=rounds, repeats=repeats)
        print(mlp_step.table(rows))
        if args.profile:
            import profile_step

            print()
            print(profile_step.report(problem, steps=50 if args.quick else 300))
    return 0


def _one_blas_thread():
    if threadpoolctl is not None:
        return threadpoolctl.threadpool_limits(limits=1)
    import contextlib

    return contextlib.nullcontext()


def _environment(args, sizes, rounds, repeats) -> str:
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
    return "\n".join([
        f"MLP step {'-'.join(map(str, sizes))}, batch {args.batch}, float32, ReLU, softmax cross-entropy, SGD; "
        f"{rounds} interleaved rounds x {repeats} steps{' (--quick: smoke run)' if args.quick else ''}",
        f"- machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}",
        f"- BLAS: {blas}",
        f"- OPENBLAS_CORETYPE: {coretype if coretype else 'not set'}; load average before the run: {load}",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
