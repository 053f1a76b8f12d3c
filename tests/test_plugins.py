"""Plugin discovery through entry points: real distributions, broken ones, collisions, strict mode, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dagrad as dg
from dagrad.cli import main as cli

GOOD_MODULE = '''
import numpy as np
import dagrad as dg

@dg.op(shape=dg.shapes.same_as_first, saves=("inputs",))
def cube(x):
    "x cubed"
    return x ** 3

@cube.vjp
def _(g, x, out):
    return (3 * g * x ** 2,)

@dg.hookimpl
def dagrad_ops():
    return [cube]
'''

RIVAL_MODULE = GOOD_MODULE.replace("3 * g", "3.0 * g")


def test_the_bundled_activations_pack_is_found_through_its_installed_distribution():
    info = dg.registry().plugins["activations"]
    assert info.status == "loaded"
    assert info.distribution == "dagrad-activations"
    assert info.version == "0.1.0"
    assert "gelu" in info.ops
    assert dg.ops.gelu.plugin == "activations"


def test_builtins_are_registered_through_the_same_hook_as_any_plugin():
    info = dg.registry().plugins["builtins"]
    assert info.hooks == ["dagrad_ops"]
    assert dg.ops.tanh.plugin == "builtins"


def test_a_plugin_from_an_entry_point_adds_an_op_usable_by_name(fake_distribution):
    fake_distribution("cube-pack", "2.0", {"cube": "cube_pack_mod"}, {"cube_pack_mod": GOOD_MODULE})
    reg = dg.load_plugins()
    assert reg.plugins["cube"].distribution == "cube-pack"
    assert reg.plugins["cube"].version == "2.0"
    g = dg.Graph()
    x = g.param("x", [2.0])
    res = g.backward(dg.ops.cube(x).sum())
    np.testing.assert_allclose(res.grad(x), [12.0])


def test_a_broken_plugin_is_reported_by_entry_point_name_and_the_others_still_load(fake_distribution):
    fake_distribution("broken-pack", "0.1", {"broken": "broken_pack_mod"}, {"broken_pack_mod": "import does_not_exist\n"})
    fake_distribution("cube-pack", "2.0", {"cube": "cube_pack_mod"}, {"cube_pack_mod": GOOD_MODULE})
    reg = dg.load_plugins()
    broken = reg.plugins["broken"]
    assert broken.status == "broken"
    assert "does_not_exist" in broken.error and "broken_pack_mod" in broken.error
    assert reg.plugins["cube"].status == "loaded"
    assert "gelu" in reg.ops and "cube" in reg.ops


def test_strict_mode_turns_a_broken_plugin_into_an_error(fake_distribution, monkeypatch):
    fake_distribution("broken-pack", "0.1", {"broken": "broken_pack_mod"}, {"broken_pack_mod": "raise RuntimeError('boom')\n"})
    monkeypatch.setenv("DAGRAD_STRICT_PLUGINS", "1")
    with pytest.raises(dg.PluginError, match=r"'broken'.*boom"):
        dg.load_plugins()


def test_two_distributions_with_the_same_entry_point_name_are_both_loaded(fake_distribution):
    other = GOOD_MODULE.replace("def cube", "def cube2").replace("cube.vjp", "cube2.vjp").replace("[cube]", "[cube2]")
    fake_distribution("cube-pack", "2.0", {"cubes": "cube_pack_mod"}, {"cube_pack_mod": GOOD_MODULE})
    fake_distribution("cube-pack-two", "1.0", {"cubes": "cube_pack_two_mod"}, {"cube_pack_two_mod": other})
    reg = dg.load_plugins()
    assert {"cube", "cube2"} <= set(reg.ops)
    assert len([p for p in reg.plugins.values() if p.name.startswith("cubes")]) == 2


def test_an_op_two_installed_plugins_define_raises_naming_both_when_used(fake_distribution):
    fake_distribution("cube-pack", "2.0", {"cube": "cube_pack_mod"}, {"cube_pack_mod": GOOD_MODULE})
    fake_distribution("rival-pack", "1.0", {"rival": "rival_pack_mod"}, {"rival_pack_mod": RIVAL_MODULE})
    reg = dg.load_plugins()
    assert {reg.plugins["cube"].status, reg.plugins["rival"].status} == {"loaded", "conflict"}
    g = dg.Graph()
    x = g.param("x", [1.0])
    with pytest.raises(dg.PluginError, match=r"'cube' is defined by both plugin '(cube|rival)' and plugin '(cube|rival)'"):
        dg.ops.cube(x)
    assert "gelu" in reg.ops  # everything else still works


def test_a_collision_in_strict_mode_fails_loading(fake_distribution, monkeypatch):
    fake_distribution("cube-pack", "2.0", {"cube": "cube_pack_mod"}, {"cube_pack_mod": GOOD_MODULE})
    fake_distribution("rival-pack", "1.0", {"rival": "rival_pack_mod"}, {"rival_pack_mod": RIVAL_MODULE})
    monkeypatch.setenv("DAGRAD_STRICT_PLUGINS", "1")
    with pytest.raises(dg.PluginError, match="defined by both"):
        dg.load_plugins()


def test_registering_a_colliding_plugin_from_python_changes_nothing(fresh_registry):
    before = dict(dg.registry().ops)

    @dg.op(shape=dg.shapes.same_as_first)
    def tanh(x):
        "not the real tanh"
        return x

    @dg.op(shape=dg.shapes.same_as_first)
    def brand_new(x):
        "a new op in the same plugin"
        return x

    with pytest.raises(dg.PluginError, match=r"'tanh'.*'builtins'.*'mine'"):
        dg.register_ops(tanh, brand_new, plugin="mine")
    assert dg.registry().ops == before  # all or nothing: brand_new was not added either


def test_unknown_op_names_close_matches():
    g = dg.Graph()
    x = g.param("x", [1.0])
    with pytest.raises(dg.GraphError, match="unknown op 'tahn'.*'tanh'"):
        g.apply("tahn", [x])
    with pytest.raises(AttributeError, match="tahn"):
        dg.ops.tahn


# ----------------------------------------------------------------- CLI ---


def test_dagrad_ops_lists_every_op_with_its_plugin(capsys):
    assert cli(["ops"]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:2] == ["gelu", "activations"] for line in out.splitlines())
    assert any(line.split()[:2] == ["matmul", "builtins"] for line in out.splitlines())


def test_dagrad_ops_json_is_machine_readable(capsys):
    assert cli(["ops", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"op": "gelu", "plugin": "activations"}.items() <= next(r for r in rows if r["op"] == "gelu").items()


def test_dagrad_check_passes_on_a_plugin_and_fails_naming_a_wrong_op(capsys, fresh_registry):
    assert cli(["check", "activations"]) == 0
    assert "all 5 op(s) passed" in capsys.readouterr().out

    @dg.op(shape=dg.shapes.same_as_first, saves=("inputs",))
    def wrong_square(x):
        "x**2 with a wrong-signed VJP"
        return x * x

    @wrong_square.vjp
    def _(g, x, out):
        return (-2 * g * x,)

    dg.register_ops(wrong_square, plugin="buggy")
    assert cli(["check", "wrong_square"]) == 1
    captured = capsys.readouterr()
    assert "FAIL  wrong_square (buggy)" in captured.out
    assert "wrong_square" in captured.err


def test_dagrad_check_rejects_an_unknown_name(capsys):
    assert cli(["check", "no-such-thing"]) == 2
    assert "neither a registered op nor a plugin" in capsys.readouterr().err


def test_the_console_script_shows_a_broken_plugin(fake_distribution, tmp_path):
    site = fake_distribution("broken-pack", "0.1", {"broken": "broken_pack_mod"}, {"broken_pack_mod": "import nope_nope\n"})
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-m", "dagrad.cli", "plugins"], env=env, capture_output=True, text=True, check=True).stdout
    assert "broken  [broken]  broken-pack 0.1" in out
    assert "nope_nope" in out
    ops = subprocess.run([sys.executable, "-m", "dagrad.cli", "ops"], env=env, capture_output=True, text=True, check=True).stdout
    assert "gelu" in ops
