"""``dagrad check [OP|PLUGIN ...]``: check ops completely (finite differences to the second order, shape and dtype rules, VJP arity).

A name that is both an op and a plugin is checked as the op, with a note
(``--plugin`` takes names as plugins); an op two plugins define is reported as
the conflict it is, and a plugin's unusable ops fail the check.
"""

from __future__ import annotations

import sys


def add(sub) -> None:
    p = sub.add_parser("check", help="check ops against finite differences; exits 1 on a failure")
    p.add_argument("names", nargs="*", metavar="OP|PLUGIN", help="ops or plugins to check (default: all)")
    p.add_argument("--plugin", action="store_true",
                   help="take every name as a plugin (when a name is both an op and a plugin, the op is checked)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random samples and projections (default: 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import GraphError, PluginError
    from ..plugins import registry
    from ..testing import OpCheckFailure, check_op
    from ..testing.checks.runner import loaded_plugin

    reg = registry()
    chosen: list[str] = []
    unusable: dict[str, str] = {}
    for name in args.names or sorted(reg.ops):
        info = reg.plugins.get(name)
        if args.plugin or (info is not None and name not in reg.ops):
            info = loaded_plugin(name)
            for op_name in info.ops:
                if op_name in info.unused:
                    unusable[op_name] = info.unused[op_name]
                else:
                    chosen.append(op_name)
        elif name in reg.ops:
            if info is not None:
                print(f"note: {name!r} is both an op (from plugin {reg.ops[name].plugin!r}) and a plugin; "
                      f"checking the op (dagrad check --plugin {name} checks the plugin's ops)", file=sys.stderr)
            chosen.append(name)
        elif name in reg.conflicts:
            raise PluginError(str(reg.conflicts[name]))
        else:
            raise GraphError(f"{name!r} is neither a registered op nor a plugin (see `dagrad ops`, `dagrad plugins`)")
    failed, first_order_only = [], []
    for name in chosen:
        op = reg.op(name)
        try:
            report = check_op(op, seed=args.seed)
        except OpCheckFailure as failure:
            failed.append(name)
            print(f"FAIL  {name} ({op.plugin})")
            print("      " + str(failure).replace("\n", "\n      "))
            continue
        print(f"ok    {report}")
        if op.differentiable and not op.has_graph_vjp:
            first_order_only.append(name)
    for name, reason in unusable.items():
        failed.append(name)
        print(f"FAIL  {name}: unusable: {reason}")
    if not args.names and reg.conflicts:
        print(f"note: {len(reg.conflicts)} op name(s) not checked, being unusable conflicts: "
              f"{', '.join(sorted(reg.conflicts))} (see `dagrad plugins`)", file=sys.stderr)
    if failed:
        print(f"{len(failed)} op(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if first_order_only:
        print(f"{len(first_order_only)} op(s) have no graph VJP (first derivatives only): {', '.join(first_order_only)}")
    print(f"all {len(chosen)} op(s) passed")
    return 0
