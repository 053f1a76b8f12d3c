"""Elementwise ops: arithmetic, transcendental functions, activations, selection.

Each block is one op: the forward in numpy, then its numpy VJP, then its
graph VJP (the same maths on Tensors, for ``dagrad.grad``). A rule written with
arithmetic operators only runs on arrays and on Tensors alike, so one function
is both (``@add.graph_vjp`` stacked on ``@add.vjp``). Broadcasting is
handled by the engine, which sums each gradient back to its input's shape.
"""

from __future__ import annotations

import numpy as np

from ..opdef import Sample, first_dtype, op, ufunc_dtype
from ..shapes import elementwise
from .adjoints import is_nonzero, is_positive
from .presets import binary_op, float_binary_op, float_unary_op, unary_op
from .samples import away_from_zero, elementwise_samples, positive

# ---------------------------------------------------------- arithmetic ---


@binary_op(dtype=ufunc_dtype(np.add), saves=(), counterparts={"numpy": "numpy.add", "torch": "torch.add"})
def add(x, y):
    """Elementwise sum ``x + y``."""
    return np.add(x, y)


@add.graph_vjp
@add.vjp
def _(g, x, y):
    return g, g


@binary_op(dtype=ufunc_dtype(np.subtract), saves=(), counterparts={"numpy": "numpy.subtract", "torch": "torch.sub"})
def sub(x, y):
    """Elementwise difference ``x - y``."""
    return np.subtract(x, y)


@sub.vjp
def _(g, x, y):
    return g, -g


@sub.graph_vjp
def _(g, x, y, needs):
    return g, (-g if needs[1] else None)


@binary_op(dtype=ufunc_dtype(np.multiply), saves=("inputs",),
           counterparts={"numpy": "numpy.multiply", "torch": "torch.mul"})
def mul(x, y):
    """Elementwise product ``x * y``."""
    return np.multiply(x, y)


@mul.graph_vjp
@mul.vjp
def _(g, x, y, needs):
    return g * y if needs[0] else None, g * x if needs[1] else None


@float_binary_op(counterparts={"numpy": "numpy.divide", "torch": "torch.div"})
def div(x, y):
    """Elementwise quotient ``x / y``."""
    return np.divide(x, y)


@div.vjp
def _(g, x, y, out, needs):
    gx = g / y
    return gx if needs[0] else None, -gx * out if needs[1] else None


@div.graph_vjp
def _(g, x, y, out, needs):
    gx = g / y
    return gx, (-gx * out if needs[1] else None)


@unary_op(dtype=ufunc_dtype(np.negative), saves=(), counterparts={"numpy": "numpy.negative", "torch": "torch.neg"})
def neg(x):
    """Elementwise negation ``-x``."""
    return np.negative(x)


@neg.graph_vjp
@neg.vjp
def _(g, x):
    return (-g,)


def _pow_samples(rng):
    base = elementwise_samples(2, make=positive)(rng)
    integer_exponent = Sample((away_from_zero(rng, (3, 4)), np.asarray(2)), {}, "negative base, constant integer exponent 2")
    zero_power = Sample((np.array([0.0, -0.7, 1.3]), np.asarray(0)), {}, "x ** 0 at x = 0: gradient 0 (as PyTorch)")
    return base + [integer_exponent, zero_power]


@binary_op(dtype=ufunc_dtype(np.power), samples=_pow_samples,
           counterparts={"numpy": "numpy.power", "torch": "torch.pow"})
def pow(x, y):
    """Elementwise power ``x ** y``."""
    return np.power(x, y)


@pow.vjp
def _(g, x, y, out, needs):
    need_x, need_y = needs
    # d/dx x**y = y x**(y-1); where y == 0 it is 0 (PyTorch's convention), not 0 * 0**-1 = NaN at x = 0.
    gx = g * np.where(y == 0, 0, y * np.power(x, np.where(y == 0, 1, y - 1))) if need_x else None
    # d/dy x**y = x**y log x, defined for x > 0; where x <= 0 the exponent gets no gradient.
    gy = g * out * np.log(np.where(x > 0, x, 1)) if need_y else None
    return gx, gy


@pow.graph_vjp
def _(g, x, y, out, needs):
    """As the numpy rule; where y == 0 the exponent y - 1 becomes 1, so y * x ** 1 = 0 holds at x = 0 too."""
    need_x, need_y = needs
    gx = g * (y * pow(x, where(is_nonzero(y), y - 1, 1))) if need_x else None
    gy = g * out * log(where(is_positive(x), x, 1)) if need_y else None
    return gx, gy


# ------------------------------------------------------ transcendental ---


@float_unary_op(saves=("out",), counterparts={"numpy": "numpy.exp", "torch": "torch.exp"})
def exp(x):
    """Elementwise exponential."""
    return np.exp(x)


@exp.graph_vjp
@exp.vjp
def _(g, x, out):
    return (g * out,)


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=positive),
    counterparts={"numpy": "numpy.log", "torch": "torch.log"})
def log(x):
    """Elementwise natural logarithm."""
    return np.log(x)


@log.graph_vjp
@log.vjp
def _(g, x):
    return (g / x,)


@float_unary_op(saves=("out",), samples=elementwise_samples(1, make=positive),
    counterparts={"numpy": "numpy.sqrt", "torch": "torch.sqrt"})
def sqrt(x):
    """Elementwise square root."""
    return np.sqrt(x)


@sqrt.graph_vjp
@sqrt.vjp
def _(g, x, out):
    return (g / (2 * out),)


@unary_op(saves=("inputs",), counterparts={"numpy": "numpy.abs", "torch": "torch.abs"})
def abs(x):
    """Elementwise absolute value (gradient 0 at 0)."""
    return np.abs(x)


@abs.vjp
def _(g, x):
    return (g * np.sign(x),)


@abs.graph_vjp
def _(g, x):
    """``g * sign(x)``; the sign is made from boolean masks, so its own derivative is zero (and 0 at 0)."""
    dtype = x.dtype.name
    sign = astype(is_positive(x), dtype=dtype) - astype(is_positive(-x), dtype=dtype)
    return (g * sign,)


@float_unary_op(saves=("inputs",), counterparts={"numpy": "numpy.sin", "torch": "torch.sin"})
def sin(x):
    """Elementwise sine."""
    return np.sin(x)


@sin.vjp
def _(g, x):
    return (g * np.cos(x),)


@sin.graph_vjp
def _(g, x):
    return (g * cos(x),)


@float_unary_op(saves=("inputs",), counterparts={"numpy": "numpy.cos", "torch": "torch.cos"})
def cos(x):
    """Elementwise cosine."""
    return np.cos(x)


@cos.vjp
def _(g, x):
    return (-g * np.sin(x),)


@cos.graph_vjp
def _(g, x):
    return (-g * sin(x),)


# --------------------------------------------------------- activations ---


@float_unary_op(saves=("out",), counterparts={"numpy": "numpy.tanh", "torch": "torch.tanh"})
def tanh(x):
    """Elementwise hyperbolic tangent."""
    return np.tanh(x)


@tanh.graph_vjp
@tanh.vjp
def _(g, x, out):
    return (g * (1 - out * out),)


@float_unary_op(saves=("out",), counterparts={"scipy": "scipy.special.expit", "torch": "torch.sigmoid"})
def sigmoid(x):
    """Elementwise logistic function, computed without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


@sigmoid.graph_vjp
@sigmoid.vjp
def _(g, x, out):
    return (g * out * (1 - out),)


@unary_op(saves=("out",), counterparts={"torch": "torch.nn.functional.relu"})
def relu(x):
    """Elementwise ``max(x, 0)`` (gradient 0 at 0), in ``x``'s dtype."""
    return np.maximum(x, np.zeros((), x.dtype))


@relu.vjp
def _(g, x, out):
    return (g * (out > 0),)


@relu.graph_vjp
def _(g, x, out):
    """``g`` where the output is positive; the mask is boolean, so the second derivative is zero (0 at the kink)."""
    return (where(is_nonzero(out), g, 0),)


# ----------------------------------------------------------- selection ---


def _tie_split(x, y):
    """Share of the gradient for ``x`` in max(x, y): 1 where x wins, 1/2 at ties (as PyTorch)."""
    return np.where(x == y, 0.5, (x > y).astype(np.result_type(x, y)))


@binary_op(saves=("inputs",), counterparts={"numpy": "numpy.maximum", "torch": "torch.maximum"})
def maximum(x, y):
    """Elementwise larger of ``x`` and ``y``; a tie splits the gradient evenly."""
    return np.maximum(x, y)


@maximum.vjp
def _(g, x, y, needs):
    share = _tie_split(x, y)
    return g * share if needs[0] else None, g * (1 - share) if needs[1] else None


def _tie_split_graph(g, winner, loser):
    """``g`` for the winner of max(winner, loser), ``g / 2`` at ties, as Tensors; boolean masks, so constant to higher orders."""
    d = winner - loser
    return where(is_nonzero(d), where(is_positive(d), g, 0), 0.5 * g)


@maximum.graph_vjp
def _(g, x, y, needs):
    return (_tie_split_graph(g, x, y) if needs[0] else None), (_tie_split_graph(g, y, x) if needs[1] else None)


@binary_op(saves=("inputs",), counterparts={"numpy": "numpy.minimum", "torch": "torch.minimum"})
def minimum(x, y):
    """Elementwise smaller of ``x`` and ``y``; a tie splits the gradient evenly."""
    return np.minimum(x, y)


@minimum.vjp
def _(g, x, y, needs):
    share = _tie_split(y, x)
    return g * share if needs[0] else None, g * (1 - share) if needs[1] else None


@minimum.graph_vjp
def _(g, x, y, needs):
    return (_tie_split_graph(g, y, x) if needs[0] else None), (_tie_split_graph(g, x, y) if needs[1] else None)


def _where_samples(rng):
    out = []
    for c, x, y in [((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), ()), ((0, 2), (0, 2), (1, 2)), ((1,), (2, 1), (1, 3))]:
        out.append(Sample((rng.random(c) > 0.5, away_from_zero(rng, x), away_from_zero(rng, y)), {}, f"shapes {c}, {x}, {y}"))
    x = away_from_zero(rng, (2, 3))
    out.append(Sample((rng.random((2, 3)) > 0.5, x, x), {}, "the same input twice"))
    return out


@op(shape=elementwise, dtype=lambda c, x, y: np.result_type(x, y), saves=("inputs",), samples=_where_samples,
    counterparts={"numpy": "numpy.where", "torch": "torch.where"})
def where(condition, x, y):
    """Elementwise ``x`` where ``condition`` holds, else ``y``."""
    return np.where(condition, x, y)


@where.vjp
def _(g, condition, x, y, needs):
    zero = np.zeros((), g.dtype)
    return None, np.where(condition, g, zero) if needs[1] else None, np.where(condition, zero, g) if needs[2] else None


@where.graph_vjp
def _(g, condition, x, y, needs):
    return None, (where(condition, g, 0) if needs[1] else None), (where(condition, 0, g) if needs[2] else None)


@unary_op(dtype=first_dtype, saves=("inputs",), samples=elementwise_samples(1, attrs={"low": -0.5, "high": 0.7}),
    counterparts={"numpy": "numpy.clip", "torch": "torch.clamp"})
def clip(x, *, low=None, high=None):
    """Elementwise ``x`` limited to ``[low, high]`` (either may be None); no gradient outside."""
    return np.clip(x, low, high).astype(x.dtype, copy=False)


@clip.vjp
def _(g, x, *, low, high):
    inside = np.ones(x.shape, dtype=bool)
    if low is not None:
        inside &= x >= low
    if high is not None:
        inside &= x <= high
    return (g * inside,)


@clip.graph_vjp
def _(g, x, *, low, high):
    """``g`` inside ``[low, high]``, 0 outside; boolean masks, so the second derivative is zero."""
    if low is not None:
        g = where(is_positive(low - x), 0, g)
    if high is not None:
        g = where(is_positive(x - high), 0, g)
    return (g,)


# --------------------------------------------------------------- dtype ---


@unary_op(dtype=lambda x, *, dtype: np.dtype(dtype), saves=(), samples=elementwise_samples(1, attrs={"dtype": "float64"}),
    counterparts={"numpy": "numpy.ndarray.astype", "torch": "torch.Tensor.to"})
def astype(x, *, dtype="float64"):
    """Cast to ``dtype``; the gradient is cast back (and is None for integer inputs)."""
    return x.astype(dtype)


@astype.vjp
def _(g, x, *, dtype):
    return (g.astype(x.dtype) if x.dtype.kind in "fc" else None,)


@astype.graph_vjp
def _(g, x, *, dtype):
    return (astype(g, dtype=x.dtype.name) if x.dtype.kind in "fc" else None,)

