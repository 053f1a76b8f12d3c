"""The activations plugin: registers every op of the pack through the ``dagrad_ops`` hook."""

from __future__ import annotations

from dagrad.extend import hookimpl, ops_in

from . import along_axis, piecewise, smooth, special

MODULES = (smooth, piecewise, along_axis, special)


@hookimpl
def dagrad_ops():
    return [op for module in MODULES for op in ops_in(module)]
