"""The examples and the main job run, small, and learn."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

import dagrad as dg


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn is not installed")


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regression_example_beats_predicting_the_mean():
    report = example("regression").main(n=128, epochs=30, hidden=16, progress=False)
    assert report["test_mse"] < report["baseline_mse"] / 5


@needs_dot
def test_two_moons_example_learns_and_draws_its_neurons(tmp_path):
    report = example("two_moons").main(n=200, epochs=60, out=str(tmp_path), progress=False)
    assert report["accuracy"] > 0.8
    svg = Path(report["diagram"]).read_text()
    assert "h1/w1" in svg and "out/v3" in svg


def test_tiny_transformer_beats_the_unigram_baseline_within_a_hundred_steps_and_samples():
    module = example("tiny_transformer")
    report = module.main(epochs=1, limit=3200, progress=False, sample_length=40)
    assert report["steps"] == 100 and 5000 < report["parameters"] < 10000
    assert report["untrained_loss"] > report["baseline"] > report["loss"]      # it learned more than frequencies
    chars = module.vocabulary(module.load_text())
    assert len(report["sample"]) == 40 and set(report["sample"]) <= set(chars)
    assert isinstance(module.build(batch=2), dg.Result)                       # what `dagrad render` draws


@needs_sklearn
def test_digits_example_learns_saves_and_reloads(tmp_path):
    report = example("digits_mlp").main(epochs=3, hidden=32, out=str(tmp_path), progress=False)
    assert report["accuracy"] > 0.7          # chance is 0.1
    assert report["reloaded_accuracy"] == report["accuracy"]


@needs_sklearn
@needs_dot
def test_the_demo_learns_with_few_epochs_and_names_its_files(tmp_path, capsys):
    from dagrad.cli import main

    assert main(["demo", "--epochs", "3", "--hidden", "32", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("held-out accuracy ")[1].split("%")[0]) / 100
    assert accuracy > 0.7                    # chance is 0.1
    for name in ("digits.dagrad", "digits-step00001.svg", "digits-step00126.svg", "gradient-norms.txt", "history.json",
                 "digits-flow.html", "digits-grad-norms.png", "digits-metrics.png", "digits-grad-flow.png"):
        assert (tmp_path / name).is_file(), name
        assert str(tmp_path / name) in out
    table = (tmp_path / "gradient-norms.txt").read_text()
    assert "mean |grad| step 1" in table and "max |grad| step 126" in table
    assert [line.split()[0] for line in table.splitlines()[2:]] == ["fc1", "fc2"]
    assert "loaded back: the same accuracy" in out


@needs_sklearn
def test_demo_main_reports_what_it_measured(tmp_path):
    from dagrad.cli.demo import main

    lines = []
    report = main(out=str(tmp_path), epochs=3, hidden=[32], print_fn=lines.append, progress=False)
    assert report["test_accuracy"] > 0.5
    assert report["reloaded_accuracy"] == report["test_accuracy"]
    assert report["history"].steps[-1] == 3 * 42  # full batches only
    assert sum(line.startswith("epoch ") for line in lines) == 3


def test_gradient_penalty_holds_the_critics_gradient_norm_near_one_and_its_estimate_near_the_distance():
    gp = example("gradient_penalty")
    quiet = dict(steps=300, print_fn=lambda line: None)
    held = gp.main(**quiet)
    assert abs(held["estimate"] - gp.DISTANCE) < 0.75                      # the Wasserstein-1 distance, roughly
    assert 0.8 < held["mean_norm"] < 1.3 and held["penalty"] < 0.1         # the penalty is enforced...
    free = gp.main(weight=0.0, **quiet)
    assert free["estimate"] > 3 * gp.DISTANCE and free["mean_norm"] > 3    # ...and without it nothing bounds D
    assert held["trace"][-1]["estimate"] > held["trace"][0]["estimate"]    # the critic trained


def test_gradient_penalty_gradients_are_second_derivatives_that_agree_with_finite_differences():
    gp = example("gradient_penalty")
    net = gp.network(hidden=3)
    feeds = dict(zip(net["inputs"], gp.sample(4, np.random.default_rng(1))))
    report = dg.gradcheck(net["graph"], loss=net["loss"], feeds=feeds)
    assert report, str(report)
    assert any(n.origin is not None for n in net["graph"])                 # the penalty holds dg.grad nodes


def test_maml_meta_training_lowers_the_loss_after_one_inner_step_on_held_out_tasks():
    report = example("maml").main(meta_steps=600, print_fn=lambda line: None)
    (unadapted_0, adapted_0), (unadapted, adapted) = report["start"], report["end"]
    assert adapted < 0.5 * adapted_0                                       # the meta-loss fell
    assert adapted < 0.7 * unadapted                                       # and the one inner step is what helps


def test_maml_meta_gradient_goes_through_the_inner_gradient_exactly():
    maml = example("maml")
    net = maml.network(hidden=3, n_tasks=2, shots=3)
    feeds = maml.feeds_of(net, maml.tasks(2, np.random.default_rng(0), shots=3))
    report = dg.gradcheck(net["graph"], loss=net["meta_loss"], feeds=feeds)
    assert report, str(report)
