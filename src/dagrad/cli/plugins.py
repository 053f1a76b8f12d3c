"""``dagrad plugins``: every plugin with its status, distribution and version, ops and hooks.

A plugin is ``loaded``; ``broken`` when it failed to import or register (its
error is shown, and the other plugins still load); ``conflict`` when
registering it from Python failed because an op of it is taken; or
``disabled`` by the environment. A loaded plugin's ops that cannot be used (a
name two installed plugins define, or a built-in's name without
``override=True``) are marked ``(unusable)``, each with the reason.
``DAGRAD_PLUGINS=a,b`` loads only those entry-point plugins,
``DAGRAD_DISABLE_PLUGINS=a,b`` all but those, and ``DAGRAD_STRICT_PLUGINS=1``
makes a broken or colliding plugin an error. The built-ins always load.
"""

import json


def add(sub) -> None:
    p = sub.add_parser("plugins", help="list plugins with version, status, ops and hooks")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per plugin")
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
            print(f"    ops: {', '.join(op + (' (unusable)' if op in i.unused else '') for op in i.ops)}")
        for op_name, reason in i.unused.items():
            print(f"    unusable op {op_name}: {reason}")
        hooks = [h for h in i.hooks if h != "dagrad_ops"]
        if hooks:
            print(f"    hooks: {', '.join(hooks)}")
        if i.error:
            print(f"    error: {i.error}")
    return 0
