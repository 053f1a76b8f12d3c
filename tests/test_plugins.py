"""Plugin discovery through entry points: real distributions, broken ones, collisions, strict mode, the CLI."""

from __future__ import annotations

import json
import os
from importlib import metadata
import subprocess
import sys

import numpy as np
import pytest

import dagrad as dg
from dagrad.cli import main as cli
from dagrad.hookspecs import hookimpl

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
    assert info.version == metadata.version("dagrad-activations")
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
    with pytest.warns(dg.PluginWarning, match=r"op 'cube' is a conflict") as caught:
        reg = dg.load_plugins()
    (warning,) = [str(w.message) for w in caught]
    assert "plugin 'cube' (cube-pack 2.0)" in warning and "plugin 'rival' (rival-pack 1.0)" in warning
    assert reg.plugins["cube"].status == reg.plugins["rival"].status == "loaded"
    g = dg.Graph()
    x = g.param("x", [1.0])
    with pytest.raises(dg.PluginError, match=r"'cube' is a conflict: it is defined by both plugin") as excinfo:
        dg.ops.cube(x)
    assert "plugin 'cube' (cube-pack 2.0)" in str(excinfo.value) and "rival-pack 1.0" in str(excinfo.value)
    assert "gelu" in reg.ops  # everything else still works


# A plugin defining softplus (which the activations pack defines too) and an op of its own.
SOFTPLUS_MODULE = '''
import numpy as np
import dagrad as dg
from dagrad.extend import float_unary_op

@float_unary_op(saves=("inputs",))
def softplus(x):
    "log(1 + exp(x)), the naive way"
    return np.log1p(np.exp(x))

@softplus.vjp
def _(g, x):
    return (g / (1 + np.exp(-x)),)

@float_unary_op(saves=("inputs",))
def mytwice(x):
    "2 x"
    return 2 * x

@mytwice.vjp
def _(g, x):
    return (2 * g,)

@dg.hookimpl
def dagrad_ops():
    return [softplus, mytwice]
'''


def test_a_clash_makes_only_the_clashing_op_unusable_and_both_plugins_keep_their_other_ops(fake_distribution, capsys):
    # Issue 8.11: a plugin defining softplus used to drop every op of the activations pack.
    fake_distribution("dagrad-smooth", "0.3", {"smooth": "smooth_mod"}, {"smooth_mod": SOFTPLUS_MODULE})
    with pytest.warns(dg.PluginWarning) as caught:
        reg = dg.load_plugins()
    warned = [str(w.message) for w in caught if "softplus" in str(w.message)]
    assert len(warned) == 1
    assert "dagrad-activations" in warned[0] and "dagrad-smooth 0.3" in warned[0]
    for op_name in ("gelu", "silu", "elu", "leaky_relu", "mytwice"):
        assert op_name in reg.ops, op_name
    assert "softplus" not in reg.ops and "softplus" in reg.conflicts
    assert reg.plugins["activations"].unused.keys() == reg.plugins["smooth"].unused.keys() == {"softplus"}
    g = dg.Graph()
    x = g.param("x", [1.0])
    with pytest.raises(dg.PluginError, match="'softplus' is a conflict") as excinfo:
        g.apply("softplus", [x])
    assert "no loaded plugin provides it" not in str(excinfo.value)
    assert "DAGRAD_DISABLE_PLUGINS=smooth" in str(excinfo.value)
    assert "DAGRAD_DISABLE_PLUGINS=activations" in str(excinfo.value)

    assert cli(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "softplus (unusable)" in out and "unusable op softplus: op 'softplus' is a conflict" in out
    assert cli(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert "softplus" in rows["smooth"]["unused"] and "softplus" in rows["activations"]["unused"]
    assert cli(["check", "smooth"]) == 1
    out = capsys.readouterr().out
    assert "ok    op 'mytwice'" in out and "FAIL  softplus: unusable: op 'softplus' is a conflict" in out
    assert cli(["check", "softplus"]) == 2
    assert "'softplus' is a conflict" in capsys.readouterr().err


def test_disabling_one_side_of_a_conflict_resolves_it(fake_distribution, monkeypatch):
    fake_distribution("dagrad-smooth", "0.3", {"smooth": "smooth_mod"}, {"smooth_mod": SOFTPLUS_MODULE})
    monkeypatch.setenv("DAGRAD_DISABLE_PLUGINS", "smooth")
    reg = dg.load_plugins()
    assert reg.ops["softplus"].plugin == "activations" and not reg.conflicts


def test_a_plugin_op_named_like_a_built_in_leaves_the_built_in_in_use_and_warns(fake_distribution):
    module = SOFTPLUS_MODULE.replace("def softplus", "def tanh").replace("softplus.vjp", "tanh.vjp").replace(
        "[softplus, mytwice]", "[tanh, mytwice]")
    fake_distribution("dagrad-shadow", "1.0", {"shadow": "shadow_mod"}, {"shadow_mod": module})
    with pytest.warns(dg.PluginWarning, match=r"plugin 'shadow' \(dagrad-shadow 1\.0\): op 'tanh' is built in.*override=True"):
        reg = dg.load_plugins()
    assert reg.ops["tanh"].plugin == "builtins" and "mytwice" in reg.ops
    assert "tanh" in reg.plugins["shadow"].unused and not reg.conflicts


def _settled(*plugins):
    """A registry loading ``(name, ops)`` pairs as installed plugins, in the given order."""
    reg = dg.plugins.Registry(entry_points=False)

    for name, ops in plugins:
        class Plugin:
            @hookimpl
            def dagrad_ops(self, ops=ops):
                return list(ops)

        reg.register(Plugin(), name, distribution=f"dist-{name}", version="1", settle=True)
    return reg


def _softplus(*, override=False, doc="one softplus"):
    @dg.op(shape=dg.shapes.same_as_first, name="softplus", override=override)
    def softplus(x):
        return np.logaddexp(0, x)

    softplus.doc = doc
    return softplus


@pytest.mark.parametrize("reverse", [False, True], ids=["override-last", "override-first"])
def test_an_override_wins_whatever_order_the_plugins_load_in(reverse, recwarn):
    plain = ("plain", [_softplus(doc="plain")])
    chosen = ("chosen", [_softplus(override=True, doc="chosen")])
    reg = _settled(*([chosen, plain] if reverse else [plain, chosen]))
    assert reg.op("softplus").doc == "chosen" and not reg.conflicts
    assert "replaces it (override=True)" in reg.plugins["plain"].unused["softplus"]


@pytest.mark.parametrize("reverse", [False, True])
def test_two_overrides_of_one_op_are_a_conflict_whatever_the_order(reverse):
    first = ("first", [_softplus(override=True)])
    second = ("second", [_softplus(override=True)])
    with pytest.warns(dg.PluginWarning, match="is a conflict"):
        reg = _settled(*([second, first] if reverse else [first, second]))
    with pytest.raises(dg.PluginError, match=r"'softplus' is a conflict.*plugin '(first|second)' \(dist-"):
        reg.op("softplus")


def test_dagrad_check_says_whether_a_name_is_an_op_or_a_plugin_when_it_is_both(fake_distribution, capsys):
    fake_distribution("cube-pack", "2.0", {"cube": "cube_pack_mod"}, {"cube_pack_mod": GOOD_MODULE})
    dg.load_plugins()
    assert cli(["check", "cube"]) == 0
    captured = capsys.readouterr()
    assert "'cube' is both an op (from plugin 'cube') and a plugin; checking the op" in captured.err
    assert "--plugin cube" in captured.err
    assert cli(["check", "--plugin", "cube"]) == 0
    captured = capsys.readouterr()
    assert "all 1 op(s) passed" in captured.out and "both" not in captured.err


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
    assert f"all {len(dg.registry().plugins['activations'].ops)} op(s) passed" in capsys.readouterr().out

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


def test_registering_an_override_from_python_resolves_a_conflict(fake_distribution, recwarn):
    fake_distribution("dagrad-smooth", "0.3", {"smooth": "smooth_mod"}, {"smooth_mod": SOFTPLUS_MODULE})
    reg = dg.load_plugins()
    assert "softplus" in reg.conflicts
    dg.register_ops(_softplus(override=True, doc="mine"), plugin="my-softplus")
    assert reg.op("softplus").doc == "mine" and not reg.conflicts
    assert "'my-softplus' (registered from Python) replaces it" in reg.plugins["smooth"].unused["softplus"]
