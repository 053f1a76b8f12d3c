"""Gradient flow over training, drawn with matplotlib from a ``History`` (``History.plot_*`` call these).

Three pictures answer three questions. ``grad_norms``: did each layer's
gradient shrink, grow or vanish as training went on (log scale)?
``metrics``: did the loss fall and the scores rise, on training and
validation data? ``grad_flow``: at a given step, how large were the
gradients layer by layer, from input to output, and is any layer dead (an
exactly zero gradient) or exploding? It is the bar chart PyTorch users know
as ``plot_grad_flow``.

matplotlib is optional (``pip install 'dagrad[plot]'``): it is imported only
when a plot is asked for, and its absence is a ``RenderError`` saying so.
A layer is a parameter's scope (``fc1`` for ``fc1/W`` and ``fc1/b``); a
parameter outside any scope is its own layer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..errors import RenderError

if TYPE_CHECKING:  # pragma: no cover
    from ..train.history import History

__all__ = ["grad_norms", "metrics", "grad_flow", "layers_of", "pyplot"]

DEAD, EXPLODING = "#ffb000", "#e41a1c"
MEAN, MAX = "#2171b5", "#9ecae1"


def pyplot():
    """matplotlib's pyplot, or a ``RenderError`` naming what to install."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise RenderError(
            "plotting a History needs matplotlib: pip install 'dagrad[plot]' (or pip install matplotlib)"
        ) from None
    return plt


def layers_of(names: Sequence[str]) -> dict[str, list[str]]:
    """``{layer: [parameter names]}`` in first-seen order; a layer is a parameter's scope."""
    layers: dict[str, list[str]] = {}
    for name in names:
        layers.setdefault(name.rpartition("/")[0] or name, []).append(name)
    return layers


def _axes(ax: Any, size=(7.0, 4.0)):
    if ax is not None:
        return ax
    _, ax = pyplot().subplots(figsize=size, layout="constrained")
    return ax


def _need(history: "History", what: str) -> None:
    if not history.steps:
        raise RenderError(f"this History recorded no training step, so there is no {what} to plot")


def grad_norms(history: "History", ax: Any = None, *, layers: bool = True, log: bool = True) -> Any:
    """Gradient norm per layer (root of the sum of its parameters' squared norms) against the step."""
    _need(history, "gradient norm")
    ax = _axes(ax)
    series = {name: history.grad_norms[name] for name in history.grad_norms}
    if layers:
        series = {layer: [math.sqrt(sum(history.grad_norms[n][i] ** 2 for n in names))
                          for i in range(len(history.steps))]
                  for layer, names in layers_of(list(history.grad_norms)).items()}
    for label, values in series.items():
        if log:  # a zero norm has no place on a log axis: it is a gap in the line
            values = [v if v > 0 else math.nan for v in values]
        ax.plot(history.steps, values, label=label, linewidth=1.2)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient L2 norm" + (" per layer" if layers else ""))
    ax.set_title("Gradient norm over training")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", ncols=2 if len(series) > 6 else 1)
    return ax


def metrics(history: "History", ax: Any = None, *, keys: Optional[Sequence[str]] = None) -> Any:
    """Loss and metrics per epoch; validation curves dashed in the same colour as their training curve."""
    if not history.epochs:
        raise RenderError("this History has no finished epoch, so there are no per-epoch values to plot")
    ax = _axes(ax)
    known = [k for k in history.epochs[-1] if k not in ("epoch", "seconds") and not k.startswith("val_")]
    for key in keys or known:
        epochs = [e["epoch"] for e in history.epochs]
        line, = ax.plot(epochs, history[key], marker="o", markersize=3, label=key)
        if f"val_{key}" in history.epochs[-1]:
            ax.plot(epochs, history[f"val_{key}"], linestyle="--", color=line.get_color(), label=f"val_{key}")
    ax.set_xlabel("epoch")
    ax.set_title("Loss and metrics per epoch")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def grad_flow(history: "History", steps: Optional[Sequence[int]] = None, ax: Any = None, *,
              exploding: float = 1e3) -> Any:
    """Bars of mean and max |grad| per layer at each of ``steps``, on a log axis, dead and exploding layers marked."""
    _need(history, "gradient")
    if not history.grad_maxes:
        raise RenderError("this History has no mean/max |grad| (it was recorded by an older dagrad)")
    chosen = list(steps) if steps is not None else sorted({history.steps[0], history.steps[-1]})
    missing = [s for s in chosen if s not in history.steps]
    if missing:
        raise RenderError(f"steps {missing} were not recorded (recorded: every {history.every} steps, "
                          f"{history.steps[0]} to {history.steps[-1]})")
    layers = layers_of(list(history.grad_maxes))
    ax = _axes(ax, size=(max(6.0, 1.1 * len(layers) * len(chosen) + 2), 4.2))
    width = 0.8 / len(chosen)
    marked = {"dead": False, "exploding": False}
    for j, step in enumerate(chosen):
        i = history.steps.index(step)
        for x, (layer, names) in enumerate(layers.items()):
            sizes = [history.sizes.get(n, 1) for n in names]
            mean = sum(history.grad_means[n][i] * k for n, k in zip(names, sizes)) / sum(sizes)  # over all entries
            largest = max(history.grad_maxes[n][i] for n in names)
            left = x - 0.4 + j * width
            alpha = 0.45 + 0.55 * (j + 1) / len(chosen)
            for value, colour, label in ((largest, MAX, "max |grad|"), (mean, MEAN, "mean |grad|")):
                shown = value if 0 < value < math.inf else math.nan  # a log axis has no zero (nor infinity)
                ax.bar(left, shown, width * 0.95, align="edge", color=colour, alpha=alpha,
                       label=label if x == 0 and j == len(chosen) - 1 else None)
            if len(chosen) > 1 and 0 < largest < math.inf:
                ax.annotate(f"step {step}", (left + width / 2, largest), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7, color="#555555")
            state = "dead" if largest == 0 else (
                "exploding" if not math.isfinite(largest) or largest > exploding else "")
            if state:
                marked[state] = True
                ax.axvspan(left, left + width, color=DEAD if state == "dead" else EXPLODING, alpha=0.25, zorder=0)
                ax.annotate(state, (left + width / 2, 0.5), xycoords=("data", "axes fraction"), ha="center",
                            rotation=90, fontsize=8, color=DEAD if state == "dead" else EXPLODING, weight="bold")
    ax.set_yscale("log")
    ax.set_xticks(range(len(layers)), list(layers), rotation=30 if len(layers) > 6 else 0, ha="right"
                  if len(layers) > 6 else "center")
    ax.set_xlim(-0.6, len(layers) - 0.4)
    ax.set_xlabel("layer (input side on the left)")
    ax.set_ylabel("|gradient|")
    steps_text = ", ".join(str(s) for s in chosen)
    ax.set_title(f"Gradient flow per layer at step{'s' if len(chosen) > 1 else ''} {steps_text}"
                 + (" (later steps darker)" if len(chosen) > 1 else ""))
    handles, labels = ax.get_legend_handles_labels()
    from matplotlib.patches import Patch

    for state, colour in (("dead", DEAD), ("exploding", EXPLODING)):
        if marked[state]:
            handles.append(Patch(color=colour, alpha=0.25))
            labels.append(f"{state} layer" + (f" (> {exploding:g})" if state == "exploding" else " (zero gradient)"))
    ax.legend(handles, labels, fontsize="small")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    return ax
