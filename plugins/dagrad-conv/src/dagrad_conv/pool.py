"""Pooling in 1, 2 and 3 spatial dimensions: max and average, over regular or adaptive windows.

* ``max_pool{1,2,3}d`` and ``avg_pool{1,2,3}d``: windows of ``kernel_size``
  taps every ``stride``, ``dilation`` apart, over the input padded by
  ``padding``, with ``ceil_mode``; the average counts the padding or not
  (``count_include_pad``) or divides by ``divisor_override``. As PyTorch's
  ``torch.nn.functional`` functions of the same names.
* ``adaptive_max_pool{1,2,3}d`` and ``adaptive_avg_pool{1,2,3}d``: windows
  that cover the input in ``output_size`` nearly equal pieces.
* ``max_pool_scatter``, ``max_pool_gather`` and ``avg_pool_scatter``: the
  ops the gradients are made of. A max pool's gradient puts each window's
  gradient on its largest entry (``max_pool_scatter``), whose own gradient
  picks the entries back (``max_pool_gather``); an average pool's gradient
  spreads each window's share back (``avg_pool_scatter``), whose gradient is
  the average pool again. So derivatives of every order stay in these ops.

Which entry wins a window is piecewise constant in the input: the gradient
ops take the input only to find the winners, and give it no gradient (its
derivative is zero wherever it exists). A tie goes to the first of the
window's largest entries, in row-major order, as in PyTorch; padding never wins.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from dagrad.extend import Sample, first_dtype, float_dtype, op, shapes_agree, vector_on_axis

from .renamed import renamed
from .windows import (DIMS, SPATIAL_NAMES, adaptive_taps, axis_names, gather_windows, image_rank, lowest, ntuple,
                      out_size, positive, regular_taps, scatter_to, spatial_rank, spread_taps, sum_taps)


# -------------------------------------------------------------- windows --


@dataclass(frozen=True)
class Windows:
    """The windows of a pooling op: regular (``kernel`` ...) or adaptive (``output_size``)."""

    n: int
    kernel: Optional[tuple] = None
    stride: Optional[tuple] = None
    padding: Optional[tuple] = None
    dilation: Optional[tuple] = None
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: Optional[int] = None
    output_size: Optional[tuple] = None

    @classmethod
    def regular(cls, n, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False,
                count_include_pad=True, divisor_override=None) -> "Windows":
        kernel = positive(ntuple(kernel_size, n, "kernel_size"), "kernel_size")
        stride = kernel if stride is None else positive(ntuple(stride, n, "stride"), "stride")
        padding = ntuple(padding, n, "padding")
        for p, k in zip(padding, kernel):
            if not 0 <= p <= k // 2:
                raise ValueError(f"padding must be >= 0 and at most half the kernel (as in PyTorch), "
                                 f"not padding={padding} with kernel_size={kernel}")
        if divisor_override is not None and (not isinstance(divisor_override, int) or isinstance(divisor_override, bool)
                                             or divisor_override < 1):
            raise ValueError(f"divisor_override must be None or an int >= 1, not {divisor_override!r}")
        return cls(n, kernel, stride, padding, positive(ntuple(dilation, n, "dilation"), "dilation"),
                   bool(ceil_mode), bool(count_include_pad), divisor_override)

    @classmethod
    def adaptive(cls, n, output_size) -> "Windows":
        sizes = (output_size,) * n if output_size is None or isinstance(output_size, (int, np.integer)) else output_size
        if (not isinstance(sizes, (list, tuple)) or len(sizes) != n
                or not all(s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0)
                           for s in sizes)):
            raise ValueError(f"output_size must be an int or {n} ints >= 0 (None keeps an axis's size), "
                             f"not {output_size!r}")
        if all(s is None for s in sizes) and output_size is None:
            raise ValueError("output_size is required")
        return cls(n, output_size=tuple(None if s is None else int(s) for s in sizes))

    @classmethod
    def of(cls, n, *, output_size=None, **regular) -> "Windows":
        """The windows the gradient ops' attributes describe: adaptive when ``output_size`` is given."""
        return cls.adaptive(n, output_size) if output_size is not None else cls.regular(n, **regular)

    def attrs(self) -> dict:
        """The attributes of the gradient ops for these windows."""
        if self.output_size is not None:
            return {"output_size": self.output_size}
        return {"kernel_size": self.kernel, "stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "ceil_mode": self.ceil_mode, "count_include_pad": self.count_include_pad,
                "divisor_override": self.divisor_override}

    def out(self, sizes: tuple) -> tuple:
        """Output sizes for input ``sizes``; ``None`` stays unknown."""
        if any(s == 0 for s in sizes):
            raise ValueError(f"pooling needs non-empty spatial axes, got sizes {tuple(sizes)}")
        if self.output_size is not None:
            return tuple(s if o is None else o for s, o in zip(sizes, self.output_size))
        return tuple(out_size(s, k, st, (p, p), d, name, self.ceil_mode) for s, k, st, p, d, name in
                     zip(sizes, self.kernel, self.stride, self.padding, self.dilation, axis_names(self.n)))

    def taps(self, sizes: tuple) -> list:
        """The tap table of each spatial axis for input ``sizes`` (cached: a training loop asks for the same)."""
        return _taps(self, tuple(sizes))

    def _taps(self, sizes: tuple) -> list:
        self.out(sizes)  # the same refusals as the shape rule
        if self.output_size is not None:
            return [adaptive_taps(s, s if o is None else o) for s, o in zip(sizes, self.output_size)]
        return [regular_taps(s, k, st, p, d, self.ceil_mode, self.count_include_pad, name) for s, k, st, p, d, name in
                zip(sizes, self.kernel, self.stride, self.padding, self.dilation, axis_names(self.n))]

    def divisor(self, taps: list):
        """What each window's sum is divided by, shaped ``out`` (or a number)."""
        if self.divisor_override is not None:
            return self.divisor_override
        count = np.ones((), np.int64)
        for a, t in enumerate(taps):
            count = count * vector_on_axis(t.counted, a, self.n)
        return count


@functools.lru_cache(maxsize=256)
def _taps(win: Windows, sizes: tuple) -> list:
    return win._taps(sizes)


def _renamed(kernel_size, kernel, warn: bool = False):
    """The kernel size; ``kernel`` is its name before dagrad-conv 0.2 (the 2-d ops only)."""
    return renamed(kernel_size, kernel, default=2, name="kernel_size", old_name="kernel", who="the pooling ops",
                   warn=warn)


def _regular(n: int, attrs: dict, warn: bool = False) -> Windows:
    """Windows from a regular pooling op's attributes, reading the deprecated ``kernel`` of the 2-d ops."""
    attrs = dict(attrs)
    attrs["kernel_size"] = _renamed(attrs.get("kernel_size", 2), attrs.pop("kernel", None), warn)
    return Windows.regular(n, **attrs)


# ---------------------------------------------------------------- numpy --


def max_windows(x: np.ndarray, win: Windows):
    """The maximum of each window, and where it is (a flat index into the spatial axes)."""
    taps = win.taps(x.shape[2:])
    picked, flat = gather_windows(x, taps, lowest(x.dtype))
    out_shape = picked.shape[:-1]
    if picked.shape[-1] == 0 or picked.size == 0:
        return np.zeros(out_shape, x.dtype), np.zeros(out_shape, np.int64)
    arg = picked.argmax(axis=-1)[..., None]
    winner = np.take_along_axis(np.broadcast_to(flat, picked.shape), arg, axis=-1)[..., 0]
    return np.take_along_axis(picked, arg, axis=-1)[..., 0], winner


def gather_at(h: np.ndarray, winner: np.ndarray) -> np.ndarray:
    """``h`` at each window's winner: ``(N, C, *out)``."""
    n_c = h.shape[:2]
    flat = h.reshape(n_c + (math.prod(h.shape[2:]),))
    picked = np.take_along_axis(flat, winner.reshape(n_c + (math.prod(winner.shape[2:]),)), axis=-1)
    return picked.reshape(winner.shape)


def average(x: np.ndarray, win: Windows) -> np.ndarray:
    """The mean of each window (separable: one axis at a time)."""
    taps = win.taps(x.shape[2:])
    total = x
    for a, t in enumerate(taps):
        total = sum_taps(total, t, 2 + a)
    return (total / np.asarray(win.divisor(taps), total.dtype)).astype(total.dtype, copy=False)


def spread_average(g: np.ndarray, shape: tuple, win: Windows) -> np.ndarray:
    """The adjoint of :func:`average`: each window's gradient, divided, back on its entries (``shape``)."""
    taps = win.taps(shape[2:])
    share = (g / np.asarray(win.divisor(taps), g.dtype)).astype(g.dtype, copy=False)
    for a in reversed(range(len(taps))):
        share = spread_taps(share, taps[a], 2 + a)
    return share


# ---------------------------------------------------------------- rules --


def _pool_shape(x, win: Windows, who: str) -> tuple:
    image_rank(x, win.n, who)
    return tuple(x[:2]) + win.out(x[2:])


def _like_rule(check_out: bool):
    """Shape rule of a gradient op ``(values, x)``: ``x``'s shape, values shaped like the pooled ``x``."""
    def rule(values, x, **attrs):
        n = spatial_rank(x, "a pooling gradient op")
        win = Windows.of(n, **attrs)
        image_rank(values, n, "a pooling gradient op", "gradient")
        pooled = tuple(x[:2]) + win.out(x[2:])
        want = pooled if check_out else tuple(x)
        if not shapes_agree(values, want):
            raise ValueError(f"the gradient's shape {tuple(values)} is not the {'pooled ' * check_out}input's {want}")
        return tuple(x) if check_out else pooled

    return rule


# -------------------------------------------------------------- samples --


def _distinct(rng, shape):
    """Values at least 0.05 apart, so no tie between window entries sits inside a finite-difference step."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.05 - size * 0.025).reshape(shape)


def _spatial(n, *sizes):
    """The first ``n`` of ``sizes``, smaller for 3-d samples (finite differences cost one graph run per entry)."""
    return tuple(sizes[:n]) if n < 3 else tuple(max(1, s - 2) if s > 2 else s for s in sizes[:n])


def _regular_cases(n: int, average_pool: bool) -> list:
    s = lambda *sizes: _spatial(n, *sizes)  # noqa: E731
    cases = [
        ((2, 3) + s(4, 4, 4), {}, "2-wide windows"),
        ((1, 2) + s(5, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1}, "kernel 3, stride 2, padding 1"),
        ((1, 2) + s(7, 6, 5), {"kernel_size": 2, "stride": 1, "dilation": 2, "ceil_mode": True},
         "dilation 2, ceil_mode"),
        ((1, 1) + s(6, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
         "ceil_mode: the last window runs past the padding"),
        ((2, 1) + s(1, 1, 1), {"kernel_size": 1}, "size-1 image"),
        ((0, 2) + s(4, 4, 4), {}, "batch of 0"),
    ]
    if n > 1:
        cases.append(((1, 1) + s(5, 6, 4), {"kernel_size": s(3, 2, 2), "stride": 1}, "uneven overlapping windows"))
    if average_pool:
        cases += [
            ((1, 2) + s(5, 4, 5), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False,
                                   "ceil_mode": True}, "padding not counted, ceil_mode"),
            ((1, 1) + s(4, 4, 4), {"kernel_size": 2, "divisor_override": 3}, "divisor_override"),
        ]
    return cases


def _adaptive_cases(n: int) -> list:
    s = lambda *sizes: _spatial(n, *sizes)  # noqa: E731
    cases = [
        ((2, 3) + s(7, 5, 5), {"output_size": s(3, 2, 4)}, "overlapping uneven windows"),
        ((1, 2) + s(3, 2, 2), {"output_size": 5}, "more outputs than inputs"),
        ((2, 1) + s(1, 1, 1), {"output_size": 1}, "size-1 image"),
        ((1, 2) + s(4, 4, 4), {"output_size": 1}, "global pooling"),
        ((0, 2) + s(4, 4, 4), {"output_size": 2}, "batch of 0"),
    ]
    if n > 1:
        cases.append(((1, 2) + s(5, 3, 2), {"output_size": (None,) + (2,) * (n - 1)}, "None keeps an axis's size"))
    return cases


def _pool_samples(cases):
    def samples(rng):
        return [Sample((_distinct(rng, shape),), attrs, label) for shape, attrs, label in cases]

    return samples


def _gradient_cases() -> list:
    """(x shape, windows attributes, label) across dimensions and kinds, for the gradient ops."""
    return [
        ((2, 2, 4, 4), {"kernel_size": 2}, "2x2 windows"),
        ((1, 2, 5, 4), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, "padding, ceil_mode"),
        ((1, 2, 7), {"kernel_size": 2, "stride": 1, "dilation": 3}, "1-d, dilation 3"),
        ((1, 1, 3, 4, 3), {"kernel_size": 2, "stride": 1}, "3-d, overlapping"),
        ((1, 2, 5, 3), {"output_size": (2, 4)}, "adaptive"),
        ((0, 2, 4, 4), {"kernel_size": 2}, "batch of 0"),
    ]


def _full_attrs(n: int, attrs: dict) -> dict:
    return Windows.of(n, **attrs).attrs()


def _scatter_samples(rng):
    out = []
    for shape, attrs, label in _gradient_cases():
        win = Windows.of(len(shape) - 2, **attrs)
        pooled = shape[:2] + win.out(shape[2:])
        out.append(Sample((rng.standard_normal(pooled), _distinct(rng, shape)), win.attrs(), label))
    x = _distinct(rng, (2, 3, 3, 3))
    out.append(Sample((x, x), _full_attrs(2, {"kernel_size": 1}), "the same array as gradient and input (1x1)"))
    return out


def _gather_samples(rng):
    out = [Sample((rng.standard_normal(shape), _distinct(rng, shape)), _full_attrs(len(shape) - 2, attrs), label)
           for shape, attrs, label in _gradient_cases()]
    x = _distinct(rng, (2, 3, 4, 4))
    out.append(Sample((x, x), _full_attrs(2, {"kernel_size": 2}), "the same array twice: a max pool"))
    return out


def _spread_samples(rng):
    cases = _gradient_cases() + [
        ((1, 2, 5, 4), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
         "padding not counted"),
        ((1, 1, 4, 4), {"kernel_size": 2, "divisor_override": 3}, "divisor_override"),
    ]
    out = []
    for shape, attrs, label in cases:
        win = Windows.of(len(shape) - 2, **attrs)
        pooled = shape[:2] + win.out(shape[2:])
        out.append(Sample((rng.standard_normal(pooled), rng.standard_normal(shape)), win.attrs(), label))
    x = rng.standard_normal((2, 3, 3, 3))
    out.append(Sample((x, x), _full_attrs(2, {"kernel_size": 1}), "the same array as gradient and like (1x1)"))
    return out


# ----------------------------------------------------------- pooling ops --

_MAX_DOC = """Maximum over each window of an {layout} image (PyTorch's ``max_pool{n}d``).

Windows of ``kernel_size`` taps (an int or one per spatial axis), ``dilation``
apart, every ``stride`` (defaults to ``kernel_size``), over the image padded by
``padding`` on both sides (at most half the kernel; padding never wins).
``ceil_mode`` keeps a last, partial window. The gradient goes to the first
largest entry of each window.{alias}
"""

_AVG_DOC = """Mean over each window of an {layout} image (PyTorch's ``avg_pool{n}d``).

Windows as for ``max_pool{n}d``. The padding is zeros that count in the mean
(``count_include_pad=True``) or not; taps past the padded end (``ceil_mode``)
never count; ``divisor_override`` divides every window's sum by that number
instead. ``dilation`` spreads the taps (PyTorch's average pools have none).{alias}
"""

_ADAPTIVE_DOC = """{what} over {layout} windows that cut the image into ``output_size`` nearly equal pieces.

Output ``o`` of an axis of length ``L`` covers ``[floor(o * L / out),
ceil((o + 1) * L / out))``, as PyTorch's ``adaptive_{kind}_pool{n}d``:
windows may overlap, and ``output_size`` may exceed the input. An int applies
to every spatial axis; ``None`` for an axis keeps its size.{tie}
"""

_ALIAS = "\n\n``kernel=`` is the deprecated name of ``kernel_size=``."


def _make_max_pool(n: int):
    if n == 2:  # only the 2-d ops existed before 0.2, when kernel_size was called kernel
        def forward(x, *, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False, kernel=None):
            return max_windows(x, Windows.regular(n, _renamed(kernel_size, kernel), stride, padding, dilation,
                                                  ceil_mode))
    else:
        def forward(x, *, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False):
            return max_windows(x, Windows.regular(n, kernel_size, stride, padding, dilation, ceil_mode))

    return _pooling(forward, n, f"max_pool{n}d", _MAX_DOC, _regular_cases(n, False), maximum=True)


def _make_avg_pool(n: int):
    if n == 2:
        def forward(x, *, kernel_size=2, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                    divisor_override=None, dilation=1, kernel=None):
            return average(x, Windows.regular(n, _renamed(kernel_size, kernel), stride, padding, dilation, ceil_mode,
                                              count_include_pad, divisor_override))
    else:
        def forward(x, *, kernel_size=2, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                    divisor_override=None, dilation=1):
            return average(x, Windows.regular(n, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
                                              divisor_override))

    return _pooling(forward, n, f"avg_pool{n}d", _AVG_DOC, _regular_cases(n, True), maximum=False)


def _make_adaptive(kind: str, n: int):
    def forward(x, *, output_size=None):
        win = Windows.adaptive(n, output_size)
        return max_windows(x, win) if kind == "max" else average(x, win)

    return _pooling(forward, n, f"adaptive_{kind}_pool{n}d", _ADAPTIVE_DOC, _adaptive_cases(n), maximum=kind == "max",
                    kind=kind)


def _pooling(forward, n: int, name: str, doc: str, cases: list, maximum: bool, kind: Optional[str] = None):
    """Make the op ``name`` of ``forward``: its docs, shape rule, samples, VJP and graph VJP."""
    adaptive = kind is not None
    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = doc.format(n=n, layout=SPATIAL_NAMES[n], kind=kind,
                                 what="Maximum" if maximum else "Mean",
                                 tie=" The gradient goes to the first largest entry of each window." if maximum else "",
                                 alias=_ALIAS if n == 2 and not adaptive else "")

    def windows_of(attrs: dict, warn: bool = False) -> Windows:
        return Windows.adaptive(n, attrs["output_size"]) if adaptive else _regular(n, attrs, warn)

    def rule(x, **attrs):
        return _pool_shape(x, windows_of(attrs, warn=True), name)

    if maximum:
        pool = op(shape=rule, dtype=first_dtype, saves=(), residuals=True, samples=_pool_samples(cases),
                  name=name, counterparts={"torch": f"torch.nn.functional.{name}"})(forward)

        @pool.vjp
        def _(g, x, res, **attrs):
            return (scatter_to(g, res, x.shape),)

        @pool.graph_vjp
        def _(g, x, **attrs):
            return (max_pool_scatter(g, x, **windows_of(_attrs_only(attrs)).attrs()),)
    else:
        pool = op(shape=rule, dtype=float_dtype, float_inputs=True, saves=(), samples=_pool_samples(cases),
                  name=name, counterparts={"torch": f"torch.nn.functional.{name}"})(forward)

        @pool.vjp
        def _(g, x, **attrs):
            return (spread_average(g, x.shape, windows_of(_attrs_only(attrs))),)

        @pool.graph_vjp
        def _(g, x, **attrs):
            return (avg_pool_scatter(g, x, **windows_of(_attrs_only(attrs)).attrs()),)
    return pool


def _attrs_only(kwargs: dict) -> dict:
    """The op's attributes among a rule's keywords (a rule taking ``**attrs`` also gets out, res and needs)."""
    return {k: v for k, v in kwargs.items() if k not in ("out", "res", "needs")}


max_pool1d, max_pool2d, max_pool3d = (_make_max_pool(n) for n in DIMS)
avg_pool1d, avg_pool2d, avg_pool3d = (_make_avg_pool(n) for n in DIMS)
adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d = (_make_adaptive("max", n) for n in DIMS)
adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d = (_make_adaptive("avg", n) for n in DIMS)
AVERAGES = {1: avg_pool1d, 2: avg_pool2d, 3: avg_pool3d}
ADAPTIVE_AVERAGES = {1: adaptive_avg_pool1d, 2: adaptive_avg_pool2d, 3: adaptive_avg_pool3d}


# ----------------------------------------------- the gradients, as ops --


def _windows(x_shape, attrs: dict) -> Windows:
    return Windows.of(spatial_rank(x_shape, "a pooling gradient op"), **attrs)


@op(shape=_like_rule(check_out=True), dtype=first_dtype, saves=("inputs",), samples=_scatter_samples)
def max_pool_scatter(g, x, *, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False,
                     count_include_pad=True, divisor_override=None, output_size=None):
    """Each window's ``g`` put on the window's largest entry of ``x``: a max pool's input gradient (``x``'s shape).

    The windows are a max pool's (``kernel_size`` ...), or an adaptive max
    pool's when ``output_size`` is given (``count_include_pad`` and
    ``divisor_override`` are not used). ``x`` only decides the winners, so it
    gets no gradient: the result is piecewise constant in it.
    """
    _, winner = max_windows(x, _windows(x.shape, _given(locals())))
    return scatter_to(g, winner, x.shape)


@max_pool_scatter.vjp
def _(h, g, x, *, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override,
      output_size):
    attrs = _given(locals())
    return gather_at(h, max_windows(x, _windows(x.shape, attrs))[1]), None


@max_pool_scatter.graph_vjp
def _(h, g, x, *, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override,
      output_size):
    """The winners are piecewise constant in ``x``: no gradient for it, to any order."""
    return max_pool_gather(h, x, **_given(locals())), None


@op(shape=_like_rule(check_out=False), dtype=first_dtype, saves=("inputs",), samples=_gather_samples)
def max_pool_gather(h, x, *, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False,
                    count_include_pad=True, divisor_override=None, output_size=None):
    """``h`` (shaped like ``x``) at each window's largest entry of ``x``: the transpose of ``max_pool_scatter``.

    ``max_pool_gather(x, x)`` is the max pool of ``x``. ``x`` only decides the
    winners and gets no gradient.
    """
    return gather_at(h, max_windows(x, _windows(x.shape, _given(locals())))[1])


@max_pool_gather.vjp
def _(g, h, x, *, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override,
      output_size):
    return scatter_to(g, max_windows(x, _windows(x.shape, _given(locals())))[1], x.shape), None


@max_pool_gather.graph_vjp
def _(g, h, x, *, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override,
      output_size):
    """The winners are piecewise constant in ``x``: no gradient for it, to any order."""
    return max_pool_scatter(g, x, **_given(locals())), None


@op(shape=_like_rule(check_out=True), dtype=first_dtype, saves=(), samples=_spread_samples)
def avg_pool_scatter(g, like, *, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False,
                     count_include_pad=True, divisor_override=None, output_size=None):
    """Each window's ``g``, divided as the mean divides, spread over its entries: an average pool's input gradient.

    The result has ``like``'s shape (``like``'s values are not read). The
    windows are an average pool's, or an adaptive one's when ``output_size`` is
    given.
    """
    return spread_average(g, like.shape, _windows(like.shape, _given(locals())))


@avg_pool_scatter.vjp
def _(h, g, like, *, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override,
      output_size):
    return average(h, _windows(like.shape, _given(locals()))), None


@avg_pool_scatter.graph_vjp
def _(h, g, like, *, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override,
      output_size):
    attrs = _given(locals())
    n = len(tuple(like.shape)) - 2
    if output_size is not None:
        return ADAPTIVE_AVERAGES[n](h, output_size=output_size), None
    return AVERAGES[n](h, **{k: v for k, v in attrs.items() if k != "output_size"}), None


_ATTRS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "count_include_pad", "divisor_override",
          "output_size")


def _given(scope: dict) -> dict:
    """The window attributes among a function's locals."""
    return {k: scope[k] for k in _ATTRS}
