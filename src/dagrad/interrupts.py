"""Holding Ctrl-C back while a change that must be all-or-nothing is made.

An optimizer step updates many arrays one after another; a ``KeyboardInterrupt``
arriving between two of them would leave parameters at different steps. Inside
``deferred_interrupt()`` a SIGINT is only recorded; when the block ends, the
previous handler gets it (Python's default raises ``KeyboardInterrupt`` there),
so the interrupt lands just after the change instead of in the middle of it.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["deferred_interrupt"]

_held: list = []  # signals received inside the outermost block: (signum, frame)
_depth = 0  # nesting of blocks in the main thread (only it receives signals)


def _hold(signum: int, frame: Any) -> None:
    _held.append((signum, frame))


class deferred_interrupt:  # noqa: N801 - used like a function: ``with deferred_interrupt():``
    """Run the block with SIGINT held back until it ends (outside the main thread, a plain block).

    Blocks nest: only the outermost one installs the holding handler and
    delivers a held signal. Entering and leaving costs two handler swaps,
    a few microseconds.

    >>> import os, signal
    >>> done = []
    >>> try:
    ...     with deferred_interrupt():
    ...         os.kill(os.getpid(), signal.SIGINT)   # arrives here...
    ...         done.append("whole block")
    ... except KeyboardInterrupt:
    ...     done.append("interrupted after it")       # ...and is raised here
    >>> done
    ['whole block', 'interrupted after it']
    """

    __slots__ = ("previous", "active")

    def __enter__(self) -> None:
        global _depth
        # Signals reach the main thread only; a handler installed outside Python (getsignal gives None)
        # could not be put back, so it is left alone.
        self.active = threading.current_thread() is threading.main_thread() and (
            _depth > 0 or signal.getsignal(signal.SIGINT) is not None)
        if not self.active:
            return
        _depth += 1
        if _depth == 1:
            self.previous = signal.signal(signal.SIGINT, _hold)

    def __exit__(self, *exc: Any) -> None:
        global _depth
        if not self.active:
            return
        _depth -= 1
        if _depth:
            return
        previous = self.previous
        signal.signal(signal.SIGINT, previous)
        if _held:
            signum, frame = _held[0]
            _held.clear()
            if callable(previous):
                previous(signum, frame)  # Python's default handler raises KeyboardInterrupt here
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signum)
