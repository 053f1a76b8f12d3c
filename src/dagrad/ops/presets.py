"""Presets for families of ops: the shape rule, dtype rule and samples a whole family shares.

A preset is ``op`` with some keywords already given (``functools.partial``),
as JAX's ``standard_unop`` or PyTorch's ``UnaryUfuncInfo`` give a family its
rules once. Any keyword can still be given, and overrides the preset's::

    @float_unary_op(saves=("out",))
    def exp(x):
        "Elementwise exponential."
        return np.exp(x)

    @exp.vjp
    def _(g, x, out):
        return (g * out,)
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..opdef import float_dtype, op
from ..shapes import elementwise, reduced_shape, same_as_first
from .samples import elementwise_samples, reduction_samples

__all__ = ["unary_op", "float_unary_op", "binary_op", "float_binary_op", "reduction_op", "reduce_shape", "sum_dtype"]


def sum_dtype(dtype, *rest, **attrs):
    """Dtype of a sum, product or cumulative scan, as numpy computes it.

    Bool and integers narrower than the platform's accumulate in its integer of
    their sign (numpy's sum of int8 is int64, of uint8 uint64); floats keep
    their dtype.
    """
    if np.dtype(dtype).kind not in "biufc":
        raise TypeError(f"{np.dtype(dtype)} is not a numeric dtype")
    return np.add.reduce(np.empty(0, dtype)).dtype


def reduce_shape(shape, *, axis=None, keepdims=False, **attrs):
    """Shape rule of a reduction over ``axis`` (all axes by default), keeping reduced axes with ``keepdims``."""
    return reduced_shape(shape, axis, keepdims)


unary_op = partial(op, shape=same_as_first, samples=elementwise_samples(1))
"""An elementwise op of one input: output shaped like the input, dtype by promotion."""

float_unary_op = partial(unary_op, dtype=float_dtype, float_inputs=True)
"""An elementwise function of one input computed in floating point (float64 for integer and bool inputs)."""

binary_op = partial(op, shape=elementwise, samples=elementwise_samples(2))
"""An elementwise op of two broadcasting inputs, dtype by promotion."""

float_binary_op = partial(binary_op, dtype=float_dtype, float_inputs=True)
"""An elementwise op of two broadcasting inputs computed in floating point (float64 for integer and bool inputs)."""

reduction_op = partial(op, shape=reduce_shape, samples=reduction_samples)
"""A reduction with attributes ``axis`` and ``keepdims``."""
