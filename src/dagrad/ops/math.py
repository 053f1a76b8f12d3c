"""Elementwise mathematical functions: trigonometric, hyperbolic, logarithmic, error function, rounding.

Each block is one op: the numpy forward, its numpy VJP, then its graph VJP
(the same maths on Tensors, for ``dagrad.grad``). The derivative of each is
written with the op family itself (``sinh``'s uses ``cosh``), so every one is
differentiable again to any order.

Rounding (``floor``, ``ceil``, ``round``) and ``sign`` are piecewise constant:
their gradient is zero wherever it exists, and zero is what they give at the
jumps too, as in PyTorch and JAX. They return no gradient at all (``None``),
which the engine treats as zero, so a model through them trains nothing
upstream rather than failing.

numpy has no error function; ``erf`` and ``erfc`` evaluate W. J. Cody's
rational Chebyshev approximations ("Rational Chebyshev approximations for the
error function", Math. Comp. 23 (1969) 631-638, as in his SPECFUN routine
CALERF), which are accurate to the last bits of a float64 over the whole line:
``erf`` near 0, ``erfc`` far into the tail where ``1 - erf`` would be 0.
Cody's form is used rather than ``math.erf`` called once per entry because it
runs on whole arrays at numpy's speed; the tests check it against
``math.erf`` and ``math.erfc`` entry for entry.
"""

from __future__ import annotations

import math

import numpy as np

from ..opdef import Sample, first_dtype
from .adjoints import is_nonzero
from .elementwise import exp, sqrt, where
from .presets import float_binary_op, float_unary_op, unary_op
from .samples import UNARY_SHAPES, elementwise_samples, positive, uniform

__all__ = [
    "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh", "arctanh",
    "log1p", "expm1", "log2", "log10", "erf", "erfc", "square", "reciprocal", "rsqrt",
    "sign", "floor", "ceil", "round",
]


def _between(low: float, high: float):
    """A sample maker of values uniform in ``[low, high]``: inside an op's domain, away from its edges."""

    def make(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        return uniform(rng, shape, low, high)

    return make


def _off_whole(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values in ±[0, 3] at least 0.1 from any whole or half number, so no jump of a rounding lies in a step."""
    whole = rng.integers(-3, 3, size=shape)
    frac = rng.choice([0.15, 0.3, 0.65, 0.85], size=shape) + rng.uniform(-0.04, 0.04, size=shape)
    return np.asarray(whole + frac, dtype=np.float64)


# -------------------------------------------------------- trigonometric ---


@float_unary_op(saves=("out",), samples=elementwise_samples(1, make=_between(-1.2, 1.2)),
                counterparts={"numpy": "numpy.tan", "torch": "torch.tan"})
def tan(x):
    """Elementwise tangent."""
    return np.tan(x)


@tan.graph_vjp
@tan.vjp
def _(g, x, out):
    return (g * (1 + out * out),)


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=_between(-0.9, 0.9)),
                counterparts={"numpy": "numpy.arcsin", "torch": "torch.asin"})
def arcsin(x):
    """Elementwise inverse sine, for ``x`` in ``[-1, 1]``."""
    return np.arcsin(x)


@arcsin.vjp
def _(g, x):
    return (g / np.sqrt((1 - x) * (1 + x)),)


@arcsin.graph_vjp
def _(g, x):
    return (g / sqrt((1 - x) * (1 + x)),)


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=_between(-0.9, 0.9)),
                counterparts={"numpy": "numpy.arccos", "torch": "torch.acos"})
def arccos(x):
    """Elementwise inverse cosine, for ``x`` in ``[-1, 1]``."""
    return np.arccos(x)


@arccos.vjp
def _(g, x):
    return (-g / np.sqrt((1 - x) * (1 + x)),)


@arccos.graph_vjp
def _(g, x):
    return (-g / sqrt((1 - x) * (1 + x)),)


@float_unary_op(saves=("inputs",), counterparts={"numpy": "numpy.arctan", "torch": "torch.atan"})
def arctan(x):
    """Elementwise inverse tangent."""
    return np.arctan(x)


@arctan.graph_vjp
@arctan.vjp
def _(g, x):
    return (g / (1 + x * x),)


@float_binary_op(saves=("inputs",), counterparts={"numpy": "numpy.arctan2", "torch": "torch.atan2"})
def arctan2(y, x):
    """Elementwise angle of the point ``(x, y)``: ``arctan(y / x)`` in the right quadrant; gradient 0 at the origin.

    At ``(0, 0)`` the angle has no derivative; both gradients are 0 there (a
    convention, like ``abs`` at 0), not the NaN of ``0 / 0``.
    """
    return np.arctan2(y, x)


def _safe_radius2(y, x):
    """``x² + y²`` with 1 at the origin, where the numerators of arctan2's gradient are 0 anyway."""
    r2 = x * x + y * y
    return np.where(r2 == 0, 1, r2)


@arctan2.vjp
def _(g, y, x, needs):
    scaled = g / _safe_radius2(y, x)
    return (scaled * x if needs[0] else None), (-scaled * y if needs[1] else None)


@arctan2.graph_vjp
def _(g, y, x, needs):
    """As the numpy rule; the origin is masked by a boolean node, so the convention holds to higher orders."""
    r2 = x * x + y * y
    scaled = g / where(is_nonzero(r2), r2, 1)
    return (scaled * x if needs[0] else None), (-scaled * y if needs[1] else None)


# ----------------------------------------------------------- hyperbolic ---


@float_unary_op(saves=("inputs",), counterparts={"numpy": "numpy.sinh", "torch": "torch.sinh"})
def sinh(x):
    """Elementwise hyperbolic sine."""
    return np.sinh(x)


@sinh.vjp
def _(g, x):
    return (g * np.cosh(x),)


@sinh.graph_vjp
def _(g, x):
    return (g * cosh(x),)


@float_unary_op(saves=("inputs",), counterparts={"numpy": "numpy.cosh", "torch": "torch.cosh"})
def cosh(x):
    """Elementwise hyperbolic cosine."""
    return np.cosh(x)


@cosh.vjp
def _(g, x):
    return (g * np.sinh(x),)


@cosh.graph_vjp
def _(g, x):
    return (g * sinh(x),)


@float_unary_op(saves=("inputs",), counterparts={"numpy": "numpy.arcsinh", "torch": "torch.asinh"})
def arcsinh(x):
    """Elementwise inverse hyperbolic sine."""
    return np.arcsinh(x)


@arcsinh.vjp
def _(g, x):
    return (g / np.hypot(x, 1),)


@arcsinh.graph_vjp
def _(g, x):
    return (g / sqrt(x * x + 1),)


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=_between(1.2, 3.0)),
                counterparts={"numpy": "numpy.arccosh", "torch": "torch.acosh"})
def arccosh(x):
    """Elementwise inverse hyperbolic cosine, for ``x >= 1``."""
    return np.arccosh(x)


@arccosh.vjp
def _(g, x):
    return (g / np.sqrt((x - 1) * (x + 1)),)


@arccosh.graph_vjp
def _(g, x):
    return (g / sqrt((x - 1) * (x + 1)),)


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=_between(-0.9, 0.9)),
                counterparts={"numpy": "numpy.arctanh", "torch": "torch.atanh"})
def arctanh(x):
    """Elementwise inverse hyperbolic tangent, for ``x`` in ``(-1, 1)``."""
    return np.arctanh(x)


@arctanh.graph_vjp
@arctanh.vjp
def _(g, x):
    return (g / ((1 - x) * (1 + x)),)


# -------------------------------------------------- logarithms, powers ---


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=_between(-0.7, 2.0)),
                counterparts={"numpy": "numpy.log1p", "torch": "torch.log1p"})
def log1p(x):
    """Elementwise ``log(1 + x)``, accurate for tiny ``x``."""
    return np.log1p(x)


@log1p.graph_vjp
@log1p.vjp
def _(g, x):
    return (g / (1 + x),)


@float_unary_op(saves=("out",), counterparts={"numpy": "numpy.expm1", "torch": "torch.expm1"})
def expm1(x):
    """Elementwise ``exp(x) - 1``, accurate for tiny ``x``."""
    return np.expm1(x)


@expm1.graph_vjp
@expm1.vjp
def _(g, x, out):
    return (g * (out + 1),)


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=positive),
                counterparts={"numpy": "numpy.log2", "torch": "torch.log2"})
def log2(x):
    """Elementwise base-2 logarithm."""
    return np.log2(x)


@log2.graph_vjp
@log2.vjp
def _(g, x):
    return (g / (x * math.log(2)),)


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=positive),
                counterparts={"numpy": "numpy.log10", "torch": "torch.log10"})
def log10(x):
    """Elementwise base-10 logarithm."""
    return np.log10(x)


@log10.graph_vjp
@log10.vjp
def _(g, x):
    return (g / (x * math.log(10)),)


@unary_op(saves=("inputs",), counterparts={"numpy": "numpy.square", "torch": "torch.square"})
def square(x):
    """Elementwise ``x * x``, keeping integer dtypes."""
    return np.square(x)


@square.graph_vjp
@square.vjp
def _(g, x):
    return (2 * g * x,)


@float_unary_op(saves=("out",), counterparts={"numpy": "numpy.reciprocal", "torch": "torch.reciprocal"})
def reciprocal(x):
    """Elementwise ``1 / x``, in floating point for integer inputs too (as PyTorch; numpy's divides integers)."""
    return np.reciprocal(x)


@reciprocal.graph_vjp
@reciprocal.vjp
def _(g, x, out):
    return (-g * out * out,)


@float_unary_op(saves=("out",), samples=elementwise_samples(1, make=positive), counterparts={"torch": "torch.rsqrt"})
def rsqrt(x):
    """Elementwise ``1 / sqrt(x)``."""
    return 1 / np.sqrt(x)


@rsqrt.graph_vjp
@rsqrt.vjp
def _(g, x, out):
    return (-0.5 * g * out * out * out,)


# ------------------------------------------------------- error function ---

# Cody's coefficients (CALERF, IEEE double precision). erf(x) = x A(x²)/B(x²) for |x| <= 0.46875;
# erfc(y) = exp(-y²) C(y)/D(y) for 0.46875 < y <= 4; erfc(y) = exp(-y²) (1/sqrt(pi) - P(1/y²)/Q(1/y²)) / y
# for y > 4, down to the subnormal doubles.
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
      1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
      8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
      2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
      3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
      6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
      2.33520497626869185e-3)
_NEAR_ZERO = 0.46875
_ERFC_UNDERFLOWS = 27.3  # erfc(27.3) is below the smallest subnormal double (Cody stops at 26.543, the smallest normal)


def _rational(z, num, den):
    """Cody's nested evaluation: ``num[-1]`` leads the numerator, the denominator is monic."""
    top, bottom = num[-1] * z, z
    for a, b in zip(num[:len(den) - 1], den[:-1]):
        top, bottom = (top + a) * z, (bottom + b) * z
    return (top + num[len(den) - 1]) / (bottom + den[-1])


def _exp_minus_square(y):
    """``exp(-y²)``, with ``y² = t² + (y - t)(y + t)`` for ``t`` = y cut to 1/16, so y²'s rounding is not magnified."""
    t = np.trunc(y * 16) / 16
    return np.exp(-t * t) * np.exp(-(y - t) * (y + t))


def _erfc_of_large(y):
    """``erfc(y)`` for ``y > 0.46875`` (or NaN), from Cody's second and third approximations."""
    out = np.where(np.isnan(y), np.nan, 0.0)
    middle = y <= 4
    tail = (y > 4) & (y < _ERFC_UNDERFLOWS)
    ym = y[middle]
    out[middle] = _rational(ym, _C, _D) * _exp_minus_square(ym)
    yt = y[tail]
    z = 1 / (yt * yt)
    out[tail] = (1 / math.sqrt(math.pi) - z * _rational(z, _P, _Q)) / yt * _exp_minus_square(yt)
    return out


def _erf_parts(x):
    """``(near, x_near, erfc_far)``: where ``|x| <= 0.46875``, ``erf`` there, and ``erfc(|x|)`` elsewhere."""
    near = np.abs(x) <= _NEAR_ZERO
    xn = x[near]
    return near, xn * _rational(xn * xn, _A, _B), _erfc_of_large(np.abs(x[~near]))


def _erf_float64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape)
    near, erf_near, erfc_far = _erf_parts(x)
    out[near] = erf_near
    out[~near] = np.copysign((0.5 - erfc_far) + 0.5, x[~near])
    return out


def _erfc_float64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape)
    near, erf_near, erfc_far = _erf_parts(x)
    out[near] = 1 - erf_near
    out[~near] = np.where(x[~near] < 0, 2 - erfc_far, erfc_far)
    return out


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=_between(-2.5, 2.5)),
                counterparts={"torch": "torch.erf", "scipy": "scipy.special.erf"})
def erf(x):
    """Elementwise error function ``2/sqrt(pi) * integral of exp(-t²) from 0 to x``, to float64 precision.

    Computed in float64 (Cody's rational approximations, see the module) and
    returned in ``x``'s dtype.
    """
    return _erf_float64(x).astype(x.dtype, copy=False)


@erf.vjp
def _(g, x):
    return (g * (_TWO_OVER_SQRT_PI * np.exp(-x * x)),)


@erf.graph_vjp
def _(g, x):
    return (g * (_TWO_OVER_SQRT_PI * exp(-x * x)),)


@float_unary_op(saves=("inputs",), samples=elementwise_samples(1, make=_between(-2.5, 2.5)),
                counterparts={"torch": "torch.erfc", "scipy": "scipy.special.erfc"})
def erfc(x):
    """Elementwise complementary error function ``1 - erf(x)``, accurate far in the tail where ``1 - erf`` is 0."""
    return _erfc_float64(x).astype(x.dtype, copy=False)


@erfc.vjp
def _(g, x):
    return (g * (-_TWO_OVER_SQRT_PI * np.exp(-x * x)),)


@erfc.graph_vjp
def _(g, x):
    return (g * (-_TWO_OVER_SQRT_PI * exp(-x * x)),)


# ---------------------------------------------------- piecewise constant ---


def _rounding_samples(attrs=None):
    def samples(rng):
        out = [Sample((_off_whole(rng, s),), dict(attrs or {}), f"shape {s}") for s in UNARY_SHAPES]
        out.append(Sample((np.arange(-3, 4),), dict(attrs or {}), "integers: returned as they are"))
        return out

    return samples


def _whole(rounding, x: np.ndarray) -> np.ndarray:
    """``rounding(x)`` for floating ``x``; integer and bool inputs are whole already and come back as they are."""
    return rounding(x) if x.dtype.kind in "fc" else x.copy()


@unary_op(dtype=first_dtype, saves=(), samples=_rounding_samples(),
          counterparts={"numpy": "numpy.floor", "torch": "torch.floor"})
def floor(x):
    """Elementwise largest whole number ``<= x``, in ``x``'s dtype; gradient 0 (also at the jumps)."""
    return _whole(np.floor, x)


@floor.graph_vjp
@floor.vjp
def _(g, x):
    return (None,)  # piecewise constant: 0 wherever the derivative exists, and 0 at the jumps


@unary_op(dtype=first_dtype, saves=(), samples=_rounding_samples(),
          counterparts={"numpy": "numpy.ceil", "torch": "torch.ceil"})
def ceil(x):
    """Elementwise smallest whole number ``>= x``, in ``x``'s dtype; gradient 0 (also at the jumps)."""
    return _whole(np.ceil, x)


@ceil.graph_vjp
@ceil.vjp
def _(g, x):
    return (None,)


@unary_op(dtype=first_dtype, saves=(), samples=_rounding_samples({"decimals": 0}),
          counterparts={"numpy": "numpy.round", "torch": "torch.round"})
def round(x, *, decimals=0):
    """Elementwise rounding to ``decimals`` places, halves to even (as numpy and PyTorch); gradient 0.

    ``round(2.5) == 2.0`` and ``round(3.5) == 4.0``. Integer inputs stay
    integers (with negative ``decimals`` they round to tens, hundreds...).
    """
    return x.copy() if x.dtype.kind == "b" else np.round(x, decimals)


@round.graph_vjp
@round.vjp
def _(g, x, *, decimals):
    return (None,)


def _sign_samples(rng):
    out = elementwise_samples(1)(rng)
    out.append(Sample((np.array([-2.0, 3.0, np.inf, -np.inf]),), {}, "infinities"))
    out.append(Sample((np.arange(-3, 4, dtype=np.int8),), {}, "int8"))
    return out


@unary_op(dtype=first_dtype, saves=(), samples=_sign_samples,
          counterparts={"numpy": "numpy.sign", "torch": "torch.sign"})
def sign(x):
    """Elementwise -1, 0 or 1 by the sign of ``x`` (NaN stays NaN), in ``x``'s dtype; gradient 0."""
    return x.copy() if x.dtype.kind == "b" else np.sign(x)


@sign.graph_vjp
@sign.vjp
def _(g, x):
    return (None,)
