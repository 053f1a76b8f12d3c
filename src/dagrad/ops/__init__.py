"""Every registered op by name, built-in or from a plugin: ``dagrad.ops.NAME``.

>>> import dagrad as dg
>>> dg.ops.tanh
<Op tanh from builtins>
"""

from __future__ import annotations

from ..errors import GraphError
from ..plugins import registry
from . import plugin, presets, samples  # submodules, bound before __getattr__ could be asked for them

__all__ = ["plugin", "presets", "samples"]

# Op names are deliberately not module attributes: every ``dagrad.ops.NAME`` goes through
# the registry, so a plugin that overrides a built-in on purpose is what you get.


def __getattr__(name: str):
    """Any op a plugin registered, looked up by name (``dagrad.ops.gelu``)."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return registry().op(name)
    except GraphError as exc:
        raise AttributeError(str(exc)) from None


def __dir__():
    return sorted(registry().ops)
