"""Callbacks: hooks into ``fit`` (early stopping, diagrams every N steps, and your own)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from ..errors import DagradError
from ..render import render
from .history import TrainState

if TYPE_CHECKING:  # pragma: no cover
    from ..result import Result

__all__ = ["Callback", "EarlyStopping", "RenderEvery"]


class Callback:
    """Hooks into ``fit``; override any of them. Every method has a no-op default."""

    def wants_full_result(self, state: TrainState, step: int) -> bool:
        """True to run ``step`` with ``keep="all"`` (every value and gradient, for diagrams)."""
        return False

    def on_fit_start(self, state: TrainState) -> None:
        """Before the first step."""

    def on_step_end(self, state: TrainState, result: "Result") -> None:
        """After the optimizer step; ``result`` holds the step's values and gradients."""

    def on_epoch_end(self, state: TrainState, logs: dict) -> None:
        """After each epoch's validation; ``logs`` is the epoch's entry in ``History.epochs``."""

    def on_fit_end(self, state: TrainState) -> None:
        """After the last step, also when stopped early."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``mode`` is ``"min"`` or ``"max"``; ``"auto"`` picks ``"max"`` for names
    containing ``acc`` and ``"min"`` otherwise. With ``restore_best`` the
    parameters are put back (in place) to their values at the best epoch.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best: bool = True):
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise DagradError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', not {mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, int(patience), float(min_delta), mode
        self.restore_best = restore_best
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.stopped_epoch: Optional[int] = None
        self._wait = 0
        self._snapshot: dict[str, np.ndarray] = {}

    def on_fit_start(self, state: TrainState) -> None:
        self.best = self.best_epoch = self.stopped_epoch = None
        self._wait = 0
        self._snapshot = {}

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, state: TrainState, logs: dict) -> None:
        if self.monitor not in logs:
            raise DagradError(
                f"EarlyStopping: no {self.monitor!r} after epoch {logs.get('epoch')} "
                f"(have {', '.join(k for k in logs if k not in ('epoch', 'seconds'))}); "
                "monitoring val_... needs validation= data"
            )
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self._wait = value, logs["epoch"], 0
            if self.restore_best:
                self._snapshot = {name: p.copy() for name, p in state.graph.params.items()}
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = logs["epoch"]
            state.stop = True

    def on_fit_end(self, state: TrainState) -> None:
        if self.restore_best and self._snapshot and self.stopped_epoch is not None:
            live = state.graph.params
            for name, saved in self._snapshot.items():
                if name in live:
                    np.copyto(live[name], saved)


class RenderEvery(Callback):
    """Draw a gradient-flow diagram (through ``dagrad.render``) every ``every`` steps.

    Files go to ``directory/{prefix}{step:05d}.{format}``; ``first`` and
    ``last`` also draw step 1 and the final planned step; ``every=None`` draws
    only those. The paths written are in ``paths`` (and the results in
    ``results``, by step, with ``keep_results=True``). Extra keywords go to
    ``dagrad.render``.
    """

    def __init__(self, every: Optional[int] = 100, directory: Union[str, Path] = "diagrams", *, prefix: str = "step",
                 format: str = "svg", first: bool = True, last: bool = True, keep_results: bool = False,
                 **render_options: Any):
        if every is not None and every < 1:
            raise DagradError(f"RenderEvery: every must be a positive number of steps or None, not {every!r}")
        self.every, self.directory, self.prefix, self.format = every, Path(directory), prefix, format
        self.first, self.last, self.keep_results = first, last, keep_results
        self.render_options = render_options
        self.paths: list[Path] = []
        self.results: dict[int, "Result"] = {}

    def wants_full_result(self, state: TrainState, step: int) -> bool:
        return ((self.every is not None and step % self.every == 0) or (self.first and step == 1)
                or (self.last and step == state.total_steps))

    def on_fit_start(self, state: TrainState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def on_step_end(self, state: TrainState, result: "Result") -> None:
        if not self.wants_full_result(state, state.step):
            return
        path = self.directory / f"{self.prefix}{state.step:05d}.{self.format}"
        render(result, path, **self.render_options)
        self.paths.append(path)
        if self.keep_results:
            self.results[state.step] = result
