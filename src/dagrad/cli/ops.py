"""``dagrad ops``: every registered op with the plugin that provides it and what it does.

The built-in ops come from the plugin ``builtins``; ops of installed op packs
appear here as soon as the pack is installed. An op that two installed plugins
define is listed as ``CONFLICT`` with both names. Use an op in Python as
``dagrad.ops.NAME``.
"""

import json

from .text import plain


def add(sub) -> None:
    p = sub.add_parser("ops", help="list every op with the plugin that provides it")
    p.add_argument("--json", action="store_true", help="print a JSON list (op, plugin, arity, attrs, summary)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..plugins import registry

    reg = registry()
    rows = [
        {"op": name, "plugin": op.plugin, "arity": "n" if op.arity is None else op.arity,
         "attrs": sorted(op.attr_defaults), "summary": plain(op.summary)}
        for name, op in sorted(reg.ops.items())
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["op"]) for r in rows), default=2)
    pwidth = max((len(r["plugin"]) for r in rows), default=6)
    print(f"{'OP':<{width}}  {'PLUGIN':<{pwidth}}  SUMMARY")
    for r in rows:
        print(f"{r['op']:<{width}}  {r['plugin']:<{pwidth}}  {r['summary']}")
    for name, error in sorted(reg.conflicts.items()):
        print(f"{name:<{width}}  {'CONFLICT':<{pwidth}}  {error}")
    return 0
