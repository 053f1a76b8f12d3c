"""What a check reports: the failure and the report users see, and how problems are worded.

``Problem`` is one failed check of one case (its message is the explanation);
``check_op`` collects them into one ``OpCheckFailure``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from ...shapes import format_shape

__all__ = ["OpCheckFailure", "OpCheckReport", "Problem", "Refused", "describe", "format_shapes", "indent",
           "index_of", "more_cases"]


class OpCheckFailure(AssertionError):
    """An op failed ``check_op``; the message explains each problem like a compiler error.

    An ``AssertionError`` so that pytest shows it as a failed check, not as a
    crash. ``problems`` holds one message per failing case.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems)


@dataclass
class OpCheckReport:
    """What ``check_op`` checked: the op, the label of every case that passed, and notes.

    ``second_order`` is true when the op's graph VJP was checked too (against
    its numpy VJP, and its second derivatives against finite differences);
    ``notes`` says why not, for an op without a graph VJP.
    """

    op: str
    plugin: Optional[str]
    cases: list = field(default_factory=list)
    generated: int = 0
    no_gradients: dict = field(default_factory=dict)
    """Cases whose gradients were not checked: ``{label: reason}``."""
    second_order: bool = False
    notes: list = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"op {self.op!r} ({self.plugin or 'not registered'}): {len(self.cases)} cases passed "
            f"({len(self.cases) - self.generated} samples + {self.generated} generated)"
        )
        reasons: dict = {}
        for reason in self.no_gradients.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            cases = "all cases" if count == len(self.cases) else f"{count} case{'s' * (count != 1)}"
            text += f"; gradients not checked ({cases}): {reason}"
        if self.second_order:
            text += ", second derivatives too"
        return "".join([text, *(f"; note: {note}" for note in self.notes)])


class Problem(Exception):
    """One failed check of one case; the message is the explanation."""


class Refused(Exception):
    """A generated case whose shapes the op's shape rule deliberately refuses (``ValueError``)."""


def describe(args: tuple) -> str:
    return ", ".join(f"{a.dtype}{format_shape(a.shape)}" for a in args)


def format_shapes(shapes) -> str:
    return ", ".join(format_shape(s) for s in shapes)


def index_of(check_name: str) -> int:
    return int(check_name.removeprefix("input"))


def indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def more_cases(problems: list) -> list:
    return [f"  ... and {len(problems) - 5} more failing cases"] if len(problems) > 5 else []


# Users import both from dagrad.testing: tracebacks, reprs and pickles name that path, not this module.
OpCheckFailure.__module__ = OpCheckReport.__module__ = "dagrad.testing"
