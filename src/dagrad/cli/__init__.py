"""The ``dagrad`` command: one subcommand per module in this package.

Each module listed in ``COMMANDS`` defines ``add(subparsers)``, which adds its
parser and sets ``func`` to a function taking the parsed arguments and
returning an exit code. What every command shares is set here, so no command
can miss it:

- ``--help`` shows the command's module docstring as its description (unless
  the command sets one) and its ``EXAMPLES`` below as an epilog;
- a mistyped command, choice or option gets a "did you mean" suggestion, and an
  unknown option is reported with the usage of the command it was given to;
- a ``DagradError`` or ``OSError`` becomes one line on stderr instead of a traceback;
- ``positive_int``, ``positive_float`` and ``non_negative_int`` (for seeds) are
  argument types that reject a bad value with a message saying what is expected.
"""

import argparse
import difflib
import importlib
import math
import os
import re
import shutil
import sys
import textwrap
from typing import Optional, Sequence

from ..errors import DagradError

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


# ---------------------------------------------------------------- text ----


def plain(text: str) -> str:
    """Docstring markup (reStructuredText) as terminal text: code in double backquotes and roles
    such as ``:func:`~dagrad.io.save``` become code in single backquotes (`` `save` ``)."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    return re.sub(r":[a-z]+(?::[a-z]+)?:`(~?)([^`]+)`", lambda m: f"`{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}`", text)


def _width() -> int:
    return max(40, min(shutil.get_terminal_size().columns - 2, 100))


def _fill(text: str) -> str:
    """Re-wrap the paragraphs of a docstring to the terminal; indented blocks are kept as they are."""
    out = []
    for block in textwrap.dedent(text).strip().split("\n\n"):
        lines = block.split("\n")
        if any(line.startswith((" ", "-")) for line in lines):
            out.append(block)
        else:
            out.append(textwrap.fill(" ".join(lines), _width()))
    return "\n\n".join(out)


def _examples(pairs) -> str:
    """An ``examples:`` section: for each example, ``# what it does`` above the command line."""
    return "examples:\n" + "\n\n".join(f"  # {what}\n  {cmd}" for cmd, what in pairs)


# --------------------------------------------------------------- types ----


def _number(kind, check, expected: str):
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not check(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return convert


positive_int = _number(int, lambda v: v > 0, "a whole number above 0")
non_negative_int = _number(int, lambda v: v >= 0, "a whole number, 0 or more")
positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a number above 0")


# -------------------------------------------------------------- parser ----


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that suggests the closest choice for a mistyped command or value."""

    def _check_value(self, action, value):  # argparse's one check of ``choices``
        if action.choices is None or value in action.choices:
            return
        names = [str(c) for c in action.choices]
        hint = _closest(str(value), names)
        hint = f"; did you mean {hint!r}?" if hint else ""
        raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint} (choose from {', '.join(names)})")


def _closest(word: str, names: list) -> Optional[str]:
    """The name a typo most likely meant (case aside), or None; short names like ``TB`` for ``TD`` count."""
    lowered = {name.lower(): name for name in names}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[close[0]] if close else None


def _unrecognized(parser: argparse.ArgumentParser, extra: list) -> str:
    """``unrecognized arguments: --jsn (did you mean --json?)``."""
    options = list(parser._option_string_actions)  # argparse keeps no public list of a parser's options
    hints = []
    for arg in extra:
        close = _closest(arg.split("=")[0], options) if arg.startswith("-") else None
        if close:
            hints.append(f"did you mean {close}?")
    return f"unrecognized arguments: {' '.join(extra)}" + (f" ({'; '.join(hints)})" if hints else "")


def parser() -> argparse.ArgumentParser:
    from .._version import __version__

    p = Parser(
        prog="dagrad",
        description="Reverse-mode autodiff over an explicit DAG of plugin ops.",
        epilog=_examples(_ROOT_EXAMPLES) + "\n\nRun 'dagrad COMMAND --help' for a command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"dagrad {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        before = set(sub.choices)
        module.add(sub)
        for command in set(sub.choices) - before:
            cp = sub.choices[command]
            cp.formatter_class = argparse.RawDescriptionHelpFormatter
            if cp.description is None and module.__doc__:
                cp.description = _fill(plain(module.__doc__))
            if cp.epilog is None and name in EXAMPLES:
                cp.epilog = _examples(EXAMPLES[name])
            cp.set_defaults(command_parser=cp)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra:  # reported by the command they were given to, with its usage
        command_parser = getattr(args, "command_parser", p)
        command_parser.error(_unrecognized(command_parser, extra))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
