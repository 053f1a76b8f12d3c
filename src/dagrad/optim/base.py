"""``Optimizer``: reads gradients from a backward ``Result`` and updates parameter arrays in place.

There is no ``zero_grad``: every ``graph.backward(...)`` returns fresh
gradients in a new ``Result``, so nothing accumulates between steps unless you
add gradients up yourself. A parameter with no gradient in the result (not on
a path to the loss, or left out of ``wrt``) is skipped, as PyTorch skips a
parameter whose ``.grad`` is None; its optimizer state is left untouched.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Union

import numpy as np

from ..errors import DagradError
from .schedules import Schedule, constant

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..result import Result

__all__ = ["Optimizer", "global_norm", "clip_by_global_norm"]

Params = Union["Graph", Mapping[str, np.ndarray]]


def global_norm(grads: Iterable[np.ndarray]) -> float:
    """L2 norm of all the gradients together, as if they were one long vector."""
    total = 0.0
    for g in grads:
        flat = g.reshape(-1)
        total += float(np.dot(flat, flat))
    return math.sqrt(total)


def clip_by_global_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> tuple[dict, float]:
    """``(grads scaled so their global norm is at most max_norm, the norm before clipping)``.

    Scaling all gradients by one factor keeps the update's direction; the
    arrays passed in are not modified.

    >>> import numpy as np
    >>> clipped, norm = clip_by_global_norm({"a": np.array([3.0]), "b": np.array([4.0])}, 1.0)
    >>> norm, np.round(clipped["a"], 4), np.round(clipped["b"], 4)
    (5.0, array([0.6]), array([0.8]))
    """
    norm = global_norm(grads.values())
    if norm <= max_norm:
        return dict(grads), norm
    scale = max_norm / (norm + 1e-6)
    return {name: g * np.asarray(scale, g.dtype) for name, g in grads.items()}, norm


class Optimizer:
    """Base class: the step count, the learning-rate schedule, clipping and per-parameter state.

    Subclasses implement ``update(name, param, grad, lr, state)``.

    Parameters
    ----------
    params
        A ``Graph`` (its trainable params, looked up at every step, so
        ``set_value`` and newly added layers are seen) or a dict of name -> array.
    lr
        Learning rate, or a schedule: a callable ``step -> lr`` of the number
        of steps already taken (see ``dagrad.optim.schedules``).
    clip_norm
        If given, gradients are scaled together so that their global L2 norm is
        at most ``clip_norm`` before the update; ``last_grad_norm`` records the
        norm before clipping.
    """

    def __init__(self, params: Params, lr: Union[float, Schedule] = 0.01, *, clip_norm: Optional[float] = None):
        if not hasattr(params, "params") and not isinstance(params, Mapping):
            raise DagradError(f"{type(self).__name__}: params must be a Graph or a dict of name -> array, not {type(params).__name__}")
        if clip_norm is not None and not clip_norm > 0:
            raise DagradError(f"{type(self).__name__}: clip_norm must be positive, not {clip_norm!r}")
        self.source = params
        self.schedule: Schedule = lr if callable(lr) else constant(float(lr))
        self.clip_norm = clip_norm
        self.steps = 0
        self.state: dict[str, dict] = {}
        self.last_grad_norm: Optional[float] = None
        self.last_lr: Optional[float] = None

    @property
    def lr(self) -> float:
        """The learning rate the next step will use."""
        return float(self.schedule(self.steps))

    def params(self) -> dict[str, np.ndarray]:
        """The live parameter arrays, by name."""
        source = self.source
        return dict(source.params) if hasattr(source, "params") else dict(source)

    def step(self, result: "Result") -> None:
        """Update every parameter that has a gradient in ``result``, in place."""
        params = self.params()
        grads = {}
        for name, p in params.items():
            g = result.grads.get(name)
            if g is None:
                continue
            if g.shape != p.shape:
                raise DagradError(
                    f"{type(self).__name__}: gradient of {name!r} has shape {g.shape}, the parameter {p.shape}"
                )
            grads[name] = g
        if self.clip_norm is not None:
            grads, self.last_grad_norm = clip_by_global_norm(grads, self.clip_norm)
        lr = self.lr
        for name, g in grads.items():
            self.update(name, params[name], g, lr, self.state.setdefault(name, {}))
        self.last_lr = lr
        self.steps += 1

    def update(self, name: str, param: np.ndarray, grad: np.ndarray, lr: float, state: dict) -> None:
        """Change ``param`` in place from ``grad``; ``state`` is this parameter's own dict."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} lr={self.lr:g}, {self.steps} steps>"


def _check(condition: bool, optimizer: str, message: str) -> None:
    if not condition:
        raise DagradError(f"{optimizer}: {message}")


def _param_float(value: Any, name: str, optimizer: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DagradError(f"{optimizer}: {name} must be a number, not {value!r}") from None
