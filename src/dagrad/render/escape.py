"""Escaping user strings for Graphviz HTML-like labels, so a name renders literally and injects nothing.

Graphviz reads an HTML-like label as XML: ``&``, ``<``, ``>`` and quotes must be
entities, and a control character either breaks the parser or silently changes
the layout. Braces and bars mean nothing in HTML labels but are fields in
record labels, so they are escaped too: whatever shape a node ends up with,
its name can never become structure.
"""

from __future__ import annotations

__all__ = ["html"]

_TABLE = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#39;",
    ord("{"): "&#123;",
    ord("|"): "&#124;",
    ord("}"): "&#125;",
    ord("\\"): "&#92;",
    ord("\n"): "\u21b5",  # a visible "return" sign: the name stays on one line and is still readable
}
for _c in range(0x20):
    _TABLE.setdefault(_c, f"&#92;x{_c:02x}")
_TABLE[0x7F] = "&#92;x7f"


def html(value: object) -> str:
    """``value`` as text that is safe inside a Graphviz HTML-like label.

    Examples
    --------
    >>> html('<b>"x"&{|}</b>')
    '&lt;b&gt;&quot;x&quot;&amp;&#123;&#124;&#125;&lt;/b&gt;'
    >>> html("a\\tb")          # a tab is shown as the text \\x09
    'a&#92;x09b'
    """
    text = str(value).translate(_TABLE)
    if text.isascii():
        return text
    # Non-ASCII: keep letters and symbols, show invisible code points (line separators,
    # zero-width and C1 controls) by their number rather than letting them reach dot.
    return "".join(ch if ch.isprintable() or ch == " " else f"&#92;u{ord(ch):04x}" for ch in text)
