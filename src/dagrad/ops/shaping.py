"""Layout ops that copy entries to new places: pad, flip, roll, tile, repeat, split, tril/triu, diagonal, trace.

Each is linear in its input, so its VJP is its *transpose*: the gradient of
every output entry goes back to the input entry it was copied from, and entries
copied several times (a reflected border, a tile, a repeat) add up. Where that
transpose is not itself one of these ops it is an op here too
(``pad_transpose``, ``tile_transpose``, ``repeat_transpose``,
``split_transpose``, ``diagonal_transpose``), so that each op's graph VJP is
its partner and the pair differentiates to any order, as ``add_at`` and
``getitem`` do in ``adjoints.py``. A transpose that needs its input's size
(a tile repeated 0 times leaves none to divide by) reads it from an input
``like`` whose values it never reads.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..opdef import Sample, first_dtype, op
from ..shapes import Shape, broadcasts_to, format_shape, normalize_axes
from ..tensor import apply
from .presets import sum_dtype
from .samples import away_from_zero

__all__ = [
    "PAD_MODES", "pad", "pad_transpose", "flip", "roll", "tile", "tile_transpose", "repeat", "repeat_transpose",
    "split", "split_transpose", "piece_bounds", "tril", "triu", "diagonal", "diagonal_transpose", "trace",
]


def _known(*dims) -> bool:
    return None not in dims


def _transpose_rule(rule, what: str):
    """Shape rule of an op's transpose ``(g, like)``: ``like``'s shape, once ``g`` is what ``rule`` makes of it."""

    def transpose_rule(g, like, **attrs):
        expected = rule(like, **attrs)
        if len(g) != len(expected) or any(_known(a, b) and a != b for a, b in zip(g, expected)):
            raise ValueError(f"{format_shape(g)} is not {format_shape(expected)}, the shape {what} gives {format_shape(like)}")
        return tuple(like)

    return transpose_rule


def _transpose_samples(samples, rule, once: dict):
    """Samples of an op's transpose ``(g, like)`` from its forward's; and ``like`` passed twice, with ``once``'s attrs."""

    def transpose_samples(rng):
        out = [Sample((away_from_zero(rng, rule(s.args[0].shape, **s.attrs)), s.args[0]), s.attrs, s.label)
               for s in samples(rng)]
        x = away_from_zero(rng, (2, 3))
        out.append(Sample((x, x), once, "the same input twice (the transpose of an identity)"))
        return out

    return transpose_samples


# ----------------------------------------------------------------- pad ---

PAD_MODES = ("constant", "reflect", "symmetric", "edge", "wrap")
"""numpy.pad's modes that dagrad differentiates (PyTorch calls ``edge`` "replicate" and ``wrap`` "circular")."""


def _pad_widths(pad_width, ndim: int) -> tuple:
    """``pad_width`` as numpy.pad reads it (an int, a pair, or one pair per axis) spelled out per axis."""
    if ndim == 0:
        raise ValueError("cannot pad a 0-d array: it has no axes")
    widths = np.asarray(pad_width)
    if widths.dtype.kind not in "iu" or widths.ndim > 2:
        raise ValueError(f"pad_width {pad_width!r} is not an int, a (before, after) pair, or one pair per axis")
    try:
        widths = np.broadcast_to(widths, (ndim, 2))
    except ValueError:
        raise ValueError(f"pad_width {pad_width!r} does not give a (before, after) pair for each of {ndim} axes") from None
    if (widths < 0).any():
        raise ValueError(f"pad_width {pad_width!r} has a negative width")
    return tuple((int(b), int(a)) for b, a in widths)


def _check_mode(mode: str) -> None:
    if mode not in PAD_MODES:
        aliases = {"replicate": "edge", "circular": "wrap"}
        hint = f" (PyTorch's {mode!r} is numpy's {aliases[mode]!r})" if mode in aliases else ""
        raise ValueError(f"pad mode {mode!r} is not one of {', '.join(PAD_MODES)}{hint}")


def _pad_rule(x, *, pad_width, mode, constant_values):
    _check_mode(mode)
    out = []
    for axis, (d, (before, after)) in enumerate(zip(x, _pad_widths(pad_width, len(x)))):
        if mode != "constant" and d == 0 and before + after:
            raise ValueError(f"axis {axis} is empty: mode {mode!r} has no entries to copy into its padding")
        out.append(None if d is None else d + before + after)
    return tuple(out)


def _pad_transpose_rule(g, *, pad_width, mode):
    _check_mode(mode)
    out = []
    for axis, (d, (before, after)) in enumerate(zip(g, _pad_widths(pad_width, len(g)))):
        if d is not None and (d < before + after or (mode != "constant" and d == before + after and d)):
            raise ValueError(f"axis {axis} of size {d} is too short to remove a padding of ({before}, {after})")
        out.append(None if d is None else d - before - after)
    return tuple(out)


def _sources(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each entry of a padded axis, the input entry it copies (-1 for the constant), by numpy.pad itself."""
    if mode == "constant":
        return np.pad(np.arange(size), (before, after), constant_values=-1)
    return np.pad(np.arange(size), (before, after), mode=mode)


def _fold_padding(g: np.ndarray, pad_width, mode: str) -> np.ndarray:
    """pad's transpose: keep the unpadded entries, and add every padded entry to the one it copies."""
    for axis, (before, after) in enumerate(_pad_widths(pad_width, g.ndim)):
        if not before + after:
            continue
        size = g.shape[axis] - before - after
        inner = np.take(g, np.arange(before, before + size), axis=axis)  # a copy, to add into
        if mode != "constant":
            padded = np.r_[0:before, before + size:before + size + after]
            at = (slice(None),) * axis + (_sources(size, before, after, mode)[padded],)
            np.add.at(inner, at, np.take(g, padded, axis=axis))
        g = inner
    return g


def _pad_samples(rng):
    x = away_from_zero(rng, (3, 4))
    cases = [
        (x, 1, "constant", 0.0),
        (x, ((1, 2), (0, 3)), "constant", 1.5),
        (x, ((2, 1), (3, 2)), "reflect", 0.0),
        (x, ((5, 4), (1, 0)), "reflect", 0.0),                  # wider than the axis: reflected again
        (x, (2, 3), "edge", 0.0),
        (x, ((1, 2), (4, 1)), "symmetric", 0.0),
        (x, ((4, 0), (0, 6)), "wrap", 0.0),
        (away_from_zero(rng, (1, 5)), ((2, 2), (1, 1)), "reflect", 0.0),
        (away_from_zero(rng, (0, 3)), ((0, 0), (1, 2)), "edge", 0.0),
        (away_from_zero(rng, (0, 3)), 2, "constant", 0.0),
        (away_from_zero(rng, (4,)), ((3, 1),), "symmetric", 0.0),
        (away_from_zero(rng, (1, 3)), ((0, 0), (0, 2)), "edge", 0.0),
    ]
    return [Sample((a,), {"pad_width": w, "mode": m, "constant_values": c}, f"shape {a.shape}, {m} {w}")
            for a, w, m, c in cases]


@op(shape=_pad_rule, dtype=first_dtype, saves=(), samples=_pad_samples,
    counterparts={"numpy": "numpy.pad", "torch": "torch.nn.functional.pad"})
def pad(x, *, pad_width=0, mode="constant", constant_values=0.0):
    """``x`` with entries added before and after each axis, as ``numpy.pad`` in modes constant, reflect, symmetric, edge and wrap.

    ``pad_width`` is read as numpy reads it: an int for every side, a
    ``(before, after)`` pair for every axis, or one pair per axis, first axis
    first (``torch.nn.functional.pad`` lists the *last* axis first). Widths
    may exceed an axis's size: ``reflect`` then reflects again, as numpy does.
    """
    widths = _pad_widths(pad_width, x.ndim)
    if mode == "constant":
        return np.pad(x, widths, constant_values=constant_values)
    return np.pad(x, widths, mode=mode)


@pad.vjp
def _(g, x, *, pad_width, mode, constant_values):
    return (_fold_padding(g, pad_width, mode),)


@pad.graph_vjp
def _(g, x, *, pad_width, mode, constant_values):
    return (pad_transpose(g, pad_width=pad_width, mode=mode),)


def _pad_transpose_samples(rng):
    return [Sample((away_from_zero(rng, pad.shape_rule(s.args[0].shape, **s.attrs)),),
                   {"pad_width": s.attrs["pad_width"], "mode": s.attrs["mode"]}, s.label)
            for s in _pad_samples(rng)]


@op(shape=_pad_transpose_rule, dtype=first_dtype, saves=(), samples=_pad_transpose_samples)
def pad_transpose(g, *, pad_width=0, mode="constant"):
    """pad's transpose: the unpadded entries of ``g``, each plus the padded entries that copied it."""
    return _fold_padding(g, pad_width, mode)


@pad_transpose.vjp
def _(h, g, *, pad_width, mode):
    return (pad.forward(h, pad_width=pad_width, mode=mode, constant_values=0),)


@pad_transpose.graph_vjp
def _(h, g, *, pad_width, mode):
    return (pad(h, pad_width=pad_width, mode=mode, constant_values=0),)


# ---------------------------------------------------------- flip, roll ---


def _flip_rule(x, *, axis=None):
    if axis is not None:
        normalize_axes(axis, len(x))
    return tuple(x)


def _flip_samples(rng):
    cases = [((3, 4), None), ((3, 4), 0), ((2, 3, 4), (0, 2)), ((2, 3), -1), ((0, 3), 1), ((1,), 0), ((), None)]
    return [Sample((away_from_zero(rng, s),), {"axis": a}, f"shape {s}, axis {a}") for s, a in cases]


@op(shape=_flip_rule, dtype=first_dtype, saves=(), samples=_flip_samples,
    counterparts={"numpy": "numpy.flip", "torch": "torch.flip"})
def flip(x, *, axis=None):
    """``x`` with the order of entries reversed along ``axis`` (all axes by default)."""
    return np.flip(x, axis)


@flip.vjp
def _(g, x, *, axis):
    return (np.flip(g, axis),)


@flip.graph_vjp
def _(g, x, *, axis):
    return (flip(g, axis=axis),)


def _roll_rule(x, *, shift=0, axis=None):
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    if axis is None:
        if len(shifts) != 1:
            raise ValueError(f"roll without an axis takes one shift, not {len(shifts)}")
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        for a in axes:
            normalize_axes(a, len(x))
        if len(shifts) != 1 and len(axes) != 1 and len(shifts) != len(axes):
            raise ValueError(f"roll got {len(shifts)} shifts for {len(axes)} axes")
    return tuple(x)


def _negated(shift):
    return -shift if isinstance(shift, int) else tuple(-s for s in shift)


def _roll_samples(rng):
    cases = [((3, 4), 1, None), ((3, 4), -2, 1), ((2, 3, 4), (1, 5), (0, 2)), ((2, 3), 7, 0), ((0, 3), 1, 1),
             ((1, 4), (1, 1), (1, -1)), ((), 3, None)]
    return [Sample((away_from_zero(rng, s),), {"shift": k, "axis": a}, f"shape {s}, shift {k}, axis {a}")
            for s, k, a in cases]


@op(shape=_roll_rule, dtype=first_dtype, saves=(), samples=_roll_samples,
    counterparts={"numpy": "numpy.roll", "torch": "torch.roll"})
def roll(x, *, shift=0, axis=None):
    """``x`` shifted cyclically by ``shift`` along ``axis`` (of the flattened ``x`` by default)."""
    return np.roll(x, shift, axis)


@roll.vjp
def _(g, x, *, shift, axis):
    return (np.roll(g, _negated(shift), axis),)


@roll.graph_vjp
def _(g, x, *, shift, axis):
    return (roll(g, shift=_negated(shift), axis=axis),)


# ---------------------------------------------------------------- tile ---


def _aligned_reps(reps, ndim: int) -> tuple:
    """``reps`` and an input of ``ndim`` axes, both padded with leading 1s to the output's rank."""
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    if any(r < 0 for r in reps):
        raise ValueError(f"reps {reps} has a negative count")
    rank = builtins.max(len(reps), ndim)
    return (1,) * (rank - len(reps)) + reps


def _tile_rule(x, *, reps=1):
    reps = _aligned_reps(reps, len(x))
    dims = (1,) * (len(reps) - len(x)) + tuple(x)
    return tuple(None if d is None else d * r for d, r in zip(dims, reps))


def _tile_samples(rng):
    cases = [((2, 3), (2, 1)), ((2, 3), 3), ((3,), (2, 2)), ((2, 1, 3), (2, 1)), ((0, 2), (2, 3)), ((2, 3), (0, 1)),
             ((), (3,)), ((1,), 1)]
    return [Sample((away_from_zero(rng, s),), {"reps": r}, f"shape {s}, reps {r}") for s, r in cases]


@op(shape=_tile_rule, dtype=first_dtype, saves=(), samples=_tile_samples,
    counterparts={"numpy": "numpy.tile", "torch": "torch.tile"})
def tile(x, *, reps=1):
    """``x`` repeated as a whole ``reps`` times along each axis (``reps`` aligned to the last axes), as ``numpy.tile``."""
    return np.tile(x, reps)


def _sum_tiles(g: np.ndarray, like_shape: tuple, reps) -> np.ndarray:
    reps = _aligned_reps(reps, len(like_shape))
    dims = (1,) * (len(reps) - len(like_shape)) + tuple(like_shape)
    interleaved = tuple(n for pair in zip(reps, dims) for n in pair)
    return g.reshape(interleaved).sum(axis=tuple(range(0, 2 * len(reps), 2))).reshape(like_shape)


@tile.vjp
def _(g, x, *, reps):
    return (_sum_tiles(g, x.shape, reps),)


@tile.graph_vjp
def _(g, x, *, reps):
    return (tile_transpose(g, x, reps=reps),)


@op(shape=_transpose_rule(_tile_rule, "tile"), dtype=sum_dtype, saves=(),
    samples=_transpose_samples(_tile_samples, _tile_rule, {"reps": (1, 1)}))
def tile_transpose(g, like, *, reps=1):
    """tile's transpose: the sum of ``g``'s tiles, shaped like ``like`` (whose values are not read)."""
    return _sum_tiles(g, like.shape, reps)


@tile_transpose.vjp
def _(h, g, like, *, reps):
    return np.tile(h, reps).reshape(g.shape), None


@tile_transpose.graph_vjp
def _(h, g, like, *, reps):
    return tile(h, reps=reps), None


# -------------------------------------------------------------- repeat ---


def _repeat_counts(repeats):
    """An int, or a tuple of per-entry counts; a one-entry tuple counts for every entry, as in numpy."""
    counts = (repeats,) if isinstance(repeats, int) else tuple(repeats)
    if any(not isinstance(c, int) or isinstance(c, bool) or c < 0 for c in counts):
        raise ValueError(f"repeats {repeats!r} must be counts (ints >= 0)")
    return counts[0] if len(counts) == 1 else counts


def _repeated_axis(x: Shape, axis):
    """The axis repeat works along: ``x``'s own, or the flattened ``x`` for ``axis=None``."""
    if axis is None:
        return (math.prod(x) if _known(*x) else None,), 0
    (a,) = normalize_axes(axis, len(x))
    return tuple(x), a


def _repeat_rule(x, *, repeats=1, axis=None):
    counts = _repeat_counts(repeats)
    dims, a = _repeated_axis(x, axis)
    n = dims[a]
    if isinstance(counts, int):
        size = None if n is None else n * counts
    else:
        if n is not None and n != len(counts):
            raise ValueError(f"{len(counts)} repeats for an axis of {n} entries")
        size = builtins.sum(counts)
    return dims[:a] + (size,) + dims[a + 1:]


def _repeat_samples(rng):
    cases = [((2, 3), 2, 0), ((2, 3), (1, 0, 3), 1), ((2, 3), 3, None), ((2, 2), (2, 1, 0, 1), None),
             ((2, 3), (2,), -1), ((0, 3), 2, 0), ((2, 3), 0, 1), ((), 3, None), ((1,), (4,), 0)]
    return [Sample((away_from_zero(rng, s),), {"repeats": r, "axis": a}, f"shape {s}, repeats {r}, axis {a}")
            for s, r, a in cases]


@op(shape=_repeat_rule, dtype=first_dtype, saves=(), samples=_repeat_samples,
    counterparts={"numpy": "numpy.repeat", "torch": "torch.repeat_interleave"})
def repeat(x, *, repeats=1, axis=None):
    """Each entry of ``x`` repeated ``repeats`` times along ``axis`` (of the flattened ``x`` by default), as ``numpy.repeat``.

    ``repeats`` is one count for every entry, or one count per entry.
    """
    return np.repeat(x, _repeat_counts(repeats), axis)


def _sum_repeats(g: np.ndarray, like_shape: tuple, repeats, axis) -> np.ndarray:
    counts = _repeat_counts(repeats)
    dims, a = _repeated_axis(like_shape, axis)
    g = g.reshape(g.shape if axis is not None else (-1,))
    if isinstance(counts, int):
        summed = g.reshape(dims[:a] + (dims[a], counts) + dims[a + 1:]).sum(axis=a + 1)
    else:
        counts = np.asarray(counts)
        summed = np.zeros(dims, g.dtype)
        used = counts > 0
        starts = np.cumsum(counts) - counts
        if used.any():
            at = (slice(None),) * a + (used,)
            summed[at] = np.add.reduceat(g, starts[used], axis=a)
    return summed.reshape(like_shape)


@repeat.vjp
def _(g, x, *, repeats, axis):
    return (_sum_repeats(g, x.shape, repeats, axis),)


@repeat.graph_vjp
def _(g, x, *, repeats, axis):
    return (repeat_transpose(g, x, repeats=repeats, axis=axis),)


@op(shape=_transpose_rule(_repeat_rule, "repeat"), dtype=sum_dtype, saves=(),
    samples=_transpose_samples(_repeat_samples, _repeat_rule, {"repeats": 1, "axis": 1}))
def repeat_transpose(g, like, *, repeats=1, axis=None):
    """repeat's transpose: each run of repeated entries of ``g`` summed, shaped like ``like`` (whose values are not read)."""
    return _sum_repeats(g, like.shape, repeats, axis)


@repeat_transpose.vjp
def _(h, g, like, *, repeats, axis):
    return np.repeat(h, _repeat_counts(repeats), axis).reshape(g.shape), None


@repeat_transpose.graph_vjp
def _(h, g, like, *, repeats, axis):
    return repeat(h, repeats=repeats, axis=axis), None


# --------------------------------------------------------------- split ---


def piece_bounds(sections, size: int, part: int) -> tuple:
    """``(start, stop)`` of piece ``part`` of an axis of ``size`` cut as ``numpy.split(x, sections)`` cuts it.

    ``sections`` is a number of equal pieces (which must divide ``size``) or
    the indices to cut at, read as slice bounds (so they may be negative or
    past the end, and a piece may be empty: then ``stop <= start``).

    >>> piece_bounds(3, 6, 1), piece_bounds((1, 4), 6, 2), piece_bounds((5, 2), 6, 1)
    ((2, 4), (4, 6), (5, 2))
    """
    if isinstance(sections, int):
        if sections <= 0:
            raise ValueError(f"cannot split into {sections} sections")
        if size % sections:
            raise ValueError(f"an axis of {size} entries does not split into {sections} equal sections")
        step = size // sections
        return part * step, (part + 1) * step
    cuts = [0, *sections, size]
    return slice(cuts[part], cuts[part + 1]).indices(size)[:2]


def _piece_count(sections) -> int:
    return sections if isinstance(sections, int) else len(sections) + 1


def _split_rule(x, *, sections=1, axis=0, part=0):
    if isinstance(sections, int):
        if sections <= 0:
            raise ValueError(f"cannot split into {sections} sections")
    elif not all(isinstance(c, int) and not isinstance(c, bool) for c in sections):
        raise ValueError(f"sections {sections!r} must be a number of pieces or a list of indices to cut at")
    if not 0 <= part < _piece_count(sections):
        raise ValueError(f"part {part} is not one of the {_piece_count(sections)} pieces")
    (a,) = normalize_axes(axis, len(x))
    length = None
    if x[a] is not None:
        start, stop = piece_bounds(sections, x[a], part)
        length = builtins.max(stop - start, 0)
    return tuple(x[:a]) + (length,) + tuple(x[a + 1:])


def _piece(shape: tuple, sections, axis, part) -> tuple:
    """The index of piece ``part`` in an array of ``shape``."""
    a = normalize_axes(axis, len(shape))[0]
    start, stop = piece_bounds(sections, shape[a], part)
    return (slice(None),) * a + (slice(start, builtins.max(start, stop)),)


def _split_samples(rng):
    x = away_from_zero(rng, (6, 4))
    cases = [(x, 3, 0, 1), (x, (1, 4), 0, 2), (x, (1, 3), -1, 1), (x, (-2,), 0, 1), (x, (2, 2), 0, 1),
             (x, (5, 9), 0, 2), (away_from_zero(rng, (0, 3)), 2, 0, 1), (away_from_zero(rng, (1, 3)), 1, 1, 0)]
    return [Sample((a,), {"sections": s, "axis": ax, "part": p}, f"shape {a.shape}, sections {s}, axis {ax}, part {p}")
            for a, s, ax, p in cases]


@op(shape=_split_rule, dtype=first_dtype, saves=(), samples=_split_samples,
    counterparts={"numpy": "numpy.split", "torch": "torch.tensor_split"})
def split(x, *, sections=1, axis=0, part=0):
    """Piece ``part`` of ``x`` cut along ``axis`` as ``numpy.split(x, sections, axis)`` cuts it.

    One node per piece: ``dagrad.split`` adds one ``split`` node for each, so
    each piece is a Tensor of its own (and the gradient of ``x`` is the sum of
    what each piece's VJP puts back in its place).
    """
    return x[_piece(x.shape, sections, axis, part)]


def _place_piece(g: np.ndarray, like_shape: tuple, sections, axis, part) -> np.ndarray:
    out = np.zeros(like_shape, g.dtype)
    out[_piece(like_shape, sections, axis, part)] = g
    return out


@split.vjp
def _(g, x, *, sections, axis, part):
    return (_place_piece(g, x.shape, sections, axis, part),)


@split.graph_vjp
def _(g, x, *, sections, axis, part):
    return (split_transpose(g, x, sections=sections, axis=axis, part=part),)


@op(shape=_transpose_rule(_split_rule, "split"), dtype=first_dtype, saves=(),
    samples=_transpose_samples(_split_samples, _split_rule, {"sections": 1, "axis": 0, "part": 0}))
def split_transpose(g, like, *, sections=1, axis=0, part=0):
    """split's transpose: zeros shaped like ``like`` (whose values are not read) with ``g`` in piece ``part``'s place."""
    return _place_piece(g, like.shape, sections, axis, part)


@split_transpose.vjp
def _(h, g, like, *, sections, axis, part):
    return h[_piece(h.shape, sections, axis, part)], None


@split_transpose.graph_vjp
def _(h, g, like, *, sections, axis, part):
    return split(h, sections=sections, axis=axis, part=part), None


# ----------------------------------------------------------- triangles ---


def _triangle_rule(x, *, k=0):
    if len(x) < 2:
        raise ValueError(f"a triangle needs at least 2 axes (a matrix or a batch of them), not {format_shape(x)}")
    return tuple(x)


def _triangle_samples(rng):
    cases = [((3, 4), 0), ((4, 3), 1), ((2, 3, 3), -1), ((3, 3), 5), ((3, 3), -4), ((0, 3), 0), ((1, 1), 0)]
    return [Sample((away_from_zero(rng, s),), {"k": k}, f"shape {s}, k {k}") for s, k in cases]


@op(shape=_triangle_rule, dtype=first_dtype, saves=(), samples=_triangle_samples,
    counterparts={"numpy": "numpy.tril", "torch": "torch.tril"})
def tril(x, *, k=0):
    """The lower triangle of the last two axes of ``x`` (on and below diagonal ``k``), zeros above."""
    return np.tril(x, k)


@tril.vjp
def _(g, x, *, k):
    return (np.tril(g, k),)


@tril.graph_vjp
def _(g, x, *, k):
    return (tril(g, k=k),)


@op(shape=_triangle_rule, dtype=first_dtype, saves=(), samples=_triangle_samples,
    counterparts={"numpy": "numpy.triu", "torch": "torch.triu"})
def triu(x, *, k=0):
    """The upper triangle of the last two axes of ``x`` (on and above diagonal ``k``), zeros below."""
    return np.triu(x, k)


@triu.vjp
def _(g, x, *, k):
    return (np.triu(g, k),)


@triu.graph_vjp
def _(g, x, *, k):
    return (triu(g, k=k),)


# ------------------------------------------------------ diagonal, trace ---


def _diagonal_axes(x: Shape, axis1: int, axis2: int) -> tuple:
    if len(x) < 2:
        raise ValueError(f"a diagonal needs at least 2 axes, not {format_shape(x)}")
    a1, a2 = (normalize_axes(a, len(x))[0] for a in (axis1, axis2))
    if a1 == a2:
        raise ValueError(f"axis1 and axis2 are the same axis ({axis1} and {axis2})")
    return a1, a2


def _diagonal_length(n1, n2, offset: int):
    if not _known(n1, n2):
        return None
    return builtins.max(0, builtins.min(n1, n2 - offset) if offset >= 0 else builtins.min(n1 + offset, n2))


def _diagonal_rule(x, *, offset=0, axis1=0, axis2=1):
    a1, a2 = _diagonal_axes(x, axis1, axis2)
    rest = tuple(d for i, d in enumerate(x) if i not in (a1, a2))
    return rest + (_diagonal_length(x[a1], x[a2], offset),)


def _trace_rule(x, *, offset=0, axis1=0, axis2=1):
    a1, a2 = _diagonal_axes(x, axis1, axis2)
    return tuple(d for i, d in enumerate(x) if i not in (a1, a2))


def _trace_dtype(dtype, *, offset=0, axis1=0, axis2=1):
    first_dtype(dtype)
    return np.trace(np.zeros((0, 0), dtype)).dtype  # numpy's sum widens bool and small ints


def _diagonal_samples(rng):
    cases = [((3, 3), 0, 0, 1), ((3, 4), 1, 0, 1), ((4, 3), -2, 0, 1), ((2, 3, 3), 0, 1, 2), ((3, 2, 3), 0, 2, 0),
             ((3, 3), 4, 0, 1), ((0, 3), 0, 0, 1), ((1, 1), 0, -1, -2)]
    return [Sample((away_from_zero(rng, s),), {"offset": o, "axis1": a1, "axis2": a2},
                   f"shape {s}, offset {o}, axes {a1} and {a2}") for s, o, a1, a2 in cases]


@op(shape=_diagonal_rule, dtype=first_dtype, saves=(), samples=_diagonal_samples,
    counterparts={"numpy": "numpy.diagonal", "torch": "torch.diagonal"})
def diagonal(x, *, offset=0, axis1=0, axis2=1):
    """The diagonal ``offset`` of the planes of axes ``axis1`` and ``axis2``, as a new last axis (``numpy.diagonal``)."""
    return np.diagonal(x, offset, axis1, axis2)


def _on_diagonal(g: np.ndarray, like_shape: tuple, offset: int, axis1: int, axis2: int) -> np.ndarray:
    """Zeros of ``like_shape`` with ``g`` (broadcast to the diagonal's shape) on diagonal ``offset``."""
    a1, a2 = _diagonal_axes(like_shape, axis1, axis2)
    out = np.zeros(like_shape, g.dtype)
    planes = np.moveaxis(out, (a1, a2), (-2, -1))  # a view: writing it writes out
    length = _diagonal_length(like_shape[a1], like_shape[a2], offset)
    rows = np.arange(length) + builtins.max(-offset, 0)
    cols = np.arange(length) + builtins.max(offset, 0)
    planes[..., rows, cols] = np.broadcast_to(g, planes.shape[:-2] + (length,))
    return out


@diagonal.vjp
def _(g, x, *, offset, axis1, axis2):
    return (_on_diagonal(g, x.shape, offset, axis1, axis2),)


@diagonal.graph_vjp
def _(g, x, *, offset, axis1, axis2):
    return (diagonal_transpose(g, x, offset=offset, axis1=axis1, axis2=axis2),)


def _diagonal_transpose_rule(g, like, *, offset=0, axis1=0, axis2=1):
    diag = _diagonal_rule(like, offset=offset, axis1=axis1, axis2=axis2)
    if not broadcasts_to(g, diag):
        raise ValueError(f"{format_shape(g)} does not broadcast to the diagonal {format_shape(diag)} of {format_shape(like)}")
    return tuple(like)


def _diagonal_transpose_samples(rng):
    out = [Sample((away_from_zero(rng, _diagonal_rule(s.args[0].shape, **s.attrs)), s.args[0]), s.attrs, s.label)
           for s in _diagonal_samples(rng)]
    out.append(Sample((away_from_zero(rng, (2, 1)), away_from_zero(rng, (2, 3, 3))), {"offset": 0, "axis1": 1, "axis2": 2},
                      "one value per plane, broadcast along its diagonal"))
    return out


@op(shape=_diagonal_transpose_rule, dtype=first_dtype, saves=(), samples=_diagonal_transpose_samples)
def diagonal_transpose(g, like, *, offset=0, axis1=0, axis2=1):
    """diagonal's transpose: zeros shaped like ``like`` (whose values are not read) with ``g`` on the diagonal."""
    return _on_diagonal(g, like.shape, offset, axis1, axis2)


@diagonal_transpose.vjp
def _(h, g, like, *, offset, axis1, axis2):
    return np.diagonal(h, offset, axis1, axis2), None


@diagonal_transpose.graph_vjp
def _(h, g, like, *, offset, axis1, axis2):
    return diagonal(h, offset=offset, axis1=axis1, axis2=axis2), None


@op(shape=_trace_rule, dtype=_trace_dtype, saves=(), samples=_diagonal_samples,
    counterparts={"numpy": "numpy.trace", "torch": "torch.trace"})
def trace(x, *, offset=0, axis1=0, axis2=1):
    """The sum of diagonal ``offset`` of the planes of axes ``axis1`` and ``axis2`` (``numpy.trace``)."""
    return np.asarray(np.trace(x, offset, axis1, axis2))


@trace.vjp
def _(g, x, *, offset, axis1, axis2):
    return (_on_diagonal(g[..., None], x.shape, offset, axis1, axis2),)


@trace.graph_vjp
def _(g, x, *, offset, axis1, axis2):
    return (diagonal_transpose(apply("expand_dims", g, axis=-1), x, offset=offset, axis1=axis1, axis2=axis2),)
