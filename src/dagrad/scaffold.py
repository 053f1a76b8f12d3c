"""``new_plugin``: write a ready-to-install op-pack distribution from the templates in ``dagrad/templates``.

The generated distribution has a ``pyproject.toml`` with the ``dagrad`` entry
point, a module with one example op (forward, VJP, shape rule, samples), tests
that check every op of the plugin with one line, and a README. Right after
``pip install -e`` its tests pass and ``dagrad ops`` lists its op.
"""

from __future__ import annotations

import os
import re
import shutil
import string
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator, Optional, Union

from ._version import __version__
from .errors import DagradError
from .plugins import BUILTINS, registry

__all__ = ["ScaffoldError", "PluginNames", "names_for", "new_plugin"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]*[a-z0-9]$|^[a-z]$")
_RENAMED = {"gitignore": ".gitignore"}


class ScaffoldError(DagradError):
    """A plugin cannot be generated: a bad name, or the target directory is in use."""


@dataclass(frozen=True)
class PluginNames:
    """Every name derived from the one the user gives (``myops``)."""

    name: str            # entry-point and plugin name: "myops"
    distribution: str    # "dagrad-myops"
    package: str         # "dagrad_myops"
    op: str              # the example op: "myops_softsign"


def names_for(name: str) -> PluginNames:
    """Names of the distribution, package and example op for the plugin ``name``.

    >>> names_for("my-ops")
    PluginNames(name='my-ops', distribution='dagrad-my-ops', package='dagrad_my_ops', op='my_ops_softsign')
    """
    plain = name.strip().lower().removeprefix("dagrad-").removeprefix("dagrad_")
    if not _NAME.match(plain):
        raise ScaffoldError(
            f"plugin name {name!r} is not usable: use lowercase letters, digits, '-' and '_', "
            f"starting with a letter (for example 'myops')"
        )
    ident = plain.replace("-", "_")
    builtin = _builtin_op_names()
    if plain in builtin or ident in builtin:
        raise ScaffoldError(
            f"plugin name {name!r} is the name of a built-in op; a plugin named like an op makes "
            f"`dagrad check {plain}` and messages ambiguous: choose another name (for example '{ident}-ops')"
        )
    return PluginNames(plain, f"dagrad-{plain}", f"dagrad_{ident}", f"{ident}_softsign")


def _builtin_op_names() -> set:
    return set(registry().plugins[BUILTINS].ops)


def _templates() -> Iterator[tuple[str, str]]:
    """(relative path, text) of every template file, paths with PACKAGE still in them."""
    root = resources.files("dagrad") / "templates" / "plugin"
    stack = [(root, "")]
    while stack:
        node, prefix = stack.pop()
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                stack.append((child, rel + "/"))
            elif child.name.endswith(".tmpl"):
                yield rel.removesuffix(".tmpl"), child.read_text(encoding="utf-8")


def new_plugin(name: str, directory: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Write the distribution for plugin ``name`` into ``directory`` (default ``./dagrad-NAME``).

    All or nothing: the files are written into a temporary directory beside
    the target, which is then renamed into place.

    Returns
    -------
    pathlib.Path
        The new distribution's directory.

    Raises
    ------
    ScaffoldError
        If the name is unusable (not a valid name, or the name of a built-in
        op) or the directory exists and is not empty.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from dagrad.scaffold import new_plugin
    >>> root = new_plugin("myops", pathlib.Path(tempfile.mkdtemp()) / "dagrad-myops")
    >>> sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())  # doctest: +NORMALIZE_WHITESPACE
    ['.gitignore', 'README.md', 'pyproject.toml', 'src/dagrad_myops/__init__.py',
     'src/dagrad_myops/plugin.py', 'tests/test_dagrad_myops.py']
    """
    names = names_for(name)
    target = Path(directory) if directory is not None else Path.cwd() / names.distribution
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"cannot create plugin {names.name!r} in {str(target)!r}: it exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    values = {
        "name": names.name,
        "distribution": names.distribution,
        "package": names.package,
        "op": names.op,
        "dagrad_version": __version__,
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for rel, text in _templates():
            parts = [_RENAMED.get(p, p).replace("PACKAGE", names.package) for p in rel.split("/")]
            path = staging.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(string.Template(text).substitute(values), encoding="utf-8")
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
