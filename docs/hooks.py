"""MkDocs hook: the API reference, one page per public module, written from the module's ``__all__``.

Each page is made when the site is built, so it follows the code: a name added to
a module's ``__all__`` appears on its page, and a module listed in ``REFERENCE``
gets its page (and its place in the navigation) as soon as it can be imported.
Names are grouped by what they are; each is rendered by mkdocstrings from its
numpy-style docstring, under the public path a user writes (``dagrad.nn.dense``,
not ``dagrad.nn.layers.dense``). A submodule named in ``__all__`` links to its
own page if it has one, and is rendered in place (its own ``__all__``) otherwise.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging

from mkdocs.structure.files import File

#: The modules with a reference page, in navigation order.
REFERENCE = ("dagrad", "dagrad.nn", "dagrad.optim", "dagrad.train", "dagrad.io", "dagrad.checkpoint", "dagrad.testing",
             "dagrad.extend", "dagrad.linalg", "dagrad.distributed")
SECTION = "API reference"

log = logging.getLogger("mkdocs.hooks.reference")


def page_name(module: str) -> str:
    """``dagrad`` -> ``dagrad``, ``dagrad.nn`` -> ``nn``: the page is ``reference/NAME.md``."""
    return module.rpartition(".")[2]


def available() -> list[str]:
    """The modules of ``REFERENCE`` that exist in this checkout."""
    return [m for m in REFERENCE if importlib.util.find_spec(m) is not None]


def _kind(obj) -> str:
    from dagrad import Op

    if inspect.ismodule(obj):
        return "Modules"
    if inspect.isclass(obj):
        return "Exceptions" if issubclass(obj, BaseException) else "Classes"
    if isinstance(obj, Op):
        return "Ops"
    if callable(obj):
        return "Functions"
    return "Attributes"


GROUPS = {
    "Modules": "",
    "Classes": "",
    "Functions": "",
    "Ops": "Each is an `dagrad.Op`: call it on tensors (or arrays) to add a node. "
           "`dagrad.ops.NAME` reaches every registered op, plugins' included.",
    "Exceptions": "",
    "Attributes": "",
}


def _directive(path: str, heading_level: int, **options) -> list[str]:
    lines = [f"::: {path}", "    options:", f"      heading_level: {heading_level}"]
    for key, value in options.items():
        lines.append(f"      {key}: {value}")
    return lines + [""]


def render_page(module: str, with_pages: list[str]) -> str:
    """The markdown of ``module``'s reference page."""
    mod = importlib.import_module(module)
    names = list(getattr(mod, "__all__", ()))
    if not names:
        raise SystemExit(f"{module} has no __all__: its reference page would be empty")
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for name in names:
        groups[_kind(getattr(mod, name))].append(name)

    lines = [f"# `{module}`", ""]
    lines += _directive(module, 1, members="false", show_root_heading="false", show_root_toc_entry="false")
    for group, members in groups.items():
        if not members:
            continue
        lines += [f"## {group}", ""]
        if GROUPS[group]:
            lines += [GROUPS[group], ""]
        for name in members:
            path = f"{module}.{name}"
            if group == "Modules" and path in with_pages:
                summary = (inspect.getdoc(getattr(mod, name)) or "").split("\n\n")[0].replace("\n", " ")
                lines += [f"### `{name}`", "", f"{summary} See [`{path}`]({page_name(path)}.md).", ""]
            elif group == "Modules":
                members_ = list(getattr(getattr(mod, name), "__all__", ()))
                lines += _directive(path, 3, members=str(members_) if members_ else "false",
                                    show_root_full_path="false")
            else:
                lines += _directive(path, 3, show_root_full_path="false")
    return "\n".join(lines)


def on_config(config):
    """Add the reference pages that exist to the navigation."""
    pages = [{f"{m}": f"reference/{page_name(m)}.md"} for m in available()]
    nav = [item for item in (config.nav or []) if not (isinstance(item, dict) and SECTION in item)]
    config.nav = nav + [{SECTION: pages}]
    return config


def on_files(files, config):
    """Write one page per module that exists; say which listed modules do not (yet)."""
    with_pages = available()
    for module in REFERENCE:
        if module not in with_pages:
            log.info("no reference page for %s: it cannot be imported", module)
    for module in with_pages:
        files.append(File.generated(config, f"reference/{page_name(module)}.md",
                                    content=render_page(module, with_pages)))
    return files
