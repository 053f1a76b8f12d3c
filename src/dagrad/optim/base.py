"""``Optimizer``: reads gradients from a backward ``Result`` and updates parameter arrays in place.

There is no ``zero_grad``: every ``graph.backward(...)`` returns fresh
gradients in a new ``Result``, so nothing accumulates between steps unless you
add gradients up yourself. A parameter with no gradient in the result (not on
a path to the loss, or left out of ``wrt``) is skipped, as PyTorch skips a
parameter whose ``.grad`` is None; its optimizer state is left untouched.

A step is all or nothing: every gradient is checked (shape, NaN/Inf) before
any parameter changes, and Ctrl-C during the update is held back until every
parameter has been updated, so parameters are never left at different steps.
``state_dict`` / ``load_state_dict`` carry everything a later step depends on
(step count, Adam moments, momentum buffers) into a checkpoint and back.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Union

import numpy as np

from ..errors import DagradError, NonFiniteError
from ..interrupts import deferred_interrupt
from .schedules import Schedule, constant

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph
    from ..result import Result

__all__ = ["Optimizer", "NONFINITE_POLICIES", "global_norm", "clip_by_global_norm"]

Params = Union["Graph", Mapping[str, np.ndarray]]


def global_norm(grads: Iterable[np.ndarray]) -> float:
    """L2 norm of all the gradients together, as if they were one long vector.

    Infinite only when an entry is: squares too large for floats are rescaled,
    so clipping a huge but finite gradient keeps its direction.

    >>> global_norm([np.array([3.0]), np.array([4e200])])
    4e+200
    """
    grads = [g.reshape(-1) for g in grads]
    with np.errstate(over="ignore"):
        total = sum(float(np.dot(g, g)) for g in grads)
    if math.isinf(total):
        biggest = max((float(np.max(np.abs(g))) for g in grads if g.size), default=0.0)
        if math.isfinite(biggest):
            return biggest * math.sqrt(sum(float(np.dot(g / biggest, g / biggest)) for g in grads))
    return math.sqrt(total)


def clip_by_global_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> tuple[dict, float]:
    """``(grads scaled so their global norm is at most max_norm, the norm before clipping)``.

    Scaling all gradients by one factor keeps the update's direction; the
    arrays passed in are not modified.

    >>> import numpy as np
    >>> clipped, norm = clip_by_global_norm({"a": np.array([3.0]), "b": np.array([4.0])}, 1.0)
    >>> norm, np.round(clipped["a"], 4), np.round(clipped["b"], 4)
    (5.0, array([0.6]), array([0.8]))
    """
    norm = global_norm(grads.values())
    return _clip(grads, max_norm, norm), norm


def _clip(grads: Mapping[str, np.ndarray], max_norm: float, norm: float) -> dict:
    if norm <= max_norm:
        return dict(grads)
    scale = max_norm / (norm + 1e-6)
    return {name: g * np.asarray(scale, g.dtype) for name, g in grads.items()}


NONFINITE_POLICIES = ("raise", "skip")


class Optimizer:
    """Base class: the step count, the learning-rate schedule, clipping and per-parameter state.

    Subclasses implement ``update(name, param, grad, lr, state)`` and list
    their constructor's numbers in ``hyperparameter_names``. Keys of ``state``
    starting with ``_`` are scratch space, left out of ``state_dict``.

    Parameters
    ----------
    params
        A ``Graph`` (its trainable params, looked up at every step, so
        ``set_value`` and newly added layers are seen) or a dict of name -> array.
    lr
        Learning rate, or a schedule: a callable ``step -> lr`` of the number
        of steps already taken (see ``dagrad.optim.schedules``).
    clip_norm
        If given, gradients are scaled together so that their global L2 norm is
        at most ``clip_norm`` before the update. ``last_grad_norm`` is the global
        norm of the last step's gradients (before clipping).
    on_nonfinite
        What a step does when a gradient holds NaN or Inf: ``"raise"`` (the
        default) a ``NonFiniteError`` naming the parameter and the step, before
        any parameter changes; ``"skip"`` leave every parameter and all state
        as they are, and count the step in ``skipped``.
    """

    hyperparameter_names: tuple = ()

    def __init__(self, params: Params, lr: Union[float, Schedule] = 0.01, *, clip_norm: Optional[float] = None,
                 on_nonfinite: str = "raise"):
        if not hasattr(params, "params") and not isinstance(params, Mapping):
            raise DagradError(f"{type(self).__name__}: params must be a Graph or a dict of name -> array, not {type(params).__name__}")
        if clip_norm is not None and not clip_norm > 0:
            raise DagradError(f"{type(self).__name__}: clip_norm must be positive, not {clip_norm!r}")
        if on_nonfinite not in NONFINITE_POLICIES:
            raise DagradError(f"{type(self).__name__}: on_nonfinite must be 'raise' or 'skip', not {on_nonfinite!r}")
        self.source = params
        self.schedule: Schedule = lr if callable(lr) else constant(float(lr))
        self.clip_norm = clip_norm
        self.on_nonfinite = on_nonfinite
        self.steps = 0
        self.skipped = 0
        self.state: dict[str, dict] = {}
        self.last_grad_norm: Optional[float] = None
        self.last_lr: Optional[float] = None

    @property
    def lr(self) -> float:
        """The learning rate the next step will use."""
        return float(self.schedule(self.steps))

    def params(self) -> dict[str, np.ndarray]:
        """The live parameter arrays, by name."""
        source = self.source
        return dict(source.params) if hasattr(source, "params") else dict(source)

    def step(self, result: "Result") -> None:
        """Update every parameter that has a gradient in ``result``, in place, all or nothing.

        A step skipped for a non-finite gradient (``on_nonfinite="skip"``)
        changes nothing but ``skipped``.

        Raises
        ------
        DagradError
            ``result`` has no gradient for any of the parameters (it comes from
            a forward run, or from a backward pass of another graph), or a
            gradient's shape differs from its parameter's.
        NonFiniteError
            A gradient holds NaN or Inf (with ``on_nonfinite="raise"``).
        """
        params = self.params()
        grads = self._gradients(result, params)
        norm = global_norm(grads.values())
        if not math.isfinite(norm) and self._nonfinite(grads):
            return
        if self.clip_norm is not None:
            grads = _clip(grads, self.clip_norm, norm)
        lr = self.lr
        with deferred_interrupt():  # Ctrl-C lands after the last parameter, never between two
            for name, g in grads.items():
                self.update(name, params[name], g, lr, self.state.setdefault(name, {}))
            self.last_grad_norm = norm
            self.last_lr = lr
            self.steps += 1

    def _gradients(self, result: "Result", params: dict) -> dict[str, np.ndarray]:
        """The gradient of each parameter that has one, checked; a result with none of them is a mistake."""
        available = getattr(result, "grads", None)
        kind = type(self).__name__
        if not available:
            raise DagradError(
                f"{kind}.step: the result holds no gradients, so no parameter would change; it comes from a "
                "forward run (g.forward, or a plan compiled without loss=): pass the result of g.backward(loss, feeds)"
            )
        grads = {}
        for name, p in params.items():
            g = available.get(name)
            if g is None:
                continue
            if g.shape != p.shape:
                raise DagradError(f"{kind}: gradient of {name!r} has shape {g.shape}, the parameter {p.shape}")
            grads[name] = g
        if not grads:
            have = ", ".join(sorted(map(repr, available))[:5]) + (", ..." if len(available) > 5 else "")
            mine = ", ".join(sorted(map(repr, params))[:5]) + (", ..." if len(params) > 5 else "")
            raise DagradError(
                f"{kind}.step: none of its parameters ({mine or 'none'}) has a gradient in the result, which has "
                f"gradients of {have}: compute it with g.backward(loss, feeds) on the graph this optimizer trains, "
                "with wrt= including its parameters"
            )
        return grads

    def _nonfinite(self, grads: dict[str, np.ndarray]) -> bool:
        """Raise or count a step whose gradients hold NaN/Inf; False when the norm merely overflowed."""
        bad = next((name for name, g in grads.items() if not np.isfinite(g).all()), None)
        if bad is None:
            return False
        step = self.steps + 1
        if self.on_nonfinite == "skip":
            self.skipped += 1
            return True
        g = grads[bad]
        raise NonFiniteError(
            f"{type(self).__name__}: the gradient of {bad!r} holds {int(np.isnan(g).sum())} NaN and "
            f"{int(np.isinf(g).sum())} Inf entries at step {step}; no parameter was changed. Find the node that "
            "produced it with check=True (dg.check_anomalies), or skip such steps with on_nonfinite='skip'",
            bad, "gradient", step,
        )

    def update(self, name: str, param: np.ndarray, grad: np.ndarray, lr: float, state: dict) -> None:
        """Change ``param`` in place from ``grad``; ``state`` is this parameter's own dict."""
        raise NotImplementedError

    # ---------------------------------------------------- saving state --

    def hyperparameters(self) -> dict[str, Any]:
        """The numbers the optimizer was built with (the learning rate is a schedule, so not among them)."""
        names = ("clip_norm", "on_nonfinite") + self.hyperparameter_names
        return {name: getattr(self, name) for name in names}

    def state_dict(self) -> dict[str, Any]:
        """A copy of everything later steps depend on, for a checkpoint.

        ``{"type", "hyperparameters", "steps", "skipped", "lr", "state"}``, where
        ``state`` maps each parameter to its arrays and counters (Adam's ``m``,
        ``v`` and ``t``; SGD's ``momentum``), copied. ``lr`` is the rate the
        next step would use, to check a resumed schedule against.

        >>> import numpy as np, dagrad as dg
        >>> opt = dg.optim.SGD({"w": np.array([1.0])}, lr=0.1, momentum=0.9)
        >>> class R: grads = {"w": np.array([1.0])}
        >>> opt.step(R)
        >>> saved = opt.state_dict()
        >>> saved["steps"], saved["state"]["w"]["momentum"]
        (1, array([1.]))
        """
        return {
            "type": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "steps": self.steps,
            "skipped": self.skipped,
            "lr": self.lr,
            "last_grad_norm": self.last_grad_norm,
            "last_lr": self.last_lr,
            "state": {
                name: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items() if not k.startswith("_")}
                for name, st in self.state.items()
            },
        }

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        """Continue from ``saved`` (a ``state_dict``): the step count and every parameter's state.

        Everything is checked before anything changes: the optimizer type, the
        parameter names, and each array's shape and dtype against its
        parameter. Different hyperparameters or a different learning rate at
        this step are allowed (you may mean to change them) but warned about,
        since the run then differs from one that was never stopped.

        Raises
        ------
        DagradError
            ``saved`` is from another kind of optimizer, or its state does not
            fit the parameters.
        """
        kind = type(self).__name__
        if saved.get("type") != kind:
            raise DagradError(f"{kind}: cannot continue from the state of a {saved.get('type')!r} optimizer")
        params = self.params()
        state: dict[str, dict] = {}
        for name, entries in dict(saved.get("state") or {}).items():
            if name not in params:
                raise DagradError(f"{kind}: the saved state has parameter {name!r}, which this optimizer does not train")
            param = params[name]
            restored = {}
            for key, value in entries.items():
                if isinstance(value, np.ndarray):
                    if value.shape != param.shape or value.dtype != param.dtype:
                        raise DagradError(
                            f"{kind}: saved {key!r} of {name!r} is {value.dtype} {value.shape}, "
                            f"the parameter is {param.dtype} {param.shape}"
                        )
                    value = value.copy()
                restored[key] = value
            state[name] = restored
        differences = [
            f"{key}={value!r} (saved {saved['hyperparameters'][key]!r})"
            for key, value in self.hyperparameters().items()
            if key in saved.get("hyperparameters", {}) and saved["hyperparameters"][key] != value
        ]
        steps = int(saved.get("steps", 0))
        lr = float(self.schedule(steps))
        if saved.get("lr") is not None and lr != saved["lr"]:
            differences.append(f"lr={lr!r} at step {steps} (saved {saved['lr']!r})")
        if differences:
            warnings.warn(
                f"{kind}: continuing with {', '.join(differences)}; the run will differ from one that was never stopped",
                UserWarning, stacklevel=2,
            )
        self.state = state
        self.steps = steps
        self.skipped = int(saved.get("skipped", 0))
        self.last_grad_norm = saved.get("last_grad_norm")
        self.last_lr = saved.get("last_lr")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} lr={self.lr:g}, {self.steps} steps>"


def _check(condition: bool, optimizer: str, message: str) -> None:
    if not condition:
        raise DagradError(f"{optimizer}: {message}")


def _param_float(value: Any, name: str, optimizer: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DagradError(f"{optimizer}: {name} must be a number, not {value!r}") from None
