"""The cases ``check_op`` runs: the op's samples, and generated broadcasting and size-0/1 variants."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, Union

import numpy as np

from ...opdef import Op, Sample
from ...ops.samples import elementwise_samples
from ...plugins import registry
from .report import OpCheckFailure

__all__ = ["Case", "SampleSource", "cases_from", "generated_cases", "in_registry", "resolve", "who"]

SampleSource = Union[Sequence[Sample], Callable[[np.random.Generator], Sequence[Sample]], None]


@dataclass
class Case:
    label: str
    args: tuple
    attrs: dict
    generated: bool = False


def resolve(op_or_name: Union[Op, str]) -> Op:
    if isinstance(op_or_name, Op):
        return op_or_name
    return registry().op(op_or_name)


@contextlib.contextmanager
def in_registry(op: Op) -> Iterator[None]:
    """Make an op not yet registered runnable in graphs for the duration of the check."""
    reg = registry()
    present = reg.ops.get(op.name)
    if present is op:
        yield
        return
    if present is not None and not op.override:
        raise OpCheckFailure(
            f"{who(op)} cannot be checked: a different op named {op.name!r} is registered by plugin "
            f"{present.plugin!r}; check that one by name, declare yours override=True, or rename it"
        )
    reg.ops[op.name] = op        # an override stands in for the op it is meant to replace
    try:
        yield
    finally:
        if present is None:
            reg.ops.pop(op.name, None)
        else:
            reg.ops[op.name] = present


def who(op: Op) -> str:
    return f"op {op.name!r} ({op.plugin or 'not registered'})"


def cases_from(op: Op, samples: SampleSource, rng: np.random.Generator) -> list:
    if samples is None:
        if op.samples is not None:
            samples = op.samples(rng)
        elif op.arity in (1, 2) and not op.attr_defaults:
            samples = elementwise_samples(op.arity)(rng)
        else:
            samples = []
    elif callable(samples):
        samples = samples(rng)
    return [Case(s.label or f"sample {i}", tuple(s.args), dict(s.attrs)) for i, s in enumerate(samples)]


_UNARY = [(3, 4), (), (1,), (0, 3), (2, 1, 3)]
_BINARY = [((3, 1), (4,)), ((), (2, 3)), ((0, 3), (1, 3)), ((1, 1), (2, 1, 4)), ((2, 3), (2, 3))]


def _elementwise(op: Op, attrs: dict) -> bool:
    """Whether the op's shape rule broadcasts like numpy (so any broadcasting shapes are fair game)."""
    if op.shape_rule is None or op.arity not in (1, 2):
        return False
    try:
        bound = op.bind_attrs(attrs)
        if op.arity == 1:
            probes = [(3, 4), (0, 2), (2, 3, 4), (5,), ()]
            return all(tuple(op.shape_rule(s, **bound)) == s for s in probes)
        return tuple(op.shape_rule((3, 1), (4,), **bound)) == (3, 4) and tuple(
            op.shape_rule((), (2, 1, 3), **bound)
        ) == (2, 1, 3)
    except Exception:  # noqa: BLE001 - a rule that refuses the probe is not elementwise
        return False


def generated_cases(op: Op, cases: list, rng: np.random.Generator) -> list:
    """Broadcasting, scalar, size-0 and size-1 variants drawn from the first sample's values."""
    first = cases[0]
    arrays = [np.asarray(a) for a in first.args]
    if len(arrays) != op.arity or not all(a.dtype.kind == "f" for a in arrays):
        return []
    if not _elementwise(op, first.attrs):
        return []
    # Draw values from each argument's own sample values: they are inside the op's domain.
    pools = [a.reshape(-1) if a.size else np.array([0.5, -0.7, 1.3]) for a in arrays]

    def draw(k: int, shape: tuple) -> np.ndarray:
        return rng.choice(pools[k], size=shape).astype(np.float64)

    out = []
    if op.arity == 1:
        for s in _UNARY:
            out.append(Case(f"generated: shape {s}", (draw(0, s),), first.attrs, True))
    else:
        for s, t in _BINARY:
            out.append(Case(f"generated: shapes {s} and {t}", (draw(0, s), draw(1, t)), first.attrs, True))
        if np.array_equal(np.sort(pools[0]), np.sort(pools[1])) or _same_domain(pools):
            x = draw(0, (2, 3))
            out.append(Case("generated: the same input twice", (x, x), first.attrs, True))
    return out


def _same_domain(pools: list) -> bool:
    return bool((pools[0] > 0).all() == (pools[1] > 0).all() and (pools[0] > 0).all())
