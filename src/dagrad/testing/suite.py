"""``op_tests``: one line in a plugin's test module gives one pytest test per op it provides."""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from ..errors import PluginError
from ..plugins import registry
from .checks import check_op
from .checks.runner import loaded_plugin

__all__ = ["op_tests", "ops_of", "unusable_ops"]


def ops_of(names: Iterable[str]) -> list[str]:
    """Op names for a mix of plugin and op names; a ``PluginError`` names a plugin that did not load.

    Ops a plugin defines but cannot use (see ``unusable_ops``) are left out.
    """
    reg = registry()
    found: list[str] = []
    for name in names:
        if name in reg.plugins:
            info = loaded_plugin(name)
            found.extend(op for op in info.ops if op not in info.unused)
        elif name in reg.ops:
            found.append(name)
        else:
            known = ", ".join(sorted(reg.plugins))
            raise PluginError(
                f"{name!r} is neither a registered plugin nor an op (plugins: {known}); "
                f"is its distribution installed (pip install -e .)?"
            )
    return found


def unusable_ops(names: Iterable[str]) -> dict:
    """``{op: reason}`` for the ops the named plugins define but cannot use (a conflict, a built-in's name)."""
    reg = registry()
    return {op: reason for name in names if name in reg.plugins for op, reason in reg.plugins[name].unused.items()}


def op_tests(*names: str, seed: int = 0, generated: bool = True) -> Callable:
    """A pytest test function, parametrized over every op of the named plugins (or op names).

    Assign it to a ``test_*`` name in a test module::

        from dagrad.testing import op_tests
        test_ops = op_tests("myplugin")

    Each op becomes one test, ``test_ops[opname]``, that runs ``check_op``. A
    plugin that is not installed or failed to load gives one failing test
    saying so, instead of silently checking nothing.
    """
    import pytest

    problem: Optional[str] = None
    try:
        ops, unusable = ops_of(names), unusable_ops(names)
    except Exception as exc:  # noqa: BLE001 - reported by the test itself
        ops, unusable, problem = [], {}, str(exc)

    if problem is not None:
        def test_plugin_loads() -> None:
            pytest.fail(problem, pytrace=False)

        return test_plugin_loads

    @pytest.mark.parametrize("op_name", ops + list(unusable))
    def test_op(op_name: str) -> None:
        __tracebackhide__ = True
        if op_name in unusable:
            pytest.fail(f"op {op_name!r} cannot be used: {unusable[op_name]}", pytrace=False)
        check_op(op_name, seed=seed, generated=generated)

    return test_op
