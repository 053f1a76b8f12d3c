"""What every executor of a plan shares: feed checks, broadcast reduction, placeholders, read-only
hand-over, output and gradient checks, error messages, and the snapshot that becomes a ``Result``.

The executors (the fast loop, the generated code and the reference
interpreter) differ only in how they walk the instructions; everything that
decides *what* a value or gradient is, or which error is raised, lives here once.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np

from ..errors import FeedError, GradientError, GraphError, OpError
from ..ops.adjoints import sum_to_shape as sum_to  # one summing-back for the engine and the sum_to op
from ..result import Result
from ..shapes import fits, format_shape

__all__ = [
    "coerce_feed", "coerce_cotangent", "seed", "sum_to", "placeholder", "freeze", "fix_output", "fix_gradient", "as_grad_tuple",
    "failed", "external_identities", "snapshot", "finish", "stored_values",
]

ndarray = np.ndarray


# ----------------------------------------------------------------- feeds ---


def coerce_feed(name: str, value: Any, shape: Optional[tuple], dtype: np.dtype) -> np.ndarray:
    """The array fed to input ``name``, in its declared dtype; ``FeedError`` if it does not fit.

    A value is converted to the input's dtype only when that changes nothing but
    float rounding: an int64 of 2**32 + 1 is refused for an int32 input (it would
    become 1), and a float64 of 1e300 for a float32 input (it would become inf).
    """
    if type(value) is ndarray and value.dtype == dtype and (shape is None or fits(value.shape, shape)):
        return value  # the common case, checked without conversions
    try:
        array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - anything numpy cannot take is a bad feed
        raise FeedError(f"feed {name!r} is not an array: {exc}") from None
    if array.dtype != dtype:
        if not _convertible(array.dtype, dtype):
            raise FeedError(f"feed {name!r} has dtype {array.dtype}; input {name!r} expects {dtype}")
        array = _narrowed(array, dtype, f"feed {name!r}",
                          f"feed {dtype} values, or declare input {name!r} with dtype {array.dtype}")
    if shape is not None and not fits(array.shape, shape):
        raise FeedError(
            f"feed {name!r} has shape {format_shape(array.shape)}; input {name!r} expects {format_shape(shape)}"
        )
    return array


def _convertible(source: np.dtype, target: np.dtype) -> bool:
    """Bool and integers convert to any integer or float, floats to floats; values are checked after."""
    if source.kind in "biu":
        return target.kind in "iuf"
    return source.kind == "f" and target.kind == "f"


def coerce_cotangent(loss: str, cotangent: Any, dtype: np.dtype) -> np.ndarray:
    """A copy of ``cotangent`` in the loss's dtype (the run may hand it to ops read-only); ``FeedError`` if it does not fit.

    Like a feed, it is converted only when that changes nothing but float
    rounding: a float64 of 1e300 for a float32 loss is refused, not made inf.
    """
    try:
        array = np.asarray(cotangent)
    except Exception as exc:  # noqa: BLE001 - anything numpy cannot take is a bad cotangent
        raise FeedError(f"the cotangent is not an array: {exc}") from None
    if array.dtype.kind not in "biufc" or not np.can_cast(array.dtype, dtype, casting="same_kind"):
        raise FeedError(f"the cotangent has dtype {array.dtype}; the loss {loss!r} is {dtype}")
    if array.dtype != dtype:
        return _narrowed(array, dtype, "the cotangent", f"the loss {loss!r} is {dtype}")
    return array.copy()


def _narrowed(array: np.ndarray, dtype: np.dtype, what: str, fix: str) -> np.ndarray:
    """``array`` as ``dtype``, or ``FeedError`` saying that ``what`` holds a value it would change, and ``fix``."""
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(dtype)
    if dtype.kind in "iub":
        changed = converted.astype(array.dtype) != array
    else:  # to float: rounding is fine, overflow to infinity is not
        changed = np.isfinite(array) & ~np.isfinite(converted) if array.dtype.kind in "fc" else ~np.isfinite(converted)
    if np.any(changed):
        where = tuple(int(i) for i in np.argwhere(changed)[0])
        was, became = array[where].item(), converted[where].item()
        raise FeedError(
            f"{what} holds values that {dtype} cannot represent: {was!r} would become {became!r} "
            f"(at index {where}); {fix}"
        )
    return converted


# ------------------------------------------------------------- gradients ---


def seed(loss: str, loss_value: np.ndarray, cotangent: Optional[np.ndarray]) -> np.ndarray:
    """The gradient backpropagation starts from: ones for a scalar loss, else the cotangent given.

    A non-scalar loss is never summed silently (as PyTorch and JAX refuse too):
    without a cotangent of its shape it is a ``GraphError`` saying what to do.
    """
    if cotangent is None:
        if loss_value.shape != ():
            raise GraphError(
                f"the loss {loss!r} has shape {format_shape(loss_value.shape)}, not a scalar: reduce it "
                "(dg.sum, dg.mean) or pass cotangent= with its shape for a vector-Jacobian product"
            )
        return np.ones((), loss_value.dtype)
    if cotangent.shape != loss_value.shape:
        raise FeedError(
            f"the cotangent has shape {format_shape(cotangent.shape)}; the loss {loss!r} has shape "
            f"{format_shape(loss_value.shape)}"
        )
    return cotangent


def stored_values(plan: Any) -> list:
    """The current values of the plan's params and consts, in the order of ``plan.stored``: both executors' inputs."""
    values = plan.graph._values
    return [values[s.name] for s in plan.stored]


_PLACEHOLDERS: dict = {}


def placeholder(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A stand-in for an input the op does not save: right shape and dtype, no memory, loud values.

    Floats are NaN (and integers their extreme value), so a VJP that reads an
    input its op does not declare in ``saves`` produces NaN, which anomaly
    checking and ``check_op`` catch, instead of a plausible wrong gradient.
    Placeholders are read-only, so one per (shape, dtype) is shared by every run.
    """
    key = (shape, dtype)
    stand_in = _PLACEHOLDERS.get(key)
    if stand_in is None:
        if len(_PLACEHOLDERS) > 4096:
            _PLACEHOLDERS.clear()
        if dtype.kind in "fc":
            fill = np.nan
        elif dtype.kind == "i":
            fill = np.iinfo(dtype).min
        elif dtype.kind == "u":
            fill = np.iinfo(dtype).max
        else:
            fill = 0
        stand_in = _PLACEHOLDERS[key] = np.broadcast_to(np.full((), fill, dtype), shape)
    return stand_in


def freeze(array: np.ndarray, external: set) -> np.ndarray:
    """``array``, read-only, for an op that does not ship with dagrad.

    The flag is set on the array itself when the run owns it; an array the
    caller or the graph owns (a feed, a param) is handed over as a read-only
    view instead, so its own flag never changes.
    """
    if array.flags.writeable:
        if id(array) in external:
            array = array.view()
        array.flags.writeable = False
    return array


def fix_output(ins: Any, out: Any) -> np.ndarray:
    """The forward output of ``ins`` as an ndarray of its declared shape and dtype, or ``OpError``."""
    if type(out) is not ndarray:
        try:
            out = np.asarray(out)  # a numpy scalar, from a reduction to 0-d: the common case, kept cheap
        except Exception as exc:  # noqa: BLE001 - a ragged list, or anything else numpy cannot take
            op = ins.op
            raise OpError(
                f"node {ins.name!r} (op {op.name!r} from plugin {op.plugin!r}) returned a {type(out).__name__} "
                f"that is not an array ({type(exc).__name__}: {exc}); its forward must return an array"
            ) from None
        if out.shape == ins.shape and out.dtype == ins.dtype:
            return out
    bad_shape = ins.shape is not None and not fits(out.shape, ins.shape)
    if bad_shape or out.dtype != ins.dtype:
        op = ins.op
        declared = f"{ins.dtype}{format_shape(ins.shape) if ins.shape is not None else ''}"
        rule = "shape" if bad_shape else "dtype"
        raise OpError(
            f"node {ins.name!r} (op {op.name!r} from plugin {op.plugin!r}) returned {out.dtype}"
            f"{format_shape(out.shape)}, but its declared output is {declared}: the op's forward "
            f"disagrees with its {rule} rule; fix the forward or the rule"
        )
    return out


def fix_gradient(ins: Any, position: int, name: str, g: Any, shape: tuple, dtype: np.dtype,
                 out_dtype: np.dtype) -> np.ndarray:
    """A VJP's gradient for input ``position`` (node ``name``), summed and cast back to ``shape`` and ``dtype``.

    Broadcasting is undone here, once, for every op. A gradient of another dtype
    is cast back only where the forward promoted (its output dtype ``out_dtype``
    differs from the input's, as float32 * float64); anything else is the op's
    bug: ``GradientError``.
    """
    op = ins.op
    if type(g) is not ndarray:
        try:
            g = np.asarray(g)
        except Exception as exc:  # noqa: BLE001 - a ragged list, or anything else numpy cannot take
            raise GradientError(
                f"node {ins.name!r}: the VJP of op {op.name!r} from plugin {op.plugin!r} returned a "
                f"{type(g).__name__} for input {position} ({name!r}) that is not an array "
                f"({type(exc).__name__}: {exc})"
            ) from None
    if g.dtype.kind != dtype.kind:   # checked before summing: strings or objects cannot be summed
        raise _wrong_dtype(ins, position, name, g, dtype)
    if g.shape != shape:
        summed = sum_to(g, shape)
        if summed is None:
            raise GradientError(
                f"node {ins.name!r}: the VJP of op {op.name!r} from plugin {op.plugin!r} "
                f"returned a gradient of shape {g.shape} for input {position} ({name!r}), "
                f"whose value has shape {shape} (and it does not broadcast to it)"
            )
        g = summed
    if g.dtype != dtype:
        if out_dtype == dtype:
            raise _wrong_dtype(ins, position, name, g, dtype)
        g = g.astype(dtype)
    return g


def _wrong_dtype(ins: Any, position: int, name: str, g: np.ndarray, dtype: np.dtype) -> GradientError:
    op = ins.op
    return GradientError(
        f"node {ins.name!r}: the VJP of op {op.name!r} from plugin {op.plugin!r} "
        f"returned a {g.dtype} gradient for input {position} ({name!r}), whose value is {dtype}"
    )


def as_grad_tuple(gs: Any, ins: Any) -> tuple:
    """The VJP's result as one gradient (or None) per input; ``GradientError`` otherwise."""
    arity = len(ins.inputs)
    if type(gs) is tuple and len(gs) == arity:
        return gs
    if isinstance(gs, ndarray) and arity == 1:
        return (gs,)
    if not isinstance(gs, (tuple, list)) or len(gs) != arity:
        got = f"{len(gs)} values" if isinstance(gs, (tuple, list)) else f"a {type(gs).__name__}"
        raise GradientError(
            f"node {ins.name!r}: the VJP of op {ins.op.name!r} from plugin {ins.op.plugin!r} must return "
            f"one gradient (or None) per input, {arity} in all; it returned {got}"
        )
    return tuple(gs)


def _describe(arrays) -> str:
    return ", ".join(
        f"{a.dtype}{format_shape(a.shape)}" if isinstance(a, ndarray) else type(a).__name__ for a in arrays
    )


def failed(name: str, op: Any, phase: str, arrays, exc: BaseException) -> OpError:
    """The ``OpError`` for an exception raised inside an op's forward or VJP."""
    hint = ""
    if isinstance(exc, ValueError) and "read-only" in str(exc):
        hint = ("; ops must not write into their inputs (dagrad hands them read-only arrays): "
                "compute into a new array, or copy first (x = x.copy())")
    return OpError(
        f"node {name!r} (op {op.name!r} from plugin {op.plugin!r}) raised in its {phase} "
        f"with inputs {_describe(arrays)}: {type(exc).__name__}: {exc}{hint}"
    )


# ------------------------------------------------------------- snapshots ---


def _root(array: np.ndarray) -> int:
    """The identity of the object that owns ``array``'s memory.

    Walked through every ``base``, not only ndarray ones: ``as_strided`` and
    ``sliding_window_view`` hand back views whose base is numpy's ``DummyArray``
    holding the viewed array in its own ``base``.
    """
    base = array.base
    while base is not None:
        array = base
        base = getattr(array, "base", None)
    return id(array)


def external_identities(arrays: Iterable[np.ndarray]) -> set:
    """Identities of ``arrays`` and of the arrays that own their memory: the run's external arrays.

    One set serves both questions a run asks about them: ``freeze`` asks whether
    an array *is* one of them (then it hands over a view and never touches the
    caller's flag), ``snapshot`` whether a kept array's memory *belongs* to one.
    An array that owns its memory has no array base, so it is never a view of
    another: the identities of the two kinds cannot be confused. Most arrays
    own their memory, so the walk to the owner is needed only for views.
    """
    arrays = list(arrays)
    ids = {id(a) for a in arrays}
    for a in arrays:
        if a.base is not None:
            ids.add(_root(a))
    return ids


def snapshot(values: dict, grads: dict, external: set) -> tuple[dict, dict]:
    """Make a result independent of everything that may change after the run.

    A kept value whose memory belongs to a param, a const or a feed is copied
    (an optimizer step or the caller would change it later), and so is one that
    shares memory with a kept value before it (a reshape of a kept intermediate):
    writing into one value of a result never changes another. A kept gradient is
    copied when it is read-only or shares memory with another kept array. Most
    arrays own their memory (``base is None``), which is checked first: the walk
    to the owner is needed only for views.
    """
    taken = set(external)  # the owners of memory a kept array may no longer share
    for name, v in values.items():
        r = id(v) if v.base is None else _root(v)
        if r in taken:
            values[name] = v.copy()
        else:
            taken.add(r)
    for name, g in grads.items():
        r = id(g) if g.base is None else _root(g)
        if r in taken or not g.flags.writeable:
            grads[name] = np.array(g)
        else:
            taken.add(r)
    return values, grads


def finish(plan: Any, values: dict, grads: dict, order: list, flows: Optional[dict], external: set,
           wrt_shapes: dict, forward_times: Optional[dict] = None, backward_times: Optional[dict] = None):
    """The ``Result`` of a run: kept values and gradients (a snapshot), the backward order, timings.

    A node in ``wrt`` that no gradient reached gets zeros of its shape.
    """
    for slot, name in plan.kept_grads:
        if grads.get(name) is None:
            if name in plan.wrt:
                grads[name] = np.zeros(wrt_shapes[slot], plan.dtypes[slot])
            else:
                grads.pop(name, None)
    snapshot(values, grads, external)
    return Result(plan.graph, values, grads, order, loss=plan.loss, wrt=plan.wrt, forward_times=forward_times,
                  backward_times=backward_times, flows=flows, version=plan.version)
