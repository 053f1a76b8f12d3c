"""The built-in op set, registered through the same ``dagrad_ops`` hook as any plugin."""

from __future__ import annotations

from ..hookspecs import hookimpl
from . import elementwise, layout, linalg, losses, random, reductions

BUILTIN_OPS = [*elementwise.OPS, *reductions.OPS, *layout.OPS, *linalg.OPS, *losses.OPS, *random.OPS]


@hookimpl
def dagrad_ops():
    return list(BUILTIN_OPS)
