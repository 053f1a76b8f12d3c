"""NaN/Inf checking: a per-context switch, and the error that names the first node that produced a bad value.

The switch lives in a ``contextvars.ContextVar``, so a ``with`` block in one
thread (or asyncio task) never turns checking on or off for another, and
leaving the block restores exactly what was there before.
"""

from __future__ import annotations

import contextvars
from typing import Any, Optional

import numpy as np

from ..errors import AnomalyError

__all__ = ["check_anomalies", "checking", "check_finite"]

_CHECK: contextvars.ContextVar[bool] = contextvars.ContextVar("dagrad_check_anomalies", default=False)


def checking() -> bool:
    """Whether anomaly checking is on in the current context."""
    return _CHECK.get()


class check_anomalies:
    """Turn NaN/Inf checking on or off in the current context; also usable as a context manager.

    With checking on, the first node whose forward value or VJP gradient holds
    NaN or Inf raises ``AnomalyError`` naming it. Called plainly, the setting
    stays for the rest of the current context (thread or asyncio task); as a
    ``with`` block it lasts for the block. Other threads are never affected.

    >>> import dagrad as dg
    >>> with dg.check_anomalies(True):
    ...     dg.scheduler.checking()
    True
    >>> dg.scheduler.checking()
    False
    """

    def __init__(self, enabled: bool = True):
        self._token = _CHECK.set(bool(enabled))

    def __enter__(self) -> "check_anomalies":
        return self

    def __exit__(self, *exc: Any) -> None:
        _CHECK.reset(self._token)


def _bad(array: Any) -> bool:
    return isinstance(array, np.ndarray) and array.dtype.kind in "fc" and not np.isfinite(array).all()


def check_finite(array: np.ndarray, name: str, op: Any, phase: str, inputs, into: Optional[str] = None,
                 placeholders: tuple = ()) -> None:
    """Raise ``AnomalyError`` if ``array`` holds NaN or Inf, naming the node and where it came from.

    ``placeholders`` are the positions of VJP inputs that were stand-ins
    (NaN-filled, for inputs the op does not save): NaN from them means the VJP
    read an input its ``saves=`` does not keep.
    """
    if not _bad(array):
        return
    nan = int(np.isnan(array).sum())
    inf = int(np.isinf(array).sum())
    target = f" for its input {into!r}" if into else ""
    if placeholders:
        listed = ", ".join(map(str, placeholders))
        saves = "inputs" if phase == "backward" else "out"
        cause = (f"(the VJP was given NaN placeholders for input(s) {listed}, which the op's saves= does not keep: "
                 f"if the VJP reads them, declare saves=({saves!r}, ...) on op {op.name!r})")
    elif any(_bad(a) for a in inputs):
        cause = "(some of its inputs were already non-finite)"
    else:
        cause = "from finite inputs"
    raise AnomalyError(
        f"node {name!r} (op {op.name!r}) produced {nan} NaN and {inf} Inf "
        f"of {array.size} entries{target} in the {phase} pass, {cause} [op {op.name!r} is from plugin {op.plugin!r}]",
        name,
        phase,
    )
