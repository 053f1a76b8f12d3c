"""Training: the fit loop, its history, callbacks and metrics (one module per job, re-exported here)."""

from .callbacks import Callback, EarlyStopping, RenderEvery
from .history import History, TrainState
from .loop import apply_updates, evaluate, fit, predict
from .metrics import Metric, accuracy

__all__ = [
    "fit", "evaluate", "predict", "apply_updates", "History", "TrainState", "Metric", "accuracy",
    "Callback", "EarlyStopping", "RenderEvery",
]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
