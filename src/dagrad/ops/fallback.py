"""The ``vjp`` op: an op's numpy VJP run as a node, so that ``dagrad.grad`` can differentiate any op once.

``dagrad.grad`` builds each node's backward step from its op's graph VJP. An op
without one (a plugin's op whose author has not written ``@<op>.graph_vjp``
yet) still gets first-order gradients: one ``vjp`` node per input, running the
op's numpy VJP on the output gradient, the inputs and the output. What such a
node computes cannot be differentiated again, and it says so by name, both
when ``dagrad.grad`` meets it and when ``Graph.backward`` does.

Unlike the other built-in ops it looks an op up by name when it runs, so this
module sits above the registry.
"""

from __future__ import annotations

import numpy as np

from ..errors import GradientError, HigherOrderError
from ..opdef import Sample, op
from ..plugins import registry
from .adjoints import sum_to_shape
from .samples import away_from_zero

__all__ = ["vjp"]


def _vjp_shape(g, *shapes, op="", attrs=(), input=0):
    inputs = shapes[:-1]  # the last input is the forward node's output
    if not 0 <= input < len(inputs):
        raise ValueError(f"input {input} is not one of the {len(inputs)} inputs of op {op!r}")
    return tuple(inputs[input])


def _vjp_dtype(g, *dtypes, op="", attrs=(), input=0):
    return np.dtype(dtypes[input])


def _vjp_samples(rng) -> list:
    x, a, b = away_from_zero(rng, (3, 4)), away_from_zero(rng, (3, 1)), away_from_zero(rng, (4,))
    same = away_from_zero(rng, (2, 3))
    empty, one = away_from_zero(rng, (0, 3)), away_from_zero(rng, (1,))

    def sample(op_name, input, *arrays, out):
        g = away_from_zero(rng, np.shape(out))
        return Sample((g, *arrays, out), {"op": op_name, "attrs": {}, "input": input}, f"{op_name}, input {input}")

    return [
        sample("tanh", 0, x, out=np.tanh(x)),
        sample("mul", 1, a, b, out=a * b),                # a broadcast input: summed back
        sample("mul", 0, same, same, out=same * same),    # one node used twice
        sample("exp", 0, empty, out=np.exp(empty)),
        sample("sum", 0, one, out=np.sum(one)),
    ]


def _cannot_differentiate(op_name: str) -> str:
    target = registry().ops.get(op_name)
    plugin = target.plugin if target is not None else "?"
    return (
        f"the gradient of op {op_name!r} from plugin {plugin!r} was computed by its numpy VJP (a 'vjp' node), "
        f"which cannot be differentiated again: give op {op_name!r} a graph VJP with @{op_name}.graph_vjp "
        "(see docs/higher-order.md)"
    )


@op(shape=_vjp_shape, dtype=_vjp_dtype, samples=_vjp_samples)
def vjp(g, *arrays, op="", attrs=(), input=0):
    """Gradient for input ``input`` of op ``op`` (with attributes ``attrs``) by its numpy VJP; added by ``dagrad.grad``.

    The inputs are the output gradient, the forward node's inputs and its output.
    """
    target = registry().op(op)
    xs, out = arrays[:-1], arrays[-1]
    bound = dict(attrs)
    res = target.forward(*xs, **bound)[1] if target.residuals else None
    needs = tuple(i == input for i in range(len(xs)))
    grads = target.call_vjp(g, list(xs), out, res, bound, needs)
    if isinstance(grads, np.ndarray) and len(xs) == 1:
        grads = (grads,)
    if not isinstance(grads, (tuple, list)) or len(grads) != len(xs):
        raise GradientError(
            f"the VJP of op {op!r} from plugin {target.plugin!r} must return one gradient (or None) per input, "
            f"{len(xs)} in all"
        )
    x, gi = xs[input], grads[input]
    if gi is None:
        return np.zeros(x.shape, x.dtype)
    gi = np.asarray(gi)
    if gi.shape != x.shape:
        summed = sum_to_shape(gi, x.shape)
        if summed is None:
            raise GradientError(
                f"the VJP of op {op!r} from plugin {target.plugin!r} returned a gradient of shape {gi.shape} "
                f"for input {input}, whose value has shape {x.shape} (and it does not broadcast to it)"
            )
        gi = summed
    return gi.astype(x.dtype, copy=False)


@vjp.graph_vjp
@vjp.vjp
def _(h, g, *arrays, op, attrs, input):
    raise HigherOrderError(_cannot_differentiate(op))
