"""The ``dagrad`` command: one subcommand per module in this package.

Each module listed in ``COMMANDS`` defines ``add(subparsers)``, which adds its
parser and sets ``func`` to a function taking the parsed arguments and
returning an exit code. What every command shares is set once, in ``app``
(the parser and ``main``), ``arguments`` and ``text``, so no command can miss it:

- ``--help`` shows the command's module docstring as its description (unless
  the command sets one) and its ``EXAMPLES`` below as an epilog;
- a mistyped command, choice or option gets a "did you mean" suggestion, and an
  unknown option is reported with the usage of the command it was given to;
- a ``DagradError`` or ``OSError`` becomes one line on stderr instead of a traceback;
- ``positive_int``, ``positive_float`` and ``non_negative_int`` (for seeds) are
  argument types that reject a bad value with a message saying what is expected.
"""

from .app import COMMANDS, EXAMPLES, main, parser
from .arguments import non_negative_int, positive_float, positive_int
from .text import plain

__all__ = ["COMMANDS", "EXAMPLES", "main", "non_negative_int", "parser", "plain", "positive_float", "positive_int"]
