"""The plugin manager: built-in and entry-point plugins, the op table, and what went wrong.

Entry points of the group ``dagrad`` are loaded one at a time (pluggy's own
loader stops at the first broken plugin and silently drops a second
distribution that uses the same entry-point name), so one broken plugin is
reported by name while the others still load.

Two installed plugins may define the same op name. Which one loads first is
an accident, so the outcome must not depend on it: an op declared
``override=True`` replaces the others (two such ops conflict); otherwise a
built-in keeps its name, and between plugins the name becomes a *conflict*:
that op alone is unusable (using it raises ``PluginError`` naming both
plugins), every other op of both plugins works, and a ``PluginWarning`` says
so at load time. ``DAGRAD_STRICT_PLUGINS=1`` turns a broken or conflicting
plugin into an immediate ``PluginError``; ``DAGRAD_PLUGINS`` and
``DAGRAD_DISABLE_PLUGINS`` (comma-separated entry-point names) restrict which
plugins load.
"""

from __future__ import annotations

import difflib
import importlib
import os
import traceback
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable, Optional

import pluggy

from . import hookspecs
from ._version import __version__
from .errors import GraphError, PluginError, PluginWarning
from .hookspecs import hookimpl
from .opdef import Op

__all__ = ["PluginInfo", "OpConflict", "Registry", "registry", "load_plugins", "register", "register_ops"]

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
    """Every op the plugin defines, used or not."""
    hooks: list = field(default_factory=list)
    unused: dict = field(default_factory=dict)
    """Ops of a loaded plugin that cannot be used, each with the reason: ``{op_name: reason}``."""

    @property
    def described(self) -> str:
        """``'name' (distribution version)``, as messages name a plugin."""
        where = " ".join(str(p) for p in (self.distribution, self.version) if p) or "registered from Python"
        return f"{self.name!r} ({where})"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "ops": list(self.ops),
            "unused": dict(self.unused),
            "hooks": list(self.hooks),
        }


@dataclass
class OpConflict:
    """An op name that several installed plugins define, none with a claim to win: nobody's op is used.

    ``str()`` is the message: the op, every plugin defining it with its
    distribution and version, and how to resolve it.
    """

    op: str
    plugins: list  # PluginInfo of each plugin defining the op

    def __str__(self) -> str:
        named = " and ".join(f"plugin {p.described}" for p in self.plugins)
        disable = " or ".join(f"DAGRAD_DISABLE_PLUGINS={p.name}" for p in self.plugins)
        return (
            f"op {self.op!r} is a conflict: it is defined by both {named}, so neither is used; "
            f"uninstall or disable one ({disable}), or have one declare the op with override=True. "
            f"The other ops of these plugins work"
        )


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
        self.conflicts: dict[str, OpConflict] = {}
        self._providers: dict[str, list[Op]] = {}  # every loaded op of each name, in load order
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
                self.register(module, name, distribution=dist_name, version=version, settle=not self.strict)
            except PluginError:
                if self.strict:
                    raise

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
        settle: bool = False,
    ) -> PluginInfo:
        """Register a plugin object or module and add its ops.

        Registered from Python (the default), it is all or nothing: an op whose
        name is taken (without ``override=True``) raises ``PluginError`` naming
        both plugins, and nothing changes. With ``settle=True`` (how installed
        plugins load) a taken name never drops the whole plugin: the clash is
        settled op by op (see the module docstring), a ``PluginWarning`` names
        every op that cannot be used, and the plugin's ``unused`` says why.
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
        info.ops = [o.name for o in contributed]
        clashes = [] if settle else self._clashes(contributed, info)
        if clashes:
            self.pm.unregister(plugin)
            message = "; ".join(clashes)
            info.status = "conflict"
            info.error = message
            self.plugins[name] = info
            raise PluginError(message)
        self.plugins[name] = info
        for o in contributed:
            o.plugin = name
            providers = self._providers.setdefault(o.name, [])
            providers.append(o)
            if settle:
                self._settle(o.name)
            else:  # an explicit registration: the op is used (it was checked to clash with nothing, or overrides)
                self.ops[o.name] = o
                self.conflicts.pop(o.name, None)
                for other in providers[:-1]:
                    if other.plugin != BUILTINS and other.plugin in self.plugins:
                        self.plugins[other.plugin].unused[o.name] = f"plugin {info.described} replaces it (override=True)"
        self.generation += 1
        return info

    def _settle(self, op_name: str) -> None:
        """Decide which of the ops named ``op_name`` is used, whatever order their plugins loaded in."""
        providers = self._providers[op_name]
        overrides = [o for o in providers if o.override]
        builtin = [o for o in providers if o.plugin == BUILTINS]
        contenders: list[Op] = []
        if len(overrides) == 1:
            winner: Optional[Op] = overrides[0]
        elif overrides:
            winner, contenders = None, overrides
        elif builtin:
            winner = builtin[0]
        elif len(providers) == 1:
            winner = providers[0]
        else:
            winner, contenders = None, providers
        if winner is not None:
            self.ops[op_name] = winner
            self.conflicts.pop(op_name, None)
        else:
            self.ops.pop(op_name, None)
            conflict = OpConflict(op_name, [self.plugins[o.plugin] for o in contenders])
            self.conflicts[op_name] = conflict
        news = []
        for o in providers:
            info = self.plugins[o.plugin]
            if o is winner or (winner is not None and winner.override and o.plugin == BUILTINS):
                info.unused.pop(op_name, None)  # used, or a built-in replaced on purpose
                continue
            if winner is None:
                reason = str(self.conflicts[op_name])
            elif winner.override:
                reason = f"plugin {self.plugins[winner.plugin].described} replaces it (override=True)"
            else:
                reason = (f"op {op_name!r} is built in, and this plugin's op does not declare override=True, "
                          f"so the built-in is used")
            if info.unused.get(op_name) != reason:
                info.unused[op_name] = reason
                news.append((info, reason))
        if winner is None and news:
            warnings.warn(news[0][1], PluginWarning, stacklevel=4)  # one warning names every plugin of a conflict
        else:
            for info, reason in news:
                warnings.warn(f"plugin {info.described}: {reason}", PluginWarning, stacklevel=4)

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

    def _clashes(self, contributed: list[Op], info: PluginInfo) -> list[str]:
        clashes = []
        for o in contributed:
            if o.override:
                continue
            if o.name in self.conflicts:
                clashes.append(f"{self.conflicts[o.name]}; plugin {info.described} defines it too")
                continue
            existing = self.ops.get(o.name)
            if existing is None:
                continue
            clashes.append(
                f"op {o.name!r} is defined by both plugin {self.plugins[existing.plugin].described} and plugin "
                f"{info.described}; uninstall or disable one, or declare the new op with override=True"
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
            raise PluginError(str(self.conflicts[name]))
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

