"""Linear algebra: matmul (batched, with numpy's 1-D rules) and einsum (repeated indices take diagonals)."""

from __future__ import annotations

import string

import numpy as np

from ..opdef import Sample, op
from ..shapes import broadcast_shapes, matmul_shape
from ..tensor import apply
from .adjoints import static_rank, sum_to, zeros_like
from .shaping import diagonal, diagonal_transpose
from .samples import away_from_zero

# -------------------------------------------------------------- matmul ---


def _matmul_rule(a, b):
    return matmul_shape(a, b)


def _matmul_samples(rng):
    pairs = [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)),
             ((2, 1, 3, 4), (5, 4, 2)), ((0, 4), (4, 3)), ((1, 1), (1, 1))]
    out = [Sample((away_from_zero(rng, s), away_from_zero(rng, t)), {}, f"{s} @ {t}") for s, t in pairs]
    square = away_from_zero(rng, (3, 3))
    out.append(Sample((square, square), {}, "the same matrix twice"))
    return out


@op(shape=_matmul_rule, saves=("inputs",), samples=_matmul_samples,
    counterparts={"numpy": "numpy.matmul", "torch": "torch.matmul"})
def matmul(a, b):
    """Matrix product ``a @ b`` with numpy's batching and 1-D rules."""
    return np.matmul(a, b)


@matmul.vjp
def _(g, a, b, needs):
    need_a, need_b = needs
    if a.ndim == 1 and b.ndim == 1:
        return g * b, g * a
    if a.ndim == 1:
        g2 = np.expand_dims(g, -2)                                                     # (..., 1, n)
        ga = np.matmul(g2, b.swapaxes(-1, -2))[..., 0, :] if need_a else None      # (..., k)
        gb = np.matmul(a[:, None], g2) if need_b else None                             # (..., k, n)
        return ga, gb
    if b.ndim == 1:
        g2 = np.expand_dims(g, -1)                                                     # (..., m, 1)
        ga = np.matmul(g2, b[None, :]) if need_a else None                             # (..., m, k)
        gb = np.matmul(a.swapaxes(-1, -2), g2)[..., 0] if need_b else None         # (..., k)
        return ga, gb
    ga = np.matmul(g, b.swapaxes(-1, -2)) if need_a else None
    gb = np.matmul(a.swapaxes(-1, -2), g) if need_b else None
    return ga, gb


def swap_last(t, who: str):
    """The Tensor ``t`` with its last two axes swapped, for the graph VJPs of matrix ops (``who`` names the op)."""
    n = static_rank(t, who)
    return apply("transpose", t, axes=tuple(range(n - 2)) + (n - 1, n - 2))


@matmul.graph_vjp
def _(g, a, b, needs):
    need_a, need_b = needs
    na, nb = static_rank(a, "matmul"), static_rank(b, "matmul")
    if na == 1 and nb == 1:
        return (g * b if need_a else None), (g * a if need_b else None)
    if na == 1:
        g2 = apply("expand_dims", g, axis=-2)                                              # (..., 1, n)
        ga = apply("squeeze", matmul(g2, swap_last(b, "matmul")), axis=-2) if need_a else None  # (..., k)
        gb = matmul(apply("expand_dims", a, axis=-1), g2) if need_b else None              # (..., k, n)
        return ga, gb
    if nb == 1:
        g2 = apply("expand_dims", g, axis=-1)                                              # (..., m, 1)
        ga = matmul(g2, apply("expand_dims", b, axis=0)) if need_a else None               # (..., m, k)
        gb = apply("squeeze", matmul(swap_last(a, "matmul"), g2), axis=-1) if need_b else None  # (..., k)
        return ga, gb
    ga = matmul(g, swap_last(b, "matmul")) if need_a else None
    gb = matmul(swap_last(a, "matmul"), g) if need_b else None
    return ga, gb


# -------------------------------------------------------------- einsum ---


def _parse(subscripts: str, ndims: list[int]) -> tuple[list[str], str]:
    """Explicit per-operand subscripts and output, with ``...`` spelled out as letters."""
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, rhs = spec.split("->")
    else:
        lhs, rhs = spec, None
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum {subscripts!r} names {len(terms)} operand(s), got {len(ndims)}")
    used = set(spec) - set(".,->")
    spare = [c for c in string.ascii_letters if c not in used]
    ell_len = 0
    for t, nd in zip(terms, ndims):
        if "..." in t:
            ell_len = max(ell_len, nd - (len(t) - 3))
    ell = "".join(spare[:ell_len])
    expanded = []
    for t, nd in zip(terms, ndims):
        if "..." in t:
            k = nd - (len(t) - 3)
            t = t.replace("...", ell[ell_len - k:])
        if len(t) != nd:
            raise ValueError(f"einsum term {t!r} does not match an operand of {nd} dimensions")
        expanded.append(t)
    if rhs is None:
        counts = {}
        for t in expanded:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        rhs = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    if len(set(rhs)) != len(rhs):
        raise ValueError(f"einsum output {rhs!r} repeats an index; an output index appears once")
    for c in rhs:
        if not any(c in t for t in expanded):
            raise ValueError(f"einsum output index {c!r} appears in no operand")
    return expanded, rhs


def _diagonal_steps(term: str) -> tuple[str, list]:
    """A term with its repeated indices taken as diagonals, and the axes of each diagonal taken, in order.

    ``numpy.diagonal(x, axis1=p, axis2=q)`` removes axes ``p`` and ``q`` and
    puts their diagonal last, so ``'iij'`` becomes ``'ji'`` in one step and
    ``'iii'`` becomes ``'i'`` in two. The rest of einsum's gradient works on
    that diagonal, and puts its gradient back with ``diagonal_transpose``.
    """
    letters, steps = list(term), []
    while len(set(letters)) != len(letters):
        p = next(k for k, c in enumerate(letters) if letters.count(c) > 1)
        q = letters.index(letters[p], p + 1)
        steps.append((p, q))
        letters = [c for k, c in enumerate(letters) if k not in (p, q)] + [letters[p]]
    return "".join(letters), steps


def _einsum_rule(*shapes, subscripts=""):
    terms, rhs = _parse(subscripts, [len(s) for s in shapes])
    sizes: dict = {}
    for t, s in zip(terms, shapes):
        within: dict = {}
        for c, d in zip(t, s):  # a repeated index takes a diagonal: its sizes in one operand are equal
            if d is not None and within.setdefault(c, d) != d:
                raise ValueError(f"einsum index {c!r} is repeated in {t!r} with sizes {within[c]} and {d}")
        for c, d in zip(t, s):
            try:
                (sizes[c],) = broadcast_shapes((sizes.get(c, 1),), (d,))
            except ValueError:
                raise ValueError(f"einsum index {c!r} has sizes {sizes[c]} and {d}") from None
    return tuple(sizes[c] for c in rhs)


def _einsum_samples(rng):
    cases = [
        ("ij,jk->ik", [(3, 4), (4, 2)]),
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("i,i->", [(4,), (4,)]),
        ("ij->j", [(3, 4)]),
        ("ij,k->ijk", [(2, 3), (4,)]),
        ("...ij,jk->...ik", [(2, 3, 4), (4, 2)]),
        ("ij,jk", [(0, 4), (4, 2)]),
        ("ij,ij->i", [(1, 3), (2, 3)]),
        ("ii->", [(3, 3)]),                       # repeated indices: diagonals
        ("ii->i", [(4, 4)]),
        ("bii->bi", [(2, 3, 3)]),
        ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
        ("iii", [(2, 2, 2)]),
        ("ijij->ij", [(2, 3, 2, 3)]),
        ("ii,i->i", [(1, 1), (3,)]),             # a size-1 diagonal broadcast against another operand
        ("iij,j->i", [(2, 2, 3), (1,)]),         # another operand's size-1 axis broadcast against this one
        ("ij,j->i", [(2, 3), (1,)]),
        ("ii->", [(0, 0)]),
    ]
    out = [Sample(tuple(away_from_zero(rng, s) for s in shapes), {"subscripts": sub}, sub) for sub, shapes in cases]
    x = away_from_zero(rng, (3, 4))
    out.append(Sample((x, x), {"subscripts": "ij,ij->"}, "the same input twice"))
    return out


@op(shape=_einsum_rule, saves=("inputs",), samples=_einsum_samples,
    counterparts={"numpy": "numpy.einsum", "torch": "torch.einsum"})
def einsum(*xs, subscripts=""):
    """Einstein summation, as ``numpy.einsum(subscripts, *xs)``."""
    return np.einsum(subscripts, *xs, optimize=len(xs) > 2)


def _operand_gradient(g, xs, terms, rhs, i, einsum_of):
    """The gradient of operand ``i`` on its diagonal letters ``'ji'`` (for ``'iij'``), before it is put back.

    The gradient of an operand is the einsum of ``g`` with the other operands;
    an index only this operand has was summed away, so it is computed without
    it and comes back as a size-1 axis that broadcasts. ``einsum_of(spec,
    *operands)`` computes the einsum (with numpy or as a node).
    """
    diag, _ = _diagonal_steps(terms[i])
    others = [(t, y) for j, (t, y) in enumerate(zip(terms, xs)) if j != i]
    present = set(rhs).union(*[set(t) for t, _ in others])
    kept = "".join(c for c in diag if c in present)
    spec = ",".join([rhs] + [t for t, _ in others]) + "->" + kept
    missing = tuple(axis for axis, c in enumerate(diag) if c not in present)
    return einsum_of(spec, g, *[y for _, y in others]), missing


def _put_on_diagonals(partial: np.ndarray, term: str, shape: tuple) -> np.ndarray:
    """Zeros of ``shape`` (an operand of ``term``) with ``partial`` (on its diagonal letters) on the diagonals."""
    diag, steps = _diagonal_steps(term)
    if not steps:
        return partial
    size = {c: d for c, d in zip(term, shape)}
    target = tuple(size[c] for c in diag)
    summed = tuple(a for a, (p, t) in enumerate(zip(partial.shape, target)) if p != t and t == 1)
    partial = np.broadcast_to(partial.sum(axis=summed, keepdims=True) if summed else partial, target)
    out = np.zeros(shape, partial.dtype)
    where = []
    for c in term:
        at = [1] * len(diag)
        at[diag.index(c)] = size[c]
        where.append(np.arange(size[c]).reshape(at))
    out[tuple(where)] = partial
    return out


@einsum.vjp
def _(g, *xs, subscripts, needs):
    terms, rhs = _parse(subscripts, [x.ndim for x in xs])
    grads = []
    for i, (term, x) in enumerate(zip(terms, xs)):
        if not needs[i]:
            grads.append(None)
            continue
        partial, missing = _operand_gradient(
            g, xs, terms, rhs, i, lambda spec, *ys: np.einsum(spec, *ys, optimize=len(ys) > 2))
        partial = np.expand_dims(partial, missing)
        if _diagonal_steps(term)[1]:
            grads.append(_put_on_diagonals(partial, term, x.shape))
        else:
            grads.append(np.broadcast_to(partial, np.broadcast_shapes(partial.shape, x.shape)))
    return tuple(grads)


@einsum.graph_vjp
def _(g, *xs, subscripts, needs):
    """As the numpy rule; an operand with a repeated index gets its gradient through ``diagonal_transpose``."""
    terms, rhs = _parse(subscripts, [static_rank(x, "einsum") for x in xs])
    grads = []
    for i, (term, x) in enumerate(zip(terms, xs)):
        if not needs[i]:
            grads.append(None)
            continue
        _, steps = _diagonal_steps(term)
        likes = [x]  # x, then each diagonal taken of it: only their shapes are read
        for p, q in steps:
            likes.append(diagonal(likes[-1], axis1=p, axis2=q))
        partial, missing = _operand_gradient(g, xs, terms, rhs, i, lambda spec, *ys: einsum(*ys, subscripts=spec))
        if missing:
            partial = apply("expand_dims", partial, axis=missing)
        if missing or partial.shape != likes[-1].shape or None in partial.shape:
            partial = partial + zeros_like(likes[-1], partial.dtype)  # broadcast a size-1 axis to the operand's
        if steps:
            partial = sum_to(partial, likes[-1])
            for (p, q), like in zip(reversed(steps), reversed(likes[:-1])):
                partial = diagonal_transpose(partial, like, axis1=p, axis2=q)
        grads.append(partial)
    return tuple(grads)
