"""Escaping user strings for Graphviz, so a name of any length or content renders literally and injects nothing.

Three things go wrong with raw strings in a DOT file, and each has its fix here:

- Markup. Graphviz reads an HTML-like label as XML: ``&``, ``<``, ``>`` and
  quotes must be entities. Braces and bars are escaped too, so whatever shape
  a node ends up with, its name can never become record structure.
- Escape sequences. Graphviz (2.43 and 16 alike) expands ``\\N``, ``\\G``,
  ``\\E``, ``\\L``... in labels *after* decoding entities, so ``&#92;N`` still
  becomes the node's id. A doubled backslash is the one spelling it reduces
  to a single literal backslash, in labels and in tooltips alike.
- Length. ``dot`` refuses a quoted or HTML string longer than 16,384 bytes
  with a syntax error (a 20,000-character name, or 3,500 ``&`` that become
  17,500 characters of ``&amp;``). Shown text is cut with an ellipsis
  (``shorten``); the full text goes in the tooltip, itself capped well under
  the limit.
"""

from __future__ import annotations

__all__ = ["html", "tooltip", "shorten", "LABEL_CHARS", "TOOLTIP_CHARS"]

LABEL_CHARS = 48  # a label line longer than this is cut in the middle; the tooltip has the whole text
TOOLTIP_CHARS = 1500  # escaped, at most ~10 bytes a character: far below dot's 16,384-byte limit
ELLIPSIS = "\u2026"

_COMMON = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#39;",
}
_TABLE = {
    **_COMMON,
    ord("{"): "&#123;",
    ord("|"): "&#124;",
    ord("}"): "&#125;",
    ord("\\"): "&#92;&#92;",  # Graphviz reduces the pair to one literal backslash
    ord("\n"): "\u21b5",  # a visible "return" sign: the text stays on one line and is still readable
}
# In a quoted attribute the DOT lexer halves backslashes once, and escString expansion once more.
_TOOLTIP = {**_COMMON, ord("\\"): "\\\\\\\\", ord("\n"): "&#10;"}  # tooltips may span lines
for _c in range(0x20):
    _TABLE.setdefault(_c, f"&#92;&#92;x{_c:02x}")
    _TOOLTIP.setdefault(_c, f"\\\\\\\\x{_c:02x}")
_TABLE[0x7F] = "&#92;&#92;x7f"
_TOOLTIP[0x7F] = "\\\\\\\\x7f"


def _visible(text: str, backslash: str) -> str:
    # Non-ASCII: keep letters and symbols, show invisible code points (line separators,
    # zero-width and C1 controls) by their number rather than letting them reach dot.
    if text.isascii():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else f"{backslash}u{ord(ch):04x}" for ch in text)


def html(value: object) -> str:
    """``value`` as text that is safe inside a Graphviz HTML-like label (not shortened).

    Examples
    --------
    >>> html('<b>"x"&{|}</b>')
    '&lt;b&gt;&quot;x&quot;&amp;&#123;&#124;&#125;&lt;/b&gt;'
    >>> html("a\\tb")          # a tab is shown as the text \\x09
    'a&#92;&#92;x09b'
    >>> html("a\\\\N")         # \\N stays \\N: Graphviz reads the doubled backslash as one
    'a&#92;&#92;N'
    """
    return _visible(str(value).translate(_TABLE), "&#92;&#92;")


def tooltip(value: object, limit: int = TOOLTIP_CHARS) -> str:
    """``value`` as the text of a DOT ``tooltip`` attribute: entities for markup, backslashes kept literal.

    Text longer than ``limit`` characters is cut with an ellipsis.

    Examples
    --------
    >>> tooltip('a\\\\G & "b"') == 'a' + 4 * chr(92) + 'G &amp; &quot;b&quot;'
    True
    """
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return _visible(text.translate(_TOOLTIP), "\\\\\\\\")


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters by an ellipsis in the middle (both ends say the most).

    Examples
    --------
    >>> shorten("block3/layer12/attention/softmax", 20)
    'block3/la…on/softmax'
    >>> shorten("short")
    'short'
    """
    if len(text) <= limit:
        return text
    keep = max(limit - 1, 2)
    head = keep // 2
    return text[:head] + ELLIPSIS + text[len(text) - (keep - head):]
