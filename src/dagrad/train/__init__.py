"""Training: the fit loop, its history, callbacks and metrics (one module per job, re-exported here)."""

from __future__ import annotations

from .callbacks import Callback, EarlyStopping, RenderEvery
from .history import History, TrainState
from .loop import evaluate, fit, predict
from .metrics import Metric, accuracy

__all__ = [
    "fit", "evaluate", "predict", "History", "TrainState", "Metric", "accuracy",
    "Callback", "EarlyStopping", "RenderEvery",
]
