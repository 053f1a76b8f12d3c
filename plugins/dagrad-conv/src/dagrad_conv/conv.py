"""``conv2d``: 2-D cross-correlation over NCHW images with stride, padding, dilation and groups.

The forward is one ``einsum`` over a strided window view (im2col without the
copy); the VJP is two more: the weight gradient contracts the output gradient
with the same windows, the input gradient spreads it back through the weights
and folds the windows into an image.
"""

from __future__ import annotations

import numpy as np

import dagrad as dg

from .windows import fold, out_size, pad, pair, windows


def _conv_rule(x, w, *, stride=1, padding=0, dilation=1, groups=1):
    if len(x) != 4 or len(w) != 4:
        raise ValueError(
            f"conv2d takes an NCHW image and an (out_channels, in_channels/groups, KH, KW) kernel, "
            f"got ranks {len(x)} and {len(w)}"
        )
    if groups < 1:
        raise ValueError(f"groups must be >= 1, not {groups}")
    n, c, h, wd = x
    o, cg, kh, kw = w
    if o is not None and o % groups:
        raise ValueError(f"out_channels {o} is not divisible by groups={groups}")
    if c is not None and cg is not None and c != cg * groups:
        raise ValueError(
            f"the image has {c} channels but the kernel expects {cg} x groups={groups} = {cg * groups}"
        )
    if kh is None or kw is None:
        raise ValueError("the kernel's spatial size must be known")
    (sh, sw), (ph, pw), (dh, dw) = pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")
    return (n, o, out_size(h, kh, sh, ph, dh, "height"), out_size(wd, kw, sw, pw, dw, "width"))


def _grouped(cols: np.ndarray, groups: int) -> np.ndarray:
    n, c, oh, ow, kh, kw = cols.shape
    return cols.reshape(n, groups, c // groups, oh, ow, kh, kw)


def _samples(rng):
    def case(xs, ws, label, **attrs):
        return dg.Sample((rng.standard_normal(xs), rng.standard_normal(ws)), attrs, label)

    return [
        case((2, 3, 5, 5), (4, 3, 3, 3), "3x3 kernel"),
        case((1, 2, 6, 5), (3, 2, 3, 3), "stride 2, padding 1", stride=2, padding=1),
        case((1, 2, 7, 7), (2, 2, 3, 3), "dilation 2, padding (1, 2)", dilation=2, padding=(1, 2)),
        case((2, 4, 4, 4), (6, 2, 3, 3), "groups 2, padding 1", groups=2, padding=1),
        case((1, 3, 4, 4), (3, 1, 2, 2), "depthwise (groups = channels)", groups=3),
        case((1, 1, 6, 7), (2, 1, 2, 3), "stride (2, 1), non-square kernel", stride=(2, 1)),
        case((3, 2, 1, 1), (4, 2, 1, 1), "size-1 image and kernel"),
        case((1, 2, 3, 3), (1, 2, 1, 1), "1x1 convolution to one channel"),
        case((0, 2, 4, 4), (3, 2, 3, 3), "batch of 0", padding=1),
    ]


@dg.op(shape=_conv_rule, saves=("inputs",), samples=_samples)
def conv2d(x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) of an NCHW image with an (O, C/groups, KH, KW) kernel.

    ``stride``, ``padding`` (zeros, on both sides) and ``dilation`` are ints or
    ``(height, width)`` pairs; ``groups`` splits the channels into independent
    convolutions (``groups = C`` is a depthwise convolution). Add a bias of
    shape ``(O, 1, 1)`` with ``+``.
    """
    (sh, sw), (ph, pw), (dh, dw) = pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")
    o, cg, kh, kw = w.shape
    cols = _grouped(windows(pad(x, (ph, pw)), (kh, kw), (sh, sw), (dh, dw)), groups)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    out = np.einsum("ngchwij,gocij->ngohw", cols, wg, optimize=True)
    n, _, _, oh, ow = out.shape
    return out.reshape(n, o, oh, ow)


@conv2d.vjp
def _(g, x, w, out, stride=1, padding=0, dilation=1, groups=1):
    (sh, sw), (ph, pw), (dh, dw) = pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")
    o, cg, kh, kw = w.shape
    n, _, oh, ow = g.shape
    xp = pad(x, (ph, pw))
    cols = _grouped(windows(xp, (kh, kw), (sh, sw), (dh, dw)), groups)
    gg = g.reshape(n, groups, o // groups, oh, ow)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    gw = np.einsum("ngohw,ngchwij->gocij", gg, cols, optimize=True).reshape(w.shape)
    gcols = np.einsum("ngohw,gocij->ngchwij", gg, wg, optimize=True)
    gx = fold(gcols.reshape(n, groups * cg, oh, ow, kh, kw), xp.shape, (ph, pw), (sh, sw), (dh, dw))
    return gx, gw
