"""Griffe extension for the API reference: types shown as types, and doctests shown as code.

- Quoted annotations. Under ``from __future__ import annotations`` every
  annotation is kept as text already, so a quoted one (``-> "Result"``, written
  for a name imported only for type checking) is a string of a string, and
  griffe would show the literal ``'Result'`` instead of a link to
  ``dagrad.Result``. They are read as the expressions they contain.
- Doctests outside an ``Examples`` section (a module docstring that is a
  headline and an example) would render as Markdown block quotes; each run of
  ``>>>`` lines and their output becomes a Python console code block.
- reStructuredText roles (``:func:`save```) would show as written; they become
  code, as ``dagrad ops`` shows them in a terminal.
"""

from __future__ import annotations

import ast
import re

import griffe

from dagrad.cli import plain

EXAMPLES_SECTION = re.compile(r"^Examples?\n-{3,}$", re.M)


def _unquoted(annotation, scope):
    """The expression a quoted annotation names, or the annotation unchanged."""
    if not (isinstance(annotation, str) and len(annotation) > 2 and annotation[0] == annotation[-1] in "'\""):
        return annotation
    try:
        node = ast.parse(annotation[1:-1], mode="eval").body
    except SyntaxError:
        return annotation
    return griffe.safe_get_annotation(node, parent=scope) or annotation


def fence_doctests(text: str) -> str:
    """Wrap each run of doctest lines (``>>>`` up to the next blank line) in a ```pycon fence.

    Only before a numpy ``Examples`` section, whose doctests mkdocstrings renders itself.
    """
    match = EXAMPLES_SECTION.search(text)
    head, tail = (text[:match.start()], text[match.start():]) if match else (text, "")
    out, in_run = [], False
    for line in head.split("\n"):
        if not in_run and line.lstrip().startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            in_run = True
        elif in_run and not line.strip():
            out.append(f"{indent}```")
            in_run = False
        out.append(line)
    if in_run:
        out.append(f"{indent}```")
    return "\n".join(out) + tail


class ReadableReference(griffe.Extension):
    """Unquote quoted annotations; fence doctests that are not in an Examples section."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(plain(obj.docstring.value))

    def on_function_instance(self, *, func: griffe.Function, **kwargs) -> None:
        func.returns = _unquoted(func.returns, func.parent)
        for parameter in func.parameters:
            parameter.annotation = _unquoted(parameter.annotation, func.parent)

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs) -> None:
        attr.annotation = _unquoted(attr.annotation, attr.parent)
