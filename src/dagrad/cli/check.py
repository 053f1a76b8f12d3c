"""``dagrad check [OP|PLUGIN ...]``: check ops completely (finite differences to the second order, shape and dtype rules, VJP arity)."""

from __future__ import annotations

import sys


def add(sub) -> None:
    p = sub.add_parser("check", help="check ops against finite differences; exits 1 on a failure")
    p.add_argument("names", nargs="*", metavar="OP|PLUGIN", help="ops or plugins to check (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import GraphError
    from ..plugins import registry
    from ..testing import OpCheckFailure, check_op

    reg = registry()
    chosen = []
    for name in args.names or sorted(reg.ops):
        if name in reg.ops:
            chosen.append(name)
        elif name in reg.plugins:
            chosen.extend(reg.plugins[name].ops)
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
    if failed:
        print(f"{len(failed)} op(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if first_order_only:
        print(f"{len(first_order_only)} op(s) have no graph VJP (first derivatives only): {', '.join(first_order_only)}")
    print(f"all {len(chosen)} op(s) passed")
    return 0
