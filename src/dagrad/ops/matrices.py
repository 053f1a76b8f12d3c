"""Matrix functions and decompositions with gradients of any order, batched like ``numpy.linalg``.

``inv``, ``det``, ``slogdet``, ``solve``, ``cholesky``, ``qr``, ``svd``,
``eigh``, ``pinv`` and ``matrix_norm`` (``dagrad.linalg`` calls them with
numpy's signatures), and ``tri_like``, the masks their graph VJPs need.

Every op works on the last two axes and treats any leading axes as a batch
(``solve`` broadcasts the batches of its two inputs), computes in float32 or
float64 (integer inputs in float64; LAPACK has nothing narrower, and complex
matrices are not supported), and gives gradients by the published matrix
derivative results (Giles 2008, "An extended collection of matrix derivative
results"; Murray 2016 for Cholesky; Townsend 2016 for the SVD; Walter and
Lehmann 2018 for QR; Golub and Pereyra 1973 for the pseudo-inverse).

**Several results.** An op returns one array, so a decomposition returning
several factors is one op with a ``part`` attribute naming the factor, and a
call such as ``dg.linalg.svd(x)`` adds one node per factor. Each node's VJP
assumes a zero cotangent for the other factors, which is exact: a VJP is
linear in its cotangents, and the engine sums the nodes' gradients. Each node
computes the whole decomposition (numpy computes all factors in one LAPACK
call anyway) and keeps the factors as residuals for its VJP; a graph VJP adds
nodes for the factors it needs, which compute the decomposition again.

**Symmetric inputs.** ``cholesky`` and ``eigh`` read one triangle of their
input, as numpy does (the lower one by default), and their gradient is the
exact derivative of that: it lives on the triangle read (off-diagonal entries
count twice, as each stands for two entries of the symmetric matrix; the
other triangle gets zero). For a symmetric matrix built in the graph
(``B @ B.T``, ``(B + B.T) / 2``) the gradient reaching ``B`` is the same as
PyTorch's, which reports the symmetric matrix ``sym(S)`` for the input itself
instead; both are the same linear function of a symmetric perturbation.

**Repeated eigenvalues and singular values.** The eigenvectors of a repeated
eigenvalue (the singular vectors of a repeated singular value) are any
orthonormal basis of a subspace, so the gradient through them is not defined
there, as in PyTorch and JAX; values count as repeated when they are equal
within rounding (a few ulps of their sum). Where the cotangent reaches such a
vector, the numpy VJP raises (an ``OpError`` naming the node and the values)
and the graph VJP gives NaN, which anomaly checking reports. A loss that does
not use those vectors gets its gradient as usual, and the gradient of the
values themselves exists everywhere. Distinct values that are close give
large gradients, because the derivative is large.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..opdef import Sample, first_dtype, op
from ..shapes import Shape, broadcast_shapes, dims_agree, format_shape
from ..tensor import apply
from .adjoints import is_nonzero, static_rank, zeros_like
from .linalg import swap_last
from .shaping import tril, triu
from .statistics import others_product_last

__all__ = ["tri_like", "inv", "det", "slogdet", "solve", "cholesky", "qr", "svd", "eigh", "pinv", "matrix_norm"]

# ------------------------------------------------------------ shared ---


def linalg_dtype(*dtypes: np.dtype, **attrs) -> np.dtype:
    """Dtype rule of the matrix ops: float32 and float64 kept, integers and bool computed in float64.

    LAPACK computes in float32 and float64 only (numpy refuses float16 and
    longdouble too), and the gradient formulas here are for real matrices.
    """
    dtype = np.result_type(*dtypes)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype in (np.float32, np.float64):
        return np.dtype(dtype)
    if dtype.kind == "c":
        raise TypeError(f"the matrix ops are for real matrices, not {dtype}")
    raise TypeError(f"the matrix ops compute in float32 or float64 (LAPACK), not {dtype}: cast with astype first")


def _matrix(shape: Shape, who: str) -> tuple:
    if len(shape) < 2:
        raise ValueError(f"{who} needs matrices (at least 2 axes), got shape {format_shape(shape)}")
    return tuple(shape[:-2]), shape[-2], shape[-1]


def _square(shape: Shape, who: str) -> tuple:
    """``(batch, n)`` of a stack of square matrices; ``ValueError`` if the last two sizes differ."""
    batch, m, n = _matrix(shape, who)
    if not dims_agree(m, n):
        raise ValueError(f"{who} needs square matrices in the last two axes, got shape {format_shape(shape)}")
    return batch, m if m is not None else n


def _smaller(m, n):
    """``min(m, n)`` of sizes that may be unknown (an unknown size might be 0)."""
    return None if m is None or n is None else min(m, n)


def _part(part, parts: tuple, who: str) -> str:
    if part not in parts:
        names = ", ".join(repr(p) for p in parts)
        raise ValueError(f"{who} has several results: say which one this node is with part= one of {names} "
                         f"(got {part!r}); dg.linalg.{who}(x) adds a node for each")
    return part


def _swap(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _where(index: tuple) -> str:
    return f"matrix {list(index)} of the batch" if index else "the matrix"


def _first_failing(fn, a: np.ndarray) -> tuple:
    """The batch index of the first matrix on which ``fn`` raises ``LinAlgError`` (only called after one did)."""
    for index in np.ndindex(a.shape[:-2]):
        try:
            fn(a[index])
        except np.linalg.LinAlgError:
            return index
    return ()


def _inverse(a: np.ndarray, singular: Callable[[str], str]) -> np.ndarray:
    """``a⁻¹``; a ``ValueError`` with ``singular(where)`` naming the first singular matrix."""
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        raise ValueError(singular(_where(_first_failing(np.linalg.inv, a)))) from None


def _solve_matrix(a: np.ndarray, b: np.ndarray, singular: Callable[[str], str]) -> np.ndarray:
    """``a⁻¹ b`` for a stack of right-hand-side matrices ``b`` (..., n, k), the same under numpy 1 and 2."""
    if b.ndim < a.ndim:  # numpy 1 reads b of a.ndim - 1 axes as vectors; more axes are matrices in both
        b = b.reshape((1,) * (a.ndim - b.ndim) + b.shape)
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        raise ValueError(singular(_where(_first_failing(np.linalg.inv, np.broadcast_to(a, batch + a.shape[-2:])))))\
            from None


def _triangle_weights(n: int, upper: bool, dtype) -> np.ndarray:
    """1 on the diagonal, 2 inside the triangle read, 0 in the other: the adjoint of mirroring a triangle."""
    mask = (np.tri(n, k=0, dtype=dtype) + np.tri(n, k=-1, dtype=dtype))
    return mask.T if upper else mask


def _ties(values: np.ndarray) -> np.ndarray:
    """Boolean ``(..., k, k)``: the pairs of values equal within rounding (a few ulps of their sum), diagonal too."""
    tolerance = 4 * np.finfo(values.dtype).eps * np.sum(np.abs(values), -1)[..., None, None]
    return np.abs(values[..., None, :] - values[..., :, None]) <= tolerance


def _rotation(diff: np.ndarray, tied: np.ndarray, k: np.ndarray, touched: np.ndarray, who: str,
              values: str) -> np.ndarray:
    """``F ∘ (K - Kᵀ)`` with ``F_ij = 1 / diff_ij`` for distinct values, 0 for ``tied`` pairs.

    ``touched`` says which vectors the cotangent reaches. A pair of tied
    values is fine when it reaches neither (the loss does not use those
    vectors); otherwise the gradient is not defined there, and this raises.
    """
    pairs = tied & ~np.eye(tied.shape[-1], dtype=bool) & (touched[..., :, None] | touched[..., None, :])
    if pairs.any():
        *index, i, j = (int(v) for v in np.argwhere(pairs)[0])
        raise ValueError(
            f"{who}: {values} {i} and {j} of {_where(tuple(index))} are equal (within rounding), so the vectors "
            f"of that {values[:-1]} are any basis of a subspace and the gradient through them is not defined "
            f"there; the gradient of the {values} themselves is"
        )
    return np.where(tied, 0, (k - _swap(k)) / np.where(tied, 1, diff)).astype(k.dtype, copy=False)


# Tensor helpers for the graph VJPs.


def _mT(t):
    """``t`` with its last two axes swapped."""
    return swap_last(t, "a matrix op")


def _col(t):
    return apply("expand_dims", t, axis=-1)


def _row(t):
    return apply("expand_dims", t, axis=-2)


def _as_matrices(t):
    """A stack of scalars (..,) as (.., 1, 1), to scale a stack of matrices."""
    return apply("expand_dims", t, axis=(-2, -1))


def _eye_like(t):
    """The identity (ones on the main diagonal) in the shape of ``t``'s last two axes."""
    return tri_like(t, k=0) - tri_like(t, k=-1)


def _ties_graph(values):
    """``_ties`` with ops: a boolean node, never differentiated."""
    eps = float(np.finfo(values.dtype).eps)
    tolerance = _col(apply("sum", apply("abs", values), axis=-1, keepdims=True)) * (4 * eps)
    return apply("less_equal", apply("abs", _row(values) - _col(values)), tolerance)


def _rotation_graph(diff, tied, k, touched):
    """``_rotation`` with ops; where the numpy rule raises, NaN (a graph cannot raise, and NaN is reported)."""
    weights = apply("where", tied, 0.0, (k - _mT(k)) / apply("where", tied, 1.0, diff))
    off_diagonal = is_nonzero(1.0 - _eye_like(k))
    pairs = apply("logical_or", _col(touched), _row(touched))
    undefined = apply("logical_and", apply("logical_and", tied, off_diagonal), pairs)
    return apply("where", undefined, math.nan, weights)


def _touched_graph(g, axis: int):
    """Boolean: which vectors (columns for ``axis=-2``, rows for ``-1``) the cotangent ``g`` reaches."""
    return is_nonzero(apply("sum", apply("abs", g), axis=axis))


def _fold_graph(s, upper: bool):
    """The gradient of a symmetric matrix ``s`` folded onto the triangle read (see ``_triangle_weights``)."""
    return triu(s) + triu(s, k=1) if upper else tril(s) + tril(s, k=-1)


# ------------------------------------------------------------ samples ---


def _orthogonal(rng: np.random.Generator, batch: tuple, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal(batch + (n, n)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def _spread(rng: np.random.Generator, batch: tuple, k: int, low: float, high: float) -> np.ndarray:
    """``k`` values per matrix, at least ``(high - low) / (2k)`` apart: distinct, so gradients exist."""
    base = np.linspace(low, high, k) if k > 1 else np.full(k, (low + high) / 2)
    jitter = rng.uniform(-0.25, 0.25, batch + (k,)) * ((high - low) / max(k, 1))
    return rng.permuted(np.broadcast_to(base, batch + (k,)) + jitter, axis=-1)


def conditioned(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Matrices ``U diag(s) Vᵀ`` with distinct singular values in [0.8, 2.5]: well conditioned, any shape."""
    *batch, m, n = shape
    batch = tuple(batch)
    k = min(m, n)
    s = np.sort(_spread(rng, batch, k, 0.8, 2.5), axis=-1)[..., ::-1]
    u = _orthogonal(rng, batch, m)[..., :k]
    v = _orthogonal(rng, batch, n)[..., :k]
    return (u * s[..., None, :]) @ _swap(v)


def symmetric(rng: np.random.Generator, shape: tuple, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    """Symmetric matrices ``Q diag(λ) Qᵀ`` with distinct eigenvalues in [low, high] (positive: SPD)."""
    *batch, n, _ = shape
    batch = tuple(batch)
    q = _orthogonal(rng, batch, n)
    return (q * _spread(rng, batch, n, low, high)[..., None, :]) @ _swap(q)


def _junk_triangle(rng: np.random.Generator, a: np.ndarray, upper: bool) -> np.ndarray:
    """``a`` with the triangle an op does not read made different, so the checks see it ignored."""
    noise = rng.uniform(-1, 1, a.shape)
    keep = np.tri(a.shape[-1], k=0, dtype=bool)
    return np.where(keep.T if upper else keep, a, a + noise)


# Fixed first samples: check_op runs the first sample also as bool, uint8, int8 and int16 (rounded
# 8x), and these stay invertible (positive definite, for cholesky) through that rounding.
_GENERAL = np.array([[1.2, -0.3, -0.2], [-0.25, 1.1, -0.35], [-0.2, -0.3, 1.3]])
_SPD = np.array([[1.2, -0.3, -0.2], [-0.3, 1.1, -0.25], [-0.2, -0.25, 1.3]])


def _rectangular_samples(parts: tuple):
    """Samples of a decomposition of any matrix, for each of its ``parts``: tall, square, wide, 1x1, none."""

    def samples(rng):
        cases = [(conditioned(rng, (4, 3)), "tall 4x3"), (conditioned(rng, (2, 3, 3)), "a batch of square"),
                 (conditioned(rng, (2, 4)), "wide 2x4"), (np.array([[-1.3]]), "1x1"),
                 (np.zeros((0, 3, 2)), "an empty batch")]
        return [Sample((a,), {"part": part}, f"{part}, {label}") for part in parts for a, label in cases]

    return samples


# ----------------------------------------------------------- tri_like ---


def _tri_like_rule(x, *, k=0):
    _, m, n = _matrix(x, "tri_like")
    return (m, n)


@op(shape=_tri_like_rule, dtype=first_dtype, saves=(),
    samples=lambda rng: [Sample((rng.standard_normal(s),), {"k": k}, f"shape {s}, k={k}") for s, k in
                         [((3, 3), 0), ((2, 3, 4), -1), ((4, 2), 1), ((1, 1), 0), ((0, 2, 2), 0), ((3, 0), 0)]],
    counterparts={"numpy": "numpy.tri"})
def tri_like(x, *, k=0):
    """Ones at and below the ``k``-th diagonal, zeros above, sized like ``x``'s last two axes (values not read).

    ``numpy.tri(m, n, k)`` for an ``x`` of shape ``(..., m, n)``, as a node:
    the triangular masks of the matrix ops' graph VJPs, whose sizes may be
    known only at run time. Constant in ``x``, so it has no gradient.
    """
    return np.tri(x.shape[-2], x.shape[-1], k, dtype=x.dtype)


@tri_like.graph_vjp
@tri_like.vjp
def _(g, x, *, k):
    return (None,)


# ---------------------------------------------------------------- inv ---


def _inv_rule(x):
    batch, n = _square(x, "inv")
    return batch + (n, n)


def _inv_samples(rng):
    return [
        Sample((_GENERAL,), {}, "3x3"),
        Sample((conditioned(rng, (2, 3, 3)),), {}, "a batch of two"),
        Sample((conditioned(rng, (2, 1, 2, 2)),), {}, "two batch axes"),
        Sample((np.array([[-1.7]]),), {}, "1x1"),
        Sample((np.zeros((0, 3, 3)),), {}, "an empty batch"),
    ]


@op(shape=_inv_rule, dtype=linalg_dtype, float_inputs=True, saves=("out",), samples=_inv_samples,
    counterparts={"numpy": "numpy.linalg.inv", "torch": "torch.linalg.inv"})
def inv(x):
    """The inverse of each matrix: ``A⁻¹`` (an error names a singular one).

    Gradient: ``Ā = -A⁻ᵀ Ḡ A⁻ᵀ`` (Giles 2008), from the output alone.
    """
    return _inverse(x, lambda where: f"inv: {where} is singular (it has no inverse); for a least-squares "
                                      f"inverse use pinv, and to solve a system, solve")


@inv.vjp
def _(g, x, out):
    t = _swap(out)
    return (-(t @ g @ t),)


@inv.graph_vjp
def _(g, x, out):
    t = _mT(out)
    return (-(t @ g @ t),)


# -------------------------------------------------------- det, slogdet ---


def _det_rule(x, **attrs):
    batch, _ = _square(x, "det")
    return batch


def _det_samples(rng):
    # No singular matrix here: the numpy VJP handles one (tests/test_matrices.py checks it), the graph VJP not.
    return [
        Sample((_GENERAL,), {}, "3x3"),
        Sample((conditioned(rng, (2, 3, 3)),), {}, "a batch of two"),
        Sample((np.array([[-1.7]]),), {}, "1x1"),
        Sample((np.zeros((0, 2, 2)),), {}, "an empty batch"),
        Sample((np.zeros((2, 0, 0)),), {}, "0x0 matrices (determinant 1)"),
    ]


def _cofactor(a: np.ndarray, det: np.ndarray) -> np.ndarray:
    """The cofactor matrix, ``det(A) A⁻ᵀ``, also for singular matrices (by the SVD there).

    With ``A = U diag(s) Vᵀ`` the cofactor matrix is
    ``det(U) det(V) U diag(prod_{j != i} s_j) Vᵀ``, finite for any ``A``.
    """
    n = a.shape[-1]
    if a.size == 0:
        return np.zeros_like(a)
    flat, dets = a.reshape(-1, n, n), np.reshape(det, -1)
    out = np.empty_like(flat)
    singular = dets == 0
    if (~singular).any():
        out[~singular] = dets[~singular][:, None, None] * _swap(np.linalg.inv(flat[~singular]))
    if singular.any():
        u, s, vh = np.linalg.svd(flat[singular])
        signs = np.linalg.det(u) * np.linalg.det(vh)
        out[singular] = signs[:, None, None] * ((u * others_product_last(s)[:, None, :]) @ vh)
    return out.reshape(a.shape)


@op(shape=_det_rule, dtype=linalg_dtype, float_inputs=True, samples=_det_samples,
    counterparts={"numpy": "numpy.linalg.det", "torch": "torch.linalg.det"})
def det(x):
    """The determinant of each matrix.

    Gradient: the cofactor matrix, ``Ā = ḡ det(A) A⁻ᵀ`` (Giles 2008). The
    numpy VJP computes it by the SVD where the matrix is singular, so it is
    exact there too; the graph VJP (``dg.grad``) uses ``inv`` and needs an
    invertible matrix.
    """
    return np.linalg.det(x)


@det.vjp
def _(g, x, out):
    return (np.asarray(g)[..., None, None] * _cofactor(x, out),)


@det.graph_vjp
def _(g, x, out):
    return (_as_matrices(g * out) * _mT(inv(x)),)


SLOGDET_PARTS = ("sign", "logabsdet")


def _slogdet_rule(x, *, part=None):
    _part(part, SLOGDET_PARTS, "slogdet")
    return _det_rule(x)


def _slogdet_samples(rng):
    out = []
    for part in SLOGDET_PARTS:
        out += [
            Sample((_GENERAL,), {"part": part}, f"{part}, 3x3"),
            Sample((conditioned(rng, (2, 3, 3)),), {"part": part}, f"{part}, a batch of two"),
            Sample((np.array([[-1.7]]),), {"part": part}, f"{part}, 1x1 (negative)"),
            Sample((np.zeros((0, 2, 2)),), {"part": part}, f"{part}, an empty batch"),
        ]
    return out


@op(shape=_slogdet_rule, dtype=linalg_dtype, float_inputs=True, saves=("inputs",), samples=_slogdet_samples,
    counterparts={"numpy": "numpy.linalg.slogdet", "torch": "torch.linalg.slogdet"})
def slogdet(x, *, part=None):
    """Sign (``part="sign"``) or log of the absolute value (``part="logabsdet"``) of each determinant.

    ``det = sign * exp(logabsdet)``, without the overflow of ``det`` for
    large matrices. ``sign`` is piecewise constant (±1, or 0 for a singular
    matrix), so it has no gradient, as in PyTorch. Gradient of
    ``logabsdet``: ``Ā = ḡ A⁻ᵀ`` (Giles 2008); it is infinite at a
    singular matrix, where the VJP raises.
    """
    return np.linalg.slogdet(x)[SLOGDET_PARTS.index(part)]


def _infinite_logabsdet(where: str) -> str:
    return f"slogdet: {where} is singular: its logabsdet is -inf, with an infinite gradient"


@slogdet.vjp
def _(g, x, *, part):
    if part == "sign":
        return (None,)
    return (np.asarray(g)[..., None, None] * _swap(_inverse(x, _infinite_logabsdet)),)


@slogdet.graph_vjp
def _(g, x, *, part):
    """The sign has no gradient (piecewise constant), to any order."""
    if part == "sign":
        return (None,)
    return (_as_matrices(g) * _mT(inv(x)),)


# -------------------------------------------------------------- solve ---


def _solve_rule(a, b):
    batch, n = _square(a, "solve (its first input)")
    if len(b) == 0:
        raise ValueError("solve needs a right-hand side of at least 1 axis, got a scalar")
    if len(b) == 1:  # one vector for every matrix of the batch
        if not dims_agree(b[0], n):
            raise ValueError(f"solve: matrices of size {n} against a right-hand side of length {b[0]}")
        return batch + (n if n is not None else b[0],)
    if not dims_agree(b[-2], n):
        raise ValueError(f"solve: matrices of size {n} against right-hand sides of {b[-2]} rows "
                         f"(shapes {format_shape(a)} and {format_shape(b)}); a stack of vectors is (..., {n}, 1)")
    return broadcast_shapes(batch, tuple(b[:-2])) + (n if n is not None else b[-2], b[-1])


def _solve_samples(rng):
    square = conditioned(rng, (3, 3))
    return [
        Sample((_GENERAL, rng.standard_normal(3)), {}, "3x3, a vector"),
        Sample((conditioned(rng, (3, 3)), rng.standard_normal((3, 2))), {}, "3x3, two right-hand sides"),
        Sample((conditioned(rng, (2, 3, 3)), rng.standard_normal(3)), {}, "a batch of matrices, one vector"),
        Sample((conditioned(rng, (2, 1, 2, 2)), rng.standard_normal((3, 2, 1))), {}, "batches broadcast"),
        Sample((conditioned(rng, (3, 3)), rng.standard_normal((2, 3, 4))), {}, "one matrix, a batch of b"),
        Sample((np.array([[0.8]]), np.array([-1.5])), {}, "1x1"),
        Sample((np.zeros((0, 2, 2)), rng.standard_normal((2, 3))), {}, "an empty batch"),
        Sample((square, square), {}, "the same matrix twice (the identity)"),
    ]


def _no_solution(where: str) -> str:
    return (f"solve: {where} is singular, so the system has no unique solution (for a least-squares "
            f"solution use pinv(a) @ b)")


@op(shape=_solve_rule, dtype=linalg_dtype, float_inputs=True, samples=_solve_samples,
    counterparts={"numpy": "numpy.linalg.solve", "torch": "torch.linalg.solve"})
def solve(a, b):
    """The solution ``X`` of ``A X = B`` for each matrix ``A``: ``A⁻¹ B`` without forming ``A⁻¹``.

    As numpy 2: a 1-axis ``b`` is one vector for every matrix; otherwise
    ``b`` is a stack of matrices ``(..., n, k)`` whose batch broadcasts with
    ``a``'s (a stack of vectors is ``b[..., None]``; PyTorch also reads a
    ``b`` of shape ``a.shape[:-1]`` as vectors). Gradient:
    ``B̄ = A⁻ᵀ X̄`` and ``Ā = -B̄ Xᵀ`` (Giles 2008).
    """
    if b.ndim == 1:
        return _solve_matrix(a, b[:, None], _no_solution)[..., 0]
    return _solve_matrix(a, b, _no_solution)


@solve.vjp
def _(g, a, b, out, needs):
    vector = b.ndim == 1
    gb = _solve_matrix(_swap(a), g[..., None] if vector else g, _no_solution)
    ga = -(gb @ _swap(out[..., None] if vector else out)) if needs[0] else None
    return ga, (gb[..., 0] if vector else gb) if needs[1] else None


@solve.graph_vjp
def _(g, a, b, out, needs):
    vector = static_rank(b, "solve") == 1
    gb = solve(_mT(a), _col(g) if vector else g)
    ga = -(gb @ _mT(_col(out) if vector else out)) if needs[0] else None
    return ga, (apply("squeeze", gb, axis=-1) if vector else gb) if needs[1] else None


# ----------------------------------------------------------- cholesky ---


def _cholesky_rule(x, *, upper=False):
    batch, n = _square(x, "cholesky")
    return batch + (n, n)


def _cholesky_samples(rng):
    out = [Sample((_SPD,), {"upper": False}, "3x3")]
    for upper in (False, True):
        out += [
            Sample((_junk_triangle(rng, symmetric(rng, (2, 3, 3), 0.5, 3.0), upper),), {"upper": upper},
                   f"a batch, upper={upper}, the other triangle not symmetric (and not read)"),
            Sample((np.array([[1.7]]),), {"upper": upper}, f"1x1, upper={upper}"),
        ]
    out.append(Sample((np.zeros((0, 2, 2)),), {"upper": False}, "an empty batch"))
    return out


@op(shape=_cholesky_rule, dtype=linalg_dtype, float_inputs=True, saves=("out",), samples=_cholesky_samples,
    counterparts={"numpy": "numpy.linalg.cholesky", "torch": "torch.linalg.cholesky"})
def cholesky(x, *, upper=False):
    """The Cholesky factor ``L`` of each positive-definite matrix, ``A = L Lᵀ`` (``Lᵀ`` with ``upper=True``).

    Reads the lower triangle of ``x`` (the upper one with ``upper=True``), as
    numpy does. Gradient (Murray 2016): with ``P = Φ(Lᵀ L̄)``, the lower
    triangle with its diagonal halved, ``S = L⁻ᵀ P L⁻¹`` and the gradient
    with respect to the symmetric matrix is ``(S + Sᵀ) / 2``, folded onto the
    triangle read (see the module's notes). A matrix that is not positive
    definite is an error naming it.
    """
    try:
        lower = np.linalg.cholesky(_swap(x) if upper else x)
    except np.linalg.LinAlgError:
        index = _first_failing(np.linalg.cholesky, _swap(x) if upper else x)
        raise ValueError(f"cholesky: {_where(index)} is not positive definite (only its "
                         f"{'upper' if upper else 'lower'} triangle is read)") from None
    return _swap(lower) if upper else lower


def _singular_factor(where: str) -> str:
    return f"cholesky: the factor of {where} is singular (a zero on its diagonal), so it has no gradient"


@cholesky.vjp
def _(g, x, out, *, upper):
    lower, gl = (_swap(out), _swap(g)) if upper else (out, g)
    n = lower.shape[-1]
    p = (lower.swapaxes(-1, -2) @ gl) * (0.5 * _triangle_weights(n, False, out.dtype))
    y = _solve_matrix(_swap(lower), p, _singular_factor)
    s = _swap(_solve_matrix(_swap(lower), _swap(y), _singular_factor))
    return (0.5 * (s + _swap(s)) * _triangle_weights(n, upper, out.dtype),)


@cholesky.graph_vjp
def _(g, x, out, *, upper):
    lower, gl = (_mT(out), _mT(g)) if upper else (out, g)
    p = 0.5 * _fold_graph(_mT(lower) @ gl, upper=False)
    y = solve(_mT(lower), p)
    s = _mT(solve(_mT(lower), _mT(y)))
    return (_fold_graph(0.5 * (s + _mT(s)), upper),)


# ----------------------------------------------------------------- qr ---

QR_PARTS = ("Q", "R")


def _qr_rule(x, *, part=None):
    _part(part, QR_PARTS, "qr")
    batch, m, n = _matrix(x, "qr")
    k = _smaller(m, n)
    return batch + ((m, k) if part == "Q" else (k, n))


def _copy_upper(m: np.ndarray) -> np.ndarray:
    """The symmetric matrix with ``m``'s upper triangle (and diagonal) mirrored below."""
    return np.triu(m) + _swap(np.triu(m, 1))


@op(shape=_qr_rule, dtype=linalg_dtype, float_inputs=True, saves=(), residuals=True,
    samples=_rectangular_samples(QR_PARTS),
    counterparts={"numpy": "numpy.linalg.qr", "torch": "torch.linalg.qr"})
def qr(x, *, part=None):
    """Orthonormal ``Q`` (``part="Q"``) or triangular ``R`` (``part="R"``) of each reduced QR decomposition.

    ``A = Q R`` with ``Q`` of shape ``(m, k)`` and ``R`` of ``(k, n)``,
    ``k = min(m, n)``: numpy's ``mode="reduced"``, signs as LAPACK gives them.
    Gradient (Walter and Lehmann 2018), for ``m >= n``:
    ``Ā = (Q̄ + Q sym(R̄ Rᵀ - Qᵀ Q̄)) R⁻ᵀ`` where ``sym(M)`` is the symmetric
    matrix with ``M``'s upper triangle; for ``m < n``, with ``A = [X | Y]`` and ``R = [U | V]``,
    ``Ȳ = Q V̄`` and ``X̄`` is that formula with ``U`` for ``R`` and
    ``Q̄ + Y V̄ᵀ`` for ``Q̄``. It needs the first ``k`` columns of ``A`` to be
    linearly independent (``U`` invertible).
    """
    q, r = np.linalg.qr(x)
    return (q if part == "Q" else r), (q, r)


def _dependent_columns(where: str) -> str:
    return (f"qr: the first min(m, n) columns of {where} are linearly dependent (R has a zero on its "
            f"diagonal), and there the gradient of the QR decomposition is not defined")


@qr.vjp
def _(g, x, res, *, part):
    q, r = res
    k, n = r.shape[-2], r.shape[-1]
    gq = g if part == "Q" else np.zeros_like(q)
    gr = g if part == "R" else None
    gy = None
    if gr is not None and n > k:  # wide: A = [X | Y], R = [U | V], Y = Q V
        gv = gr[..., k:]
        gq = gq + (q @ r[..., k:]) @ _swap(gv)
        gy = q @ gv
    mid = -(_swap(q) @ gq) if gr is None else gr[..., :k] @ _swap(r[..., :k]) - _swap(q) @ gq
    b = gq + q @ _copy_upper(mid)
    gx = _swap(_solve_matrix(r[..., :k], _swap(b), _dependent_columns))
    if n > k:
        gx = np.concatenate([gx, gy if gy is not None else np.zeros(q.shape[:-1] + (n - k,), q.dtype)], axis=-1)
    return (gx,)


@qr.graph_vjp
def _(g, x, out, *, part):
    """As the numpy rule, without knowing whether ``m >= n``: the split at column ``k`` is done with ``E``,
    the ``n x k`` identity (``x E`` is ``X``, ``R E`` is ``U``), so the same nodes serve tall and wide matrices
    whose sizes are known only at run time."""
    q = out if part == "Q" else qr(x, part="Q")
    r = out if part == "R" else qr(x, part="R")
    e = _eye_like(_mT(r))                                   # n x k
    u = r @ e                                               # k x k, upper triangular
    if part == "Q":
        gq = g
        mid = -(_mT(q) @ gq)
    else:
        gu = g @ e
        gv = g - gu @ _mT(e)                                # R̄ with its first k columns zeroed
        gq = (x - (x @ e) @ _mT(e)) @ _mT(gv)               # Y V̄ᵀ, written for the whole width
        mid = gu @ _mT(u) - _mT(q) @ gq
    copied = triu(mid) + _mT(triu(mid, k=1))                # _copy_upper
    gx = _mT(solve(u, _mT(gq + q @ copied)))                # m x k
    ga = gx @ _mT(e)
    if part == "R":
        ga = ga + q @ gv                                    # Ȳ = Q V̄, in the trailing columns
    return (ga,)


# ---------------------------------------------------------------- svd ---

SVD_PARTS = ("U", "S", "Vh")


def _svd_rule(x, *, part=None):
    _part(part, SVD_PARTS, "svd")
    batch, m, n = _matrix(x, "svd")
    k = _smaller(m, n)
    return batch + {"U": (m, k), "S": (k,), "Vh": (k, n)}[part]


def _svd_vjp(u, s, vh, g, part: str) -> np.ndarray:
    m, k, n = u.shape[-2], u.shape[-1], vh.shape[-1]
    if part == "S":
        return (u * g[..., None, :]) @ vh
    s2 = s * s
    diff, tied = s2[..., None, :] - s2[..., :, None], _ties(s)          # s_j² - s_i²
    with np.errstate(divide="ignore", invalid="ignore"):
        if part == "U":
            rotated = _swap(u) @ g
            rotation = _rotation(diff, tied, rotated, np.any(g != 0, axis=-2), "svd", "singular values")
            ga = u @ (rotation * s[..., None, :]) @ vh
            if m > k:  # the part of Ū outside U's columns
                ga = ga + ((g - u @ rotated) / s[..., None, :]) @ vh
        else:
            rotated = vh @ _swap(g)
            rotation = _rotation(diff, tied, rotated, np.any(g != 0, axis=-1), "svd", "singular values")
            ga = u @ (s[..., :, None] * rotation) @ vh
            if n > k:
                ga = ga + (u / s[..., None, :]) @ (g - (g @ _swap(vh)) @ vh)
    if not np.isfinite(ga).all():
        raise ValueError(f"svd: the gradient of {part} of a rank-deficient {m}x{n} matrix (a singular value 0) "
                         f"is not defined")
    return ga


@op(shape=_svd_rule, dtype=linalg_dtype, float_inputs=True, saves=(), residuals=True,
    samples=_rectangular_samples(SVD_PARTS),
    counterparts={"numpy": "numpy.linalg.svd", "torch": "torch.linalg.svd"})
def svd(x, *, part=None):
    """``U`` (``part="U"``), singular values ``S`` (``"S"``) or ``Vh`` (``"Vh"``) of each reduced SVD.

    ``A = U diag(S) Vh`` with ``k = min(m, n)`` singular values, descending:
    numpy's and PyTorch's ``full_matrices=False`` (the extra columns of the
    full decomposition are any basis of a complement, so they have no
    gradient).
    Gradient (Townsend 2016), with ``V = Vhᵀ`` and ``F_ij = 1 / (s_j² - s_i²)``:
    ``Ā = U diag(S̄) Vᵀ`` for ``S`` (defined everywhere);
    ``U (F ∘ (UᵀŪ - ŪᵀU)) S Vᵀ + (I - U Uᵀ) Ū S⁻¹ Vᵀ`` for ``U`` and
    ``U S (F ∘ (VᵀV̄ - V̄ᵀV)) Vᵀ + U S⁻¹ V̄ᵀ (I - V Vᵀ)`` for ``Vh``, which
    need distinct singular values (see the module's notes on repeated ones),
    and nonzero ones where the matrix is not square.
    """
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    return {"U": u, "S": s, "Vh": vh}[part], (u, s, vh)


@svd.vjp
def _(g, x, res, *, part):
    return (_svd_vjp(*res, g, part),)


@svd.graph_vjp
def _(g, x, out, *, part):
    """As the numpy rule, with NaN where it raises (equal singular values whose vectors the loss uses)."""
    u = out if part == "U" else svd(x, part="U")
    s = out if part == "S" else svd(x, part="S")
    vh = out if part == "Vh" else svd(x, part="Vh")
    if part == "S":
        return ((u * _row(g)) @ vh,)
    s2 = s * s
    diff, tied = _row(s2) - _col(s2), _ties_graph(s)
    m, n = (x.shape or (None, None))[-2:]
    if part == "U":
        rotated = _mT(u) @ g
        ga = u @ (_rotation_graph(diff, tied, rotated, _touched_graph(g, -2)) * _row(s)) @ vh
        if m is None or n is None or m > n:
            ga = ga + ((g - u @ rotated) / _row(s)) @ vh
    else:
        rotated = vh @ _mT(g)
        ga = u @ (_col(s) * _rotation_graph(diff, tied, rotated, _touched_graph(g, -1))) @ vh
        if m is None or n is None or n > m:
            ga = ga + (u / _row(s)) @ (g - (g @ _mT(vh)) @ vh)
    return (ga,)


# --------------------------------------------------------------- eigh ---

EIGH_PARTS = ("eigenvalues", "eigenvectors")


def _eigh_rule(x, *, part=None, UPLO="L"):
    _part(part, EIGH_PARTS, "eigh")
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO is 'L' (read the lower triangle) or 'U' (the upper one), not {UPLO!r}")
    batch, n = _square(x, "eigh")
    return batch + ((n,) if part == "eigenvalues" else (n, n))


def _eigh_samples(rng):
    out = []
    for part in EIGH_PARTS:
        out += [
            Sample((symmetric(rng, (3, 3)),), {"part": part}, f"{part}, 3x3"),
            Sample((_junk_triangle(rng, symmetric(rng, (2, 3, 3)), False),), {"part": part},
                   f"{part}, a batch, the upper triangle not symmetric (and not read)"),
            Sample((_junk_triangle(rng, symmetric(rng, (3, 3)), True),), {"part": part, "UPLO": "U"},
                   f"{part}, UPLO='U', the lower triangle not read"),
            Sample((np.array([[-1.3]]),), {"part": part}, f"{part}, 1x1"),
            Sample((np.zeros((0, 3, 3)),), {"part": part}, f"{part}, an empty batch"),
        ]
    return out


@op(shape=_eigh_rule, dtype=linalg_dtype, float_inputs=True, saves=(), residuals=True, samples=_eigh_samples,
    counterparts={"numpy": "numpy.linalg.eigh", "torch": "torch.linalg.eigh"})
def eigh(x, *, part=None, UPLO="L"):
    """Eigenvalues (``part="eigenvalues"``) or eigenvectors (``"eigenvectors"``) of each symmetric matrix.

    Eigenvalues ascending, eigenvectors as columns. Reads the lower triangle
    (``UPLO="L"``) or the upper one (``"U"``), as numpy does. With
    ``A = V diag(λ) Vᵀ`` and ``F_ij = 1 / (λ_j - λ_i)``, the gradient with
    respect to the symmetric matrix (Giles 2008) is
    ``V diag(λ̄) Vᵀ`` for the eigenvalues (defined everywhere) and
    ``V (F ∘ (VᵀV̄ - V̄ᵀV) / 2) Vᵀ`` for the eigenvectors, which needs
    distinct eigenvalues (see the module's notes on repeated ones); either is
    folded onto the triangle read.
    """
    w, v = np.linalg.eigh(x, UPLO=UPLO)
    return (w if part == "eigenvalues" else v), (w, v)


@eigh.vjp
def _(g, x, res, *, part, UPLO):
    w, v = res
    if part == "eigenvalues":
        inner = g[..., None, :] * np.eye(w.shape[-1], dtype=w.dtype)
    else:
        inner = 0.5 * _rotation(w[..., None, :] - w[..., :, None], _ties(w), _swap(v) @ g, np.any(g != 0, axis=-2),
                                "eigh", "eigenvalues")
    return ((v @ inner @ _swap(v)) * _triangle_weights(w.shape[-1], UPLO == "U", w.dtype),)


@eigh.graph_vjp
def _(g, x, out, *, part, UPLO):
    """As the numpy rule, with NaN where it raises (equal eigenvalues whose vectors the loss uses)."""
    v = out if part == "eigenvectors" else eigh(x, part="eigenvectors", UPLO=UPLO)
    if part == "eigenvalues":
        s = (v * _row(g)) @ _mT(v)
    else:
        w = eigh(x, part="eigenvalues", UPLO=UPLO)
        rotation = _rotation_graph(_row(w) - _col(w), _ties_graph(w), _mT(v) @ g, _touched_graph(g, -2))
        s = v @ (0.5 * rotation) @ _mT(v)
    return (_fold_graph(s, UPLO == "U"),)


# --------------------------------------------------------------- pinv ---


def _pinv_rule(x, *, rtol=None):
    batch, m, n = _matrix(x, "pinv")
    if rtol is not None and not rtol >= 0:
        raise ValueError(f"pinv: rtol is a nonnegative number or None, not {rtol!r}")
    return batch + (n, m)


def _pinv_samples(rng):
    return [
        Sample((conditioned(rng, (4, 3)),), {}, "tall 4x3"),
        Sample((conditioned(rng, (2, 3, 3)),), {}, "a batch of square"),
        Sample((conditioned(rng, (2, 4)),), {"rtol": 1e-10}, "wide 2x4, rtol"),
        Sample((np.array([[-1.3]]),), {}, "1x1"),
        Sample((np.zeros((0, 3, 2)),), {}, "an empty batch"),
    ]


@op(shape=_pinv_rule, dtype=linalg_dtype, float_inputs=True, samples=_pinv_samples,
    counterparts={"numpy": "numpy.linalg.pinv", "torch": "torch.linalg.pinv"})
def pinv(x, *, rtol=None):
    """The Moore-Penrose pseudo-inverse of each matrix, ignoring singular values below ``rtol`` times the largest.

    ``rtol=None`` means ``max(m, n) * eps`` of the dtype, numpy's
    ``rtol=None`` and PyTorch's default (numpy's legacy ``rcond`` default is
    ``1e-15``, the same for float64 matrices that are not nearly
    rank-deficient). Gradient (Golub and Pereyra 1973), with ``X = A⁺``:
    ``Ā = -Xᵀ Ḡ Xᵀ + (I - A X) Ḡᵀ X Xᵀ + Xᵀ X Ḡᵀ (I - X A)``, the derivative
    where the rank is constant near ``A``. The pseudo-inverse jumps where a
    singular value crosses the cut-off, and has no derivative there.
    """
    cutoff = max(x.shape[-2:]) * np.finfo(x.dtype).eps if rtol is None else rtol
    if x.size == 0:
        return np.zeros(x.shape[:-2] + x.shape[-2:][::-1], x.dtype)
    return np.linalg.pinv(x, cutoff).astype(x.dtype, copy=False)


@pinv.vjp
def _(g, x, out, *, rtol):
    xt, gt = _swap(out), _swap(g)
    return (-(xt @ g @ xt) + (gt - x @ (out @ gt)) @ (out @ xt) + (xt @ out) @ (gt - (gt @ out) @ x),)


@pinv.graph_vjp
def _(g, x, out, *, rtol):
    xt, gt = _mT(out), _mT(g)
    return (-(xt @ g @ xt) + (gt - x @ (out @ gt)) @ (out @ xt) + (xt @ out) @ (gt - (gt @ out) @ x),)


# -------------------------------------------------------- matrix_norm ---

NORM_ORDERS = ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def _norm_rule(x, *, ord="fro", keepdims=False):
    if isinstance(ord, bool) or ord not in NORM_ORDERS:
        raise ValueError(f"matrix_norm: ord is one of 'fro', 'nuc', 1, -1, 2, -2, inf, -inf, not {ord!r}")
    batch, _, _ = _matrix(x, "matrix_norm")
    return batch + ((1, 1) if keepdims else ())


def _norm_samples(rng):
    out = []
    for ord in NORM_ORDERS:
        a = conditioned(rng, (2, 3, 3) if ord in ("fro", 2, math.inf) else (3, 4))
        out.append(Sample((a,), {"ord": ord}, f"ord={ord}, shape {a.shape}"))
    out += [
        Sample((conditioned(rng, (4, 2)),), {"ord": 2, "keepdims": True}, "ord=2, keepdims"),
        Sample((np.array([[-1.3]]),), {"ord": "nuc"}, "nuc, 1x1"),
        Sample((np.zeros((0, 2, 3)),), {"ord": -1, "keepdims": True}, "ord=-1, an empty batch"),
    ]
    return out


@op(shape=_norm_rule, dtype=linalg_dtype, float_inputs=True, samples=_norm_samples,
    counterparts={"numpy": "numpy.linalg.matrix_norm", "torch": "torch.linalg.matrix_norm"})
def matrix_norm(x, *, ord="fro", keepdims=False):
    """A norm of each matrix: ``"fro"`` (default), ``"nuc"``, ``1``, ``-1``, ``2``, ``-2``, ``inf`` or ``-inf``.

    As ``numpy.linalg.matrix_norm``: Frobenius ``sqrt(sum a_ij²)``; nuclear
    ``sum(s)``; ``±2`` the largest or smallest singular value; ``±1`` the
    largest or smallest column sum of ``|a_ij|``; ``±inf`` the same over rows.
    Gradients: ``A / ‖A‖`` (0 at 0, as PyTorch); ``U Vᵀ``; ``u vᵀ`` of the
    extreme singular value; ``sign(A)`` on the extreme column or row. The
    extremes share the gradient evenly between ties, as ``max`` does (for a
    tied singular value that is the mean of its ``u vᵀ``, which does not
    depend on the choice of singular vectors); at a kink (a zero entry for
    ``±1`` and ``±inf``, a zero singular value for ``nuc``) it is one
    subgradient.
    """
    try:
        with np.errstate(all="ignore"):
            norm = np.linalg.norm(x, ord, axis=(-2, -1), keepdims=keepdims)
    except ValueError:  # numpy's: the smallest of no columns, rows or singular values
        raise ValueError(f"matrix_norm: ord={ord} of {x.shape[-2]}x{x.shape[-1]} matrices is not defined (it is "
                         f"the smallest of none)") from None
    return np.asarray(norm).astype(x.dtype, copy=False)


def _extreme_weights(values: np.ndarray, largest: bool) -> np.ndarray:
    """1/count on the entries equal to the largest (smallest) along the last axis, 0 elsewhere."""
    target = values.max(-1, keepdims=True) if largest else values.min(-1, keepdims=True)
    winners = (values == target).astype(values.dtype)
    return winners / winners.sum(-1, keepdims=True)


@matrix_norm.vjp
def _(g, x, out, *, ord, keepdims):
    if x.size == 0:
        return (np.zeros_like(x),)
    g = g if keepdims else g[..., None, None]
    if ord == "fro":
        o = out if keepdims else out[..., None, None]
        return (np.where(o == 0, 0, g / np.where(o == 0, 1, o)) * x,)
    if ord in ("nuc", 2, -2):
        u, s, vh = np.linalg.svd(x, full_matrices=False)
        w = np.ones_like(s) if ord == "nuc" else _extreme_weights(s, ord == 2)
        return (g * ((u * w[..., None, :]) @ vh),)
    axis = -2 if ord in (1, -1) else -1  # ±1: column sums (over rows); ±inf: row sums
    w = np.expand_dims(_extreme_weights(np.abs(x).sum(axis), ord > 0), axis)
    return (g * w * np.sign(x),)


def _extreme_weights_graph(values, largest: bool):
    target = apply("max" if largest else "min", values, axis=-1, keepdims=True)
    winners = 1 - apply("astype", is_nonzero(values - target), dtype=values.dtype.name)
    return winners / apply("sum", winners, axis=-1, keepdims=True)


@matrix_norm.graph_vjp
def _(g, x, out, *, ord, keepdims):
    """As the numpy rule. The tie shares (from boolean masks) and the ``sign`` op are piecewise constant, so their
    derivative is zero; the second derivative of ``±1``/``±inf`` is zero and that of ``2``/``-2`` needs distinct singular
    values."""
    if x.shape is not None and 0 in x.shape:
        return (zeros_like(x),)  # with sizes known only at run time, the max of no columns raises instead
    g = g if keepdims else _as_matrices(g)
    if ord == "fro":
        o = out if keepdims else _as_matrices(out)
        zero = apply("logical_not", is_nonzero(o))
        return (apply("where", zero, 0.0, g / apply("where", zero, 1.0, o)) * x,)
    if ord in ("nuc", 2, -2):
        u, vh = svd(x, part="U"), svd(x, part="Vh")
        if ord == "nuc":
            return (g * (u @ vh),)
        w = _extreme_weights_graph(svd(x, part="S"), ord == 2)
        return (g * ((u * _row(w)) @ vh),)
    axis = -2 if ord in (1, -1) else -1
    sums = apply("sum", apply("abs", x), axis=axis)
    w = apply("expand_dims", _extreme_weights_graph(sums, ord > 0), axis=axis)
    return (g * w * apply("sign", x),)
