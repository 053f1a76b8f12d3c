"""Convolutions in 1, 2 and 3 spatial dimensions, their transposes, and the two ops their gradients are made of.

* ``conv1d``, ``conv2d``, ``conv3d``: cross-correlation of a batched image
  with a kernel, with stride, padding (``"same"`` and ``"valid"`` too),
  dilation and groups, as PyTorch's ``torch.nn.functional.convNd``.
* ``conv_transpose1d``, ``conv_transpose2d``, ``conv_transpose3d``: the adjoint
  of a convolution in its image (PyTorch's ``conv_transposeNd``, with
  ``output_padding``).
* ``conv_input_grad(g, w, like)`` and ``conv_weight_grad(x, g, like)``: a
  convolution's gradient with respect to its image and to its kernel
  (``torch.nn.grad.convNd_input`` and ``_weight``), taking the sizes that
  cannot be recovered from ``g`` from ``like``, whose values they never read.

The forward is im2col: a strided window view of the padded image, laid out
as one matrix per group, times the kernel as a matrix (a BLAS matmul). The
three maps ``conv``, ``conv_input_grad`` and ``conv_weight_grad`` are the
partial derivatives of one trilinear form ``<y, conv(x, w)>``, so the VJP of
each is made of the other two: the graph VJPs use exactly these ops, and
derivatives of any order stay in the family (a convolution's input gradient is
a transposed convolution, whose gradient is a convolution again).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from dagrad.extend import Sample, dims_agree, op, result_dtype, shapes_agree

from .windows import (DIMS, SPATIAL_NAMES, axis_names, conv_pads, fold, image_rank, ntuple, out_size, pad, positive,
                      spatial_rank, windows)


# ------------------------------------------------------------- geometry --


@dataclass(frozen=True)
class Geometry:
    """A convolution's per-axis kernel, stride, padding ``(lo, hi)`` and dilation, and its groups."""

    kernel: tuple
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int

    @classmethod
    def of(cls, kernel, stride, padding, dilation, groups) -> "Geometry":
        n = len(kernel)
        if any(k is None for k in kernel):
            raise ValueError("the kernel's spatial size must be known")
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"groups must be an int >= 1, not {groups!r}")
        kernel = positive(tuple(int(k) for k in kernel), "the kernel's size")
        stride = positive(ntuple(stride, n, "stride"), "stride")
        dilation = positive(ntuple(dilation, n, "dilation"), "dilation")
        return cls(kernel, stride, conv_pads(padding, kernel, stride, dilation), dilation, int(groups))

    @property
    def n(self) -> int:
        return len(self.kernel)

    def out(self, sizes) -> tuple:
        """Output sizes for input ``sizes`` (``None`` stays unknown)."""
        return tuple(out_size(s, k, st, p, d, name) for s, k, st, p, d, name in
                     zip(sizes, self.kernel, self.stride, self.pads, self.dilation, axis_names(self.n)))

    def transposed(self, sizes, output_padding: tuple) -> tuple:
        """Output sizes of the transposed convolution of inputs of ``sizes``."""
        out = []
        for s, k, st, (lo, hi), d, extra, name in zip(sizes, self.kernel, self.stride, self.pads, self.dilation,
                                                     output_padding, axis_names(self.n)):
            if s is None:
                out.append(None)
                continue
            size = (s - 1) * st - lo - hi + d * (k - 1) + extra + 1
            if size < 1:
                raise ValueError(f"the output's {name} would be {size} (input {s}, stride {st}, padding {lo}, "
                                 f"kernel {k}, dilation {d}, output_padding {extra})")
            out.append(size)
        return tuple(out)


def _channels(c, cg, groups) -> None:
    """The image's ``c`` channels must be the kernel's ``cg`` per group times ``groups``."""
    if cg is not None and not dims_agree(c, cg * groups):
        raise ValueError(f"the image has {c} channels but the kernel expects {cg} x groups={groups} = {cg * groups}")


def _divisible(o, groups, what="out_channels") -> None:
    if o is not None and o % groups:
        raise ValueError(f"{what} {o} is not divisible by groups={groups}")


def _ranks(n: int, who: str, **shapes) -> None:
    for what, shape in shapes.items():
        image_rank(shape, n, who, what)


def _known_equal(got: tuple, want: tuple, what: str) -> None:
    if not shapes_agree(got, want):
        raise ValueError(f"{what}: spatial sizes {tuple(got)} do not match the {tuple(want)} the geometry gives")


# ---------------------------------------------------------------- numpy --


def _per_group(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[i] @ b[i]`` for each group: 2-D matmuls reach BLAS even for transposed views, 3-D ones do not."""
    return np.stack([ai @ bi for ai, bi in zip(a, b)]) if len(a) != 1 else (a[0] @ b[0])[None]


def _cols(x: np.ndarray, geo: Geometry, out: Optional[tuple] = None):
    """The windows of the padded image as matrices ``(G, N*prod(out), C/G*prod(kernel))``, and ``out``."""
    view = windows(pad(x, geo.pads), geo.kernel, geo.stride, geo.dilation, out)     # (N, C, *out, *kernel)
    n, (batch, c), sizes = geo.n, view.shape[:2], view.shape[2:2 + geo.n]
    g = geo.groups
    view = view.reshape((batch, g, c // g) + sizes + geo.kernel)
    order = (1, 0) + tuple(range(3, 3 + n)) + (2,) + tuple(range(3 + n, 3 + 2 * n))
    return view.transpose(order).reshape(g, batch * math.prod(sizes), (c // g) * math.prod(geo.kernel)), sizes


def _grouped(g: np.ndarray, groups: int) -> np.ndarray:
    """An output-shaped ``(N, O, *out)`` array as matrices ``(G, N*prod(out), O/G)``."""
    n = g.ndim - 2
    batch, o, sizes = g.shape[0], g.shape[1], g.shape[2:]
    moved = g.reshape((batch, groups, o // groups) + sizes).transpose((1, 0) + tuple(range(3, 3 + n)) + (2,))
    return moved.reshape(groups, batch * math.prod(sizes), o // groups)


def convolve(x: np.ndarray, w: np.ndarray, geo: Geometry, out: Optional[tuple] = None) -> np.ndarray:
    """The convolution ``(N, O, *out)`` (only the first ``out`` windows, if given)."""
    n, o, g = geo.n, w.shape[0], geo.groups
    cols, sizes = _cols(x, geo, out)
    y = _per_group(cols, w.reshape(g, o // g, w.shape[1] * math.prod(geo.kernel)).transpose(0, 2, 1))  # (G, N*P, O/G)
    y = y.reshape((g, x.shape[0]) + sizes + (o // g,))
    return y.transpose((1, 0, 2 + n) + tuple(range(2, 2 + n))).reshape((x.shape[0], o) + sizes)


def input_grad(g: np.ndarray, w: np.ndarray, geo: Geometry, spatial: tuple) -> np.ndarray:
    """The adjoint of :func:`convolve` in the image: ``(N, C, *spatial)`` from ``g (N, O, *out)``."""
    n, groups, cg = geo.n, geo.groups, w.shape[1]
    sizes = g.shape[2:]
    cols = _per_group(_grouped(g, groups), w.reshape(groups, w.shape[0] // groups, cg * math.prod(geo.kernel)))
    cols = cols.reshape((groups, g.shape[0]) + sizes + (cg,) + geo.kernel)
    order = (1, 0, 2 + n) + tuple(range(2, 2 + n)) + tuple(range(3 + n, 3 + 2 * n))
    cols = cols.transpose(order).reshape((g.shape[0], groups * cg) + sizes + geo.kernel)
    padded = (g.shape[0], groups * cg) + tuple(s + lo + hi for s, (lo, hi) in zip(spatial, geo.pads))
    return fold(cols, padded, geo.pads, geo.stride, geo.dilation)


def weight_grad(x: np.ndarray, g: np.ndarray, geo: Geometry, w_shape: tuple) -> np.ndarray:
    """The adjoint of :func:`convolve` in the kernel: ``w_shape`` from ``x`` and ``g (N, O, *out)``."""
    cols, _ = _cols(x, geo, g.shape[2:])
    gw = _per_group(cols.transpose(0, 2, 1), _grouped(g, geo.groups))          # (G, C/G*prod(K), O/G)
    return gw.transpose(0, 2, 1).reshape(w_shape)


def _geometry(w_shape, stride, padding, dilation, groups) -> Geometry:
    key = (tuple(w_shape[2:]), stride, padding, dilation, groups)
    try:
        return _cached_geometry(*key)
    except TypeError:  # unhashable attributes (a list, from a direct call): no cache
        return Geometry.of(*key)


@functools.lru_cache(maxsize=256)
def _cached_geometry(kernel, stride, padding, dilation, groups) -> Geometry:
    return Geometry.of(kernel, stride, padding, dilation, groups)


# ---------------------------------------------------------------- rules --


def _conv_rule(n: int):
    who = f"conv{n}d"

    def rule(x, w, *, stride=1, padding=0, dilation=1, groups=1):
        _ranks(n, who, input=x, kernel=w)
        geo = _geometry(w, stride, padding, dilation, groups)
        _divisible(w[0], geo.groups)
        _channels(x[1], w[1], geo.groups)
        return (x[0], w[0]) + geo.out(x[2:])

    return rule


def _output_padding(output_padding, geo: Geometry) -> tuple:
    extra = ntuple(output_padding, geo.n, "output_padding")
    for e, s, d in zip(extra, geo.stride, geo.dilation):
        if not 0 <= e < max(s, d):
            raise ValueError(f"output_padding must be >= 0 and smaller than the stride or the dilation "
                             f"(as in PyTorch), not {output_padding!r} with stride {geo.stride} and dilation "
                             f"{geo.dilation}")
    return extra


def _transpose_geometry(w_shape, stride, padding, dilation, groups) -> Geometry:
    if isinstance(padding, str):
        raise ValueError(f"a transposed convolution takes an int or ints as padding, not {padding!r}")
    return _geometry(w_shape, stride, padding, dilation, groups)


def _transpose_rule(n: int):
    who = f"conv_transpose{n}d"

    def rule(x, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        _ranks(n, who, input=x, kernel=w)
        geo = _transpose_geometry(w, stride, padding, dilation, groups)
        extra = _output_padding(output_padding, geo)
        _divisible(w[0], geo.groups, "in_channels (the kernel's first size)")
        if not dims_agree(x[1], w[0]):
            raise ValueError(f"the image has {x[1]} channels but the kernel (in_channels, out_channels/groups, ...) "
                             f"expects {w[0]}")
        return (x[0], None if w[1] is None else w[1] * geo.groups) + geo.transposed(x[2:], extra)

    return rule


def _input_grad_rule(g, w, like, *, stride=1, padding=0, dilation=1, groups=1):
    n = spatial_rank(like, "conv_input_grad")
    _ranks(n, "conv_input_grad", gradient=g, kernel=w)
    geo = _geometry(w, stride, padding, dilation, groups)
    _divisible(w[0], geo.groups)
    if not dims_agree(g[1], w[0]):
        raise ValueError(f"the gradient has {g[1]} channels but the kernel has {w[0]} output channels")
    _channels(like[1], w[1], geo.groups)
    _known_equal(g[2:], geo.out(like[2:]), "the gradient does not fit the convolution of `like`")
    return tuple(like)


def _weight_grad_rule(x, g, like, *, stride=1, padding=0, dilation=1, groups=1):
    n = spatial_rank(like, "conv_weight_grad")
    _ranks(n, "conv_weight_grad", input=x, gradient=g)
    geo = _geometry(like, stride, padding, dilation, groups)
    _divisible(like[0], geo.groups)
    _channels(x[1], like[1], geo.groups)
    if not dims_agree(g[1], like[0]):
        raise ValueError(f"the gradient has {g[1]} channels but the kernel has {like[0]} output channels")
    _known_equal(g[2:], geo.out(x[2:]), "the gradient does not fit the convolution of the input")
    return tuple(like)


def _first_two_dtype(a, b, *rest, **attrs):
    return result_dtype(a, b)


# -------------------------------------------------------------- samples --


def _normal(rng, *shapes):
    return tuple(rng.standard_normal(s) for s in shapes)


# Spatial sizes of the samples by role, per number of spatial axes: small, so that finite differences of the
# second derivatives (one graph run per entry) stay fast; 3-d ones smallest of all.
_SIZES = {
    1: {"same": (3,), "plain": (7,), "strided": (8,), "grouped": (6,), "k3": (3,), "k2": (2,)},
    2: {"same": (3, 3), "plain": (5, 4), "strided": (6, 5), "grouped": (4, 4), "k3": (3, 3), "k2": (2, 2)},
    3: {"same": (2, 2, 2), "plain": (3, 3, 2), "strided": (4, 3, 3), "grouped": (3, 2, 2), "k3": (2, 2, 2),
        "k2": (2, 2, 1)},
}


def _conv_samples(n: int):
    """Cases for conv{n}d: every attribute, "same" with an even kernel, groups, size 1, a batch of 0."""
    sz, ones = _SIZES[n], (1,) * n

    def samples(rng):
        same = rng.standard_normal((2, 2) + sz["same"])
        cases = [
            Sample((same, same), {"padding": 1}, "the same array as image and kernel"),
            Sample(_normal(rng, (2, 3) + sz["plain"], (4, 3) + sz["k3"]), {}, "plain"),
            Sample(_normal(rng, (1, 2) + sz["strided"], (3, 2) + sz["k3"]), {"stride": 2, "padding": 1},
                   "stride 2, padding 1"),
            Sample(_normal(rng, (1, 2) + sz["strided"], (2, 2) + sz["k2"]), {"dilation": 2, "padding": "same"},
                   "padding 'same' with an even kernel and dilation 2"),
            Sample(_normal(rng, (2, 4) + sz["grouped"], (6, 2) + sz["k2"]), {"groups": 2, "padding": 1}, "groups 2"),
            Sample(_normal(rng, (1, 3) + sz["grouped"], (3, 1) + sz["k2"]), {"groups": 3, "padding": "valid"},
                   "depthwise, 'valid'"),
            Sample(_normal(rng, (3, 2) + ones, (4, 2) + ones), {}, "size-1 image and kernel"),
            Sample(_normal(rng, (0, 2) + sz["grouped"], (3, 2) + sz["k2"]), {"padding": 1}, "batch of 0"),
        ]
        if n > 1:
            uneven = (2,) + (1,) * (n - 1)
            cases.append(Sample(_normal(rng, (1, 1) + sz["strided"], (2, 1) + sz["k3"]), {"stride": uneven},
                                f"stride {uneven}"))
        return cases

    return samples


def _transpose_samples(n: int):
    sz, ones = _SIZES[n], (1,) * n

    def samples(rng):
        same = rng.standard_normal((2, 2) + sz["same"])
        return [
            Sample((same, same), {}, "the same array as image and kernel"),
            Sample(_normal(rng, (2, 3) + sz["same"], (3, 2) + sz["k3"]), {}, "plain"),
            Sample(_normal(rng, (1, 4) + sz["same"], (4, 1) + sz["k3"]),
                   {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2},
                   "stride 2, output_padding 1, groups 2"),
            Sample(_normal(rng, (1, 2) + sz["same"], (2, 1) + sz["k2"]), {"dilation": 2, "output_padding": 1},
                   "output_padding 1 from dilation 2 (stride 1)"),
            Sample(_normal(rng, (2, 2) + ones, (2, 3) + ones), {}, "size-1 image and kernel"),
            Sample(_normal(rng, (0, 2) + sz["same"], (2, 2) + sz["k2"]), {"stride": 2}, "batch of 0"),
        ]

    return samples


def _gradient_cases(rng, make):
    """Convolution geometries as (x, w, attrs, label), for the two gradient ops' samples."""
    cases = [
        ((2, 3, 5, 4), (4, 3, 3, 2), {}, "plain"),
        ((1, 2, 6, 5), (3, 2, 3, 3), {"stride": 2, "padding": 1}, "stride 2 leaves a row unread"),
        ((2, 4, 4, 4), (6, 2, 2, 2), {"groups": 2, "dilation": 2, "padding": "same"}, "groups 2, dilation 2, 'same'"),
        ((1, 2, 5), (2, 2, 2), {"stride": 2}, "1-d, stride 2"),
        ((1, 1, 3, 3, 2), (2, 1, 2, 2, 1), {"padding": 1}, "3-d"),
        ((0, 2, 3, 3), (3, 2, 2, 2), {}, "batch of 0"),
    ]
    out = []
    for xs, ws, attrs, label in cases:
        geo = _geometry(ws, attrs.get("stride", 1), attrs.get("padding", 0), attrs.get("dilation", 1),
                        attrs.get("groups", 1))
        gs = (xs[0], ws[0]) + geo.out(xs[2:])
        out.append(make(rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(gs), attrs, label))
    return out


def _input_grad_samples(rng):
    out = _gradient_cases(rng, lambda x, w, g, attrs, label: Sample((g, w, x), attrs, label))
    x = rng.standard_normal((2, 3, 3, 3))
    out.append(Sample((x, rng.standard_normal((3, 3, 1, 1)), x), {}, "the same array as gradient and like (1x1)"))
    return out


def _weight_grad_samples(rng):
    out = _gradient_cases(rng, lambda x, w, g, attrs, label: Sample((x, g, w), attrs, label))
    x = rng.standard_normal((2, 3, 3, 3))
    out.append(Sample((x, x, rng.standard_normal((3, 3, 1, 1))), {}, "the same array as input and gradient (1x1)"))
    return out


# ---------------------------------------------------------- convolutions --


def _crop_windows(g, extra: tuple):
    """``g`` without the last ``extra`` entries of each spatial axis (a Tensor; nothing to do for all zeros)."""
    if not any(extra):
        return g
    return g[(slice(None), slice(None)) + tuple(slice(None, -e if e else None) for e in extra)]


_CONV_DOC = """{n}-d convolution (cross-correlation) of an {layout} image with an (O, C/groups, {kernel}) kernel.

``stride`` and ``dilation`` are ints or one per spatial axis; ``padding`` is
zeros on both sides (an int or one per axis), ``"valid"`` (none) or
``"same"`` (the output keeps the input's size; stride 1; an even kernel pads
one more on the right, as PyTorch). ``groups`` splits the channels into
independent convolutions (``groups = C`` is depthwise). Add a bias of shape
``(O,{ones})`` with ``+``. As ``torch.nn.functional.conv{n}d``.
"""

_TRANSPOSE_DOC = """{n}-d transposed convolution of an {layout} image with a (C, O/groups, {kernel}) kernel.

The adjoint of ``conv{n}d`` in its image (sometimes called a deconvolution):
each input pixel adds the kernel, scaled, into the output. ``stride``,
``padding``, ``dilation`` and ``groups`` are those of the convolution it
transposes; ``output_padding`` (smaller than the stride or the dilation)
adds that many rows at the end of each axis, to choose between the input
sizes a strided convolution maps to the same size. As
``torch.nn.functional.conv_transpose{n}d``.
"""


def _doc_values(n: int) -> dict:
    kernel = {1: "K", 2: "KH, KW", 3: "KD, KH, KW"}[n]
    return {"n": n, "layout": SPATIAL_NAMES[n], "kernel": kernel, "ones": " 1" * n}


def _conv_attrs(stride, padding, dilation, groups) -> dict:
    return {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _make_conv(n: int):
    def forward(x, w, *, stride=1, padding=0, dilation=1, groups=1):
        return convolve(x, w, _geometry(w.shape, stride, padding, dilation, groups))

    forward.__name__ = forward.__qualname__ = f"conv{n}d"
    forward.__doc__ = _CONV_DOC.format(**_doc_values(n))
    conv = op(shape=_conv_rule(n), saves=("inputs",), samples=_conv_samples(n),
              counterparts={"torch": f"torch.nn.functional.conv{n}d"})(forward)

    @conv.vjp
    def _(g, x, w, *, stride, padding, dilation, groups, needs):
        geo = _geometry(w.shape, stride, padding, dilation, groups)
        return (input_grad(g, w, geo, x.shape[2:]) if needs[0] else None,
                weight_grad(x, g, geo, w.shape) if needs[1] else None)

    @conv.graph_vjp
    def _(g, x, w, *, stride, padding, dilation, groups, needs):
        attrs = _conv_attrs(stride, padding, dilation, groups)
        return (conv_input_grad(g, w, x, **attrs) if needs[0] else None,
                conv_weight_grad(x, g, w, **attrs) if needs[1] else None)

    return conv


def _make_transpose(n: int):
    def forward(x, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        geo = _transpose_geometry(w.shape, stride, padding, dilation, groups)
        return input_grad(x, w, geo, geo.transposed(x.shape[2:], _output_padding(output_padding, geo)))

    forward.__name__ = forward.__qualname__ = f"conv_transpose{n}d"
    forward.__doc__ = _TRANSPOSE_DOC.format(**_doc_values(n))
    transpose = op(shape=_transpose_rule(n), saves=("inputs",), samples=_transpose_samples(n),
                   counterparts={"torch": f"torch.nn.functional.conv_transpose{n}d"})(forward)

    @transpose.vjp
    def _(g, x, w, *, stride, padding, output_padding, dilation, groups, needs):
        geo = _transpose_geometry(w.shape, stride, padding, dilation, groups)
        return (convolve(g, w, geo, out=x.shape[2:]) if needs[0] else None,
                weight_grad(g, x, geo, w.shape) if needs[1] else None)

    @transpose.graph_vjp
    def _(g, x, w, *, stride, padding, output_padding, dilation, groups, needs):
        """A convolution of ``g`` (and the kernel gradient of one), after cutting off the rows of ``g``
        that ``output_padding`` added beyond a whole stride: a convolution of ``g`` would make windows of them."""
        geo = _transpose_geometry(_shape_of(w), stride, padding, dilation, groups)
        extra = _output_padding(output_padding, geo)
        g = _crop_windows(g, tuple((e // s) * s for e, s in zip(extra, geo.stride)))
        attrs = _conv_attrs(stride, padding, dilation, groups)
        return (CONVS[n](g, w, **attrs) if needs[0] else None,
                conv_weight_grad(g, x, w, **attrs) if needs[1] else None)

    return transpose


def _shape_of(t) -> tuple:
    """A Tensor's static shape (the kernel's is always known: the shape rules require it)."""
    return tuple(t.shape)


conv1d, conv2d, conv3d = (_make_conv(n) for n in DIMS)
CONVS = {1: conv1d, 2: conv2d, 3: conv3d}
conv_transpose1d, conv_transpose2d, conv_transpose3d = (_make_transpose(n) for n in DIMS)


# ----------------------------------------------- the gradients, as ops --


@op(shape=_input_grad_rule, dtype=_first_two_dtype, saves=("inputs",), samples=_input_grad_samples,
    counterparts={"torch": "torch.nn.grad.conv2d_input"})
def conv_input_grad(g, w, like, *, stride=1, padding=0, dilation=1, groups=1):
    """A convolution's gradient with respect to its image: ``g (N, O, *out)`` spread back through kernel ``w``.

    The result has ``like``'s shape (``like`` is the image; its values are not
    read). This is what ``conv1d``/``conv2d``/``conv3d``'s gradients are made
    of, and a transposed convolution whose output size is taken from ``like``
    (``torch.nn.grad.conv{1,2,3}d_input``).
    """
    geo = _geometry(w.shape, stride, padding, dilation, groups)
    _known_equal(g.shape[2:], geo.out(like.shape[2:]), "the gradient does not fit the convolution of `like`")
    return input_grad(g, w, geo, like.shape[2:])


@conv_input_grad.vjp
def _(h, g, w, like, *, stride, padding, dilation, groups, needs):
    geo = _geometry(w.shape, stride, padding, dilation, groups)
    return (convolve(h, w, geo) if needs[0] else None,
            weight_grad(h, g, geo, w.shape) if needs[1] else None,
            None)


@conv_input_grad.graph_vjp
def _(h, g, w, like, *, stride, padding, dilation, groups, needs):
    attrs = _conv_attrs(stride, padding, dilation, groups)
    n = len(_shape_of(w)) - 2
    return (CONVS[n](h, w, **attrs) if needs[0] else None,
            conv_weight_grad(h, g, w, **attrs) if needs[1] else None,
            None)


@op(shape=_weight_grad_rule, dtype=_first_two_dtype, saves=("inputs",), samples=_weight_grad_samples,
    counterparts={"torch": "torch.nn.grad.conv2d_weight"})
def conv_weight_grad(x, g, like, *, stride=1, padding=0, dilation=1, groups=1):
    """A convolution's gradient with respect to its kernel: image ``x`` against the output gradient ``g``.

    The result has ``like``'s shape (``like`` is the kernel; its values are
    not read). This is what ``conv1d``/``conv2d``/``conv3d``'s kernel
    gradients are made of (``torch.nn.grad.conv{1,2,3}d_weight``).
    """
    geo = _geometry(like.shape, stride, padding, dilation, groups)
    _known_equal(g.shape[2:], geo.out(x.shape[2:]), "the gradient does not fit the convolution of the input")
    return weight_grad(x, g, geo, like.shape)


@conv_weight_grad.vjp
def _(h, x, g, like, *, stride, padding, dilation, groups, needs):
    geo = _geometry(like.shape, stride, padding, dilation, groups)
    return (input_grad(g, h, geo, x.shape[2:]) if needs[0] else None,
            convolve(x, h, geo) if needs[1] else None,
            None)


@conv_weight_grad.graph_vjp
def _(h, x, g, like, *, stride, padding, dilation, groups, needs):
    attrs = _conv_attrs(stride, padding, dilation, groups)
    n = len(_shape_of(like)) - 2
    return (conv_input_grad(g, h, x, **attrs) if needs[0] else None,
            CONVS[n](x, h, **attrs) if needs[1] else None,
            None)
