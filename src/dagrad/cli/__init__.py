"""The ``dagrad`` command: one subcommand per module in this package.

Each module listed in ``COMMANDS`` defines ``add(subparsers)``, which adds its
parser and sets ``func`` to a function taking the parsed arguments and
returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from ..errors import DagradError

COMMANDS = ["ops", "plugins", "check", "demo", "render", "new_plugin"]


def parser() -> argparse.ArgumentParser:
    from .._version import __version__

    p = argparse.ArgumentParser(prog="dagrad", description="Reverse-mode autodiff over an explicit DAG of plugin ops.")
    p.add_argument("--version", action="version", version=f"dagrad {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DagradError as exc:
        print(f"dagrad: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
