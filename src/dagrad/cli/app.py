"""The ``dagrad`` command: its parser, built from the command modules, and ``main``, which runs one."""

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from ..errors import DagradError
from .arguments import Parser, unrecognized
from .text import examples, fill, plain

__all__ = ["COMMANDS", "EXAMPLES", "main", "parser"]

COMMANDS = ["ops", "plugins", "check", "demo", "render", "new_plugin"]

#: Examples shown at the end of each command's ``--help``: command line, then what it does.
EXAMPLES = {
    "ops": [
        ("dagrad ops", "every op: name, plugin, one-line summary"),
        ("dagrad ops --json", "the same as JSON (with arity and attributes), for scripts"),
        ("DAGRAD_PLUGINS=conv dagrad ops", "the built-ins and the conv pack only"),
    ],
    "plugins": [
        ("dagrad plugins", "each plugin: status, distribution and version, ops, hooks"),
        ("dagrad plugins --json", "the same as JSON, for scripts"),
        ("DAGRAD_DISABLE_PLUGINS=conv dagrad plugins", "what loads without the conv pack"),
    ],
    "check": [
        ("dagrad check", "every op against finite differences"),
        ("dagrad check activations", "the ops of one plugin"),
        ("dagrad check tanh matmul", "two ops"),
    ],
    "demo": [
        ("dagrad demo", "train, save, draw; files go to ./out"),
        ("dagrad demo --epochs 5 --out /tmp/demo", "a quicker run elsewhere"),
        ("dagrad demo --hidden 256,128 --lr 3e-3", "a wider network, a larger step"),
        ("dagrad demo --workers 2", "the same training on a Dask cluster of 2 local worker processes"),
    ],
    "render": [
        ("dagrad render out/digits.dagrad -o model.svg", "a saved model's structure: shapes and parameters"),
        ("dagrad render out/digits.dagrad --feed batch.npz -o flow.html --open",
         "run it on the arrays in batch.npz, write the interactive viewer and open it"),
        ("dagrad render examples/two_moons.py:build --format png --arrows backward",
         "call build() from an example, draw the Result it returns, arrows the way gradients flow"),
        ("dagrad render model.py:build -o flow.svg --feed x=x.npy --feed y=y.npy",
         "call build() from model.py, run the Graph it returns on x.npy and y.npy, draw it"),
        ("dagrad render mypkg.models:trained -o flow.pdf --max-nodes 100 --expand block3",
         "a returned Result, large scopes collapsed but block3"),
    ],
    "new_plugin": [
        ("dagrad new-plugin smooth", "write ./dagrad-smooth, ready to pip install -e"),
        ("dagrad new-plugin smooth --dir ~/src/dagrad-smooth", "somewhere else"),
    ],
}

_ROOT_EXAMPLES = [
    ("dagrad demo", "train a network on the digits and draw its gradient flow"),
    ("dagrad ops", "what ops are installed, and from which plugin"),
    ("dagrad render --help", "a command's options and examples"),
]


def parser() -> argparse.ArgumentParser:
    from .._version import __version__

    p = Parser(
        prog="dagrad",
        description="Reverse-mode autodiff over an explicit DAG of plugin ops.",
        epilog=examples(_ROOT_EXAMPLES) + "\n\nRun 'dagrad COMMAND --help' for a command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"dagrad {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"{__package__}.{name}")
        before = set(sub.choices)
        module.add(sub)
        for command in set(sub.choices) - before:
            cp = sub.choices[command]
            cp.formatter_class = argparse.RawDescriptionHelpFormatter
            if cp.description is None and module.__doc__:
                cp.description = fill(plain(module.__doc__))
            if cp.epilog is None and name in EXAMPLES:
                cp.epilog = examples(EXAMPLES[name])
            cp.set_defaults(command_parser=cp)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra:  # reported by the command they were given to, with its usage
        command_parser = getattr(args, "command_parser", p)
        command_parser.error(unrecognized(command_parser, extra))
    if args.command is None:  # bare `dagrad`: what it can do, rather than an error
        p.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except DagradError as exc:
        print(f"dagrad: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or directory that cannot be read or written
        if isinstance(exc, BrokenPipeError):  # output piped into `head` and closed early
            sys.stdout = open(os.devnull, "w")
            return 0
        print(f"dagrad {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dagrad {args.command}: interrupted", file=sys.stderr)
        return 130

