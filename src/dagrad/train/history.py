"""What a training run records (``History``) and what callbacks see of it while it runs (``TrainState``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Optional

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..optim import Optimizer

__all__ = ["History", "TrainState"]


@dataclass
class History:
    """What ``fit`` recorded.

    Attributes
    ----------
    steps, epoch_of_step, loss, lr : list
        One entry per recorded step (step 1 and every ``every``-th step, plus
        every step drawn by a callback): the 1-based step, its epoch, the batch
        loss and the learning rate used.
    grad_norms : dict[str, list[float]]
        For each parameter, the L2 norm of its gradient at each recorded step
        (0.0 when the parameter got no gradient).
    epochs : list[dict]
        One dict per finished epoch: ``epoch``, ``loss``, each metric, the
        ``val_`` versions with validation data, and ``seconds``.
    """

    every: int = 1
    steps: list = field(default_factory=list)
    epoch_of_step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    grad_norms: dict = field(default_factory=dict)
    epochs: list = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0

    def record(self, step: int, epoch: int, loss: float, lr: float, grads: Mapping[str, Optional[np.ndarray]]) -> None:
        self.steps.append(step)
        self.epoch_of_step.append(epoch)
        self.loss.append(loss)
        self.lr.append(lr)
        for name, g in grads.items():
            norm = 0.0 if g is None else float(np.sqrt(np.dot(g.reshape(-1), g.reshape(-1))))
            self.grad_norms.setdefault(name, []).append(norm)

    def __getitem__(self, key: str) -> list:
        """Per-epoch values of ``key``: ``history["val_accuracy"]``."""
        if not self.epochs or key not in self.epochs[-1]:
            known = ", ".join(self.epochs[-1]) if self.epochs else "none yet"
            raise KeyError(f"no per-epoch value {key!r} (known: {known})")
        return [e.get(key) for e in self.epochs]

    def grad_norms_at(self, step: int) -> dict[str, float]:
        """Every parameter's gradient norm at a recorded ``step``."""
        try:
            i = self.steps.index(step)
        except ValueError:
            raise KeyError(f"step {step} was not recorded (recorded every {self.every} steps)") from None
        return {name: norms[i] for name, norms in self.grad_norms.items()}

    def as_dict(self) -> dict:
        """Plain lists and dicts, ready for ``json.dump``."""
        return {
            "every": self.every, "steps": self.steps, "epoch_of_step": self.epoch_of_step, "loss": self.loss,
            "lr": self.lr, "grad_norms": self.grad_norms, "epochs": self.epochs,
            "stopped_early": self.stopped_early, "seconds": self.seconds,
        }


@dataclass
class TrainState:
    """What callbacks see of a running ``fit``; set ``stop = True`` to end it after this step or epoch."""

    graph: "Graph"
    loss: str
    optimizer: "Optimizer"
    history: History
    epochs: int
    steps_per_epoch: int
    epoch: int = 0
    step: int = 0
    stop: bool = False

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch
