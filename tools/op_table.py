"""Write the table of every op into docs/ops.md, from the registry (``make ops-table``).

One row per op of the built-ins and the bundled packs (``activations``, ``conv``):
its name, the first line of its docstring, the plugin that provides it,
whether it has first and higher derivatives, and what it is called in numpy
(or scipy) and PyTorch, read from ``Op.counterparts``. The rows replace
whatever stands between the two marker comments in docs/ops.md; the prose
around them is left alone. ``tests/test_op_table.py`` fails when the committed
table differs from what this writes, so a new op, a changed docstring or a new
counterpart shows up as a test failure until the table is regenerated.

    python tools/op_table.py            # rewrite the table in docs/ops.md
    python tools/op_table.py --check    # exit 1 (saying so) if it is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "ops.md"
BEGIN = "<!-- op-table: written by `make ops-table` (tools/op_table.py) from the registry; do not edit by hand -->"
END = "<!-- end of op-table -->"
#: The plugins whose ops the table lists, in this order: the ones that ship with dagrad.
BUNDLED = ("builtins", "activations", "conv")
HEADER = ("| op | what it computes | plugin | derivatives | numpy | PyTorch |",
          "| --- | --- | --- | --- | --- | --- |")


def _cell(text: str) -> str:
    """Text made safe for one markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _code(name) -> str:
    return f"`{name}`" if name else ""


def _derivatives(op) -> str:
    if op.has_graph_vjp:
        return "first and higher"
    return "first" if op.differentiable else "none"


def rows() -> list[str]:
    """The table's lines: header, then one row per op of the bundled plugins, by name."""
    import dagrad as dg

    registry = dg.registry()
    missing = [name for name in BUNDLED if name not in registry.plugins or registry.plugins[name].status != "loaded"]
    if missing:
        raise SystemExit(
            f"the op table lists the bundled plugins, and {', '.join(missing)} is not loaded: "
            "install them (make setup) before writing or checking it"
        )
    ops = [registry.op(name) for plugin in BUNDLED for name in registry.plugins[plugin].ops]
    lines = list(HEADER)
    for op in sorted(ops, key=lambda o: o.name):
        names = op.counterparts
        lines.append("| " + " | ".join([
            _code(op.name), _cell(op.summary), op.plugin, _derivatives(op),
            _code(names.get("numpy") or names.get("scipy")), _code(names.get("torch")),
        ]) + " |")
    return lines


def render(page: str) -> str:
    """``page`` with the lines between the markers replaced by the current table."""
    if page.count(BEGIN) != 1 or page.count(END) != 1 or page.index(BEGIN) > page.index(END):
        raise SystemExit(f"{PAGE} must hold the marker lines once each, in order:\n{BEGIN}\n{END}")
    head, rest = page.split(BEGIN)
    _, tail = rest.split(END)
    return head + BEGIN + "\n" + "\n".join(rows()) + "\n" + END + tail


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether docs/ops.md's table is current")
    args = parser.parse_args(argv)
    page = PAGE.read_text(encoding="utf-8")
    current = render(page)
    if args.check:
        if current != page:
            print(f"the op table in {PAGE} is out of date: run `make ops-table`", file=sys.stderr)
            return 1
        print(f"the op table in {PAGE} is current")
        return 0
    if current != page:
        PAGE.write_text(current, encoding="utf-8")
        print(f"wrote the op table ({len(current.splitlines()) - len(page.splitlines()):+d} lines) into {PAGE}")
    else:
        print(f"the op table in {PAGE} was already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
