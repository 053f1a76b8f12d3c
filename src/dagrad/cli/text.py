"""Text for the terminal: docstring markup made plain, paragraphs wrapped to the terminal, example sections."""

import re
import shutil
import textwrap

__all__ = ["examples", "fill", "plain", "width"]


def plain(text: str) -> str:
    """Docstring markup (reStructuredText) as terminal text: code in double backquotes and roles
    such as ``:func:`~dagrad.io.save``` become code in single backquotes (`` `save` ``)."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    return re.sub(r":[a-z]+(?::[a-z]+)?:`(~?)([^`]+)`", lambda m: f"`{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}`", text)


def width() -> int:
    return max(40, min(shutil.get_terminal_size().columns - 2, 100))


def fill(text: str) -> str:
    """Re-wrap the paragraphs of a docstring to the terminal; indented blocks are kept as they are."""
    out = []
    for block in textwrap.dedent(text).strip().split("\n\n"):
        lines = block.split("\n")
        if any(line.startswith((" ", "-")) for line in lines):
            out.append(block)
        else:
            out.append(textwrap.fill(" ".join(lines), width()))
    return "\n\n".join(out)


def examples(pairs) -> str:
    """An ``examples:`` section: for each example, ``# what it does`` above the command line."""
    return "examples:\n" + "\n\n".join(f"  # {what}\n  {cmd}" for cmd, what in pairs)
