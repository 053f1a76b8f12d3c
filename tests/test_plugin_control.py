"""Which plugins load is under the user's control (environment or Python), and `dagrad plugins` shows it."""

from __future__ import annotations

import json
import os
from importlib import metadata
import subprocess
import sys

import numpy as np
import pytest

import dagrad as dg
from dagrad.hookspecs import hookimpl

KEYS = {"name", "distribution", "version", "status", "error", "ops", "unused", "hooks"}


def cli(*args: str, **env: str):
    """Run `python -m dagrad.cli ARGS` with the plugin variables set only as given."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DAGRAD_")}
    environ.update(env)
    done = subprocess.run([sys.executable, "-m", "dagrad.cli", *args], capture_output=True, text=True,
                          env=environ, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def plugins_json(**env: str) -> dict:
    return {p["name"]: p for p in json.loads(cli("plugins", "--json", **env))}


@pytest.fixture
def fresh_registry():
    """Give the test its own process-wide registry and restore the normal one afterwards."""
    yield
    dg.load_plugins()


# ------------------------------------------------------------ environment --


def test_plugins_json_lists_each_plugin_with_version_status_ops_and_hooks():
    rows = json.loads(cli("plugins", "--json"))
    assert all(set(row) == KEYS for row in rows)
    by_name = {r["name"]: r for r in rows}
    builtins = by_name["builtins"]
    assert (builtins["distribution"], builtins["status"], builtins["error"]) == ("dagrad", "loaded", None)
    assert "tanh" in builtins["ops"] and "dagrad_ops" in builtins["hooks"]
    conv = by_name["conv"]
    assert (conv["distribution"], conv["version"]) == ("dagrad-conv", metadata.version("dagrad-conv"))
    assert conv["ops"] == dg.registry().plugins["conv"].ops
    assert {"conv2d", "max_pool2d", "avg_pool2d", "flatten"} <= set(conv["ops"])


def test_dagrad_plugins_restricts_entry_point_plugins_to_those_named():
    shown = plugins_json(DAGRAD_PLUGINS="activations")
    assert shown["activations"]["status"] == "loaded"
    assert shown["conv"]["status"] == "disabled" and shown["conv"]["ops"] == []
    assert shown["builtins"]["status"] == "loaded"          # built-ins are never restricted away
    ops = {row["op"] for row in json.loads(cli("ops", "--json", DAGRAD_PLUGINS="activations"))}
    assert "gelu" in ops and "tanh" in ops and "conv2d" not in ops


def test_dagrad_disable_plugins_excludes_the_plugins_named():
    shown = plugins_json(DAGRAD_DISABLE_PLUGINS="conv, activations")
    assert shown["conv"]["status"] == shown["activations"]["status"] == "disabled"
    assert set(json.loads(cli("ops", "--json", DAGRAD_DISABLE_PLUGINS="conv,activations"))[0]) >= {"op", "plugin"}


def test_an_empty_restriction_variable_restricts_nothing():
    shown = plugins_json(DAGRAD_PLUGINS="", DAGRAD_DISABLE_PLUGINS=" ")
    assert shown["conv"]["status"] == shown["activations"]["status"] == "loaded"


def test_plugins_text_output_shows_disabled_plugins():
    text = cli("plugins", DAGRAD_DISABLE_PLUGINS="conv")
    assert f"conv  [disabled]  dagrad-conv {metadata.version('dagrad-conv')}" in text


# ----------------------------------------------------------------- Python --


def test_load_plugins_only_restricts_from_python(fresh_registry):
    reg = dg.load_plugins(only=["conv"])
    assert "conv2d" in reg.ops and "tanh" in reg.ops and "gelu" not in reg.ops
    assert reg.plugins["activations"].status == "disabled"
    assert dg.registry() is reg


def test_load_plugins_exclude_restricts_from_python(fresh_registry):
    reg = dg.load_plugins(exclude=["conv"])
    assert "conv2d" not in reg.ops and "gelu" in reg.ops
    g = dg.Graph()
    x = g.input("x", shape=(None, 1, 4, 4))
    with pytest.raises(dg.GraphError, match="unknown op 'conv2d'"):
        g.apply("conv2d", [x, g.const(np.ones((1, 1, 3, 3)))])


def test_load_plugins_reads_the_environment_when_not_told(monkeypatch, fresh_registry):
    monkeypatch.setenv("DAGRAD_DISABLE_PLUGINS", "activations")
    assert "gelu" not in dg.load_plugins().ops
    assert "gelu" in dg.load_plugins(exclude=[]).ops             # an explicit argument wins over the variable


def test_load_plugins_restores_everything_after_a_restriction(fresh_registry):
    dg.load_plugins(only=[])
    assert "conv2d" in dg.load_plugins().ops


# ------------------------------------------------ collisions and breakage --


def _plugin_with(*ops):
    class Plugin:
        @hookimpl
        def dagrad_ops(self):
            return list(ops)

    return Plugin()


def _my_tanh(*, override: bool):
    @dg.op(shape=dg.shapes.same_as_first, override=override, name="tanh")
    def my_tanh(x):
        """A tanh that says hello."""
        return np.tanh(x)

    return my_tanh


def test_a_colliding_op_is_an_error_naming_both_plugins(fresh_registry):
    with pytest.raises(dg.PluginError, match=r"op 'tanh' is defined by both plugin 'builtins' \(dagrad [^)]+\) and plugin 'mine' \(registered from Python\)"):
        dg.register(_plugin_with(_my_tanh(override=False)), "mine")
    assert dg.registry().plugins["mine"].status == "conflict"
    assert dg.registry().ops["tanh"].plugin == "builtins"        # nothing changed


def test_override_true_replaces_a_built_in_on_purpose(fresh_registry):
    dg.register(_plugin_with(_my_tanh(override=True)), "mine")
    assert dg.registry().op("tanh").summary == "A tanh that says hello."
    assert dg.registry().plugin_of("tanh").name == "mine"
    g = dg.Graph()
    assert g.apply("tanh", [g.const(0.5)]).node.op == "tanh"      # graphs now build with the override


def test_a_plugin_whose_hook_raises_is_reported_by_name_and_others_still_work(fresh_registry):
    class Broken:
        @hookimpl
        def dagrad_ops(self):
            raise ImportError("needs scipy")

    with pytest.raises(dg.PluginError, match="plugin 'flaky': dagrad_ops\\(\\) raised ImportError: needs scipy"):
        dg.register(Broken(), "flaky")
    info = dg.registry().plugins["flaky"]
    assert info.status == "broken" and "needs scipy" in info.error
    assert "conv2d" in dg.registry().ops
