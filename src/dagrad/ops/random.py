"""Random ops: ``dropout``, the one op the layers need that cannot be composed from the others.

Dropout needs fresh randomness at every training step, yet an op must be a
pure function of its inputs and attributes (finite-difference checks rerun a
step and must see the same mask). So the randomness comes from a *fed* input:
``training`` is 0 for evaluation, and during training a nonzero number that
picks the mask; the fit loop feeds the step number, so every step draws a new
mask and a rerun of the same step draws the same one.
"""

from __future__ import annotations

import numpy as np

from ..opdef import Sample, first_dtype, op
from ..shapes import format_shape
from .samples import away_from_zero

__all__ = ["dropout", "dropout_mask", "keep_mask"]


def _dropout_shape(x, training, *, rate=0.5, stream=0):
    if len(training) != 0:
        raise ValueError(f"training must be a scalar (0 = evaluate, nonzero = the step's noise key), not {format_shape(training)}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), not {rate!r}")
    return tuple(x)


def _dropout_samples(rng):
    return [
        Sample((away_from_zero(rng, (4, 5)), np.asarray(7)), {"rate": 0.5, "stream": 1}, "training, step 7"),
        Sample((away_from_zero(rng, (3,)), np.asarray(0)), {"rate": 0.3, "stream": 2}, "evaluation: identity"),
        Sample((away_from_zero(rng, (0, 2)), np.asarray(1)), {"rate": 0.5, "stream": 0}, "empty batch"),
    ]


def keep_mask(shape: tuple, key: float, rate: float, stream: int, dtype) -> np.ndarray:
    """The scaled keep mask (``0`` or ``1 / (1 - rate)``) that ``dropout`` uses for noise ``key``."""
    bits = int(np.asarray(key, dtype=np.float64).view(np.uint64))
    uniform = np.random.default_rng([int(stream) & 0xFFFFFFFF, bits]).random(shape, dtype=np.float32)
    return (uniform >= rate).astype(dtype) * np.asarray(1.0 / (1.0 - rate), dtype=dtype)


def _step_mask(x: np.ndarray, training: np.ndarray, rate: float, stream: int):
    """The keep mask ``dropout`` and ``dropout_mask`` draw for this step, or None when nothing is dropped.

    Nothing is dropped when evaluating (``training`` is 0) or at ``rate`` 0.
    """
    key = training.item() if training.size == 1 else 0
    if not key or rate == 0.0:
        return None
    return keep_mask(x.shape, key, rate, stream, x.dtype)


@op(shape=_dropout_shape, dtype=first_dtype, saves=(), residuals=True, samples=_dropout_samples,
    counterparts={"torch": "torch.nn.functional.dropout"})
def dropout(x, training, *, rate=0.5, stream=0):
    """Zero each entry with probability ``rate`` and scale the rest by ``1 / (1 - rate)``, when training.

    ``training`` is a scalar input: 0 evaluates (the output is ``x``); any other
    value is the key of this step's random mask, combined with the node's own ``stream``
    (a seed, so that two dropout nodes draw different masks at the same step).
    """
    mask = _step_mask(x, training, rate, stream)
    return (x, None) if mask is None else (x * mask, mask)


@dropout.vjp
def _(g, x, training, res, *, rate, stream):
    return (g if res is None else g * res), None


@dropout.graph_vjp
def _(g, x, training, *, rate, stream):
    """``g`` times the same mask, rebuilt from the same key and stream: linear in ``g``, constant in ``x``."""
    return g * dropout_mask(x, training, rate=rate, stream=stream), None


@op(shape=_dropout_shape, dtype=first_dtype, saves=(), samples=_dropout_samples)
def dropout_mask(x, training, *, rate=0.5, stream=0):
    """The mask ``dropout(x, training)`` multiplies ``x`` by: 0 or ``1 / (1 - rate)`` when training, else 1 (``x``'s values are not read).

    Its gradient graph: the gradient of dropout is the output gradient times
    this mask, which the node draws again from the same key and stream.
    """
    mask = _step_mask(x, training, rate, stream)
    return np.ones(x.shape, x.dtype) if mask is None else mask


@dropout_mask.graph_vjp
@dropout_mask.vjp
def _(g, x, training, *, rate, stream):
    """None for both: the mask depends on ``x``'s shape only, and on the key, a fed number that selects noise."""
    return None, None

