"""Explanations of a wrong gradient: from two arrays to a likely cause in words.

A finite-difference failure is only useful when it says *why*. Given the
analytic gradient of one input and the numeric one (and the numeric gradients
of the other inputs), :func:`likely_cause` tries the mistakes op authors make
most, in order: NaN, an all-zero gradient, a wrong sign, gradients returned in
the wrong order, a transposed gradient, a constant factor (2x, or a mean
where a sum over broadcast axes was due), and a wrong broadcast reduction.
"""

from __future__ import annotations

import itertools
import math
from typing import Optional, Sequence

import numpy as np

__all__ = ["likely_cause", "format_index", "format_value"]


def format_index(index: Sequence[int]) -> str:
    """``[1, 2]`` for a 2-D index, ``[]`` for a scalar."""
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def format_value(value: float) -> str:
    return f"{float(value):.6g}"


def _close(a: np.ndarray, b: np.ndarray, scale: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-4, atol=1e-6 * max(scale, 1.0)))


def _nan(analytic: np.ndarray, numeric: np.ndarray) -> Optional[str]:
    bad = ~np.isfinite(analytic)
    if bad.any():
        first = np.argwhere(bad)[0]
        where = "from a forward that is finite there" if np.isfinite(numeric).all() else ""
        return (
            f"the VJP produced {int(bad.sum())} NaN/Inf entries (first at {format_index(first)}) {where}: "
            f"look for a division by zero, log or sqrt of 0 or a negative, or 0 * inf in the gradient formula"
        ).replace("  ", " ")
    if not np.isfinite(numeric).all():
        return (
            "the forward is not finite near this sample, so finite differences are meaningless: "
            "choose sample values inside the op's domain (see dagrad.ops.samples.positive, away_from_zero)"
        )
    return None


def _factor_hint(k: float, input_shape: tuple, out_shape: tuple) -> str:
    hints = []
    count = math.prod(out_shape) / math.prod(input_shape) if math.prod(input_shape) else 1.0
    if count > 1 and (math.isclose(k, 1 / count, rel_tol=1e-3) or math.isclose(k, count, rel_tol=1e-3)):
        hints.append(
            f"the input was broadcast {count:g}-fold (shape {tuple(input_shape)} to {tuple(out_shape)}): "
            f"the gradient must be the SUM of g over the broadcast axes, not the mean (or a repeated sum)"
        )
    for ref, text in ((2.0, "a factor 2: d(x**2)/dx = 2x, or a term counted twice"),
                      (0.5, "a factor 1/2: a derivative's 2 dropped, or a term counted twice in the numeric loss")):
        if math.isclose(abs(k), ref, rel_tol=1e-3):
            hints.append(text)
    return ("; " + "; ".join(hints)) if hints else ""


def likely_cause(
    analytic: np.ndarray,
    numeric: np.ndarray,
    *,
    input_index: int,
    others: Optional[dict] = None,
    input_shape: Optional[tuple] = None,
    out_shape: Optional[tuple] = None,
    bad_fraction: Optional[float] = None,
) -> str:
    """The likeliest reason why ``analytic`` differs from ``numeric``, in one sentence.

    Parameters
    ----------
    analytic, numeric
        The VJP's gradient for one input and the central-difference estimate.
    input_index
        Position of that input among the op's arguments.
    others
        ``{index: numeric gradient}`` of the op's other float inputs, to spot
        gradients returned in the wrong order.
    input_shape, out_shape
        Shapes of the input and of the op's output, to spot broadcast mistakes.
    bad_fraction
        Share of entries outside the tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> n = np.arange(1.0, 7.0).reshape(2, 3)
    >>> likely_cause(-n, n, input_index=0)[:10]
    'wrong sign'
    >>> likely_cause(2 * n, n, input_index=0)[:28]
    'off by a constant factor: 2x'
    """
    analytic = np.asarray(analytic, np.float64)
    numeric = np.asarray(numeric, np.float64)
    input_shape = tuple(input_shape) if input_shape is not None else analytic.shape
    out_shape = tuple(out_shape) if out_shape is not None else input_shape
    found = _nan(analytic, numeric)
    if found:
        return found
    scale = float(np.max(np.abs(numeric), initial=0.0))
    if np.allclose(analytic, 0.0, atol=1e-12) and scale > 1e-9:
        return (
            "zero gradient: the VJP returns zeros (or None) for this input although the output depends on it; "
            "did it return None for a differentiable input, forget to multiply by g, or put the gradient "
            "in another input's position?"
        )
    if _close(analytic, -numeric, scale):
        return "wrong sign: the analytic gradient is the negative of the numeric one everywhere; check the VJP's sign"
    for j, other in (others or {}).items():
        if j != input_index and _close(analytic, np.asarray(other, np.float64), scale):
            return (
                f"gradients returned in the wrong order: the gradient given for input {input_index} is the "
                f"gradient of input {j}; return them in the order of the forward's arguments"
            )
    if 2 <= analytic.ndim <= 4:
        for perm in itertools.permutations(range(analytic.ndim)):
            if perm == tuple(range(analytic.ndim)):
                continue
            moved = numeric.transpose(perm)
            if moved.shape == analytic.shape and _close(analytic, moved, scale):
                what = "transposed" if analytic.ndim == 2 else f"axes permuted by {perm}"
                return (
                    f"{what}: the analytic gradient equals the numeric one with its axes swapped; "
                    f"check the order of operands in a matmul/einsum (e.g. g @ W.T versus W.T @ g)"
                )
    mask = np.abs(numeric) > 1e-6 * max(scale, 1e-12)
    if mask.sum() >= 1 and scale > 1e-9:
        ratio = analytic[mask] / numeric[mask]
        k = float(np.median(ratio))
        if np.allclose(ratio, k, rtol=1e-3) and np.allclose(analytic[~mask], 0.0, atol=1e-6 * scale):
            return f"off by a constant factor: {k:.6g}x the numeric gradient everywhere" + _factor_hint(
                k, input_shape, out_shape
            )
    if input_shape != out_shape and math.prod(input_shape) < math.prod(out_shape):
        return (
            f"the input of shape {input_shape} is broadcast to the output's {out_shape}: if the forward expands "
            f"it other than numpy-style (e.g. b[:, None, None]), the VJP must sum g over those axes itself; "
            f"the engine only reduces numpy-style (leading and size-1) broadcasting"
        )
    if bad_fraction is not None and bad_fraction < 0.05:
        return (
            f"only {bad_fraction:.1%} of the entries are off: a kink, tie or branch (relu, abs, max) lies within "
            f"the finite-difference step of the sample values; use samples away from it, or fix the branch"
        )
    return "not a sign, order, transpose or constant-factor slip: recheck the derivative formula itself"
