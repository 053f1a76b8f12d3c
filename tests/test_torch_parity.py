"""Every op with a PyTorch counterpart computes PyTorch's values and gradients on the op's own samples.

For each op whose ``counterparts`` name a ``torch`` function, and each of its
samples, the op runs in a float64 graph (the same array passed twice is one
node, as ``x * x``) and its value and the gradients of ``sum(out * cotangent)``
are compared with the counterpart's under ``torch.autograd`` (values only for
an op without a gradient or with an integer or bool output). ``ADAPTERS``
says how to call each counterpart where its argument conventions differ from
the op's; ``test_every_op_with_a_torch_counterpart_has_an_adapter`` fails for
an op that names a torch counterpart and has no entry, so the table cannot go
stale. This is the one place where an op's values and first derivatives meet
PyTorch's; the per-area ``*_torch.py`` files keep what it cannot check (second
derivatives, running statistics over steps, hand-made cases).

Runs only where torch is importable (``pip install torch``); it is never a
dependency of dagrad.

**Adding an op**: give it ``counterparts={"torch": "torch.xxx", ...}`` and add
one line to ``ADAPTERS`` in its family: ``SAME`` if ``torch.xxx(*inputs)`` is
the op, ``kw("alpha", dim="axis")`` if it takes some attributes by keyword
(renamed as ``torch_name="dagrad_name"``), else a function
``(fn, inputs, attrs) -> tensor`` where ``fn`` is the counterpart, ``inputs``
are torch tensors in the op's input order and ``attrs`` its bound attributes.
Wrap it in ``Adapter(call, skip={reason: rule}, constant={position: reason})``
to skip the samples where PyTorch computes something else by design (``rule(args,
attrs)`` says which, ``reason`` why) or to leave alone the gradient of an input
PyTorch cannot differentiate. Never skip a sample to hide a dagrad bug: fix the op.
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import pytest

import dagrad as dg
from dagrad.gradcheck import op_graph
from dagrad.index import decode_index
from dagrad.shapes import normalize_axes

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = [   # PyTorch's notes on calls the samples make on purpose
    pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning"),         # var, std: ddof >= N
    pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss:UserWarning"),  # kl_div's "mean"
]

Rule = Callable[[tuple, dict], bool]


@dataclass(frozen=True)
class Adapter:
    """How to call an op's torch counterpart, and which samples and gradients PyTorch has no answer for.

    ``call(fn, inputs, attrs)`` returns the counterpart's tensor. ``skip`` maps
    a reason to a rule ``(args, attrs) -> bool`` that picks the samples it
    explains; ``constant`` maps an input position to why PyTorch takes that
    input as a constant (it gets no gradient from PyTorch, so dagrad's is not
    compared, nor that of an array passed there and elsewhere too; finite
    differences check them in test_op_gradients.py).
    ``gradient_rtol`` loosens the gradients' comparison where PyTorch's own
    float64 gradient is less accurate than that (say why beside it).
    """

    call: Callable[..., Any]
    skip: dict[str, Rule] = field(default_factory=dict)
    constant: dict[int, str] = field(default_factory=dict)
    gradient_rtol: float = 1e-9

    def skipped(self, args: tuple, attrs: dict) -> Optional[str]:
        """Why PyTorch cannot reproduce this sample, or None when it can."""
        for reason, rule in self.skip.items():
            if rule(args, attrs):
                return reason
        return None


def SAME(fn, inputs, attrs):
    """The counterpart takes the op's inputs as they are and no attributes."""
    return fn(*inputs)


def kw(*names: str, **renamed: str) -> Callable[..., Any]:
    """The counterpart takes the op's inputs and these attributes by keyword; ``dim="axis"`` renames one.

    Attributes not named never reach torch: the deprecated aliases that default
    to None (the pools' ``kernel``, ``flatten``'s ``start``, ``leaky_relu``'s ``slope``).
    """
    pairs = [(n, n) for n in names] + list(renamed.items())

    def call(fn, inputs, attrs):
        return fn(*inputs, **{theirs: attrs[ours] for theirs, ours in pairs})

    return call


def _dims(x, axis) -> tuple:
    """A dagrad ``axis`` (None: all) as a tuple of torch dims of ``x``."""
    return tuple(range(x.ndim)) if axis is None else normalize_axes(axis, x.ndim)


def _axis(x, axis) -> int:
    """One dagrad ``axis`` as a nonnegative torch dim of ``x``."""
    (a,) = normalize_axes(axis, x.ndim)
    return a


def _is(name: str, *values) -> Rule:
    """A skip rule: the attribute ``name`` is one of ``values``."""
    return lambda args, attrs: attrs.get(name) in values


# --- reductions and scans ------------------------------------------------------------------------------

def _reduction(fn, inputs, attrs, **more):
    """A reduction over a dagrad ``axis`` (int, tuple or None) that torch takes as a tuple ``dim``."""
    (x,) = inputs
    return fn(x, dim=_dims(x, attrs["axis"]), keepdim=attrs["keepdims"], **more)


def _over_one_dim(fn, inputs, attrs, **more):
    """A reduction torch takes over one ``dim`` only: the reduced axes are moved last and merged first."""
    (x,) = inputs
    dims = _dims(x, attrs["axis"])
    kept = [d for d in range(x.ndim) if d not in dims]
    merged = x.permute(kept + list(dims)).reshape([x.shape[d] for d in kept] + [math.prod(x.shape[d] for d in dims)])
    out = fn(merged, dim=-1, **more)
    if attrs["keepdims"]:
        lead = out.shape[:out.ndim - len(kept)]       # quantile's leading axis of q values
        out = out.reshape(lead + tuple(1 if d in dims else x.shape[d] for d in range(x.ndim)))
    return out


def _moments(fn, inputs, attrs):
    """var and std: numpy's ``ddof`` is PyTorch's ``correction``."""
    return _reduction(fn, inputs, attrs, correction=attrs["ddof"])


def _arg_reduction(fn, inputs, attrs):
    """argmax and argmin: one axis, or None for the flattened index (as numpy)."""
    (x,) = inputs
    dim = None if attrs["axis"] is None else _axis(x, attrs["axis"])
    return fn(x, dim=dim, keepdim=attrs["keepdims"])


def _quantile(fn, inputs, attrs):
    q = attrs["q"]
    q = torch.tensor(q, dtype=inputs[0].dtype) if isinstance(q, (tuple, list)) else q
    return _over_one_dim(fn, inputs, attrs, q=q, interpolation=attrs["method"])


def _empty(args, attrs) -> bool:
    return np.size(args[0]) == 0


def _scan(fn, inputs, attrs):
    """A cumulative op along ``axis``; None scans the flattened input (as numpy)."""
    (x,) = inputs
    return fn(x.reshape(-1), 0) if attrs["axis"] is None else fn(x, _axis(x, attrs["axis"]))


def _along(fn, inputs, attrs):
    """softmax, log_softmax, softmin and glu: one axis, ``dim``."""
    (x,) = inputs
    return fn(x, dim=attrs["axis"])


def _norm(fn, inputs, attrs):
    (x,) = inputs
    axis = attrs["axis"]
    dim = axis if axis is None or isinstance(axis, int) else tuple(axis)
    return fn(x, attrs["ord"], dim, attrs["keepdims"])


# --- sorting -------------------------------------------------------------------------------------------

def _sorted(fn, inputs, attrs):
    (x,) = inputs
    return fn(x, dim=attrs["axis"], descending=attrs["descending"], stable=True)


def _topk(fn, inputs, attrs):
    (x,) = inputs
    return fn(x, attrs["k"], dim=attrs["axis"], largest=attrs["largest"], sorted=True)


def _ties_along(args, attrs) -> bool:
    """Whether some entries to rank are equal along the op's axis (PyTorch's topk leaves their order open)."""
    x = np.moveaxis(np.asarray(args[0]), attrs["axis"], -1)
    return bool(np.any(np.diff(np.sort(x, axis=-1), axis=-1) == 0))


# --- layout and indexing -------------------------------------------------------------------------------

def _index(index: tuple, tensors=()) -> tuple:
    """A decoded dagrad index, its numpy arrays as torch tensors and its slots filled with ``tensors``."""
    return tuple(torch.from_numpy(np.asarray(i)) if isinstance(i, np.ndarray) else i
                 for i in decode_index(index, tensors))


def _take(fn, inputs, attrs):
    x, indices = inputs
    a = _axis(x, attrs["axis"])
    picked = fn(x, a, indices.reshape(-1))
    return picked.reshape(x.shape[:a] + indices.shape + x.shape[a + 1:])


def _index_add(fn, inputs, attrs):
    g, like, indices = inputs
    a = _axis(like, attrs["axis"])
    flat = g.reshape(like.shape[:a] + (indices.numel(),) + like.shape[a + 1:])
    return fn(torch.zeros_like(like), a, indices.reshape(-1), flat)


def _nonnegative(indices, size: int):
    """numpy counts negative indices from the end; torch's gather and scatter refuse them."""
    return torch.where(indices < 0, indices + size, indices)


def _along_indices(x, indices, a: int):
    """``indices`` broadcast against ``x`` on every axis but ``a``, as numpy's take_along_axis does."""
    def others(t):
        return t.shape[:a] + (1,) + t.shape[a + 1:]

    shape = torch.broadcast_shapes(others(x), others(indices))
    return _nonnegative(indices, x.shape[a]).expand(shape[:a] + indices.shape[a:a + 1] + shape[a + 1:])


def _take_along(fn, inputs, attrs):
    x, indices = inputs
    a = _axis(x, attrs["axis"])
    return fn(x, _along_indices(x, indices, a), dim=a)


def _scatter_add(fn, inputs, attrs):
    x, indices, values = inputs
    a = _axis(x, attrs["axis"])
    index = _along_indices(x, indices, a)
    return fn(x, a, index, values.expand(index.shape))


def _expand_dims(fn, inputs, attrs):
    (x,) = inputs
    count = 1 if isinstance(attrs["axis"], int) else len(attrs["axis"])
    for a in sorted(normalize_axes(attrs["axis"], x.ndim + count)):
        x = fn(x, a)
    return x


def _squeeze(fn, inputs, attrs):
    (x,) = inputs
    return fn(x) if attrs["axis"] is None else fn(x, _dims(x, attrs["axis"]))


def _pad_widths(pad_width, ndim: int) -> list:
    """numpy's ``pad_width`` (an int, one pair, or a pair per axis) as one ``(before, after)`` per axis."""
    return [tuple(int(w) for w in pair) for pair in np.broadcast_to(np.asarray(pad_width), (ndim, 2))]


_TORCH_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _pad(fn, inputs, attrs):
    """numpy.pad through F.pad: constant in one call; the other modes one axis at a time, as numpy pads."""
    (x,) = inputs
    widths = _pad_widths(attrs["pad_width"], x.ndim)
    if attrs["mode"] == "constant":
        flat = [w for pair in reversed(widths) for w in pair]       # F.pad lists the last axis first
        return fn(x, flat, mode="constant", value=attrs["constant_values"])
    for a, pair in enumerate(widths):
        if any(pair):    # F.pad's other modes pad the last axis of a (batch, channel, length) input
            moved = x.movedim(a, -1)
            padded = fn(moved.reshape(-1, 1, moved.shape[-1]), pair, mode=_TORCH_PAD_MODES[attrs["mode"]])
            x = padded.reshape(moved.shape[:-1] + padded.shape[-1:]).movedim(-1, a)
    return x


def _pads_past_the_edge(args, attrs) -> bool:
    if attrs["mode"] not in ("reflect", "wrap"):
        return False
    shape = np.shape(args[0])
    limit = (lambda n: n - 1) if attrs["mode"] == "reflect" else (lambda n: n)
    return any(w > limit(n) for (before, after), n in zip(_pad_widths(attrs["pad_width"], len(shape)), shape)
               for w in (before, after))


def _repeat(fn, inputs, attrs):
    (x,) = inputs
    repeats = attrs["repeats"]
    repeats = torch.tensor(repeats) if isinstance(repeats, (tuple, list)) else repeats
    return fn(x, repeats, dim=None if attrs["axis"] is None else _axis(x, attrs["axis"]))


def _split(fn, inputs, attrs):
    (x,) = inputs
    sections = attrs["sections"]
    return fn(x, list(sections) if isinstance(sections, (tuple, list)) else sections, dim=attrs["axis"])[attrs["part"]]


def _masked_fill(fn, inputs, attrs):
    """Tensor.masked_fill broadcasts the mask to ``x``; dagrad broadcasts both, so ``x`` is expanded first."""
    x, mask = inputs
    return fn(x.expand(torch.broadcast_shapes(x.shape, mask.shape)), mask, attrs["value"])


def _one_hot(fn, inputs, attrs):
    (indices,) = inputs
    return fn(indices.long(), attrs["num_classes"]).to(getattr(torch, np.dtype(attrs["dtype"]).name))


def _class_mask(fn, inputs, attrs):
    """one_hot of the targets that name a class, on ``axis``; the others (ignore_index) an all-false row."""
    target, like = inputs
    a = _axis(like, attrs["axis"])
    classes = like.shape[a]
    named = (target >= 0) & (target < classes)
    return (fn(torch.where(named, target, 0), classes).bool() & named[..., None]).movedim(-1, a)


def _trace(fn, inputs, attrs):
    """torch.trace takes one matrix and offset 0; numpy's trace is the sum of torch.diagonal's result."""
    (x,) = inputs
    return torch.diagonal(x, attrs["offset"], attrs["axis1"], attrs["axis2"]).sum(-1)


# --- linear algebra ------------------------------------------------------------------------------------

def _symmetric(x, lower: bool):
    """The symmetric matrix whose ``lower`` (or upper) triangle ``x`` holds: what cholesky and eigh read.

    Building it in the graph gives PyTorch's gradient (of a symmetric matrix)
    folded onto the triangle read, which is what dagrad reports.
    """
    return x.tril() + x.tril(-1).mT if lower else x.triu() + x.triu(1).mT


def _column_signs(theirs, reference: np.ndarray):
    """±1 per column turning ``theirs`` into ``reference`` (LAPACK builds may pick either sign of a vector).

    A constant sign leaves the gradient exact: it is the gradient of the
    vectors with dagrad's signs.
    """
    dots = np.sum(theirs.detach().numpy() * reference, axis=-2, keepdims=True)
    return torch.from_numpy(np.where(dots < 0, -1.0, 1.0)).to(theirs.dtype)


def _cholesky(fn, inputs, attrs):
    (x,) = inputs
    return fn(_symmetric(x, lower=not attrs["upper"]), upper=attrs["upper"])


def _eigh(fn, inputs, attrs):
    (x,) = inputs
    values, vectors = fn(_symmetric(x, lower=attrs["UPLO"] == "L"), UPLO=attrs["UPLO"])
    if attrs["part"] == "eigenvalues":
        return values
    return vectors * _column_signs(vectors, np.linalg.eigh(x.detach().numpy(), UPLO=attrs["UPLO"])[1])


def _qr(fn, inputs, attrs):
    (x,) = inputs
    q, r = fn(x, mode="reduced")
    signs = _column_signs(q, np.linalg.qr(x.detach().numpy(), mode="reduced")[0])
    return q * signs if attrs["part"] == "Q" else r * signs.mT


def _svd(fn, inputs, attrs):
    (x,) = inputs
    u, s, vh = fn(x, full_matrices=False)
    signs = _column_signs(u, np.linalg.svd(x.detach().numpy(), full_matrices=False)[0])
    return {"U": u * signs, "S": s, "Vh": vh * signs.mT}[attrs["part"]]


def _slogdet(fn, inputs, attrs):
    return fn(*inputs)[0 if attrs["part"] == "sign" else 1]


# --- normalization -------------------------------------------------------------------------------------

def _batch_norm(fn, inputs, attrs):
    """The running statistics are copies: F.batch_norm may update them in place while training."""
    x, mean, var, training, *affine = inputs
    return fn(x, mean.clone(), var.clone(), *affine, training=bool(training), eps=attrs["eps"])


def _batch_norm_update(fn, inputs, attrs):
    """The running statistic F.batch_norm leaves behind; ``momentum=None`` is BatchNorm's cumulative average."""
    running, x, training, *seen = inputs
    momentum = attrs["momentum"] if attrs["momentum"] is not None else 1 / (int(seen[0]) + 1)
    channels = running.shape
    state = {"mean": torch.zeros(channels, dtype=x.dtype), "var": torch.ones(channels, dtype=x.dtype)}
    state[attrs["statistic"]] = running.clone()
    fn(x, state["mean"], state["var"], training=bool(training), momentum=momentum)
    return state[attrs["statistic"]]


# --- losses --------------------------------------------------------------------------------------------

def _classes_second(x, axis):
    """dagrad's classes on ``axis`` (the last by default) where PyTorch wants them: axis 1 (or 0 for one example)."""
    return x if x.ndim < 2 else x.movedim(_axis(x, axis), 1)


def _class_loss(fn, inputs, attrs, *options: str):
    """cross_entropy, soft_cross_entropy and nll_loss: class indices or probabilities, an optional class weight."""
    x, target, *weight = inputs
    axis = attrs["axis"]
    if target.dtype.is_floating_point:          # probabilities: the input's shape, classes on the same axis
        target = _classes_second(target, axis)
    return fn(_classes_second(x, axis), target, *weight, reduction=attrs["reduction"],
              **{name: attrs[name] for name in options})


def pair_loss(*options: str) -> Callable[..., Any]:
    """A loss of two broadcasting inputs, taking ``reduction`` and ``options`` by keyword.

    PyTorch wants the two the same shape (and float), so they are broadcast first.
    """

    def call(fn, inputs, attrs):
        a, b = torch.broadcast_tensors(inputs[0], inputs[1].to(inputs[0].dtype))
        return fn(a, b, reduction=attrs["reduction"], **{name: attrs[name] for name in options})

    return call


def _weighted_bce(fn, inputs, attrs):
    x, t, weight, pos_weight = inputs
    x, t = torch.broadcast_tensors(x, t)
    return fn(x, t, weight, reduction=attrs["reduction"], pos_weight=pos_weight)


def _cosine_embedding(fn, inputs, attrs):
    """The pair broadcast together, and the targets over its rows (PyTorch wants one target per row)."""
    a, b, y = inputs
    a, b = torch.broadcast_tensors(a, b)
    y = y.expand(a.shape[:-1])
    return fn(a, b, y, margin=attrs["margin"], reduction=attrs["reduction"])


def _norm_below_eps(args, attrs) -> bool:
    return any(np.any(np.linalg.norm(np.asarray(a), axis=attrs["axis"]) < attrs["eps"]) for a in args)


# --- attention and random ------------------------------------------------------------------------------

def _attention(fn, inputs, attrs):
    q, k, v, *extras = inputs
    mask = extras[0] if attrs["has_mask"] else None
    if attrs["is_causal"] and mask is not None:   # PyTorch takes one or the other; dagrad allows both
        causal = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        mask = causal & mask if mask.dtype == torch.bool else mask.masked_fill(~causal, float("-inf"))
    return fn(q, k, v, attn_mask=mask, is_causal=attrs["is_causal"] and not attrs["has_mask"], scale=attrs["scale"])


def _training(args, attrs) -> bool:
    """Dropout at work: a rate, a nonzero training input, and entries to drop."""
    rate = attrs.get("dropout_p", attrs.get("rate", 0))
    return bool(rate) and bool(np.asarray(args[-1]).item()) and np.size(args[0]) > 0


RANDOM_MASK = "a random mask: PyTorch draws its own"


# --- the conv pack -------------------------------------------------------------------------------------

def _spatial(t) -> int:
    return t.ndim - 2


def _conv_padding(padding, kernel: tuple, dilation):
    """'valid' and a symmetric 'same' as the integers torch.nn.grad's functions take."""
    if padding == "valid":
        return 0
    if padding != "same":
        return padding
    dilation = (dilation,) * len(kernel) if isinstance(dilation, int) else dilation
    totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
    assert all(t % 2 == 0 for t in totals), "an uneven 'same' padding has no torch.nn.grad form"
    return tuple(t // 2 for t in totals)


def _conv_options(attrs, kernel: tuple) -> dict:
    return dict(stride=attrs["stride"], padding=_conv_padding(attrs["padding"], kernel, attrs["dilation"]),
                dilation=attrs["dilation"], groups=attrs["groups"])


def _conv_input_grad(fn, inputs, attrs):
    """dagrad's ``(g, w, like)``; torch.nn.grad.conv{n}d_input's ``(input_size, weight, grad_output)``."""
    g, w, like = inputs
    grad = getattr(torch.nn.grad, f"conv{_spatial(like)}d_input")
    return grad(like.shape, w, g, **_conv_options(attrs, w.shape[2:]))


def _conv_weight_grad(fn, inputs, attrs):
    """dagrad's ``(x, g, like)``; torch.nn.grad.conv{n}d_weight's ``(input, weight_size, grad_output)``."""
    x, g, like = inputs
    grad = getattr(torch.nn.grad, f"conv{_spatial(x)}d_weight")
    return grad(x, like.shape, g, **_conv_options(attrs, like.shape[2:]))


def _avg_pool(fn, inputs, attrs):
    """divisor_override only where set: PyTorch's avg_pool1d has no such argument."""
    names = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"]
    return kw(*names, *(["divisor_override"] if attrs["divisor_override"] is not None else []))(fn, inputs, attrs)


def _dilated(args, attrs) -> bool:
    return bool(np.any(np.asarray(attrs["dilation"]) != 1))


def _divisor_in_1d(args, attrs) -> bool:
    return np.ndim(args[0]) == 3 and attrs["divisor_override"] is not None


def _smaller_than_the_kernel_in_3d(args, attrs) -> bool:
    spatial = np.shape(args[0])[2:]
    return len(spatial) == 3 and bool(np.any(np.asarray(spatial) < np.asarray(attrs["kernel_size"])))


CONV = kw("stride", "padding", "dilation", "groups")
CONV_TRANSPOSE = kw("stride", "padding", "output_padding", "dilation", "groups")
MAX_POOL = kw("kernel_size", "stride", "padding", "dilation", "ceil_mode")
AVG_POOL = Adapter(_avg_pool, skip={
    "PyTorch's average pools have no dilation": _dilated,
    "PyTorch's avg_pool1d has no divisor_override": _divisor_in_1d,
    "PyTorch's avg_pool3d refuses an image smaller than the kernel, even padded": _smaller_than_the_kernel_in_3d})
ADAPTIVE_POOL = kw("output_size")


ADAPTERS: dict[str, Any] = {
    # arithmetic and functions
    "add": SAME, "sub": SAME, "mul": SAME, "div": SAME, "neg": SAME, "pow": SAME,
    "exp": SAME, "log": SAME, "sqrt": SAME, "abs": SAME, "sin": SAME, "cos": SAME,
    "tanh": SAME, "sigmoid": SAME, "relu": SAME,
    "tan": SAME, "arcsin": SAME, "arccos": SAME, "arctan": SAME, "arctan2": SAME,
    "sinh": SAME, "cosh": SAME, "arcsinh": SAME, "arccosh": SAME, "arctanh": SAME,
    "log1p": SAME, "expm1": SAME, "log2": SAME, "log10": SAME, "erf": SAME, "erfc": SAME,
    "square": SAME, "reciprocal": SAME, "rsqrt": SAME, "sign": SAME, "floor": SAME, "ceil": SAME,
    "round": lambda fn, xs, a: fn(xs[0], decimals=a["decimals"]) if a["decimals"] else fn(xs[0]),
    # selection
    "maximum": SAME, "minimum": SAME, "where": SAME,
    "clip": lambda fn, xs, a: fn(xs[0], min=a["low"], max=a["high"]),
    "astype": lambda fn, xs, a: fn(xs[0], getattr(torch, np.dtype(a["dtype"]).name)),
    # comparison and logic
    "equal": SAME, "not_equal": SAME, "less": SAME, "less_equal": SAME, "greater": SAME, "greater_equal": SAME,
    "logical_and": SAME, "logical_or": SAME, "logical_xor": SAME, "logical_not": SAME,
    "isfinite": SAME, "isnan": SAME, "isinf": SAME,
    "any": _reduction, "all": _reduction, "argmax": _arg_reduction, "argmin": _arg_reduction,
    # reductions, statistics and scans
    "sum": _reduction, "mean": _reduction, "max": _reduction, "min": _reduction, "logsumexp": _reduction,
    "prod": _over_one_dim, "var": _moments, "std": _moments,
    "quantile": Adapter(_quantile, skip={"an empty input: PyTorch's quantile refuses it, even with nothing to "
                                         "reduce (numpy and dagrad give an empty result)": _empty}),
    "norm": _norm, "cumsum": _scan, "cumprod": _scan, "logcumsumexp": _scan,
    "softmax": _along, "log_softmax": _along,
    # sorting
    "sort": lambda fn, xs, a: _sorted(fn, xs, a).values, "argsort": _sorted,
    "topk": lambda fn, xs, a: _topk(fn, xs, a).values,
    "argtopk": Adapter(lambda fn, xs, a: _topk(fn, xs, a).indices,
                       skip={"ties: PyTorch's topk leaves their order unspecified": _ties_along}),
    "permute_along": _take_along,
    # layout
    "reshape": lambda fn, xs, a: fn(xs[0], a["shape"]),
    "transpose": lambda fn, xs, a: fn(xs[0], tuple(range(xs[0].ndim))[::-1] if a["axes"] is None else a["axes"]),
    "broadcast_to": lambda fn, xs, a: fn(xs[0], a["shape"]),
    "expand_dims": _expand_dims, "squeeze": _squeeze,
    "concatenate": lambda fn, xs, a: fn(xs, dim=a["axis"]),
    "stack": lambda fn, xs, a: fn(xs, dim=a["axis"]),
    "split": _split,
    "flip": lambda fn, xs, a: fn(xs[0], _dims(xs[0], a["axis"])),
    "roll": kw(shifts="shift", dims="axis"),
    "tile": lambda fn, xs, a: fn(xs[0], a["reps"] if isinstance(a["reps"], (tuple, list)) else (a["reps"],)),
    "repeat": _repeat,
    "pad": Adapter(_pad, skip={
        "PyTorch has no 'symmetric' mode": _is("mode", "symmetric"),
        "numpy's reflect and wrap pad past an axis's size by repeating; PyTorch refuses": _pads_past_the_edge}),
    "tril": kw(diagonal="k"), "triu": kw(diagonal="k"),
    "diagonal": kw("offset", dim1="axis1", dim2="axis2"), "trace": _trace,
    # indexing
    "getitem": lambda fn, xs, a: fn(xs[0], _index(a["index"])),
    "index": lambda fn, xs, a: fn(xs[0], _index(a["index"], xs[1:])),
    "take": _take,
    "take_along_axis": _take_along,
    "scatter_add": _scatter_add,
    "masked_fill": _masked_fill,
    "one_hot": Adapter(_one_hot, skip={"num_classes=0: PyTorch's one_hot reads 0 as 'infer from the data'":
                                       _is("num_classes", 0)}),
    # linear algebra
    "matmul": SAME,
    "einsum": lambda fn, xs, a: fn(a["subscripts"], *xs),
    "inv": SAME, "det": SAME, "solve": SAME, "slogdet": _slogdet,
    "cholesky": _cholesky, "eigh": _eigh, "qr": _qr, "svd": _svd,
    "pinv": kw("rtol"), "matrix_norm": kw("ord", keepdim="keepdims"),
    # normalization
    "layer_norm": lambda fn, xs, a: fn(xs[0], a["normalized_shape"], *xs[1:], eps=a["eps"]),
    "rms_norm": lambda fn, xs, a: fn(xs[0], a["normalized_shape"], *xs[1:], eps=a["eps"]),
    "group_norm": lambda fn, xs, a: fn(xs[0], a["num_groups"], *xs[1:], eps=a["eps"]),
    "batch_norm": Adapter(_batch_norm, constant={1: "PyTorch does not differentiate running statistics",
                                                 2: "PyTorch does not differentiate running statistics"}),
    "batch_norm_update": _batch_norm_update,
    # losses
    "softmax_cross_entropy": lambda fn, xs, a: fn(_classes_second(xs[0], -1), xs[1], reduction=a["reduction"]),
    "cross_entropy": Adapter(lambda fn, xs, a: _class_loss(fn, xs, a, "ignore_index", "label_smoothing"),
                             constant={2: "PyTorch does not differentiate class weights"}),
    "soft_cross_entropy": Adapter(lambda fn, xs, a: _class_loss(fn, xs, a, "label_smoothing"),
                                  constant={2: "PyTorch does not differentiate class weights"}),
    "nll_loss": Adapter(lambda fn, xs, a: _class_loss(fn, xs, a, "ignore_index"),
                        constant={2: "PyTorch does not differentiate class weights"}),
    "class_mask": _class_mask,
    "binary_cross_entropy_with_logits": pair_loss(),
    "weighted_binary_cross_entropy_with_logits": Adapter(_weighted_bce, constant={
        2: "PyTorch does not differentiate weight", 3: "PyTorch does not differentiate pos_weight"}),
    "mse": pair_loss(),
    "l1_loss": pair_loss(), "smooth_l1_loss": pair_loss("beta"), "huber_loss": pair_loss("delta"),
    "kl_div": pair_loss("log_target"),
    "cosine_similarity": Adapter(kw("eps", dim="axis"), skip={
        "a norm below eps: PyTorch's gradient goes through the clamp as if it were not there (not the derivative "
        "of its own value); dagrad's treats the clamped norm as the constant it is": _norm_below_eps}),
    "cosine_embedding_loss": _cosine_embedding,
    # attention and random
    "scaled_dot_product_attention": Adapter(_attention, skip={RANDOM_MASK: _training}),
    "dropout": Adapter(lambda fn, xs, a: fn(xs[0], a["rate"], training=False), skip={RANDOM_MASK: _training}),
    # gradient building blocks
    "sum_to": lambda fn, xs, a: fn(xs[0], xs[1].shape),
    "broadcast_like": lambda fn, xs, a: fn(xs[0], xs[1]),
    "reshape_like": lambda fn, xs, a: fn(xs[0], xs[1]),
    "index_add": _index_add,
    # the activations pack
    "gelu": kw("approximate"), "silu": SAME, "mish": SAME, "softplus": kw("beta", "threshold"),
    "logsigmoid": SAME, "elu": kw("alpha"), "selu": SAME, "celu": kw("alpha"),
    "hardtanh": kw("min_val", "max_val"), "relu6": SAME, "hardswish": SAME,
    "hardsigmoid": Adapter(SAME, gradient_rtol=1e-7),     # PyTorch's gradient uses 1/6 in float32, even in float64
    "leaky_relu": kw("negative_slope"), "prelu": SAME, "softmin": _along, "glu": _along, "ndtr": SAME,
    # the conv pack
    "conv1d": CONV, "conv2d": CONV, "conv3d": CONV,
    "conv_transpose1d": CONV_TRANSPOSE, "conv_transpose2d": CONV_TRANSPOSE, "conv_transpose3d": CONV_TRANSPOSE,
    "conv_input_grad": _conv_input_grad, "conv_weight_grad": _conv_weight_grad,
    "max_pool1d": MAX_POOL, "max_pool2d": MAX_POOL, "max_pool3d": MAX_POOL,
    "avg_pool1d": AVG_POOL, "avg_pool2d": AVG_POOL, "avg_pool3d": AVG_POOL,
    "adaptive_max_pool1d": ADAPTIVE_POOL, "adaptive_max_pool2d": ADAPTIVE_POOL, "adaptive_max_pool3d": ADAPTIVE_POOL,
    "adaptive_avg_pool1d": ADAPTIVE_POOL, "adaptive_avg_pool2d": ADAPTIVE_POOL, "adaptive_avg_pool3d": ADAPTIVE_POOL,
    "interpolate": kw("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"),
    "flatten": kw("start_dim", "end_dim"),
}


def _torch_ops() -> list[str]:
    return sorted(name for name, op in dg.registry().ops.items() if "torch" in op.counterparts)


@functools.lru_cache(maxsize=None)
def counterpart(dotted: str):
    """The torch function (or unbound method) a dotted name such as ``torch.nn.functional.relu`` names."""
    module, _, rest = dotted.partition(".")
    target: Any = importlib.import_module(module)
    for part in rest.split("."):
        target = getattr(target, part)
    return target


def adapter(name: str) -> Adapter:
    entry = ADAPTERS[name]
    return entry if isinstance(entry, Adapter) else Adapter(entry)


def test_every_op_with_a_torch_counterpart_has_an_adapter():
    missing = [name for name in _torch_ops() if name not in ADAPTERS]
    assert not missing, (f"ops naming a torch counterpart without an entry in ADAPTERS: {missing} "
                         "(add one line per op: SAME, or how to call it)")
    stale = sorted(set(ADAPTERS) - set(_torch_ops()))
    assert not stale, f"ADAPTERS has entries for ops that name no torch counterpart (or do not exist): {stale}"


def test_every_torch_counterpart_exists_in_this_torch():
    for name in _torch_ops():
        assert callable(counterpart(dg.registry().op(name).counterparts["torch"])), name


def _as_torch(args: tuple, constant, differentiate: bool) -> tuple[list, dict]:
    """Torch tensors for the sample's arrays and, by param name, those whose gradients PyTorch gives in full.

    One tensor per distinct array (``x * x`` differentiates one leaf twice), and
    a separate, constant one where an input PyTorch does not differentiate reuses
    an array: that array's gradient is then not compared.
    """
    made: dict = {}
    fixed = {id(args[i]) for i in constant if i < len(args)}
    inputs, differentiable = [], {}
    for i, arg in enumerate(args):
        key = (id(arg), i in constant)
        if key not in made:
            array = np.asarray(arg)
            tensor = torch.from_numpy(np.array(array.astype(np.float64) if array.dtype.kind == "f" else array))
            made[key] = tensor.requires_grad_(differentiate and array.dtype.kind == "f" and i not in constant)
            if tensor.requires_grad and id(arg) not in fixed:
                differentiable[f"input{i}"] = tensor      # op_graph's name for the param of argument i
        inputs.append(made[key])
    return inputs, differentiable


def compare(name: str, seed: int = 0) -> tuple[int, dict]:
    """Compare op ``name`` with its counterpart on every sample: (samples compared, {label: why skipped})."""
    op = dg.registry().op(name)
    adapt = adapter(name)
    fn = counterpart(op.counterparts["torch"])
    compared, skipped = 0, {}
    for sample in op.samples(np.random.default_rng(seed)):
        attrs = op.bind_attrs(sample.attrs)
        reason = adapt.skipped(sample.args, attrs)
        if reason:
            skipped[sample.label] = reason
            continue
        g, out, _, _ = op_graph(op, sample.args, sample.attrs)
        inputs, differentiable = _as_torch(sample.args, adapt.constant, op.differentiable)
        theirs = adapt.call(fn, inputs, attrs)
        where = f"op {name!r}, sample {sample.label!r}"
        if out.dtype.kind != "f" or not differentiable:
            # strict: the same shape and dtype (a bool or integer output is compared with PyTorch's dtype)
            np.testing.assert_allclose(g.forward(out).value(out), theirs.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       equal_nan=True, strict=True, err_msg=where)
            compared += 1
            continue
        cotangent = np.random.default_rng(seed + 1).standard_normal(g.node(out).shape or ())
        res = g.backward(dg.sum(out * cotangent), keep="all")
        np.testing.assert_allclose(res.value(out), theirs.detach().numpy(), rtol=1e-10, atol=1e-12, equal_nan=True,
                                   strict=True, err_msg=f"{where}: values")
        tensors = list(differentiable.values())
        grads = (torch.autograd.grad(theirs, tensors, torch.from_numpy(cotangent), allow_unused=True)
                 if theirs.requires_grad else [None] * len(tensors))     # e.g. an empty output: no graph
        for param, tensor, grad in zip(differentiable, tensors, grads):
            expected = np.zeros(tuple(tensor.shape)) if grad is None else grad.numpy()
            np.testing.assert_allclose(res.grad(param), expected, rtol=adapt.gradient_rtol, atol=1e-12, strict=True,
                                       err_msg=f"{where}: gradient of {param}")
        compared += 1
    return compared, skipped


@pytest.mark.parametrize("name", _torch_ops())
def test_op_matches_its_torch_counterpart_on_every_sample(name):
    compared, skipped = compare(name)
    assert compared, f"op {name!r}: every sample was skipped, so nothing was compared: {skipped}"
