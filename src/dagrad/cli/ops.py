"""``dagrad ops``: every registered op with the plugin that provides it."""

from __future__ import annotations

import json


def add(sub) -> None:
    p = sub.add_parser("ops", help="list every op with the plugin that provides it")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..plugins import registry

    reg = registry()
    rows = [
        {"op": name, "plugin": op.plugin, "arity": "n" if op.arity is None else op.arity,
         "attrs": sorted(op.attr_defaults), "summary": op.summary}
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
