"""Argument parsing every command shares: number types that say what they expect, and "did you mean" hints."""

import argparse
import difflib
import math
from typing import Optional

__all__ = ["Parser", "non_negative_int", "positive_float", "positive_int", "unrecognized"]


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


def unrecognized(parser: argparse.ArgumentParser, extra: list) -> str:
    """``unrecognized arguments: --jsn (did you mean --json?)``."""
    options = list(parser._option_string_actions)  # argparse keeps no public list of a parser's options
    hints = []
    for arg in extra:
        close = _closest(arg.split("=")[0], options) if arg.startswith("-") else None
        if close:
            hints.append(f"did you mean {close}?")
    return f"unrecognized arguments: {' '.join(extra)}" + (f" ({'; '.join(hints)})" if hints else "")
