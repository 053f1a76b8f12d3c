"""The plugin contract: every hook a dagrad plugin may implement, with when it is called.

A plugin is a module (or any object) with functions marked ``@dagrad.hookimpl``
whose names match the specifications below. Distributions make their plugin
known through the entry-point group ``dagrad``::

    [project.entry-points.dagrad]
    myops = "myops.plugin"

The built-in ops are registered through the same ``dagrad_ops`` hook, as the
plugin named ``builtins``.
"""

from __future__ import annotations

import pluggy

PROJECT = "dagrad"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------- ops -----


@hookspec
def dagrad_ops():
    """Contribute operations.

    Called once when the plugin is registered.

    Returns
    -------
    list[dagrad.Op]
        The ops this plugin provides. An op declared ``override=True``
        replaces another plugin's op of the same name. Otherwise a name
        another plugin provides too is a clash: registering from Python
        raises ``PluginError`` naming both; for installed plugins only that op
        is unusable (a built-in keeps its name), with a ``PluginWarning``.
    """


# ---------------------------------------------------------- diagrams -----


@hookspec
def dagrad_node_rows(node, value, grad):
    """Contribute extra rows to a node's annotation in a gradient-flow diagram.

    Called by ``dagrad.render`` for every node it draws in detail.

    Parameters
    ----------
    node : dagrad.graph.Node
        The node record (``name``, ``op``, ``attrs``, ``inputs``, ``kind``).
    value : numpy.ndarray or None
        The node's value, when the rendered result holds it.
    grad : numpy.ndarray or None
        The node's gradient, when the rendered result holds it.

    Returns
    -------
    list[tuple[str, str]] or None
        ``(label, text)`` rows appended under the built-in ones; plain text,
        escaped by the renderer. ``None`` or an empty list adds nothing.
    """
