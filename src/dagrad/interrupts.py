"""Holding Ctrl-C back while a change that must be all-or-nothing is made.

An optimizer step updates many arrays one after another; a ``KeyboardInterrupt``
arriving between two of them would leave parameters at different steps. Inside
``deferred_interrupt()`` a SIGINT is only recorded; when the block ends, the
previous handler gets it (Python's default raises ``KeyboardInterrupt`` there),
so the interrupt lands just after the change instead of in the middle of it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

__all__ = ["deferred_interrupt"]

_depth = 0  # nesting of deferred_interrupt blocks in the main thread (only it receives signals)


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with SIGINT held back until it ends (outside the main thread, a plain block).

    Blocks nest: only the outermost one installs the holding handler and
    delivers a held signal.

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
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are delivered to the main thread only
        return
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler installed outside Python: it cannot be put back, so leave it alone
        yield
        return
    held: list = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append((signum, frame)))
    _depth = 1
    try:
        yield
    finally:
        _depth = 0
        signal.signal(signal.SIGINT, previous)
        if held:
            signum, frame = held[0]
            if callable(previous):
                previous(signum, frame)  # Python's default handler raises KeyboardInterrupt here
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signum)
