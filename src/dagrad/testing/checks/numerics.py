"""Checks of the numbers: gradients against central differences in float64, float32 and mixed
precision kept through a graph, and float ops of small integers computed in the dtype they declare."""

from __future__ import annotations

import numpy as np

from ...errors import DagradError
from ...gradcheck import gradcheck, projected_graph
from ...opdef import Op
from ...shapes import format_shape
from ..diagnose import format_index, format_value, likely_cause
from .cases import Case
from .report import Problem, index_of
from .rules import run_forward

__all__ = ["check_float32", "check_gradients", "check_integer_inputs", "check_mixed_precision"]


def check_gradients(op, case, args64, out, seed, eps, atol, rtol) -> None:
    try:
        report = gradcheck(op, *case.args, eps=eps, atol=atol, rtol=rtol, seed=seed, attrs=case.attrs)
    except DagradError as exc:
        raise Problem(f"running the op in a float64 graph failed: {exc}") from None
    if report.ok:
        return
    numerics = {index_of(c.name): c.numeric for c in report.checks}
    lines = []
    for check in report.checks:
        if check.ok:
            continue
        i = index_of(check.name)
        idx = check.worst_index
        a, n = check.analytic[idx], check.numeric[idx]
        ratio = np.abs(check.analytic - check.numeric) / (atol + rtol * np.abs(check.numeric))
        bad = float(np.mean(~(ratio <= 1.0)))
        cause = likely_cause(
            check.analytic, check.numeric, input_index=i, others=numerics,
            input_shape=args64[i].shape, out_shape=out.shape, bad_fraction=bad,
        )
        lines.append(
            f"gradient of input {i} ({args64[i].dtype}{format_shape(args64[i].shape)}) is wrong at "
            f"{bad:.0%} of its entries\n"
            f"  worst element: input{i}{format_index(idx)}: analytic {format_value(a)}, numeric {format_value(n)} "
            f"(error {abs(a - n):.3g}, {check.worst_ratio:.3g}x the tolerance)\n"
            f"  likely cause: {cause}"
        )
    raise Problem("\n".join(lines))


def check_float32(op: Op, case: Case, args: tuple, attrs: dict, seed: int, gradients: bool = True) -> None:
    """Run the op on float32 inputs through a tiny graph: values (and gradients) must stay float32.

    Without ``gradients`` (an op with a bool or integer output, or no VJP) only
    the forward runs, and its value must have the dtype the rule declares.
    """
    if not any(a.dtype.kind == "f" for a in args) or "dtype" in op.attr_defaults:
        return
    all_float = all(a.dtype.kind == "f" for a in args)
    try:
        g, out, loss, params = projected_graph(op, args, case.attrs, dtype=np.float32,
                                               keys=[id(raw) for raw in case.args], seed=seed)
        declared = g.node(out).dtype
        if gradients and declared != np.float32 and all_float:
            raise Problem(
                f"float32 inputs give a {declared} output (by the dtype rule): an op should preserve float32; "
                f"use dagrad.extend.float_dtype or first_dtype as the dtype rule"
            )
        result = g.backward(loss, wrt=params, keep="all") if gradients else g.forward(out)
    except Problem:
        raise
    except DagradError as exc:
        raise Problem(f"run on float32 inputs: {exc}") from None
    value = result.value(out)
    if value.dtype != declared:
        raise Problem(
            f"float32 inputs: the dtype rule says {declared}, but the forward returned {value.dtype}"
        )
    if not gradients:
        return
    if value.dtype != np.float32 and all_float:
        raise Problem(
            f"float32 inputs give a {value.dtype} output: the forward promotes to float64 somewhere "
            f"(a float64 constant or np.float64 scalar); cast with .astype(x.dtype, copy=False)"
        )
    for name in params:
        grad = result.grad(name)
        if grad.dtype != np.float32:
            raise Problem(f"float32 inputs give a {grad.dtype} gradient for {name!r}: the VJP promotes to float64")


def check_mixed_precision(op: Op, case: Case, args: tuple, attrs: dict, seed: int) -> None:
    """Float32 and float64 inputs together: the output has the declared dtype, each gradient its input's.

    The engine casts a gradient that numpy's promotion widened back to its
    input's dtype, but a VJP that returns float64 for a float32 input of a
    float32 output (it mixed in a float64 input) is a ``GradientError``.
    """
    keys = [id(raw) for raw in case.args]
    floats = [k for i, k in enumerate(keys) if args[i].dtype.kind == "f"]
    distinct = list(dict.fromkeys(floats))
    if len(distinct) < 2 or "dtype" in op.attr_defaults:
        return
    for narrow in (distinct[:1], distinct[1:]):
        mixed = tuple(
            a.astype(np.float32 if k in narrow else np.float64) if a.dtype.kind == "f" else a
            for a, k in zip(args, keys)
        )
        described = ", ".join(f"input{i} {a.dtype}" for i, a in enumerate(mixed) if a.dtype.kind == "f")
        try:
            g, out, loss, params = projected_graph(op, mixed, case.attrs, dtype=None, keys=keys, seed=seed)
            result = g.backward(loss, wrt=params, keep="all")
        except DagradError as exc:
            raise Problem(
                f"mixed precision ({described}): {exc}\n"
                f"  likely cause: the VJP mixes an input of another dtype into a gradient; "
                f"cast each gradient to its input's dtype (.astype(x.dtype, copy=False))"
            ) from None
        value = result.value(out)
        if value.dtype != g.node(out).dtype:
            raise Problem(
                f"mixed precision ({described}): the dtype rule says {g.node(out).dtype}, "
                f"but the forward returned {value.dtype}"
            )
        for name in params:
            want = g.node(name).dtype
            if result.grad(name).dtype != want:
                raise Problem(f"mixed precision ({described}): the gradient of {name!r} is "
                               f"{result.grad(name).dtype}, its value {want}")


# Small integer dtypes numpy would compute a float function of in float16 or float32.
_SMALL_INTEGERS = ("bool", "uint8", "int8", "int16")


def _small_integers(a: np.ndarray, dtype: str) -> np.ndarray:
    """Whole numbers (up to 12: exp(12) overflows float16) of ``dtype`` from a float sample's values."""
    a = np.clip(np.nan_to_num(a), -1.5, 1.5)
    if dtype == "bool":
        return a > 0
    whole = np.round(a * 8)
    return (np.abs(whole) if dtype == "uint8" else whole).astype(dtype)


def check_integer_inputs(op: Op, args: tuple, attrs: dict) -> None:
    """A float op of small-integer inputs computes in the float dtype it declares, not in float16.

    numpy computes ``exp`` of ``uint8`` in float16 (inf at 12) and of ``int16``
    in float32; an op whose dtype rule declares float64 for them must compute
    in float64 (``float_inputs=True`` does it).
    """
    if not any(a.dtype.kind == "f" for a in args):
        return
    for small in _SMALL_INTEGERS:
        ints = tuple(_small_integers(a, small) if a.dtype.kind == "f" else a for a in args)
        try:
            declared = np.dtype(op.dtype_rule(*[a.dtype for a in ints], **attrs))
        except (TypeError, ValueError):
            continue  # the op refuses integer inputs: nothing to compute
        if declared.kind not in "fc":
            if small == "bool":
                continue  # arithmetic on bools is numpy's patchwork (x**3 is int64, -x refused); the run checks it
            with np.errstate(all="ignore"):
                out, _ = run_forward(op, ints, attrs)
            if out.dtype != declared:  # integer results: the dtype rule must still say what numpy gives
                cause = ("the forward computes in floating point: use the float_dtype rule (the float_unary_op "
                         "and float_binary_op presets)" if out.dtype.kind in "fc" else
                         "numpy widens small integers in some operations (sums, products); make the dtype rule "
                         "follow it (dagrad.extend.ufunc_dtype gives numpy's own resolution)")
                raise Problem(
                    f"{small} inputs: the dtype rule says {declared}, but the forward returned {out.dtype}\n"
                    f"  likely cause: {cause}"
                )
            continue
        with np.errstate(all="ignore"):
            out, _ = run_forward(op, ints, attrs)
            exact, _ = run_forward(op, tuple(a.astype(np.float64) if a.dtype.kind in "biu" and b.dtype.kind == "f"
                                              else a for a, b in zip(ints, args)), attrs)
        if out.dtype != declared:
            raise Problem(
                f"{small} inputs: the dtype rule says {declared}, but the forward returned {out.dtype}\n"
                f"  likely cause: numpy computes a float function of small integers in float16/float32; "
                f"declare the op float_inputs=True (the float presets do) or cast the inputs first"
            )
        if out.shape != exact.shape or not np.allclose(out, exact.astype(out.dtype), rtol=1e-6, atol=0, equal_nan=True):
            raise Problem(
                f"{small} inputs give other values than the same numbers as float64 "
                f"(for example {format_value(out.reshape(-1)[0]) if out.size else '-'} against "
                f"{format_value(exact.reshape(-1)[0]) if exact.size else '-'})\n"
                f"  likely cause: the forward computes in a narrower dtype than it declares; "
                f"declare the op float_inputs=True"
            )
