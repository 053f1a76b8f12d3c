"""``conv2d``: 2-D cross-correlation over NCHW images with stride, padding, dilation and groups.

The forward is im2col: a strided window view of the padded image, laid out as
one matrix per group, times the kernel as a matrix (a batched BLAS matmul).
The VJP is two more matmuls: the weight gradient contracts the output gradient
with the same windows, the input gradient spreads it back through the weights
and folds the windows into an image.
"""

from __future__ import annotations

import numpy as np

from dagrad.extend import Sample, op

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


def _im2col(x: np.ndarray, kernel, stride, padding, dilation, groups: int):
    """The padded image and its windows as matrices ``(G, N*OH*OW, C/G*KH*KW)``, one per group."""
    xp = pad(x, padding)
    cols = windows(xp, kernel, stride, dilation)                       # (N, C, OH, OW, KH, KW) view
    n, c, oh, ow, kh, kw = cols.shape
    cols = cols.reshape(n, groups, c // groups, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    return xp, cols.reshape(groups, n * oh * ow, (c // groups) * kh * kw), (n, oh, ow)


def _per_group(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[i] @ b[i]`` for each group: 2-D matmuls reach BLAS even for transposed views, 3-D ones do not."""
    return np.stack([ai @ bi for ai, bi in zip(a, b)]) if len(a) != 1 else (a[0] @ b[0])[None]


def _geometry(stride, padding, dilation):
    return pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")


def _samples(rng):
    def case(xs, ws, label, **attrs):
        return Sample((rng.standard_normal(xs), rng.standard_normal(ws)), attrs, label)

    same = rng.standard_normal((2, 2, 3, 3))
    return [
        Sample((same, same), {"padding": 1}, "the same array as image and kernel"),
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


@op(shape=_conv_rule, saves=("inputs",), samples=_samples)
def conv2d(x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) of an NCHW image with an (O, C/groups, KH, KW) kernel.

    ``stride``, ``padding`` (zeros, on both sides) and ``dilation`` are ints or
    ``(height, width)`` pairs; ``groups`` splits the channels into independent
    convolutions (``groups = C`` is a depthwise convolution). Add a bias of
    shape ``(O, 1, 1)`` with ``+``.
    """
    s, p, d = _geometry(stride, padding, dilation)
    o, cg, kh, kw = w.shape
    _, cols, (n, oh, ow) = _im2col(x, (kh, kw), s, p, d, groups)
    wm = w.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1)       # (G, K, O/G)
    out = _per_group(cols, wm)                                                  # (G, N*OH*OW, O/G)
    return out.reshape(groups, n, oh, ow, o // groups).transpose(1, 0, 4, 2, 3).reshape(n, o, oh, ow)


@conv2d.vjp
def _(g, x, w, *, stride, padding, dilation, groups):
    s, p, d = _geometry(stride, padding, dilation)
    o, cg, kh, kw = w.shape
    xp, cols, (n, oh, ow) = _im2col(x, (kh, kw), s, p, d, groups)
    gm = g.reshape(n, groups, o // groups, oh, ow).transpose(1, 0, 3, 4, 2).reshape(groups, n * oh * ow, o // groups)
    gw = _per_group(cols.transpose(0, 2, 1), gm)                               # (G, K, O/G)
    gw = gw.transpose(0, 2, 1).reshape(w.shape)
    gcols = _per_group(gm, w.reshape(groups, o // groups, cg * kh * kw))       # (G, N*OH*OW, K)
    gcols = gcols.reshape(groups, n, oh, ow, cg, kh, kw).transpose(1, 0, 4, 2, 3, 5, 6)
    gx = fold(gcols.reshape(n, groups * cg, oh, ow, kh, kw), xp.shape, p, s, d)
    return gx, gw
