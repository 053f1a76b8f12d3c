"""Names from dagrad 0.1 that moved, kept working for one release with a ``DeprecationWarning``.

A module keeps an old name with a module ``__getattr__`` (PEP 562), which
Python calls only for names the module does not have: :func:`renamed_names`
makes one for names renamed within a module (``dagrad.render.DEFAULT_MAX_NODES``
is ``DEFAULT_DETAIL_NODES``), and :func:`deprecated_getattr` is what both it
and the stand-in module below are built on.

``dagrad.op`` was both the module of the op model and, on the package, the
``op`` decorator; ``dg.op`` is now only the decorator, the module is
``dagrad.opdef``, and plugin authors import from ``dagrad.extend``. So that
``from dagrad.op import float_dtype`` in a 0.1 plugin still works, a stand-in
module is registered as ``sys.modules["dagrad.op"]`` (without becoming the
package attribute ``dagrad.op``, which stays the decorator).
"""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any, Callable, Optional

from . import extend

__all__: list = []


def deprecated_getattr(module: str, lookup: Callable[[str], Optional[tuple[Any, str]]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for old names: ``lookup(name)`` gives ``(value, advice)``, or None for no such name.

    Each use of an old name warns (``"<module>.<name> is deprecated: <advice>"``)
    at the line that used it.
    """

    def __getattr__(name: str):
        found = None if name.startswith("__") else lookup(name)
        if found is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value, advice = found
        warnings.warn(f"{module}.{name} is deprecated: {advice}", DeprecationWarning, stacklevel=2)
        return value

    return __getattr__


def renamed_names(module: str, renamed: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that gives each old name of ``renamed`` (old: new) the value of its new name."""

    def lookup(name: str) -> Optional[tuple[Any, str]]:
        if name not in renamed:
            return None
        new = renamed[name]
        return getattr(sys.modules[module], new), f"use {module}.{new}"

    return deprecated_getattr(module, lookup)


def _moved_op_module() -> types.ModuleType:
    module = types.ModuleType("dagrad.op", "Deprecated: the op model moved to dagrad.opdef; import from dagrad.extend.")

    def lookup(name: str) -> Optional[tuple[Any, str]]:
        return (getattr(extend, name), "import it from dagrad.extend") if hasattr(extend, name) else None

    module.__getattr__ = deprecated_getattr("dagrad.op", lookup)  # type: ignore[attr-defined]  # PEP 562
    return module


sys.modules.setdefault("dagrad.op", _moved_op_module())
