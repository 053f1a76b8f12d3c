"""Every op with a PyTorch counterpart computes PyTorch's values and gradients on the op's own samples.

For each op whose ``counterparts`` name a ``torch`` function, and each of its
samples, the op runs in a float64 graph (the same array passed twice is one
node, as ``x * x``) and its value and the gradients of ``sum(out * cotangent)``
are compared with the counterpart's under ``torch.autograd``. ``ADAPTERS``
says how to call each counterpart where its argument conventions differ from
the op's; ``test_every_op_with_a_torch_counterpart_has_an_adapter`` fails for
an op that names a torch counterpart and has no entry, so the table cannot go
stale. Samples a counterpart cannot reproduce (dropout's random masks) are
skipped with the reason in the adapter.

Runs only where torch is importable (``pip install torch``); it is never a
dependency of dagrad.

**Adding an op**: give it ``counterparts={"torch": "torch.xxx", ...}`` and add
one line to ``ADAPTERS``: ``SAME`` if ``torch.xxx(*inputs)`` is the op, else a
function ``(fn, inputs, attrs) -> tensor`` where ``fn`` is the counterpart,
``inputs`` are torch tensors in the op's input order and ``attrs`` its bound
attributes; wrap it in ``Adapter(call, skip=...)`` to skip samples it cannot
reproduce, saying why.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import pytest

import dagrad as dg
from dagrad.gradcheck import op_graph
from dagrad.index import decode_index
from dagrad.shapes import normalize_axes

torch = pytest.importorskip("torch")
F = torch.nn.functional


@dataclass(frozen=True)
class Adapter:
    """How to call an op's torch counterpart: ``call(fn, inputs, attrs)``; ``skip(args, attrs)`` gives a reason or None."""

    call: Callable[..., Any]
    skip: Optional[Callable[[tuple, dict], Optional[str]]] = None


def SAME(fn, inputs, attrs):
    """The counterpart takes the op's inputs as they are and no attributes."""
    return fn(*inputs)


def _dims(x, axis) -> tuple:
    """A dagrad ``axis`` (None: all) as a tuple of torch dims of ``x``."""
    return tuple(range(x.ndim)) if axis is None else normalize_axes(axis, x.ndim)


def _reduction(fn, inputs, attrs):
    (x,) = inputs
    return fn(x, dim=_dims(x, attrs["axis"]), keepdim=attrs["keepdims"])


def _along(fn, inputs, attrs):
    """softmax and log_softmax: one axis, ``dim``; a 0-d input has none to name."""
    (x,) = inputs
    return fn(x, dim=attrs["axis"] if x.ndim else None)


def _index(index: tuple) -> tuple:
    """A decoded dagrad index with its numpy arrays as torch tensors."""
    return tuple(torch.from_numpy(np.asarray(i)) if isinstance(i, np.ndarray) else i for i in decode_index(index))


def _take(fn, inputs, attrs):
    x, indices = inputs
    (a,) = normalize_axes(attrs["axis"], x.ndim)
    picked = fn(x, a, indices.reshape(-1))
    return picked.reshape(x.shape[:a] + indices.shape + x.shape[a + 1:])


def _index_add(fn, inputs, attrs):
    g, like, indices = inputs
    (a,) = normalize_axes(attrs["axis"], like.ndim)
    flat = g.reshape(like.shape[:a] + (indices.numel(),) + like.shape[a + 1:])
    return fn(torch.zeros_like(like), a, indices.reshape(-1), flat)


def _expand_dims(fn, inputs, attrs):
    (x,) = inputs
    count = 1 if isinstance(attrs["axis"], int) else len(attrs["axis"])
    for a in sorted(normalize_axes(attrs["axis"], x.ndim + count)):
        x = fn(x, a)
    return x


def _squeeze(fn, inputs, attrs):
    (x,) = inputs
    return fn(x) if attrs["axis"] is None else fn(x, _dims(x, attrs["axis"]))


def _per_example(fn, logits, labels, reduction):
    """cross_entropy with the class axis last (dagrad) instead of second (PyTorch)."""
    classes = logits.shape[-1]
    losses = fn(logits.reshape(-1, classes), labels.reshape(-1), reduction="none").reshape(labels.shape)
    return {"none": losses, "sum": losses.sum(), "mean": losses.sum() / max(losses.numel(), 1)}[reduction]


def _pair_loss(fn, inputs, attrs):
    """A loss of two broadcasting inputs; PyTorch wants them the same shape (and float)."""
    a, b = torch.broadcast_tensors(inputs[0], inputs[1].to(inputs[0].dtype))
    return fn(a, b, reduction=attrs["reduction"])


def _empty_mean(args, attrs) -> Optional[str]:
    if attrs.get("reduction") == "mean" and any(np.size(a) == 0 for a in args[:2]):
        return "the mean over no examples: dagrad gives 0 (a loss that adds nothing), PyTorch NaN"
    return None


def _attention(fn, inputs, attrs):
    q, k, v, *extras = inputs
    mask = extras[0] if attrs["has_mask"] else None
    if attrs["is_causal"] and mask is not None:   # PyTorch takes one or the other; dagrad allows both
        causal = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        mask = causal & mask if mask.dtype == torch.bool else mask.masked_fill(~causal, float("-inf"))
    return fn(q, k, v, attn_mask=mask, is_causal=attrs["is_causal"] and not attrs["has_mask"], scale=attrs["scale"])


def _training(args, attrs) -> Optional[str]:
    training = args[-1] if attrs.get("dropout_p", attrs.get("rate", 0)) else 0
    if np.asarray(training).item():
        return "a random mask: PyTorch draws its own"
    return None


ADAPTERS: dict[str, Any] = {
    # arithmetic and functions
    "add": SAME, "sub": SAME, "mul": SAME, "div": SAME, "neg": SAME, "pow": SAME,
    "exp": SAME, "log": SAME, "sqrt": SAME, "abs": SAME, "sin": SAME, "cos": SAME,
    "tanh": SAME, "sigmoid": SAME, "relu": SAME,
    # selection
    "maximum": SAME, "minimum": SAME, "where": SAME,
    "clip": lambda fn, xs, a: fn(xs[0], min=a["low"], max=a["high"]),
    "astype": lambda fn, xs, a: fn(xs[0], getattr(torch, np.dtype(a["dtype"]).name)),
    # comparison and logic
    "equal": SAME, "not_equal": SAME, "less": SAME, "less_equal": SAME, "greater": SAME, "greater_equal": SAME,
    "logical_and": SAME, "logical_or": SAME, "logical_xor": SAME, "logical_not": SAME,
    "isfinite": SAME, "isnan": SAME, "isinf": SAME,
    # reductions and normalisations
    "sum": _reduction, "mean": _reduction, "max": _reduction, "min": _reduction, "logsumexp": _reduction,
    "softmax": _along, "log_softmax": _along,
    # layout
    "reshape": lambda fn, xs, a: fn(xs[0], a["shape"]),
    "transpose": lambda fn, xs, a: fn(xs[0], tuple(range(xs[0].ndim))[::-1] if a["axes"] is None else a["axes"]),
    "broadcast_to": lambda fn, xs, a: fn(xs[0], a["shape"]),
    "expand_dims": _expand_dims, "squeeze": _squeeze,
    "concatenate": lambda fn, xs, a: fn(xs, dim=a["axis"]),
    "stack": lambda fn, xs, a: fn(xs, dim=a["axis"]),
    "getitem": lambda fn, xs, a: fn(xs[0], _index(a["index"])),
    "take": _take,
    # linear algebra and attention
    "matmul": SAME,
    "einsum": lambda fn, xs, a: fn(a["subscripts"], *xs),
    "scaled_dot_product_attention": Adapter(_attention, skip=_training),
    # losses
    "softmax_cross_entropy": Adapter(lambda fn, xs, a: _per_example(fn, xs[0], xs[1], a["reduction"]),
                                     skip=_empty_mean),
    "binary_cross_entropy_with_logits": Adapter(_pair_loss, skip=_empty_mean),
    "mse": Adapter(_pair_loss, skip=_empty_mean),
    # random
    "dropout": Adapter(lambda fn, xs, a: fn(xs[0], a["rate"], training=False), skip=_training),
    # gradient building blocks
    "sum_to": lambda fn, xs, a: fn(xs[0], xs[1].shape),
    "broadcast_like": lambda fn, xs, a: fn(xs[0], xs[1]),
    "reshape_like": lambda fn, xs, a: fn(xs[0], xs[1]),
    "index_add": _index_add,
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


def test_every_op_with_a_torch_counterpart_has_an_adapter():
    missing = [name for name in _torch_ops() if name not in ADAPTERS]
    assert not missing, (f"ops naming a torch counterpart without an entry in ADAPTERS: {missing} "
                         "(add one line per op: SAME, or how to call it)")
    stale = sorted(set(ADAPTERS) - set(_torch_ops()))
    assert not stale, f"ADAPTERS has entries for ops that name no torch counterpart (or do not exist): {stale}"


def test_every_torch_counterpart_exists_in_this_torch():
    for name in _torch_ops():
        assert callable(counterpart(dg.registry().op(name).counterparts["torch"])), name


def _as_torch(args: tuple) -> tuple[list, list]:
    """Torch tensors for the sample's arrays (one tensor per distinct array) and the float ones, to differentiate."""
    made: dict = {}
    inputs = []
    for arg in args:
        if id(arg) not in made:
            array = np.asarray(arg)
            tensor = torch.from_numpy(np.array(array.astype(np.float64) if array.dtype.kind == "f" else array))
            made[id(arg)] = tensor.requires_grad_(array.dtype.kind == "f")
        inputs.append(made[id(arg)])
    return inputs, [t for t in made.values() if t.requires_grad]


@pytest.mark.parametrize("name", _torch_ops())
def test_op_matches_its_torch_counterpart_on_every_sample(name):
    op = dg.registry().op(name)
    entry = ADAPTERS[name]
    adapter = entry if isinstance(entry, Adapter) else Adapter(entry)
    fn = counterpart(op.counterparts["torch"])
    compared = 0
    for sample in op.samples(np.random.default_rng(0)):
        attrs = op.bind_attrs(sample.attrs)
        if adapter.skip is not None and adapter.skip(sample.args, attrs):
            continue
        g, out, names, _ = op_graph(op, sample.args, sample.attrs)
        inputs, differentiable = _as_torch(sample.args)
        theirs = adapter.call(fn, inputs, attrs)
        where = f"op {name!r}, sample {sample.label!r}"
        if out.dtype.kind != "f" or not names:
            ours = g.forward(out).value(out)
            np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12, equal_nan=True,
                                       err_msg=where)
            compared += 1
            continue
        cotangent = np.random.default_rng(1).standard_normal(g.node(out).shape or ())
        res = g.backward(dg.sum(out * cotangent), keep="all")
        np.testing.assert_allclose(res.value(out), theirs.detach().numpy(), rtol=1e-10, atol=1e-12, equal_nan=True,
                                   err_msg=f"{where}: values")
        grads = torch.autograd.grad(theirs, differentiable, torch.from_numpy(cotangent), allow_unused=True)
        for param, tensor, grad in zip(names, differentiable, grads):
            expected = np.zeros(tuple(tensor.shape)) if grad is None else grad.numpy()
            np.testing.assert_allclose(res.grad(param), expected, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{where}: gradient of {param}")
        compared += 1
    assert compared, f"op {name!r}: the adapter skipped every sample, so nothing was compared"
