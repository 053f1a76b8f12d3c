"""Names from dagrad 0.1 that moved, kept working for one release with a ``DeprecationWarning``.

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

from . import extend

__all__: list = []


def _moved_op_module() -> types.ModuleType:
    module = types.ModuleType("dagrad.op", "Deprecated: the op model moved to dagrad.opdef; import from dagrad.extend.")

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            value = getattr(extend, name)
        except AttributeError:
            raise AttributeError(f"module 'dagrad.op' (deprecated) has no attribute {name!r}") from None
        warnings.warn(
            f"dagrad.op.{name} is deprecated: import it from dagrad.extend", DeprecationWarning, stacklevel=2
        )
        return value

    module.__getattr__ = __getattr__  # type: ignore[attr-defined]  # PEP 562 on a module object
    return module


sys.modules.setdefault("dagrad.op", _moved_op_module())
