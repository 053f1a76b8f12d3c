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
    skipped : list[int]
        Steps whose update was skipped for a NaN/Inf loss or gradient
        (``fit(..., on_nonfinite="skip")``).
    stopped_early, interrupted : bool
        Whether a callback stopped the fit, or an exception (Ctrl-C) ended it;
        an interrupted fit's History is the exception's ``history`` attribute.
    """

    every: int = 1
    steps: list = field(default_factory=list)
    epoch_of_step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    grad_norms: dict = field(default_factory=dict)
    epochs: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    stopped_early: bool = False
    interrupted: bool = False
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
            "lr": self.lr, "grad_norms": self.grad_norms, "epochs": self.epochs, "skipped": self.skipped,
            "stopped_early": self.stopped_early, "interrupted": self.interrupted, "seconds": self.seconds,
        }

    # The per-step series grow with training; a checkpoint keeps them as arrays, the rest as JSON.
    _SERIES = {"steps": np.int64, "epoch_of_step": np.int64, "loss": np.float64, "lr": np.float64}

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(JSON-ready dict, arrays)`` holding everything recorded, for a checkpoint; see ``from_state``."""
        arrays = {name: np.asarray(getattr(self, name), dtype) for name, dtype in self._SERIES.items()}
        norms = list(self.grad_norms)
        for i, name in enumerate(norms):
            arrays[f"grad_norms/{i}"] = np.asarray(self.grad_norms[name], np.float64)
        info = {"every": self.every, "grad_norms": norms, "epochs": self.epochs, "skipped": self.skipped,
                "stopped_early": self.stopped_early, "seconds": self.seconds}
        return info, arrays

    @classmethod
    def from_state(cls, info: Mapping, arrays: Mapping[str, np.ndarray]) -> "History":
        """The History ``state()`` described; ``ValueError`` if the parts do not fit together.

        >>> h = History(every=2)
        >>> h.record(1, 1, 0.5, 0.1, {"w": np.array([3.0, 4.0])})
        >>> again = History.from_state(*h.state())
        >>> again.loss, again.grad_norms
        ([0.5], {'w': [5.0]})
        """
        history = cls(every=int(info["every"]), epochs=[dict(e) for e in info["epochs"]],
                      skipped=[int(s) for s in info["skipped"]], stopped_early=bool(info["stopped_early"]),
                      seconds=float(info["seconds"]))
        lengths = set()
        for name in cls._SERIES:
            series = arrays[name]
            lengths.add(series.shape)
            setattr(history, name, series.tolist())
        for i, name in enumerate(info["grad_norms"]):
            series = arrays[f"grad_norms/{i}"]
            lengths.add(series.shape)
            history.grad_norms[str(name)] = series.tolist()
        if len(lengths) > 1 or any(len(shape) != 1 for shape in lengths):
            raise ValueError(f"the recorded series have different lengths: {sorted(lengths)}")
        return history


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
