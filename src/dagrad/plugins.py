"""The plugin manager: built-in and entry-point plugins, the op table, and what went wrong.

Entry points of the group ``dagrad`` are loaded one at a time (pluggy's own
loader stops at the first broken plugin and silently drops a second
distribution that uses the same entry-point name), so one broken plugin is
reported by name while the others still load. ``DAGRAD_STRICT_PLUGINS=1``
turns a broken or conflicting plugin into an immediate ``PluginError``;
``DAGRAD_PLUGINS`` and ``DAGRAD_DISABLE_PLUGINS`` (comma-separated entry-point
names) restrict which plugins load.
"""

from __future__ import annotations

import difflib
import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable, Optional

import pluggy

from . import hookspecs
from ._version import __version__
from .errors import GraphError, PluginError
from .hookspecs import hookimpl
from .opdef import Op

__all__ = ["PluginInfo", "Registry", "registry", "load_plugins", "register", "register_ops"]

ENTRY_POINT_GROUP = "dagrad"
BUILTINS = "builtins"
DEFAULT_PLUGINS = {BUILTINS: "dagrad.ops.plugin"}
"""Plugins every registry loads first, by module name (the registry never imports the op library itself)."""


@dataclass
class PluginInfo:
    """What ``dagrad plugins`` shows about one plugin."""

    name: str
    distribution: Optional[str] = None
    version: Optional[str] = None
    status: str = "loaded"  # loaded | broken | conflict | disabled
    error: Optional[str] = None
    ops: list = field(default_factory=list)
    hooks: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "ops": list(self.ops),
            "hooks": list(self.hooks),
        }


def _env_list(name: str) -> Optional[set]:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class Registry:
    """Registered plugins and the op table they make up.

    Parameters
    ----------
    entry_points
        Load plugins from the ``dagrad`` entry-point group.
    only, exclude
        Entry-point names to load exclusively, or to skip; default from the
        ``DAGRAD_PLUGINS`` and ``DAGRAD_DISABLE_PLUGINS`` variables.
    strict
        Raise on the first broken or conflicting plugin; default from
        ``DAGRAD_STRICT_PLUGINS``.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        only: Optional[Iterable[str]] = None,
        exclude: Optional[Iterable[str]] = None,
        strict: Optional[bool] = None,
    ):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.ops: dict[str, Op] = {}
        self.plugins: dict[str, PluginInfo] = {}
        self.conflicts: dict[str, PluginError] = {}
        self.generation = 0
        self.strict = _env_flag("DAGRAD_STRICT_PLUGINS") if strict is None else strict
        self.only = set(only) if only is not None else _env_list("DAGRAD_PLUGINS")
        self.exclude = set(exclude) if exclude is not None else (_env_list("DAGRAD_DISABLE_PLUGINS") or set())

        for name, module in DEFAULT_PLUGINS.items():
            self.register(importlib.import_module(module), name, distribution="dagrad", version=__version__)
        if entry_points:
            self._load_entry_points()

    @property
    def hook(self):
        """pluggy's hook caller, for hooks other than ``dagrad_ops``."""
        return self.pm.hook

    # ------------------------------------------------------------ loading --

    def _load_entry_points(self) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            name = ep.name if ep.name not in self.plugins else f"{ep.name}@{dist_name}"
            info = PluginInfo(name, dist_name, version)
            if (self.only is not None and ep.name not in self.only) or ep.name in self.exclude:
                info.status = "disabled"
                self.plugins[name] = info
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's
                self._broken(info, f"import of {ep.value!r} failed: {type(exc).__name__}: {exc}", exc)
                continue
            try:
                self.register(module, name, distribution=dist_name, version=version)
            except PluginError:
                if self.strict:
                    raise
                # register() has recorded the plugin's status. An op two installed plugins
                # both define is ambiguous: using it raises the conflict instead of silently
                # picking whichever plugin happened to load first.
                for op_name in self.conflicts:
                    if self.ops.pop(op_name, None) is not None:
                        self.generation += 1

    def _broken(self, info: PluginInfo, message: str, exc: BaseException) -> None:
        info.status = "broken"
        info.error = message
        info.hooks = []
        self.plugins[info.name] = info
        if self.strict:
            raise PluginError(f"plugin {info.name!r} ({info.distribution}) is broken: {message}") from exc

    def register(
        self,
        plugin: Any,
        name: str,
        *,
        distribution: Optional[str] = None,
        version: Optional[str] = None,
    ) -> PluginInfo:
        """Register a plugin object or module and add its ops; all or nothing.

        Raises ``PluginError`` if the plugin is broken or one of its ops collides
        with another plugin's op of the same name (without ``override=True``).
        """
        if name in self.plugins and self.plugins[name].status == "loaded":
            raise PluginError(f"a plugin named {name!r} is already registered")
        info = PluginInfo(name, distribution, version)
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validates hook signatures here
            self._broken(info, f"{type(exc).__name__}: {exc}", exc)
            raise PluginError(f"plugin {name!r} is broken: {exc}") from exc
        try:
            contributed = self._ops_of(plugin, name)
        except PluginError as exc:
            self.pm.unregister(plugin)
            self._broken(info, str(exc), exc)
            raise
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        clashes = self._clashes(contributed, name)
        if clashes:
            self.pm.unregister(plugin)
            message = "; ".join(clashes)
            info.status = "conflict"
            info.error = message
            info.ops = [o.name for o in contributed]
            self.plugins[name] = info
            error = PluginError(message)
            for o in contributed:
                if o.name in self.ops and not o.override:
                    self.conflicts.setdefault(o.name, error)
            raise error
        for o in contributed:
            o.plugin = name
            self.ops[o.name] = o
        info.ops = [o.name for o in contributed]
        self.plugins[name] = info
        self.generation += 1
        return info

    def _ops_of(self, plugin: Any, name: str) -> list[Op]:
        ops: list[Op] = []
        for impl in self.pm.hook.dagrad_ops.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                result = impl.function()
            except Exception as exc:  # noqa: BLE001
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                raise PluginError(f"plugin {name!r}: dagrad_ops() raised {detail}") from exc
            for item in result or []:
                if not isinstance(item, Op):
                    raise PluginError(
                        f"plugin {name!r}: dagrad_ops() must return dagrad.Op objects, got {type(item).__name__}"
                    )
                ops.append(item)
        names = [o.name for o in ops]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PluginError(f"plugin {name!r} defines op(s) {dupes} more than once")
        return ops

    def _clashes(self, contributed: list[Op], name: str) -> list[str]:
        clashes = []
        for o in contributed:
            existing = self.ops.get(o.name)
            if existing is None or o.override:
                continue
            clashes.append(
                f"op {o.name!r} is defined by both plugin {existing.plugin!r} and plugin {name!r}; "
                f"uninstall or disable one, or declare the new op with override=True"
            )
        return clashes

    # ------------------------------------------------------------- lookup --

    def op(self, name: str) -> Op:
        """The op registered under ``name``; ``GraphError`` with suggestions if there is none."""
        try:
            return self.ops[name]
        except KeyError:
            pass
        if name in self.conflicts:
            raise self.conflicts[name]
        close = difflib.get_close_matches(name, self.ops, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        unloaded = [f"{p.name} ({p.status})" for p in self.plugins.values() if p.status in ("disabled", "broken")]
        if unloaded:
            hint += (f"; not loaded: {', '.join(unloaded)} (see `dagrad plugins`, "
                     "DAGRAD_PLUGINS and DAGRAD_DISABLE_PLUGINS)")
        raise GraphError(f"unknown op {name!r}: no loaded plugin provides it{hint}")

    def plugin_of(self, op_name: str) -> Optional[PluginInfo]:
        o = self.ops.get(op_name)
        return self.plugins.get(o.plugin) if o is not None and o.plugin else None


_registry: Optional[Registry] = None


def registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def load_plugins(
    *,
    only: Optional[Iterable[str]] = None,
    exclude: Optional[Iterable[str]] = None,
    strict: Optional[bool] = None,
    entry_points: bool = True,
) -> Registry:
    """Reload every plugin, optionally restricted; returns the new process-wide registry.

    Examples
    --------
    >>> import dagrad as dg
    >>> reg = dg.load_plugins(only=[])          # built-ins only
    >>> "tanh" in reg.ops
    True
    >>> _ = dg.load_plugins()                    # back to everything installed
    """
    global _registry
    _registry = Registry(only=only, exclude=exclude, strict=strict, entry_points=entry_points)
    return _registry


def register(plugin: Any, name: Optional[str] = None) -> PluginInfo:
    """Register a plugin object or module in the process-wide registry, from Python."""
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    return registry().register(plugin, name)


def register_ops(*ops: Op, plugin: str) -> PluginInfo:
    """Register loose ops as a plugin named ``plugin``, without writing a plugin module.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> @dg.op(shape=dg.shapes.same_as_first, saves=("inputs",))
    ... def doc_cube(x):
    ...     "x cubed."
    ...     return x ** 3
    >>> @doc_cube.vjp
    ... def _(g, x, out):
    ...     return (3 * g * x ** 2,)
    >>> _ = dg.register_ops(doc_cube, plugin="doc-cube")
    >>> dg.ops.doc_cube
    <Op doc_cube from doc-cube>
    >>> _ = dg.load_plugins()                    # forget it again
    """

    class _LooseOps:
        @hookimpl
        def dagrad_ops(self):
            return list(ops)

    return registry().register(_LooseOps(), plugin)

