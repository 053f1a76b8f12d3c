"""Data-parallel fit on a Dask LocalCluster against fit in one process: steps per second, bytes per step.

For each model (the digits MLP of ``dagrad demo``, and a larger MLP on
random data), it runs ``dg.fit`` in this process (BLAS on one thread, like
each worker) and on LocalClusters of 1 and 2 single-threaded worker
processes, in interleaved rounds (local, 1 worker, 2 workers, local, ...) so
that drift in the machine's load hits them alike. Each round times a run of
steps after one warm-up step; the table gives the median steps per second
over the rounds and their range. Bytes per step are the client's (parameters
out, summed gradients in) and the workers' (everything they sent: to each
other for the reduction and the parameters, and the sum to the client).

    python benchmarks/distributed_fit.py            # the table in docs/distributed.md (several minutes)
    python benchmarks/distributed_fit.py --quick    # a smoke run

The numbers depend on the machine and on what else runs on it: say where
they come from when you quote them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

import dagrad as dg
from dagrad.distributed import DataParallel, local_cluster


@dataclass
class Model:
    name: str
    sizes: tuple
    batch: int
    examples: int
    dtype: str = "float32"

    def data(self) -> dict:
        if self.name.startswith("digits"):
            from dagrad.data import digits

            d = digits(test_fraction=0.25, seed=0)
            return {"x": d["X_train"], "y": d["y_train"]}
        rng = np.random.default_rng(0)
        return {"x": rng.normal(size=(self.examples, self.sizes[0])).astype(self.dtype),
                "y": rng.integers(0, self.sizes[-1], size=self.examples)}

    def build(self):
        g = dg.Graph(self.name)
        x = g.input("x", shape=(None, self.sizes[0]), dtype=self.dtype)
        y = g.input("y", shape=(None,), dtype="int64")
        logits = dg.nn.mlp(x, list(self.sizes[1:]), "relu", rng=0)
        return g, dg.nn.cross_entropy(logits, y)

    @property
    def parameters(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))


MODELS = [
    Model("digits MLP", (64, 128, 64, 10), 32, 1347),
    Model("digits MLP", (64, 128, 64, 10), 256, 1347),
    Model("large MLP", (784, 1024, 1024, 10), 512, 8192),
]


class Clock(dg.train.Callback):
    """Times every step after the first (the warm-up: plans compiled, code generated, imports on the workers)."""

    def __init__(self):
        self.times: list[float] = []
        self.last = None

    def on_step_end(self, state, result):
        now = time.perf_counter()
        if self.last is not None:
            self.times.append(now - self.last)
        self.last = now


def worker_bytes(client) -> int:
    """Bytes all workers have sent so far (to each other, and results towards the client)."""
    sent = client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
    return sum(sent.values())


def run_fit(model: Model, data: dict, steps: int, client=None) -> dict:
    g, loss = model.build()
    clock = Clock()
    settings = DataParallel(client) if client is not None else None
    before = worker_bytes(client) if client is not None else 0
    started = time.perf_counter()
    examples = (steps + 1) * model.batch
    subset = {k: v[:examples] for k, v in data.items()} if examples <= len(data["y"]) else data
    epochs = -(-(steps + 1) * model.batch // len(subset["y"]))
    state = {"n": 0}

    class Stop(dg.train.Callback):
        def on_step_end(self, st, result):
            state["n"] += 1
            if state["n"] > steps:
                st.stop = True

    dg.fit(g, loss, subset, dg.optim.Adam(g, lr=1e-3), epochs=epochs + 1, batch_size=model.batch, progress=False,
           drop_last=True, callbacks=[clock, Stop()], client=settings)
    total = time.perf_counter() - started
    out = {"step": statistics.median(clock.times), "steps": len(clock.times),
           "setup": total - sum(clock.times)}
    if settings is not None:
        n = settings.stats["steps"]
        out["sent"] = settings.stats["sent"] / n
        out["received"] = settings.stats["received"] / n
        out["workers_sent"] = (worker_bytes(client) - before) / n
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps, one round: a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; 1 with --quick)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - without scikit-learn: set OPENBLAS_NUM_THREADS=1 yourself
        threadpool_limits = None
    with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():  # local fit: one BLAS thread
        rows = measure(rounds, args.quick)
    print(table(rows))
    return 0


def measure(rounds: int, quick: bool) -> list:
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; "
          f"{rounds} rounds; Python {sys.version.split()[0]}, numpy {np.__version__}")
    rows = []
    with local_cluster(1) as one, local_cluster(2) as two:
        for model in MODELS:
            steps = (3 if quick else 10) if model.name.startswith("large") else (10 if quick else 100)
            data = model.data()
            results: dict = {"local": [], "1 worker": [], "2 workers": []}
            for _ in range(rounds):
                results["local"].append(run_fit(model, data, steps))
                results["1 worker"].append(run_fit(model, data, steps, one))
                results["2 workers"].append(run_fit(model, data, steps, two))
            local = statistics.median(r["step"] for r in results["local"])
            for where, runs in results.items():
                rates = [1 / r["step"] for r in runs]
                step = statistics.median(r["step"] for r in runs)
                row = {"model": f"{model.name} {'-'.join(map(str, model.sizes))}, batch {model.batch}",
                       "where": where, "rate": statistics.median(rates), "low": min(rates), "high": max(rates),
                       "overhead": (step - local) * 1e3, "setup": statistics.median(r["setup"] for r in runs)}
                if where != "local":
                    row.update({k: statistics.median(r[k] for r in runs) for k in ("sent", "received", "workers_sent")})
                rows.append(row)
            print(f"# done: {model.name} batch {model.batch}, load average {os.getloadavg()[0]:.1f}", flush=True)
    return rows


def table(rows: list) -> str:
    lines = ["| model | where | steps/s (median) | range over rounds | ms/step over local | setup s | "
             "client sent/step | client received/step | workers sent/step |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        b = [_bytes(r[k]) if k in r else "-" for k in ("sent", "received", "workers_sent")]
        over = "-" if r["where"] == "local" else f"{r['overhead']:+.1f}"
        lines.append(f"| {r['model']} | {r['where']} | {r['rate']:.1f} | {r['low']:.1f}-{r['high']:.1f} | {over} | "
                     f"{r['setup']:.2f} | {b[0]} | {b[1]} | {b[2]} |")
    return "\n".join(lines)


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
