"""The benchmark code runs (tiny sizes, one repeat): a smoke test, never a timing assertion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dagrad as dg

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import mlp_step  # noqa: E402
import workloads  # noqa: E402
import profile_step  # noqa: E402

TINY = dict(batch=5, sizes=(8, 6, 4, 3))


def test_dagrad_and_numpy_steps_compute_the_same_training():
    problem = mlp_step.make_problem(**TINY)
    mlp_step.check_agreement(problem, ["numpy", "dagrad"], steps=3)


def test_agreement_check_catches_an_engine_that_computes_something_else(monkeypatch):
    problem = mlp_step.make_problem(**TINY)
    wrong = lambda p: mlp_step.numpy_engine(mlp_step.make_problem(**TINY, lr=0.5))  # noqa: E731
    monkeypatch.setitem(mlp_step.ENGINES, "dagrad", wrong)
    with pytest.raises(AssertionError, match="differ"):
        mlp_step.check_agreement(problem, ["numpy", "dagrad"], steps=2)


def test_measure_gives_a_row_per_engine_with_ratios_to_numpy():
    problem = mlp_step.make_problem(**TINY)
    rows = mlp_step.measure(problem, ["numpy", "dagrad"], rounds=1, repeats=1)
    assert [r.name for r in rows] == ["numpy (by hand)", "dagrad"]
    assert rows[0].time_ratio == 1.0 and rows[0].memory_ratio == 1.0
    assert all(r.median > 0 and r.peak > 0 for r in rows)
    text = mlp_step.table(rows)
    assert text.count("\n") == 3 and "| dagrad |" in text


def test_profile_report_names_every_node_of_the_step():
    problem = mlp_step.make_problem(**TINY)
    text = profile_step.report(problem, steps=2, what_ifs=False)
    for node in ("fc1/matmul", "fc3/add", "softmax_cross_entropy", "bookkeeping", "per op node", "ncalls"):
        assert node in text


def test_run_py_quick_prints_the_table():
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--rounds", "1", "--only", "mlp,keep-all",
         "--batch", "5", "--sizes", "8,6,4,3", "--engines", "numpy,dagrad"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "| workload | numpy by hand | dagrad | torch eager |" in done.stdout
    assert "| MLP 8-6-4-3, batch 5" in done.stdout and "keep='all'" in done.stdout
    assert "| numpy (by hand) | " in done.stdout and "| dagrad | " in done.stdout
    assert "1 thread" in done.stdout


def test_every_workload_computes_what_numpy_computes():
    """The agreement check each workload runs before timing, on the real workloads (no timing here)."""
    for engines in (workloads.chain_engines(), workloads.wide_engines(50), workloads.build_engines(),
                    workloads.keep_all_engines()):
        workloads.check(engines)
    deep = workloads.deep(300, runs=1)
    assert deep.nodes == 300 and deep.run > 0 and deep.run_code > 0   # its loop runs, then its generated code
    assert deep.storage > 0


def test_the_storage_floor_stores_what_building_the_chain_stores():
    """The floor must store the very nodes, names and edges the real build does, or it is the floor of something else."""
    floor = workloads.stored_chain(30)
    g, _, _ = workloads.chain_graph(30)
    assert list(floor.nodes) == list(g.nx.nodes)
    assert list(floor.edges) == list(g.nx.edges)
    assert [floor.nodes[n]["node"].inputs for n in floor] == [rec.inputs for rec in g.nodes()]


def test_the_agreement_check_catches_an_engine_that_computes_something_else():
    engines = workloads.chain_engines()
    engines[1] = workloads.Engine("wrong", lambda: np.zeros(workloads.CHAIN_WIDTH))
    with pytest.raises(AssertionError, match="wrong computes something else"):
        workloads.check(engines)


def test_what_if_variant_matches_numpy_and_is_timed():
    problem = mlp_step.make_problem(**TINY)
    try:
        variant = mlp_step.dagrad_engine(problem, profile_step._matmul_without_lhs_gradient())
        reference = mlp_step.numpy_engine(problem)
        assert float(variant.step()) == pytest.approx(float(reference.step()), rel=1e-5)
        assert "no dL/dx" in profile_step.what_if(problem, rounds=1, repeats=1)
    finally:
        dg.load_plugins()  # drop the benchmark's variant op from the process-wide registry
    assert "bench_matmul_wrt_rhs" not in dg.registry().ops
