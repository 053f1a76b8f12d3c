"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as PyTorch computes them."""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np

from .base import Optimizer, Params, _check, _param_float
from .schedules import Schedule

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adaptive moments: a step of about ``lr`` per parameter, scaled by its recent gradients.

    For each parameter, with its own step count ``t`` (1 on its first update)::

        m = b1 * m + (1 - b1) * g            # running mean of gradients
        v = b2 * v + (1 - b2) * g * g        # running mean of squared gradients
        p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)

    The ``1 - b**t`` factors undo the bias of ``m`` and ``v`` towards their zero
    start. ``weight_decay`` adds ``wd * p`` to the gradient (an L2 penalty, which
    Adam then rescales; use ``AdamW`` for decay that is not rescaled).

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> params = {"w": np.array([1.0, -1.0])}
    >>> opt = dg.optim.Adam(params, lr=0.1)
    >>> class R: grads = {"w": np.array([5.0, -0.01])}
    >>> opt.step(R)
    >>> np.round(params["w"], 6)                   # the first step is lr * sign(g)
    array([ 0.9, -0.9])
    """

    decoupled = False
    default_weight_decay = 0.0
    hyperparameter_names = ("beta1", "beta2", "eps", "weight_decay", "decoupled")

    def __init__(
        self,
        params: Params,
        lr: Union[float, Schedule] = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: Optional[float] = None,
        *,
        clip_norm: float | None = None,
        on_nonfinite: str = "raise",
    ):
        super().__init__(params, lr, clip_norm=clip_norm, on_nonfinite=on_nonfinite)
        if weight_decay is None:
            weight_decay = self.default_weight_decay
        kind = type(self).__name__
        self.beta1 = _param_float(betas[0], "betas[0]", kind)
        self.beta2 = _param_float(betas[1], "betas[1]", kind)
        self.eps = _param_float(eps, "eps", kind)
        self.weight_decay = _param_float(weight_decay, "weight_decay", kind)
        _check(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, kind, f"betas must be in [0, 1), not {betas}")
        _check(self.eps >= 0 and self.weight_decay >= 0, kind, "eps and weight_decay must be >= 0")

    def update(self, name: str, param: np.ndarray, grad: np.ndarray, lr: float, state: dict) -> None:
        if self.weight_decay:
            if self.decoupled:
                param *= 1.0 - lr * self.weight_decay
            else:
                grad = grad + self.weight_decay * param
        if "t" not in state:
            state["t"] = 0
            state["m"] = np.zeros_like(param)
            state["v"] = np.zeros_like(param)
        if "_scratch" not in state:  # reused every step: no temporaries in the update (not saved in checkpoints)
            state["_scratch"] = np.empty_like(param)
        state["t"] = t = state["t"] + 1
        m, v, tmp = state["m"], state["v"], state["_scratch"]
        b1, b2 = self.beta1, self.beta2
        np.multiply(grad, 1.0 - b1, out=tmp)
        m *= b1
        m += tmp
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - b2
        v *= b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp /= math.sqrt(1.0 - b2**t)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr / (1.0 - b1**t)
        param -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * wd`` before the Adam step (default ``wd=0.01``).

    Unlike L2 decay in ``Adam``, this shrinks every weight by the same fraction,
    however large or small its gradients have been.
    """

    decoupled = True
    default_weight_decay = 0.01
