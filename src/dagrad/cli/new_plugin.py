"""``dagrad new-plugin NAME [--dir DIR]``: write a ready-to-install op-pack distribution.

The distribution ``dagrad-NAME`` has a ``pyproject.toml`` with the entry point
that makes it a plugin, a module with one working op (forward, VJP, shape rule,
samples) to rename and copy, tests that check every op of the pack against
finite differences, and a README. Nothing is written if the directory exists
and is not empty. docs/plugins.md goes from here to a published pack.
"""

from __future__ import annotations


def add(sub) -> None:
    p = sub.add_parser(
        "new-plugin",
        help="create a new op-pack distribution (pyproject with entry point, example op, tests, README)",
    )
    p.add_argument("name", metavar="NAME", help="plugin name, e.g. 'myops' (gives the distribution dagrad-myops)")
    p.add_argument("--dir", dest="directory", metavar="DIR", help="where to write it (default: ./dagrad-NAME)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..scaffold import names_for, new_plugin

    root = new_plugin(args.name, args.directory)
    names = names_for(args.name)
    print(f"created {names.distribution} in {root}")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        print(f"    {path.relative_to(root)}")
    print("next:")
    print(f"    pip install -e {root}")
    print(f"    dagrad ops              # lists {names.op}, provided by {names.name}")
    print(f"    pytest {root}")
    return 0
