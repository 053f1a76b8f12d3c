"""Every registered op by name, built-in or from a plugin: ``dagrad.ops.NAME``.

>>> import dagrad as dg
>>> dg.ops.tanh
<Op tanh from builtins>
"""

from __future__ import annotations

from . import plugin, samples  # submodules, bound before __getattr__ could be asked for them

# Op names are deliberately not module attributes: every ``dagrad.ops.NAME`` goes through
# the registry, so a plugin that overrides a built-in on purpose is what you get.


def __getattr__(name: str):
    """Any op a plugin registered, looked up by name (``dagrad.ops.gelu``)."""
    if name.startswith("__"):
        raise AttributeError(name)
    from ..errors import GraphError
    from ..plugins import registry

    try:
        return registry().op(name)
    except GraphError as exc:
        raise AttributeError(str(exc)) from None


def __dir__():
    from ..plugins import registry

    return sorted(registry().ops)
