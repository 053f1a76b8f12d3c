"""Checks that an op keeps what it declares: its forward runs, its shape and dtype rules say what it
returns (also with unknown sizes), its VJP returns one summable gradient per input and reads only
what ``saves=`` keeps."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ...errors import HigherOrderError
from ...opdef import Op
from ...scheduler.runtime import placeholder
from ...shapes import broadcasts_to, fits, format_shape
from .report import Problem, describe, format_shapes

__all__ = ["check_dtype_rule", "check_saves", "check_shape_rule", "check_unknown_sizes", "check_vjp_structure",
           "run_forward", "why_no_gradients"]


def why_no_gradients(op: Op, args: tuple, out: np.ndarray) -> Optional[str]:
    """Why this case has no gradient to check, or None if it has one."""
    if out.dtype.kind not in "fc":
        return f"the output is {out.dtype}, and the engine never differentiates a non-float node"
    if not op.differentiable:
        return "the op declares no VJP (a gradient asked through it is a GraphError naming the node)"
    if not any(a.dtype.kind == "f" for a in args):
        return "no input is floating point"
    return None


def run_forward(op: Op, args: tuple, attrs: dict):
    try:
        out = op.forward(*args, **attrs)
    except Exception as exc:  # noqa: BLE001 - any exception is the op's
        raise Problem(f"the forward raised {type(exc).__name__}: {exc}\n  inputs: {describe(args)}") from None
    res = None
    if op.residuals:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise Problem(
                "the op is declared residuals=True, so its forward must return (output, residuals); "
                f"it returned {type(out).__name__}"
            )
        out, res = out
    return np.asarray(out), res


def check_shape_rule(op: Op, args: tuple, attrs: dict, out: np.ndarray) -> None:
    if op.shape_rule is None:
        return
    shapes = [a.shape for a in args]
    try:
        declared = tuple(op.shape_rule(*shapes, **attrs))
    except Exception as exc:  # noqa: BLE001
        raise Problem(
            f"the shape rule refused input shapes {format_shapes(shapes)} that the forward accepts: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if declared != out.shape:
        raise Problem(
            f"the shape rule says {format_shape(declared)} for inputs {format_shapes(shapes)}, "
            f"but the forward returned {format_shape(out.shape)}\n"
            f"  likely cause: the rule's arithmetic differs from the forward's (off by one in a size "
            f"formula, a forgotten keepdims or attribute)"
        )


# Sizes tried in place of an unknown one: a rule's claim about the output must hold for all it accepts.
_FED_SIZES = (0, 1, 2, 3, 5, 8)


def check_unknown_sizes(op: Op, args: tuple, attrs: dict, out: np.ndarray) -> None:
    """With any one input size unknown (``None``), the rule must not claim what a fed size would change.

    For each input axis in turn the size becomes ``None``: the rule may refuse
    (``ValueError``) or return a shape that fits the real output, and every
    size it still states must be what the rule itself gives for each fed size
    it accepts (``x[:3]`` on an unknown axis is not 3 long: it is shorter when
    fed fewer than 3; ``squeeze()`` cannot know whether an unknown axis goes).
    """
    if op.shape_rule is None:
        return
    shapes = [tuple(a.shape) for a in args]
    for i, shape in enumerate(shapes):
        for k, size in enumerate(shape):
            unknown = _with_size(shapes, i, k, None)
            try:
                claimed = tuple(op.shape_rule(*unknown, **attrs))
            except ValueError:
                continue  # a deliberate refusal; the graph reports it as a ShapeError
            except Exception as exc:  # noqa: BLE001
                raise Problem(
                    f"the shape rule fails when a size is unknown (inputs {format_shapes(unknown)}): "
                    f"{type(exc).__name__}: {exc}\n"
                    f"  likely cause: arithmetic on a None dimension; return None for sizes that depend on unknown ones"
                ) from None
            if not fits(out.shape, claimed):
                raise Problem(
                    f"with a size unknown (inputs {format_shapes(unknown)}) the shape rule says {format_shape(claimed)}, "
                    f"which does not fit the real output {format_shape(out.shape)}"
                )
            for fed in _FED_SIZES:
                if fed == size:
                    continue
                try:
                    concrete = tuple(op.shape_rule(*_with_size(shapes, i, k, fed), **attrs))
                except Exception:  # noqa: BLE001 - a size the rule refuses need not agree with anything
                    continue
                if not fits(concrete, claimed):
                    raise Problem(
                        f"with input {i}'s axis {k} unknown (inputs {format_shapes(unknown)}) the shape rule claims "
                        f"{format_shape(claimed)}, but for a fed size of {fed} it says {format_shape(concrete)}\n"
                        f"  likely cause: a size that depends on an unknown one is stated; it must be None "
                        f"(or, if the op cannot know its output's rank, the rule must refuse with a ValueError "
                        f"asking for what it needs)"
                    )


def _with_size(shapes: list, i: int, k: int, size) -> list:
    changed = list(shapes)
    changed[i] = shapes[i][:k] + (size,) + shapes[i][k + 1:]
    return changed


def check_dtype_rule(op: Op, args: tuple, attrs: dict, out: np.ndarray) -> None:
    try:
        declared = np.dtype(op.dtype_rule(*[a.dtype for a in args], **attrs))
    except Exception as exc:  # noqa: BLE001
        raise Problem(f"the dtype rule raised {type(exc).__name__}: {exc}") from None
    if declared != out.dtype:
        raise Problem(
            f"the dtype rule says {declared} for inputs {[str(a.dtype) for a in args]}, "
            f"but the forward returned {out.dtype}"
        )


def check_vjp_structure(op: Op, args: tuple, attrs: dict, out: np.ndarray, res, seed: int) -> None:
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype, copy=False)
    saved_out = out if "out" in op.saves else None
    try:
        grads = op.call_vjp(g, list(args), saved_out, res, attrs)
    except HigherOrderError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise Problem(f"the VJP raised {type(exc).__name__}: {exc}\n  inputs: {describe(args)}") from None
    n = len(args)
    if not isinstance(grads, (tuple, list)) or len(grads) != n:
        got = f"{len(grads)} values" if isinstance(grads, (tuple, list)) else f"a bare {type(grads).__name__}"
        hint = " (return a 1-tuple: `return (grad,)`)" if n == 1 and isinstance(grads, np.ndarray) else ""
        raise Problem(f"the VJP must return a tuple of one gradient (or None) per input, {n} in all; "
                       f"it returned {got}{hint}")
    for i, (gi, a) in enumerate(zip(grads, args)):
        if gi is None:
            continue
        gi = np.asarray(gi)
        if gi.shape != a.shape and not broadcasts_to(a.shape, gi.shape):
            raise Problem(
                f"the VJP's gradient for input {i} has shape {format_shape(gi.shape)}, but the input has shape "
                f"{format_shape(a.shape)} (and the engine cannot sum it back to that)\n"
                f"  likely cause: a broadcast reduced over the wrong axes, or dropped dims: return the natural "
                f"gradient (of the output's shape for a broadcast input) and let the engine sum it, "
                f"or reduce with keepdims=True"
            )


def check_saves(op: Op, args: tuple, attrs: dict, out: np.ndarray, seed: int) -> None:
    """The VJP must read only what ``saves=`` keeps: in a graph, the rest reaches it as NaN stand-ins.

    The VJP runs once on everything and once as the engine calls it (unsaved
    inputs replaced by NaN placeholders, an unsaved output by None); if the two
    disagree, the op's ``saves=`` is wrong, and that, not the calculus, is the bug.
    """
    if {"inputs", "out"} <= op.saves:
        return
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype, copy=False)

    def vjp(inputs_saved: bool, out_saved: bool):
        res = run_forward(op, args, attrs)[1]  # fresh residuals: a VJP may consume them in place
        inputs = list(args) if inputs_saved else [placeholder(a.shape, a.dtype) for a in args]
        return op.call_vjp(g, inputs, out if out_saved else None, res, attrs)

    full = vjp(True, True)
    for inputs_saved, out_saved, what, fix in (
        ("inputs" in op.saves, True, "its inputs", "inputs"),
        (True, "out" in op.saves, "its output (out)", "out"),
    ):
        if inputs_saved and out_saved:
            continue
        try:
            grads = vjp(inputs_saved, out_saved)
            same = all(
                (a is None) == (b is None) and (a is None or np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
                for a, b in zip(full, grads)
            )
        except Exception:  # noqa: BLE001 - failing without the unsaved value is the same finding
            same = False
        if not same:
            declared = tuple(sorted(op.saves))
            raise Problem(
                f"the VJP reads {what}, but the op declares saves={declared!r}, so in a graph it sees "
                f"NaN stand-ins (or out=None) and its gradients are wrong\n"
                f"  likely cause: saves=: declare saves={tuple(sorted(op.saves | {fix}))!r}"
            )
