"""Learning-rate schedules: callables ``step -> lr`` of the number of optimizer steps already taken.

Pass one as an optimizer's ``lr``; any function of the step count works the same way.

>>> from dagrad.optim import schedules
>>> s = schedules.step_decay(0.1, every=10, gamma=0.5)
>>> s(0), s(9), s(10), s(25)
(0.1, 0.1, 0.05, 0.025)
>>> c = schedules.cosine(1.0, total_steps=100)
>>> c(0), round(c(50), 6), c(100), c(150)
(1.0, 0.5, 0.0, 0.0)
"""

from __future__ import annotations

import math
from typing import Callable

from ..errors import DagradError

__all__ = ["Schedule", "constant", "step_decay", "step", "cosine"]

Schedule = Callable[[int], float]


def constant(lr: float) -> Schedule:
    """The same ``lr`` at every step."""

    def schedule(step: int) -> float:
        return lr

    return schedule


def step_decay(lr: float, every: int, gamma: float = 0.1) -> Schedule:
    """``lr`` multiplied by ``gamma`` after every ``every`` steps."""
    if every < 1:
        raise DagradError(f"every must be at least 1, not {every}")

    def schedule(step: int) -> float:
        return lr * gamma ** (step // every)

    return schedule


step = step_decay


def cosine(lr: float, total_steps: int, min_lr: float = 0.0, warmup: int = 0) -> Schedule:
    """Linear warm-up over ``warmup`` steps, then half a cosine from ``lr`` down to ``min_lr`` at ``total_steps``.

    After ``total_steps`` the rate stays at ``min_lr``.
    """
    if total_steps <= warmup:
        raise DagradError(f"total_steps ({total_steps}) must exceed warmup ({warmup})")
    span = total_steps - warmup

    def schedule(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        progress = min(step - warmup, span) / span
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))

    return schedule
