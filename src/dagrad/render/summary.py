"""Numbers for a diagram: what an array looks like in a few words, and statistics that add up over scopes.

A detailed node shows its own value and gradient; a collapsed scope shows the
same statistics over every node inside it. Both come from ``Stats``, which
accumulates count, sum, sum of squares, min, max and the number of NaN/Inf
entries, so aggregating a scope of 10,000 nodes is one pass over the arrays
with no concatenation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["Stats", "describe", "number", "brief", "histogram", "SMALL", "BINS"]

SMALL = 6  # arrays with at most this many entries are listed in full
BINS = 16  # bars of a histogram in the interactive viewer


def number(x: float) -> str:
    """A number in at most four significant digits: ``0.0123``, ``1.5e-08``, ``nan``."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.4g}"


def brief(x: float) -> str:
    """A number in three significant digits, for statistics rows: ``-0.0123``, ``1.5e-08``."""
    return f"{float(x):.3g}"


@dataclass
class Stats:
    """Running statistics over one or more arrays (finite entries only), plus NaN/Inf counts."""

    arrays: int = 0
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    nan: int = 0
    inf: int = 0

    def add(self, array: np.ndarray) -> None:
        a = np.asarray(array)
        self.arrays += 1
        if a.size == 0:
            return
        if a.dtype.kind not in "fcbiu":
            return
        if a.dtype.kind == "c":
            a = np.abs(a)
        if a.dtype.kind == "f":
            finite = np.isfinite(a)
            if not finite.all():
                nan = int(np.isnan(a).sum())
                self.nan += nan
                self.inf += int(a.size - finite.sum()) - nan
                a = a[finite]
                if a.size == 0:
                    return
        a = a.astype(np.float64, copy=False)
        self.count += a.size
        self.total += float(a.sum())
        self.squares += float(np.dot(a.ravel(), a.ravel()))
        self.low = min(self.low, float(a.min()))
        self.high = max(self.high, float(a.max()))

    def merge(self, other: "Stats") -> None:
        """Add another Stats' arrays to these (a scope's statistics are the sum of its nodes')."""
        self.arrays += other.arrays
        self.count += other.count
        self.total += other.total
        self.squares += other.squares
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        self.nan += other.nan
        self.inf += other.inf

    def finite(self) -> "Stats":
        """The same statistics without the NaN/Inf counts (shown on a row of their own)."""
        return Stats(self.arrays, self.count, self.total, self.squares, self.low, self.high)

    @property
    def bad(self) -> int:
        """Number of NaN and Inf entries."""
        return self.nan + self.inf

    @property
    def norm(self) -> float:
        """L2 norm over the finite entries (NaN when every entry was NaN/Inf)."""
        return math.sqrt(self.squares) if self.count else (math.nan if self.bad else 0.0)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        if not self.count:
            return math.nan
        return math.sqrt(max(self.squares / self.count - self.mean**2, 0.0))

    def text(self) -> str:
        """``mean 0.1 std 0.2 in [-1, 3]`` (and the bad-entry count when there are any)."""
        parts = []
        if self.count:
            parts.append(f"mean {brief(self.mean)} std {brief(self.std)} in [{brief(self.low)}, {brief(self.high)}]")
        return " ".join(parts + ([bad_text(self.nan, self.inf)] if self.bad else []))


def bad_text(nan: int, inf: int) -> str:
    """``3 NaN, 1 Inf``: the words a diagram uses for non-finite entries."""
    return ", ".join(p for p in (f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else "") if p)


_DTYPE_NAMES: dict = {}


def dtype_name(dtype: np.dtype) -> str:
    """``str(dtype)``, remembered: numpy builds the string anew on every call, which showed in profiles."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return name


def describe(array: Optional[np.ndarray]) -> tuple[str, str]:
    """``(head, body)`` for one array: its shape and dtype, then its number(s) or statistics.

    Examples
    --------
    >>> describe(np.float64(0.5))
    ('() float64', '0.5')
    >>> describe(np.array([1.0, 2.0]))
    ('(2,) float64', '[1, 2]')
    >>> describe(np.arange(10.0))[1]
    'mean 4.5 std 2.87 in [0, 9]'
    """
    a = np.asarray(array)
    head = f"{tuple(a.shape)} {dtype_name(a.dtype)}"
    if a.dtype.kind not in "fcbiu":
        return head, ""
    if a.ndim == 0:
        return head, number(a.item())
    if a.size <= SMALL:
        return head, "[" + ", ".join(number(v) for v in a.ravel().tolist()) + "]"
    stats = Stats()
    stats.add(a)
    return head, stats.text()


def histogram(array: Optional[np.ndarray], bins: int = BINS) -> Optional[dict]:
    """Counts of the finite entries of ``array`` in ``bins`` equal bins: ``{"counts", "low", "high"}``.

    ``None`` for no array, a non-numeric one, or one without finite entries.
    Complex entries are counted by magnitude.

    Examples
    --------
    >>> histogram(np.array([0.0, 1.0, 1.0, np.nan]), bins=2)
    {'counts': [1, 2], 'low': 0.0, 'high': 1.0}
    """
    if array is None:
        return None
    a = np.asarray(array)
    if a.dtype.kind not in "fcbiu" or a.size == 0:
        return None
    a = (np.abs(a) if a.dtype.kind == "c" else a).astype(np.float64, copy=False).ravel()
    a = a[np.isfinite(a)]
    if a.size == 0:
        return None
    low, high = float(a.min()), float(a.max())
    if high > low:  # np.histogram's general binning costs ten times this for equal bins
        where = ((a - low) * (bins / (high - low))).astype(np.intp)
        np.minimum(where, bins - 1, out=where)
        counts = np.bincount(where, minlength=bins)
    else:
        counts = np.zeros(bins, np.intp)
        counts[bins // 2] = a.size
    return {"counts": counts.tolist(), "low": low, "high": high}
