"""What a training run records (``History``) and what callbacks see of it while it runs (``TrainState``)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from ..render import plots

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..optim import Optimizer

__all__ = ["History", "TrainState"]


@dataclass(repr=False)
class History:
    """What ``fit`` recorded, and plots of it (``plot_grad_norms``, ``plot_metrics``, ``plot_grad_flow``).

    Attributes
    ----------
    steps, epoch_of_step, loss, lr : list
        One entry per recorded step (step 1 and every ``every``-th step, plus
        every step drawn by a callback): the 1-based step, its epoch, the batch
        loss and the learning rate used.
    grad_norms : dict[str, list[float]]
        For each parameter, the L2 norm of its gradient at each recorded step
        (0.0 when the parameter got no gradient).
    grad_means, grad_maxes : dict[str, list[float]]
        For each parameter, the mean and the largest absolute entry of its
        gradient at each recorded step (what ``plot_grad_flow`` draws).
    sizes : dict[str, int]
        Each parameter's number of entries (to average a layer's |grad| over all of them).
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
    grad_means: dict = field(default_factory=dict)
    grad_maxes: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
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
            if g is None or g.size == 0:
                norm = mean = largest = 0.0
            else:
                self.sizes[name] = int(g.size)
                flat = np.abs(g.reshape(-1))
                norm, mean, largest = float(np.sqrt(np.dot(flat, flat))), float(flat.mean()), float(flat.max())
            self.grad_norms.setdefault(name, []).append(norm)
            self.grad_means.setdefault(name, []).append(mean)
            self.grad_maxes.setdefault(name, []).append(largest)

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
            "lr": self.lr, "grad_norms": self.grad_norms, "grad_means": self.grad_means,
            "grad_maxes": self.grad_maxes, "sizes": self.sizes, "epochs": self.epochs, "skipped": self.skipped,
            "stopped_early": self.stopped_early, "interrupted": self.interrupted, "seconds": self.seconds,
        }

    # The per-step series grow with training; a checkpoint keeps them as arrays, the rest as JSON.
    _SERIES = {"steps": np.int64, "epoch_of_step": np.int64, "loss": np.float64, "lr": np.float64}
    _PER_PARAM = ("grad_norms", "grad_means", "grad_maxes")

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(JSON-ready dict, arrays)`` holding everything recorded, for a checkpoint; see ``from_state``."""
        arrays = {name: np.asarray(getattr(self, name), dtype) for name, dtype in self._SERIES.items()}
        norms = list(self.grad_norms)
        for i, name in enumerate(norms):
            for series in self._PER_PARAM:
                arrays[f"{series}/{i}"] = np.asarray(getattr(self, series).get(name, ()), np.float64)
        info = {"every": self.every, "grad_norms": norms, "sizes": self.sizes, "epochs": self.epochs,
                "skipped": self.skipped, "stopped_early": self.stopped_early, "seconds": self.seconds}
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
                      seconds=float(info["seconds"]), sizes={str(k): int(v) for k, v in info.get("sizes", {}).items()})
        lengths = set()
        for name in cls._SERIES:
            series = arrays[name]
            lengths.add(series.shape)
            setattr(history, name, series.tolist())
        for i, name in enumerate(info["grad_norms"]):
            for kind in cls._PER_PARAM:
                series = arrays[f"{kind}/{i}"]
                lengths.add(series.shape)
                getattr(history, kind)[str(name)] = series.tolist()
        if len(lengths) > 1 or any(len(shape) != 1 for shape in lengths):
            raise ValueError(f"the recorded series have different lengths: {sorted(lengths)}")
        return history

    # ------------------------------------------------------------- display --

    def __repr__(self) -> str:
        """One line: how long, how many steps, the loss from first to last, the last epoch's scores."""
        parts = [f"{len(self.epochs)} epochs", f"{len(self.steps)} steps recorded"
                 + (f" (every {self.every})" if self.every > 1 else "")]
        if self.loss:
            parts.append(f"loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g}")
        if self.epochs:
            last = self.epochs[-1]
            parts += [f"{k} {v:.4g}" for k, v in last.items() if k not in ("epoch", "loss", "seconds")
                      and isinstance(v, (int, float))]
        parts.append(f"{len(self.grad_norms)} parameters")
        if self.stopped_early:
            parts.append("stopped early")
        return f"<History: {', '.join(parts)}, {self.seconds:.1f}s>"

    def _repr_html_(self) -> str:
        """The epochs as a table (the first three and the last five when there are many)."""
        rows = self.epochs
        shown = rows if len(rows) <= 10 else rows[:3] + [None] + rows[-5:]
        keys = [k for k in (rows[-1] if rows else {}) if k != "seconds"] + (["seconds"] if rows else [])
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = []
        for row in shown:
            if row is None:
                body.append(f'<tr><td colspan="{len(keys)}">\u2026 {len(rows) - 8} more epochs</td></tr>')
                continue
            cells = "".join(f"<td>{_cell(row.get(k))}</td>" for k in keys)
            body.append(f"<tr>{cells}</tr>")
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>" if rows else ""
        return f"<p>{html.escape(repr(self))}</p>{table}"

    # --------------------------------------------------------------- plots --

    def plot_grad_norms(self, ax: Any = None, *, layers: bool = True, log: bool = True) -> Any:
        """Each layer's (or, with ``layers=False``, each parameter's) gradient norm over the steps, log scale.

        Needs matplotlib (``pip install 'dagrad[plot]'``); returns the Axes.
        """
        return plots.grad_norms(self, ax, layers=layers, log=log)

    def plot_metrics(self, ax: Any = None, *, keys: Optional[Sequence[str]] = None) -> Any:
        """Loss and every metric over the epochs (validation dashed). Needs matplotlib; returns the Axes."""
        return plots.metrics(self, ax, keys=keys)

    def plot_grad_flow(self, steps: Optional[Sequence[int]] = None, ax: Any = None, *,
                       exploding: float = 1e3) -> Any:
        """Mean and max |grad| of each layer at ``steps`` (default: the first and the last), as bars.

        A layer whose gradient is exactly zero is marked dead, one above
        ``exploding`` (or NaN/Inf) exploding. Needs matplotlib; returns the Axes.
        """
        return plots.grad_flow(self, steps, ax, exploding=exploding)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value)) if value is not None else ""


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
