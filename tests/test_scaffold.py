"""`dagrad new-plugin` writes a distribution that installs, passes its own tests and shows its op."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import uuid
from importlib import metadata

import pytest

from dagrad.cli import main
from dagrad.scaffold import ScaffoldError, names_for, new_plugin


def test_names_are_derived_from_the_plugin_name():
    names = names_for("Dagrad-Fancy-Ops")
    assert (names.name, names.distribution, names.package, names.op) == (
        "fancy-ops", "dagrad-fancy-ops", "dagrad_fancy_ops", "fancy_ops_softsign"
    )


@pytest.mark.parametrize("bad", ["", "1ops", "my ops", "ops!", "-ops"])
def test_an_unusable_name_is_refused_with_a_dagrad_error(bad, tmp_path):
    with pytest.raises(ScaffoldError, match="is not usable"):
        new_plugin(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("taken", ["tanh", "log_softmax", "log-softmax", "dagrad-equal"])
def test_the_name_of_a_built_in_op_is_refused(taken, tmp_path, capsys):
    with pytest.raises(ScaffoldError, match="is the name of a built-in op"):
        new_plugin(taken, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main(["new-plugin", taken, "--dir", str(tmp_path / "out")]) == 2
    assert "built-in op" in capsys.readouterr().err


def test_a_non_empty_target_directory_is_left_alone(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(ScaffoldError, match="exists and is not empty"):
        new_plugin("myops", target)
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".taken-")]  # no staging left behind


def test_the_generated_files_name_the_entry_point_and_example_op(tmp_path):
    root = new_plugin("myops", tmp_path / "dagrad-myops")
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.dagrad]\nmyops = "dagrad_myops.plugin"' in pyproject
    plugin_src = (root / "src" / "dagrad_myops" / "plugin.py").read_text()
    assert "def myops_softsign(x, *, scale=1.0):" in plugin_src and "@myops_softsign.vjp" in plugin_src
    assert 'op_tests("myops")' in (root / "tests" / "test_dagrad_myops.py").read_text()
    assert "$" not in plugin_src + pyproject  # every template placeholder was filled


def test_the_example_op_passes_check_op_before_it_is_installed(tmp_path):
    root = new_plugin("precheck", tmp_path / "d")
    spec = importlib.util.spec_from_file_location("precheck_plugin", root / "src" / "dagrad_precheck" / "plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from dagrad.testing import check_op

    report = check_op(module.precheck_softsign)
    assert len(report.cases) >= 5 and report.generated >= 1


def test_the_cli_command_creates_the_distribution(tmp_path, capsys):
    assert main(["new-plugin", "cliops", "--dir", str(tmp_path / "here")]) == 0
    out = capsys.readouterr().out
    assert "created dagrad-cliops" in out and "pip install -e" in out
    assert (tmp_path / "here" / "src" / "dagrad_cliops" / "plugin.py").is_file()


def _can_build_without_isolation() -> bool:
    """setuptools builds editable wheels itself from 70.1 on; before that it needs the `wheel` package."""
    version = tuple(int(p) for p in metadata.version("setuptools").split(".")[:2])
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _run(args, **kw):
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_round_trip_generate_install_test_list_use_uninstall(tmp_path):
    """The promise of `dagrad new-plugin`: right after `pip install -e`, its tests pass and its op is there."""
    name = f"rt{uuid.uuid4().hex[:8]}"
    names = names_for(name)
    root = new_plugin(name, tmp_path / names.distribution)
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(root)]
    if _can_build_without_isolation():
        install.insert(4, "--no-build-isolation")
    started = time.perf_counter()
    _run(install)
    try:
        tests = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root)
        assert " passed" in tests and "failed" not in tests

        listed = json.loads(_run([sys.executable, "-m", "dagrad.cli", "ops", "--json"]))
        assert {"op": names.op, "plugin": name} in [{"op": r["op"], "plugin": r["plugin"]} for r in listed]

        script = (
            "import numpy as np, dagrad as dg\n"
            "g = dg.Graph(); x = g.input('x', shape=(None, 2))\n"
            f"y = dg.ops.{names.op}(x, scale=3.0)\n"
            "res = g.backward(y.sum(), {'x': np.array([[0.0, 1.0]])}, wrt=[x])\n"
            "print(res.value(y).tolist(), res.grad(x).tolist())\n"
        )
        assert _run([sys.executable, "-c", script]).strip() == "[[0.0, 1.5]] [[3.0, 0.75]]"
    finally:
        _run([sys.executable, "-m", "pip", "uninstall", "--quiet", "-y", names.distribution])
    assert names.distribution not in {d.metadata["Name"] for d in metadata.distributions()}
    assert time.perf_counter() - started < 60
