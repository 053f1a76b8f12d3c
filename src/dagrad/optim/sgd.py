"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay (PyTorch's formulation)."""

from __future__ import annotations

from typing import Union

import numpy as np

from .base import Optimizer, Params, _check, _param_float
from .schedules import Schedule

__all__ = ["SGD"]


class SGD(Optimizer):
    """``p -= lr * d`` where ``d`` is the gradient, or a running sum of gradients with momentum.

    With weight decay ``wd`` the gradient becomes ``g + wd * p`` (an L2 penalty).
    With momentum ``mu`` a buffer ``b = mu * b + (1 - dampening) * g`` is kept
    (``b = g`` on a parameter's first step) and ``d = b``, or with Nesterov
    ``d = g + mu * b``.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> params = {"w": np.array([1.0])}
    >>> opt = dg.optim.SGD(params, lr=0.1, momentum=0.9)
    >>> class R: grads = {"w": np.array([1.0])}   # stands in for a backward Result
    >>> opt.step(R); opt.step(R)
    >>> params["w"]                                # 1 - 0.1*1 - 0.1*(0.9 + 1)
    array([0.71])
    """

    hyperparameter_names = ("momentum", "nesterov", "weight_decay", "dampening")

    def __init__(
        self,
        params: Params,
        lr: Union[float, Schedule] = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
        *,
        clip_norm: float | None = None,
        on_nonfinite: str = "raise",
    ):
        super().__init__(params, lr, clip_norm=clip_norm, on_nonfinite=on_nonfinite)
        self.momentum = _param_float(momentum, "momentum", "SGD")
        self.weight_decay = _param_float(weight_decay, "weight_decay", "SGD")
        self.dampening = _param_float(dampening, "dampening", "SGD")
        self.nesterov = bool(nesterov)
        _check(self.momentum >= 0, "SGD", f"momentum must be >= 0, not {momentum}")
        _check(self.weight_decay >= 0, "SGD", f"weight_decay must be >= 0, not {weight_decay}")
        _check(not self.nesterov or (self.momentum > 0 and self.dampening == 0), "SGD",
               "Nesterov momentum needs momentum > 0 and dampening = 0")

    def update(self, name: str, param: np.ndarray, grad: np.ndarray, lr: float, state: dict) -> None:
        d = grad
        if self.weight_decay:
            d = d + self.weight_decay * param
        mu = self.momentum
        if mu:
            buf = state.get("momentum")
            if buf is None:
                buf = state["momentum"] = np.array(d, dtype=param.dtype)
            else:
                buf *= mu
                buf += (1.0 - self.dampening) * d
            d = d + mu * buf if self.nesterov else buf
        param -= lr * d
