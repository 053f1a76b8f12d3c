"""``dagrad check [OP|PLUGIN ...]``: finite-difference check of ops on their sample inputs."""

from __future__ import annotations

import sys


def add(sub) -> None:
    p = sub.add_parser("check", help="check ops against finite differences; exits 1 on a failure")
    p.add_argument("names", nargs="*", metavar="OP|PLUGIN", help="ops or plugins to check (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import GraphError
    from ..gradcheck import check_samples
    from ..plugins import registry

    reg = registry()
    chosen = []
    for name in args.names or sorted(reg.ops):
        if name in reg.ops:
            chosen.append(name)
        elif name in reg.plugins:
            chosen.extend(reg.plugins[name].ops)
        else:
            raise GraphError(f"{name!r} is neither a registered op nor a plugin (see `dagrad ops`, `dagrad plugins`)")
    failed = []
    for name in chosen:
        op = reg.op(name)
        results = check_samples(op, seed=args.seed)
        if not results:
            print(f"SKIP  {name} ({op.plugin}): no sample inputs")
            continue
        bad = [(s, r) for s, r in results if not r]
        if bad:
            failed.append(name)
            print(f"FAIL  {name} ({op.plugin})")
            for s, r in bad:
                print(f"      {s.label or 'sample'}: {r}")
        else:
            print(f"ok    {name} ({op.plugin}): {len(results)} samples")
    if failed:
        print(f"{len(failed)} op(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(chosen)} op(s) passed")
    return 0
