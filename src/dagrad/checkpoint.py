"""Checkpoints: a graph, its parameters, the optimizer's state and a training loop's own state, in one file.

A checkpoint is a model file (``dg.load`` reads one as a model) whose document
has a ``"training"`` section: the optimizer's ``state_dict`` (its arrays, such
as Adam's moments, stored beside the parameters) and whatever the loop that
wrote it needs to continue exactly (``fit`` keeps its position, the
data-order RNG and the History). It has the model file's guarantees: written
atomically, read with every size checked, arrays under keys dagrad chooses.

Examples
--------
>>> import os, tempfile, numpy as np, dagrad as dg
>>> from dagrad.checkpoint import save_checkpoint, load_checkpoint
>>> g = dg.Graph()
>>> w = g.param("w", np.array([3.0]))
>>> opt = dg.optim.Adam(g, lr=0.1)
>>> opt.step(g.backward(dg.sum(w * w)))
>>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
>>> save_checkpoint(path, g, opt)
>>> ckpt = load_checkpoint(path)
>>> ckpt.optimizer["steps"], ckpt.optimizer["state"]["w"]["t"]
(1, 1)
>>> fresh = dg.optim.Adam(g, lr=0.1)
>>> ckpt.restore(g, fresh)          # parameters and optimizer state, checked first
>>> fresh.steps
1
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional

import numpy as np

from .errors import DagradError
from .graph import Graph
from .io import DEFAULT_MAX_NODES, read_model, write_model
from .io.untrusted import Source, quote
from .io.writing import PathLike

if TYPE_CHECKING:  # pragma: no cover
    from .optim import Optimizer

__all__ = ["CHECKPOINT_VERSION", "Checkpoint", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_VERSION = 1
_SCALARS = (bool, int, float, str, type(None))


@dataclass
class Checkpoint:
    """What a checkpoint file holds.

    Attributes
    ----------
    graph
        The graph with its parameter values at the time of the checkpoint.
    optimizer
        The optimizer's ``state_dict``, arrays included.
    loop
        The training loop's JSON state (``fit``: its settings, position,
        data-order RNG, History summary).
    arrays
        The loop's arrays, by the names it gave them (``fit``: the History's series).
    """

    graph: Graph
    optimizer: dict
    loop: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)

    def restore(self, graph: Graph, optimizer: "Optimizer") -> None:
        """Put the saved parameters into ``graph`` and the saved state into ``optimizer``.

        ``graph`` must have the same nodes (names, ops, inputs, attrs, shapes,
        dtypes) as the saved one, which is checked, with the optimizer's state,
        before anything changes.
        """
        _check_same_structure(self.graph, graph)
        values = {n.name: self.graph.value(n.name) for n in self.graph.nodes() if n.kind in ("param", "const")}
        before = optimizer.state_dict()
        optimizer.load_state_dict(self.optimizer)  # checks, then changes; nothing below can fail on the input
        try:
            for name, value in values.items():
                graph.set_value(name, value)
        except BaseException:
            optimizer.load_state_dict(before)
            raise


def __dir__():  # dir() lists the public names, not the imports behind them
    return __all__


def _check_same_structure(saved: Graph, graph: Graph) -> None:
    mine = {n.name: n for n in graph.nodes()}
    for node in saved.nodes():
        other = mine.pop(node.name, None)
        fields = ("op", "inputs", "attrs", "shape", "dtype", "trainable")
        if other is None or any(getattr(node, f) != getattr(other, f) for f in fields):
            what = "is missing" if other is None else "differs: " + ", ".join(
                f"{f} {getattr(other, f)!r} here, {getattr(node, f)!r} in the checkpoint"
                for f in fields if getattr(node, f) != getattr(other, f))
            raise DagradError(f"graph {graph.name!r} does not match the checkpoint's: node {node.name!r} {what}; "
                              "rebuild the graph exactly as it was when the checkpoint was written")
    if mine:
        raise DagradError(f"graph {graph.name!r} does not match the checkpoint's: it has nodes the checkpoint lacks "
                          f"({', '.join(map(repr, list(mine)[:5]))})")
    if saved.updates != graph.updates:
        raise DagradError(f"graph {graph.name!r} does not match the checkpoint's: its state updates {graph.updates} "
                          f"differ from the checkpoint's {saved.updates}")


# ------------------------------------------------------------------ save --


def save_checkpoint(path: PathLike, graph: Graph, optimizer: "Optimizer", *, loop: Optional[Mapping] = None,
                    arrays: Optional[Mapping[str, np.ndarray]] = None) -> None:
    """Write ``graph``, its parameters, ``optimizer``'s state, and a loop's JSON ``loop`` and ``arrays``, atomically.

    Raises
    ------
    DagradError
        The optimizer's state holds something other than arrays and plain
        numbers (a custom optimizer's state must be made of those).
    """
    stored: dict[str, np.ndarray] = {}

    def store(prefix: str, array: np.ndarray) -> dict:
        key = f"{prefix}/{len(stored)}"
        stored[key] = np.asarray(array)
        return {"array": key}

    saved = optimizer.state_dict()
    state = {}
    for name, entries in saved["state"].items():
        state[name] = {}
        for key, value in entries.items():
            if isinstance(value, np.ndarray):
                state[name][key] = store("optimizer", value)
            elif isinstance(value, (np.integer, np.floating, np.bool_)):
                state[name][key] = value.item()
            elif isinstance(value, _SCALARS):
                state[name][key] = value
            else:
                raise DagradError(f"{saved['type']}: state {key!r} of {name!r} is a {type(value).__name__}; "
                                  "a checkpoint holds arrays and plain numbers only")
    optimizer_json = {**{k: v for k, v in saved.items() if k != "state"}, "state": state}
    loop_arrays = {name: store("loop", a)["array"] for name, a in (arrays or {}).items()}
    training = {"checkpoint_version": CHECKPOINT_VERSION, "optimizer": optimizer_json, "loop": dict(loop or {}),
                "loop_arrays": loop_arrays}
    write_model(path, graph, extra={"training": training}, arrays=stored)


# ------------------------------------------------------------------ load --


def load_checkpoint(path: PathLike, *, max_nodes: Optional[int] = DEFAULT_MAX_NODES,
                    on_provider_change: str = "warn") -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint`` (or by ``fit(..., checkpoint=path)``).

    Parameters are as for ``dg.load``, with the same guarantees for files
    from anyone; a ``FormatError`` also names a training section that is
    missing (a model file, not a checkpoint) or malformed.
    """
    loaded = read_model(path, max_nodes=max_nodes, on_provider_change=on_provider_change, kind="checkpoint")
    source = Source(os.fspath(path), "checkpoint")
    training = loaded.document.get("training")
    if not isinstance(training, dict):
        raise source.error("training", "is missing: it is a model file without training state; pass it to dg.load, "
                                       "or resume from a file written by fit(..., checkpoint=path)")
    try:
        return _read_training(loaded.graph, training, dict(loaded.arrays))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise source.error("training", f"is malformed: {quote(str(exc))}") from None


def _read_training(graph: Graph, training: dict, arrays: dict) -> Checkpoint:
    version = training["checkpoint_version"]
    if type(version) is not int or not 1 <= version <= CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint_version {version!r}: this dagrad reads version {CHECKPOINT_VERSION}")

    def take(ref: Any) -> np.ndarray:
        if not isinstance(ref, dict) or set(ref) != {"array"}:
            raise ValueError(f"expected an array reference, got {quote(ref)}")
        return arrays.pop(ref["array"])  # KeyError for a missing or twice-used array

    optimizer = dict(training["optimizer"])
    if not isinstance(optimizer.get("type"), str) or type(optimizer.get("steps")) is not int:
        raise ValueError("the optimizer needs a type and a step count")
    state = {}
    for name, entries in dict(optimizer["state"]).items():
        state[str(name)] = {str(k): take(v) if isinstance(v, dict) else _scalar(v) for k, v in dict(entries).items()}
    optimizer["state"] = state
    loop = dict(training["loop"])
    loop_arrays = {str(name): take({"array": key}) for name, key in dict(training["loop_arrays"]).items()}
    if arrays:
        raise ValueError(f"arrays no part of the checkpoint uses: {sorted(arrays)[:5]}")
    return Checkpoint(graph, optimizer, loop, loop_arrays)


def _scalar(value: Any) -> Any:
    if not isinstance(value, _SCALARS):
        raise ValueError(f"optimizer state {quote(value)} is neither an array nor a number")
    return value
