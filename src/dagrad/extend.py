"""Everything an op author needs, in one import: ``from dagrad.extend import op, unary_op, hookimpl, ...``.

An op is a numpy forward decorated with :func:`op` (or a family preset such
as :data:`float_unary_op`), plus a VJP rule set with ``@<op>.vjp`` and,
for second derivatives, a graph VJP set with ``@<op>.graph_vjp`` (helpers for
writing one: :func:`sum_to`, :func:`broadcast_like`, :func:`zeros_like`, ...);
a plugin returns its ops from a ``dagrad_ops`` hook marked with :data:`hookimpl`.

Examples
--------
>>> import numpy as np
>>> from dagrad.extend import float_unary_op
>>> @float_unary_op(saves=("inputs",))
... def softsign(x):
...     "x / (1 + |x|)."
...     return x / (1 + np.abs(x))
>>> @softsign.vjp
... def _(g, x):
...     return (g / (1 + np.abs(x)) ** 2,)
>>> softsign.forward(np.array([1.0, -3.0]))
array([ 0.5 , -0.75])
"""

from __future__ import annotations

from .hookspecs import hookimpl
from .opdef import Op, Sample, bool_dtype, first_dtype, float_dtype, op, ops_in, result_dtype, ufunc_dtype
from .ops.adjoints import (broadcast_like, expand_reduced, is_nonzero, is_positive, ones_like, reduced_count,
                           reshape_as, static_rank, sum_to, vector_on_axis, zeros_like)
from .ops.presets import binary_op, float_binary_op, float_unary_op, reduce_shape, reduction_op, unary_op
from .ops.samples import (BINARY_SHAPES, UNARY_SHAPES, away_from_zero, elementwise_samples, positive,
                          reduction_samples, uniform)
from .plugins import register_ops
from .shapes import (IndexArray, Shape, broadcast_shapes, broadcasts_to, dims_agree, elementwise, fits, format_shape,
                     indexed_shape, matmul_shape, normalize_axes, reduced_shape, same_as_first, shapes_agree)

__all__ = [
    # defining ops
    "op", "Op", "Sample", "ops_in", "hookimpl", "register_ops",
    # presets for op families
    "unary_op", "float_unary_op", "binary_op", "float_binary_op", "reduction_op",
    # dtype rules
    "result_dtype", "float_dtype", "first_dtype", "bool_dtype", "ufunc_dtype",
    # shape rules and helpers
    "Shape", "same_as_first", "elementwise", "broadcast_shapes", "reduce_shape", "reduced_shape",
    "normalize_axes", "matmul_shape", "indexed_shape", "IndexArray", "fits", "dims_agree", "shapes_agree",
    "broadcasts_to", "format_shape",
    # building graph VJPs
    "sum_to", "broadcast_like", "zeros_like", "ones_like", "expand_reduced", "reduced_count", "reshape_as",
    "is_positive", "is_nonzero", "static_rank", "vector_on_axis",
    # sample makers for dagrad check
    "uniform", "away_from_zero", "positive", "elementwise_samples", "reduction_samples",
    "UNARY_SHAPES", "BINARY_SHAPES",
]


def __dir__():  # dir() lists the public names, not the submodules and imports behind them
    return __all__
