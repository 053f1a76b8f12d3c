"""``dagrad plugins``: plugins with version, status, ops and hooks, broken ones with their error."""

from __future__ import annotations

import json


def add(sub) -> None:
    p = sub.add_parser("plugins", help="list plugins with version, status, ops and hooks")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..plugins import registry

    infos = list(registry().plugins.values())
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2))
        return 0
    for i in infos:
        where = f"{i.distribution} {i.version}" if i.distribution else "(registered from Python)"
        print(f"{i.name}  [{i.status}]  {where}")
        if i.ops:
            print(f"    ops: {', '.join(i.ops)}")
        hooks = [h for h in i.hooks if h != "dagrad_ops"]
        if hooks:
            print(f"    hooks: {', '.join(hooks)}")
        if i.error:
            print(f"    error: {i.error}")
    return 0
