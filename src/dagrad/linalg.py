"""numpy-style linear algebra on Tensors: ``dg.linalg.inv(x)``, ``U, S, Vh = dg.linalg.svd(x)``.

The functions take ``numpy.linalg``'s signatures and work on the last two
axes, leading axes being a batch. Each adds nodes of the matrix ops
(``dagrad.ops.inv``, ``dagrad.ops.svd``...; see ``docs/ops.md``), which have
gradients of any order.

A function with several results (``slogdet``, ``qr``, ``svd``, ``eigh``)
returns them as a named tuple of Tensors, one node per result, each computing
the decomposition; a result you do not use costs nothing, as compiling prunes
it. ``name="f"`` names the nodes ``f.U``, ``f.S``... by the fields.

Examples
--------
>>> import numpy as np, dagrad as dg
>>> g = dg.Graph()
>>> a = g.param("a", np.array([[3.0, 1.0], [1.0, 2.0]]))
>>> U, S, Vh = dg.linalg.svd(a)
>>> res = g.forward([U, S, Vh])
>>> bool(np.allclose((res.value(U) * res.value(S)) @ res.value(Vh), g.value(a)))
True
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from .errors import GraphError
from .tensor import Tensor, apply

__all__ = [
    "inv", "det", "slogdet", "solve", "cholesky", "qr", "svd", "svdvals", "eigh", "eigvalsh", "pinv",
    "matrix_norm", "matrix_transpose", "matmul",
    "SlogdetResult", "QRResult", "SVDResult", "EighResult",
]


class SlogdetResult(NamedTuple):
    """``slogdet``'s results: ``det = sign * exp(logabsdet)``."""

    sign: Tensor
    logabsdet: Tensor


class QRResult(NamedTuple):
    """``qr``'s results: ``A = Q @ R``."""

    Q: Tensor
    R: Tensor


class SVDResult(NamedTuple):
    """``svd``'s results: ``A = (U * S[..., None, :]) @ Vh``."""

    U: Tensor
    S: Tensor
    Vh: Tensor


class EighResult(NamedTuple):
    """``eigh``'s results: ``A = (eigenvectors * eigenvalues[..., None, :]) @ eigenvectors.mT``."""

    eigenvalues: Tensor
    eigenvectors: Tensor


def _pieces(op_name: str, x: Tensor, fields: tuple, name: Optional[str], **attrs: Any) -> list:
    """One node per result of a decomposition, named ``{name}.{field}`` when ``name`` is given."""
    return [apply(op_name, x, part=field, name=None if name is None else f"{name}.{field}", **attrs)
            for field in fields]


def inv(x: Tensor, *, name: Optional[str] = None) -> Tensor:
    """The inverse of each matrix.

    A singular matrix is an ``OpError`` naming it when the graph runs; to solve
    ``A x = b``, ``solve`` is faster and more accurate than ``inv(A) @ b``.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> a = g.param("a", np.array([[2.0, 0.0], [0.0, 4.0]]))
    >>> a_inv = dg.linalg.inv(a)
    >>> g.forward(a_inv).value(a_inv)
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    >>> g.backward(dg.sum(a_inv)).grad(a)       # -A⁻ᵀ 1 A⁻ᵀ
    array([[-0.25  , -0.125 ],
           [-0.125 , -0.0625]])
    """
    return apply("inv", x, name=name)


def det(x: Tensor, *, name: Optional[str] = None) -> Tensor:
    """The determinant of each matrix; its gradient is the cofactor matrix (also of a singular matrix)."""
    return apply("det", x, name=name)


def slogdet(x: Tensor, *, name: Optional[str] = None) -> SlogdetResult:
    """Sign and log of the absolute value of each determinant, which does not overflow as ``det`` does.

    The sign has no gradient (it is piecewise constant); ``logabsdet``'s is ``A⁻ᵀ``.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> a = g.param("a", np.array([[-2.0, 1.0], [1.0, 3.0]]))       # det -7
    >>> sign, logabsdet = dg.linalg.slogdet(a)
    >>> res = g.forward([sign, logabsdet])
    >>> float(res.value(sign)), bool(np.isclose(res.value(logabsdet), np.log(7)))
    (-1.0, True)
    >>> np.round(g.backward(logabsdet).grad(a) * 7, 12)           # A⁻ᵀ
    array([[-3.,  1.],
           [ 1.,  2.]])
    """
    return SlogdetResult(*_pieces("slogdet", x, SlogdetResult._fields, name))


def solve(a: Tensor, b: Any, *, name: Optional[str] = None) -> Tensor:
    """The solution ``X`` of ``a @ X = b`` for each matrix of ``a``.

    As numpy 2: a 1-axis ``b`` is one vector for every matrix; otherwise ``b``
    is a stack of matrices ``(..., n, k)`` whose batch broadcasts with
    ``a``'s. For a stack of vectors write ``solve(a, b[..., None])[..., 0]``.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> a = g.input("a", shape=(None, 2, 2))
    >>> x = dg.linalg.solve(a, np.array([1.0, 2.0]))
    >>> x.shape
    (None, 2)
    >>> g.forward(x, {"a": np.stack([np.eye(2), 2 * np.eye(2)])}).value(x)
    array([[1. , 2. ],
           [0.5, 1. ]])
    """
    return apply("solve", a, b, name=name)


def cholesky(x: Tensor, /, *, upper: bool = False, name: Optional[str] = None) -> Tensor:
    """The Cholesky factor of each symmetric positive-definite matrix: lower ``L`` with ``x = L Lᵀ``, or ``Lᵀ``.

    Only the lower triangle of ``x`` is read (the upper one with ``upper=True``),
    and the gradient is that of the triangle read: see ``docs/ops.md``.
    """
    return apply("cholesky", x, upper=bool(upper), name=name)


def qr(x: Tensor, mode: str = "reduced", *, name: Optional[str] = None):
    """The reduced QR decomposition of each matrix: ``QRResult(Q, R)``, or ``R`` alone with ``mode="r"``.

    ``Q`` has orthonormal columns and ``R`` is upper triangular, ``k = min(m, n)``
    of each. numpy's ``"complete"`` and ``"raw"`` modes have no gradient here
    and are refused.
    """
    if mode == "r":
        return apply("qr", x, part="R", name=name)
    if mode != "reduced":
        raise GraphError(f"qr: mode is 'reduced' or 'r', not {mode!r} (the extra columns of 'complete' "
                         f"are any basis of a complement, so they have no gradient)")
    return QRResult(*_pieces("qr", x, QRResult._fields, name))


def svd(x: Tensor, full_matrices: bool = False, compute_uv: bool = True, hermitian: bool = False, *,
        name: Optional[str] = None):
    """The reduced singular value decomposition of each matrix: ``SVDResult(U, S, Vh)``, or ``S`` alone.

    ``full_matrices`` defaults to False, as it must for gradients (PyTorch's
    ``full_matrices=True`` ignores the gradients of the extra columns, which are
    any basis of a complement); True is refused. The gradient of ``S`` exists
    everywhere; those of ``U`` and ``Vh`` need distinct singular values: see
    ``docs/ops.md`` for what happens at repeated ones.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> a = g.param("a", np.array([[3.0, 0.0], [0.0, -2.0], [0.0, 0.0]]))
    >>> U, S, Vh = dg.linalg.svd(a)
    >>> U.shape, S.shape, Vh.shape
    ((3, 2), (2,), (2, 2))
    >>> g.backward(dg.sum(S)).grad(a)            # the nuclear norm's gradient, U Vh
    array([[ 1.,  0.],
           [ 0., -1.],
           [ 0.,  0.]])
    """
    if full_matrices:
        raise GraphError("svd: full_matrices=True is not supported: the extra columns of U or Vh are any basis "
                         "of a complement and have no gradient; use full_matrices=False (the default here)")
    if hermitian:
        raise GraphError("svd: hermitian=True is not supported; use eigh for a symmetric matrix")
    if not compute_uv:
        return apply("svd", x, part="S", name=name)
    return SVDResult(*_pieces("svd", x, SVDResult._fields, name))


def svdvals(x: Tensor, /, *, name: Optional[str] = None) -> Tensor:
    """The singular values of each matrix, descending: ``svd(x, compute_uv=False)``."""
    return apply("svd", x, part="S", name=name)


def eigh(x: Tensor, UPLO: str = "L", *, name: Optional[str] = None) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of each symmetric matrix: ``EighResult``.

    Reads the lower triangle (``UPLO="L"``) or the upper one (``"U"``). The
    eigenvalues' gradient exists everywhere; the eigenvectors' needs distinct
    eigenvalues: see ``docs/ops.md`` for what happens at repeated ones.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> a = g.param("a", np.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> w, v = dg.linalg.eigh(a)
    >>> g.forward(w).value(w)
    array([1., 3.])
    """
    return EighResult(*_pieces("eigh", x, EighResult._fields, name, UPLO=UPLO.upper()))


def eigvalsh(x: Tensor, UPLO: str = "L", *, name: Optional[str] = None) -> Tensor:
    """The eigenvalues of each symmetric matrix, ascending."""
    return apply("eigh", x, part="eigenvalues", UPLO=UPLO.upper(), name=name)


def pinv(x: Tensor, rcond: Optional[float] = None, hermitian: bool = False, *, rtol: Optional[float] = None,
         name: Optional[str] = None) -> Tensor:
    """The Moore-Penrose pseudo-inverse of each matrix.

    Singular values below ``rtol`` (or ``rcond``: the same, by its older name)
    times the largest count as zero; the default is ``max(m, n) * eps``, as
    PyTorch's and numpy's ``rtol=None`` (numpy's own default, ``rcond=1e-15``,
    differs only for nearly rank-deficient matrices). The gradient is the
    derivative where the rank does not change.
    """
    if rcond is not None and rtol is not None:
        raise GraphError("pinv: give rtol or rcond (the same cut-off), not both")
    if hermitian:
        raise GraphError("pinv: hermitian=True is not supported; the default computes the same for a "
                         "symmetric matrix")
    cutoff = rcond if rcond is not None else rtol
    return apply("pinv", x, rtol=None if cutoff is None else float(cutoff), name=name)


def matrix_norm(x: Tensor, /, *, keepdims: bool = False, ord: Any = "fro", name: Optional[str] = None) -> Tensor:
    """A norm of each matrix: ``"fro"`` (default), ``"nuc"``, ``1``, ``-1``, ``2``, ``-2``, ``inf`` or ``-inf``.

    As ``numpy.linalg.matrix_norm``; ties between extreme singular values,
    columns or rows share the gradient evenly.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> g = dg.Graph()
    >>> a = g.param("a", np.array([[1.0, -2.0], [3.0, 4.0]]))
    >>> norm = dg.linalg.matrix_norm(a, ord=1)         # the largest column sum of |a|
    >>> res = g.backward(norm)
    >>> res.value(norm), res.grad(a)
    (array(6.), array([[ 0., -1.],
           [ 0.,  1.]]))
    """
    return apply("matrix_norm", x, ord=ord, keepdims=bool(keepdims), name=name)


def matrix_transpose(x: Tensor, /, *, name: Optional[str] = None) -> Tensor:
    """Each matrix transposed: the last two axes swapped."""
    if x.ndim is None or x.ndim < 2:
        raise GraphError(f"matrix_transpose needs a Tensor of at least 2 axes with a known rank, got {x.name!r} "
                         f"of shape {x.shape}")
    return apply("transpose", x, axes=tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2), name=name)


def matmul(a: Any, b: Any, *, name: Optional[str] = None) -> Tensor:
    """Matrix product with numpy's batching and 1-D rules: ``a @ b``."""
    return apply("matmul", a, b, name=name)


def __dir__():  # dir() lists the public names, not the imports behind them
    return __all__
