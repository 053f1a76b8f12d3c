"""The built-in op set, registered through the same ``dagrad_ops`` hook as any plugin."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..opdef import ops_in
from . import (adjoints, attention, compare, elementwise, fallback, layout, linalg, losses, matrices, normalization,
               random, reductions)
from . import indexing, math, scans, shaping, sorting, statistics

MODULES = (elementwise, compare, reductions, layout, linalg, matrices, losses, normalization, random, attention,
           adjoints, fallback, shaping, indexing, math, statistics, scans, sorting)
BUILTIN_OPS = [op for module in MODULES for op in ops_in(module)]


@hookimpl
def dagrad_ops():
    return list(BUILTIN_OPS)
