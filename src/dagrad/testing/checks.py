"""``check_op`` and ``check_plugin``: everything that can be checked about an op, with explanations.

For every case (the op's samples, plus generated broadcasting and size-0/1
variants for elementwise ops) an op must: run forward; produce the shape its
shape rule promises and the dtype its dtype rule promises; keep its shape rule
honest about unknown sizes (with any one input size unknown, every size the
rule still claims must be the one any fed size gives); return one gradient per
input from its VJP, each of a shape the engine can sum back to its input, and
read only what its ``saves=`` keeps; match central differences in float64; run
on float32 inputs through a graph, keep float32 values and gradients; run on
mixed float32 and float64 inputs, give each input a gradient of its own dtype;
and, if its dtype rule makes it a float op of integer inputs, compute in that
float dtype. An op with a graph VJP must also agree with its numpy VJP through
``dagrad.grad`` (with static and with unknown sizes), and its second
derivatives must match central differences of its gradient; an op without one
gets a note, not a failure.

Ops whose output is not floating point (comparisons, integer results) or that
declare no VJP get every check but the gradient ones; the report says which
cases skipped gradients and why.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence, Union

import numpy as np

from ..autodiff import grad
from ..errors import DagradError, HigherOrderError, PluginError
from ..gradcheck import gradcheck, gradgradcheck, op_graph, projected_graph
from ..opdef import Op, Sample
from ..ops.samples import elementwise_samples
from ..plugins import registry
from ..scheduler.runtime import placeholder
from ..shapes import fits, format_shape
from .diagnose import format_index, format_value, likely_cause

__all__ = ["OpCheckFailure", "OpCheckReport", "check_op", "check_plugin"]

SampleSource = Union[Sequence[Sample], Callable[[np.random.Generator], Sequence[Sample]], None]


class OpCheckFailure(AssertionError):
    """An op failed ``check_op``; the message explains each problem like a compiler error.

    An ``AssertionError`` so that pytest shows it as a failed check, not as a
    crash. ``problems`` holds one message per failing case.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems)


@dataclass
class OpCheckReport:
    """What ``check_op`` checked: the op, the label of every case that passed, and notes.

    ``second_order`` is true when the op's graph VJP was checked too (against
    its numpy VJP, and its second derivatives against finite differences);
    ``notes`` says why not, for an op without a graph VJP.
    """

    op: str
    plugin: Optional[str]
    cases: list = field(default_factory=list)
    generated: int = 0
    no_gradients: dict = field(default_factory=dict)
    """Cases whose gradients were not checked: ``{label: reason}``."""
    second_order: bool = False
    notes: list = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"op {self.op!r} ({self.plugin or 'not registered'}): {len(self.cases)} cases passed "
            f"({len(self.cases) - self.generated} samples + {self.generated} generated)"
        )
        reasons: dict = {}
        for reason in self.no_gradients.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            cases = "all cases" if count == len(self.cases) else f"{count} case{'s' * (count != 1)}"
            text += f"; gradients not checked ({cases}): {reason}"
        if self.second_order:
            text += ", second derivatives too"
        return "".join([text, *(f"; note: {note}" for note in self.notes)])


@dataclass
class _Case:
    label: str
    args: tuple
    attrs: dict
    generated: bool = False


class _Problem(Exception):
    """One failed check of one case; the message is the explanation."""


class _Refused(Exception):
    """A generated case whose shapes the op's shape rule deliberately refuses (``ValueError``)."""


# ------------------------------------------------------------ entry points --


def check_op(
    op_or_name: Union[Op, str],
    *,
    samples: SampleSource = None,
    seed: int = 0,
    generated: bool = True,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
) -> OpCheckReport:
    """Check an op completely; raise ``OpCheckFailure`` explaining every failing case.

    Parameters
    ----------
    op_or_name
        The ``Op`` or the name of a registered op.
    samples
        Cases to check instead of the op's own ``samples``: a list of
        ``dagrad.Sample`` or a function ``rng -> list``.
    seed
        Seed of the random generator handed to ``samples`` and used for
        generated cases and projections.
    generated
        Also check generated broadcasting and size-0/1 variants of the first
        sample, when the op is elementwise (its shape rule broadcasts).
    eps, atol, rtol
        Finite-difference step and tolerance, as in ``dagrad.gradcheck``.

    Returns
    -------
    OpCheckReport
        The cases that passed.

    Raises
    ------
    OpCheckFailure
        Naming the op and plugin, the case, the input, the worst element with
        analytic and numeric values, and the likely cause.

    Examples
    --------
    >>> import numpy as np, dagrad as dg
    >>> from dagrad.testing import check_op
    >>> print(check_op("tanh"))
    op 'tanh' (builtins): 10 cases passed (5 samples + 5 generated), second derivatives too
    >>> @dg.op(shape=dg.shapes.same_as_first)
    ... def cube(x):
    ...     return x ** 3
    >>> @cube.vjp
    ... def _(g, x, out):
    ...     return (-3 * g * x ** 2,)
    >>> check_op(cube, samples=[dg.Sample((np.array([1.0, 2.0]),), label="two")], generated=False)
    Traceback (most recent call last):
    ...
    dagrad.testing.checks.OpCheckFailure: op 'cube' (not registered) failed 1 of 1 cases:
    ...
    """
    __tracebackhide__ = True  # pytest: show the explanation, not this frame
    op = _resolve(op_or_name)
    rng = np.random.default_rng(seed)
    cases = _cases_from(op, samples, rng)
    if not cases:
        raise OpCheckFailure(
            f"{_who(op)} has nothing to check: it has no samples. Give it samples=... "
            f"(see dagrad.ops.samples) or pass samples= to check_op"
        )
    if generated:
        cases += _generated_cases(op, cases, rng)
    report = OpCheckReport(op.name, op.plugin)
    problems = []
    with _in_registry(op):
        for position, case in enumerate(cases):
            try:
                skipped = _check_case(op, case, seed, eps, atol, rtol, first=position == 0)
            except _Refused:
                continue  # a generated shape the op's own rule turns down: nothing to check
            except _Problem as problem:
                problems.append(f"  case {case.label!r}:\n" + _indent(str(problem), 4))
                continue
            report.cases.append(case.label)
            report.generated += case.generated
            if skipped:
                report.no_gradients[case.label] = skipped
    checked_gradients = len(report.no_gradients) < len(report.cases)
    if op.differentiable and op.has_graph_vjp and checked_gradients:
        report.second_order = True
    elif op.differentiable and not op.has_graph_vjp:
        report.notes.append(f"no graph VJP: first derivatives only (add @{op.name}.graph_vjp for second ones)")
    if problems:
        head = f"{_who(op)} failed {len(problems)} of {len(cases)} cases:"
        raise OpCheckFailure("\n".join([head, *problems[:5], *_more(problems)]), problems)
    return report


def check_plugin(name: str, *, seed: int = 0, generated: bool = True) -> list[OpCheckReport]:
    """``check_op`` on every op the plugin ``name`` provides; one ``OpCheckFailure`` lists all failures.

    Examples
    --------
    >>> from dagrad.testing import check_plugin
    >>> check_plugin("no-such-plugin")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dagrad.errors.PluginError: no plugin named 'no-such-plugin' is registered (registered: ...)
    """
    __tracebackhide__ = True
    reg = registry()
    info = reg.plugins.get(name)
    if info is None:
        known = ", ".join(sorted(reg.plugins)) or "none"
        raise PluginError(f"no plugin named {name!r} is registered (registered: {known})")
    if info.status != "loaded":
        raise PluginError(f"plugin {name!r} is {info.status}: {info.error}")
    reports, failures = [], []
    for op_name in info.ops:
        if op_name in info.unused:
            failures.append(f"op {op_name!r} of plugin {name!r} cannot be used: {info.unused[op_name]}")
            continue
        try:
            reports.append(check_op(reg.op(op_name), seed=seed, generated=generated))
        except OpCheckFailure as exc:
            failures.append(str(exc))
    if failures:
        raise OpCheckFailure(f"plugin {name!r}: {len(failures)} op(s) failed\n" + "\n".join(failures), failures)
    return reports


# ------------------------------------------------------------------ cases --


def _resolve(op_or_name: Union[Op, str]) -> Op:
    if isinstance(op_or_name, Op):
        return op_or_name
    return registry().op(op_or_name)


@contextlib.contextmanager
def _in_registry(op: Op) -> Iterator[None]:
    """Make an op not yet registered runnable in graphs for the duration of the check."""
    reg = registry()
    present = reg.ops.get(op.name)
    if present is op:
        yield
        return
    if present is not None and not op.override:
        raise OpCheckFailure(
            f"{_who(op)} cannot be checked: a different op named {op.name!r} is registered by plugin "
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


def _who(op: Op) -> str:
    return f"op {op.name!r} ({op.plugin or 'not registered'})"


def _cases_from(op: Op, samples: SampleSource, rng: np.random.Generator) -> list:
    if samples is None:
        if op.samples is not None:
            samples = op.samples(rng)
        elif op.arity in (1, 2) and not op.attr_defaults:
            samples = elementwise_samples(op.arity)(rng)
        else:
            samples = []
    elif callable(samples):
        samples = samples(rng)
    return [_Case(s.label or f"sample {i}", tuple(s.args), dict(s.attrs)) for i, s in enumerate(samples)]


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


def _generated_cases(op: Op, cases: list, rng: np.random.Generator) -> list:
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
            out.append(_Case(f"generated: shape {s}", (draw(0, s),), first.attrs, True))
    else:
        for s, t in _BINARY:
            out.append(_Case(f"generated: shapes {s} and {t}", (draw(0, s), draw(1, t)), first.attrs, True))
        if np.array_equal(np.sort(pools[0]), np.sort(pools[1])) or _same_domain(pools):
            x = draw(0, (2, 3))
            out.append(_Case("generated: the same input twice", (x, x), first.attrs, True))
    return out


def _same_domain(pools: list) -> bool:
    return bool((pools[0] > 0).all() == (pools[1] > 0).all() and (pools[0] > 0).all())


# ----------------------------------------------------------------- checks --


def _check_case(op: Op, case: _Case, seed: int, eps: float, atol: float, rtol: float,
                first: bool = False) -> Optional[str]:
    """Every check of one case; returns why gradients were not checked, if they were not."""
    try:
        attrs = op.bind_attrs(case.attrs)
    except TypeError as exc:
        raise _Problem(f"the case's attributes do not fit the op: {exc}") from None
    args = tuple(np.asarray(a) for a in case.args)
    args64 = tuple(a.astype(np.float64) if a.dtype.kind == "f" else a for a in args)
    if case.generated and op.shape_rule is not None:
        try:
            op.shape_rule(*[a.shape for a in args64], **attrs)
        except ValueError:
            raise _Refused from None
    out, res = _run_forward(op, args64, attrs)
    _check_shape_rule(op, args64, attrs, out)
    _check_unknown_sizes(op, args64, attrs, out)
    _check_dtype_rule(op, args64, attrs, out)
    skipped = _why_no_gradients(op, args64, out)
    if skipped:
        _check_float32(op, case, args, attrs, seed, gradients=False)
        if first:
            _check_integer_inputs(op, args64, attrs)
        return skipped
    try:
        _check_vjp_structure(op, args64, attrs, out, res, seed)
    except HigherOrderError:
        return "its VJP raises HigherOrderError (it cannot be differentiated)"
    _check_saves(op, args64, attrs, out, seed)
    _check_gradients(op, case, args64, out, seed, eps, atol, rtol)
    _check_float32(op, case, args, attrs, seed)
    _check_mixed_precision(op, case, args, attrs, seed)
    if op.has_graph_vjp:
        _check_graph_vjp(op, case, seed)
        _check_second_order(op, case, seed, eps, atol, rtol)
    if first:
        _check_integer_inputs(op, args64, attrs)
    return None


def _why_no_gradients(op: Op, args: tuple, out: np.ndarray) -> Optional[str]:
    """Why this case has no gradient to check, or None if it has one."""
    if out.dtype.kind not in "fc":
        return f"the output is {out.dtype}, and the engine never differentiates a non-float node"
    if not op.differentiable:
        return "the op declares no VJP (a gradient asked through it is a GraphError naming the node)"
    if not any(a.dtype.kind == "f" for a in args):
        return "no input is floating point"
    return None


def _run_forward(op: Op, args: tuple, attrs: dict):
    try:
        out = op.forward(*args, **attrs)
    except Exception as exc:  # noqa: BLE001 - any exception is the op's
        raise _Problem(f"the forward raised {type(exc).__name__}: {exc}\n  inputs: {_describe(args)}") from None
    res = None
    if op.residuals:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise _Problem(
                "the op is declared residuals=True, so its forward must return (output, residuals); "
                f"it returned {type(out).__name__}"
            )
        out, res = out
    return np.asarray(out), res


def _check_shape_rule(op: Op, args: tuple, attrs: dict, out: np.ndarray) -> None:
    if op.shape_rule is None:
        return
    shapes = [a.shape for a in args]
    try:
        declared = tuple(op.shape_rule(*shapes, **attrs))
    except Exception as exc:  # noqa: BLE001
        raise _Problem(
            f"the shape rule refused input shapes {_shapes(shapes)} that the forward accepts: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if declared != out.shape:
        raise _Problem(
            f"the shape rule says {format_shape(declared)} for inputs {_shapes(shapes)}, "
            f"but the forward returned {format_shape(out.shape)}\n"
            f"  likely cause: the rule's arithmetic differs from the forward's (off by one in a size "
            f"formula, a forgotten keepdims or attribute)"
        )


# Sizes tried in place of an unknown one: a rule's claim about the output must hold for all it accepts.
_FED_SIZES = (0, 1, 2, 3, 5, 8)


def _check_unknown_sizes(op: Op, args: tuple, attrs: dict, out: np.ndarray) -> None:
    """With any one input size unknown (``None``), the rule must not claim what a fed size would change.

    For each input axis in turn the size becomes ``None``: the rule may refuse
    (``ValueError``) or return a shape that fits the real output, and every
    size it still states must be what the rule itself gives for each fed size
    it accepts (``x[:3]`` on an unknown axis is not 3 long: it is shorter when
    fed fewer than 3; ``squeeze()`` cannot know whether an unknown axis goes).
    """
    if op.shape_rule is None:
        return
    shapes = [tuple(a.shape) for a in args]
    for i, shape in enumerate(shapes):
        for k, size in enumerate(shape):
            unknown = _with_size(shapes, i, k, None)
            try:
                claimed = tuple(op.shape_rule(*unknown, **attrs))
            except ValueError:
                continue  # a deliberate refusal; the graph reports it as a ShapeError
            except Exception as exc:  # noqa: BLE001
                raise _Problem(
                    f"the shape rule fails when a size is unknown (inputs {_shapes(unknown)}): "
                    f"{type(exc).__name__}: {exc}\n"
                    f"  likely cause: arithmetic on a None dimension; return None for sizes that depend on unknown ones"
                ) from None
            if not fits(out.shape, claimed):
                raise _Problem(
                    f"with a size unknown (inputs {_shapes(unknown)}) the shape rule says {format_shape(claimed)}, "
                    f"which does not fit the real output {format_shape(out.shape)}"
                )
            for fed in _FED_SIZES:
                if fed == size:
                    continue
                try:
                    concrete = tuple(op.shape_rule(*_with_size(shapes, i, k, fed), **attrs))
                except Exception:  # noqa: BLE001 - a size the rule refuses need not agree with anything
                    continue
                if not fits(concrete, claimed):
                    raise _Problem(
                        f"with input {i}'s axis {k} unknown (inputs {_shapes(unknown)}) the shape rule claims "
                        f"{format_shape(claimed)}, but for a fed size of {fed} it says {format_shape(concrete)}\n"
                        f"  likely cause: a size that depends on an unknown one is stated; it must be None "
                        f"(or, if the op cannot know its output's rank, the rule must refuse with a ValueError "
                        f"asking for what it needs)"
                    )


def _with_size(shapes: list, i: int, k: int, size) -> list:
    changed = list(shapes)
    changed[i] = shapes[i][:k] + (size,) + shapes[i][k + 1:]
    return changed


def _check_dtype_rule(op: Op, args: tuple, attrs: dict, out: np.ndarray) -> None:
    try:
        declared = np.dtype(op.dtype_rule(*[a.dtype for a in args], **attrs))
    except Exception as exc:  # noqa: BLE001
        raise _Problem(f"the dtype rule raised {type(exc).__name__}: {exc}") from None
    if declared != out.dtype:
        raise _Problem(
            f"the dtype rule says {declared} for inputs {[str(a.dtype) for a in args]}, "
            f"but the forward returned {out.dtype}"
        )


def _check_vjp_structure(op: Op, args: tuple, attrs: dict, out: np.ndarray, res, seed: int) -> None:
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype, copy=False)
    saved_out = out if "out" in op.saves else None
    try:
        grads = op.call_vjp(g, list(args), saved_out, res, attrs)
    except HigherOrderError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _Problem(f"the VJP raised {type(exc).__name__}: {exc}\n  inputs: {_describe(args)}") from None
    n = len(args)
    if not isinstance(grads, (tuple, list)) or len(grads) != n:
        got = f"{len(grads)} values" if isinstance(grads, (tuple, list)) else f"a bare {type(grads).__name__}"
        hint = " (return a 1-tuple: `return (grad,)`)" if n == 1 and isinstance(grads, np.ndarray) else ""
        raise _Problem(f"the VJP must return a tuple of one gradient (or None) per input, {n} in all; "
                       f"it returned {got}{hint}")
    for i, (gi, a) in enumerate(zip(grads, args)):
        if gi is None:
            continue
        gi = np.asarray(gi)
        if gi.shape != a.shape and not _sums_to(gi.shape, a.shape):
            raise _Problem(
                f"the VJP's gradient for input {i} has shape {format_shape(gi.shape)}, but the input has shape "
                f"{format_shape(a.shape)} (and the engine cannot sum it back to that)\n"
                f"  likely cause: a broadcast reduced over the wrong axes, or dropped dims: return the natural "
                f"gradient (of the output's shape for a broadcast input) and let the engine sum it, "
                f"or reduce with keepdims=True"
            )


def _check_saves(op: Op, args: tuple, attrs: dict, out: np.ndarray, seed: int) -> None:
    """The VJP must read only what ``saves=`` keeps: in a graph, the rest reaches it as NaN stand-ins.

    The VJP runs once on everything and once as the engine calls it (unsaved
    inputs replaced by NaN placeholders, an unsaved output by None); if the two
    disagree, the op's ``saves=`` is wrong, and that, not the calculus, is the bug.
    """
    if {"inputs", "out"} <= op.saves:
        return
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype, copy=False)

    def vjp(inputs_saved: bool, out_saved: bool):
        res = _run_forward(op, args, attrs)[1]  # fresh residuals: a VJP may consume them in place
        inputs = list(args) if inputs_saved else [placeholder(a.shape, a.dtype) for a in args]
        return op.call_vjp(g, inputs, out if out_saved else None, res, attrs)

    full = vjp(True, True)
    for inputs_saved, out_saved, what, fix in (
        ("inputs" in op.saves, True, "its inputs", "inputs"),
        (True, "out" in op.saves, "its output (out)", "out"),
    ):
        if inputs_saved and out_saved:
            continue
        try:
            grads = vjp(inputs_saved, out_saved)
            same = all(
                (a is None) == (b is None) and (a is None or np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
                for a, b in zip(full, grads)
            )
        except Exception:  # noqa: BLE001 - failing without the unsaved value is the same finding
            same = False
        if not same:
            declared = tuple(sorted(op.saves))
            raise _Problem(
                f"the VJP reads {what}, but the op declares saves={declared!r}, so in a graph it sees "
                f"NaN stand-ins (or out=None) and its gradients are wrong\n"
                f"  likely cause: saves=: declare saves={tuple(sorted(op.saves | {fix}))!r}"
            )


def _sums_to(shape: tuple, target: tuple) -> bool:
    """Whether the engine can sum a gradient of ``shape`` back to ``target`` (numpy broadcasting)."""
    lead = len(shape) - len(target)
    return lead >= 0 and all(d == t or t == 1 for d, t in zip(shape[lead:], target))


def _check_gradients(op, case, args64, out, seed, eps, atol, rtol) -> None:
    try:
        report = gradcheck(op, *case.args, eps=eps, atol=atol, rtol=rtol, seed=seed, attrs=case.attrs)
    except DagradError as exc:
        raise _Problem(f"running the op in a float64 graph failed: {exc}") from None
    if report.ok:
        return
    numerics = {_index_of(c.name): c.numeric for c in report.checks}
    lines = []
    for check in report.checks:
        if check.ok:
            continue
        i = _index_of(check.name)
        idx = check.worst_index
        a, n = check.analytic[idx], check.numeric[idx]
        ratio = np.abs(check.analytic - check.numeric) / (atol + rtol * np.abs(check.numeric))
        bad = float(np.mean(~(ratio <= 1.0)))
        cause = likely_cause(
            check.analytic, check.numeric, input_index=i, others=numerics,
            input_shape=args64[i].shape, out_shape=out.shape, bad_fraction=bad,
        )
        lines.append(
            f"gradient of input {i} ({args64[i].dtype}{format_shape(args64[i].shape)}) is wrong at "
            f"{bad:.0%} of its entries\n"
            f"  worst element: input{i}{format_index(idx)}: analytic {format_value(a)}, numeric {format_value(n)} "
            f"(error {abs(a - n):.3g}, {check.worst_ratio:.3g}x the tolerance)\n"
            f"  likely cause: {cause}"
        )
    raise _Problem("\n".join(lines))


def _index_of(check_name: str) -> int:
    return int(check_name.removeprefix("input"))


def _check_float32(op: Op, case: _Case, args: tuple, attrs: dict, seed: int, gradients: bool = True) -> None:
    """Run the op on float32 inputs through a tiny graph: values (and gradients) must stay float32.

    Without ``gradients`` (an op with a bool or integer output, or no VJP) only
    the forward runs, and its value must have the dtype the rule declares.
    """
    if not any(a.dtype.kind == "f" for a in args) or "dtype" in op.attr_defaults:
        return
    all_float = all(a.dtype.kind == "f" for a in args)
    try:
        g, out, loss, params = projected_graph(op, args, case.attrs, dtype=np.float32,
                                               keys=[id(raw) for raw in case.args], seed=seed)
        declared = g.node(out).dtype
        if gradients and declared != np.float32 and all_float:
            raise _Problem(
                f"float32 inputs give a {declared} output (by the dtype rule): an op should preserve float32; "
                f"use dagrad.op.float_dtype or first_dtype as the dtype rule"
            )
        result = g.backward(loss, wrt=params, keep="all") if gradients else g.forward(out)
    except _Problem:
        raise
    except DagradError as exc:
        raise _Problem(f"run on float32 inputs: {exc}") from None
    value = result.value(out)
    if value.dtype != declared:
        raise _Problem(
            f"float32 inputs: the dtype rule says {declared}, but the forward returned {value.dtype}"
        )
    if not gradients:
        return
    if value.dtype != np.float32 and all_float:
        raise _Problem(
            f"float32 inputs give a {value.dtype} output: the forward promotes to float64 somewhere "
            f"(a float64 constant or np.float64 scalar); cast with .astype(x.dtype, copy=False)"
        )
    for name in params:
        grad = result.grad(name)
        if grad.dtype != np.float32:
            raise _Problem(f"float32 inputs give a {grad.dtype} gradient for {name!r}: the VJP promotes to float64")


def _check_mixed_precision(op: Op, case: _Case, args: tuple, attrs: dict, seed: int) -> None:
    """Float32 and float64 inputs together: the output has the declared dtype, each gradient its input's.

    The engine casts a gradient that numpy's promotion widened back to its
    input's dtype, but a VJP that returns float64 for a float32 input of a
    float32 output (it mixed in a float64 input) is a ``GradientError``.
    """
    keys = [id(raw) for raw in case.args]
    floats = [k for i, k in enumerate(keys) if args[i].dtype.kind == "f"]
    distinct = list(dict.fromkeys(floats))
    if len(distinct) < 2 or "dtype" in op.attr_defaults:
        return
    for narrow in (distinct[:1], distinct[1:]):
        mixed = tuple(
            a.astype(np.float32 if k in narrow else np.float64) if a.dtype.kind == "f" else a
            for a, k in zip(args, keys)
        )
        described = ", ".join(f"input{i} {a.dtype}" for i, a in enumerate(mixed) if a.dtype.kind == "f")
        try:
            g, out, loss, params = projected_graph(op, mixed, case.attrs, dtype=None, keys=keys, seed=seed)
            result = g.backward(loss, wrt=params, keep="all")
        except DagradError as exc:
            raise _Problem(
                f"mixed precision ({described}): {exc}\n"
                f"  likely cause: the VJP mixes an input of another dtype into a gradient; "
                f"cast each gradient to its input's dtype (.astype(x.dtype, copy=False))"
            ) from None
        value = result.value(out)
        if value.dtype != g.node(out).dtype:
            raise _Problem(
                f"mixed precision ({described}): the dtype rule says {g.node(out).dtype}, "
                f"but the forward returned {value.dtype}"
            )
        for name in params:
            want = g.node(name).dtype
            if result.grad(name).dtype != want:
                raise _Problem(f"mixed precision ({described}): the gradient of {name!r} is "
                               f"{result.grad(name).dtype}, its value {want}")


# Small integer dtypes numpy would compute a float function of in float16 or float32.
_SMALL_INTEGERS = ("bool", "uint8", "int8", "int16")


def _small_integers(a: np.ndarray, dtype: str) -> np.ndarray:
    """Whole numbers (up to 12: exp(12) overflows float16) of ``dtype`` from a float sample's values."""
    a = np.clip(np.nan_to_num(a), -1.5, 1.5)
    if dtype == "bool":
        return a > 0
    whole = np.round(a * 8)
    return (np.abs(whole) if dtype == "uint8" else whole).astype(dtype)


def _check_integer_inputs(op: Op, args: tuple, attrs: dict) -> None:
    """A float op of small-integer inputs computes in the float dtype it declares, not in float16.

    numpy computes ``exp`` of ``uint8`` in float16 (inf at 12) and of ``int16``
    in float32; an op whose dtype rule declares float64 for them must compute
    in float64 (``float_inputs=True`` does it).
    """
    if not any(a.dtype.kind == "f" for a in args):
        return
    for small in _SMALL_INTEGERS:
        ints = tuple(_small_integers(a, small) if a.dtype.kind == "f" else a for a in args)
        try:
            declared = np.dtype(op.dtype_rule(*[a.dtype for a in ints], **attrs))
        except (TypeError, ValueError):
            continue  # the op refuses integer inputs: nothing to compute
        if declared.kind not in "fc":
            if small == "bool":
                continue  # arithmetic on bools is numpy's patchwork (x**3 is int64, -x refused); the run checks it
            with np.errstate(all="ignore"):
                out, _ = _run_forward(op, ints, attrs)
            if out.dtype != declared:  # integer results: the dtype rule must still say what numpy gives
                cause = ("the forward computes in floating point: use the float_dtype rule (the float_unary_op "
                         "and float_binary_op presets)" if out.dtype.kind in "fc" else
                         "numpy widens small integers in some operations (sums, products); make the dtype rule "
                         "follow it (dagrad.extend.ufunc_dtype gives numpy's own resolution)")
                raise _Problem(
                    f"{small} inputs: the dtype rule says {declared}, but the forward returned {out.dtype}\n"
                    f"  likely cause: {cause}"
                )
            continue
        with np.errstate(all="ignore"):
            out, _ = _run_forward(op, ints, attrs)
            exact, _ = _run_forward(op, tuple(a.astype(np.float64) if a.dtype.kind in "biu" and b.dtype.kind == "f"
                                              else a for a, b in zip(ints, args)), attrs)
        if out.dtype != declared:
            raise _Problem(
                f"{small} inputs: the dtype rule says {declared}, but the forward returned {out.dtype}\n"
                f"  likely cause: numpy computes a float function of small integers in float16/float32; "
                f"declare the op float_inputs=True (the float presets do) or cast the inputs first"
            )
        if out.shape != exact.shape or not np.allclose(out, exact.astype(out.dtype), rtol=1e-6, atol=0, equal_nan=True):
            raise _Problem(
                f"{small} inputs give other values than the same numbers as float64 "
                f"(for example {format_value(out.reshape(-1)[0]) if out.size else '-'} against "
                f"{format_value(exact.reshape(-1)[0]) if exact.size else '-'})\n"
                f"  likely cause: the forward computes in a narrower dtype than it declares; "
                f"declare the op float_inputs=True"
            )


def _check_graph_vjp(op: Op, case: _Case, seed: int) -> None:
    """``dagrad.grad`` through the op's graph VJP must give the numpy VJP's numbers, with static and unknown sizes."""
    keys = [id(raw) for raw in case.args]
    for fed in (False, True):
        sizes = "with unknown sizes, " if fed else ""
        try:
            g, out, names, feeds = op_graph(op, case.args, case.attrs, keys=keys, fed=fed)
        except DagradError as exc:
            if fed:
                continue  # the rule turns down unknown sizes; the shape-rule check judges that
            raise _Problem(f"building a graph of the op failed: {exc}") from None
        if not names or out.dtype.kind != "f":
            return
        try:
            value = g.forward(out, feeds).value(out)
            if out.shape is not None and not fits(value.shape, out.shape):
                continue  # the shape rule is wrong for unknown sizes; the shape-rule check reports that
            cotangent = g.const(np.random.default_rng(seed).standard_normal(value.shape), name="cotangent")
            built = grad(out, [g[n] for n in names], cotangent=cotangent)
            got = g.forward(built, feeds)
            expected = g.backward((out * cotangent).sum(), feeds, wrt=names, keep="wrt")
        except DagradError as exc:
            raise _Problem(f"dagrad.grad through its graph VJP, {sizes}failed: {exc}") from None
        for name, tensor in zip(names, built):
            a, b = got.value(tensor), expected.grad(name)
            i = _index_of(name)
            if a.shape != b.shape:
                raise _Problem(
                    f"{sizes}the graph VJP's gradient of input {i} has shape {format_shape(a.shape)}, "
                    f"the numpy VJP's {format_shape(b.shape)}"
                )
            if a.size and not np.allclose(a, b, rtol=1e-7, atol=1e-9, equal_nan=True):
                idx = np.unravel_index(int(np.nanargmax(np.abs(a - b))), a.shape) if a.ndim else ()
                raise _Problem(
                    f"{sizes}the graph VJP disagrees with the numpy VJP for input {i}\n"
                    f"  worst element: input{i}{format_index(idx)}: graph VJP {format_value(a[idx])}, "
                    f"numpy VJP {format_value(b[idx])}\n"
                    f"  likely cause: the two rules compute different maths, or the graph rule misses a "
                    f"case the numpy rule handles (a tie, a zero, keepdims)"
                )


def _check_second_order(op: Op, case: _Case, seed: int, eps: float, atol: float, rtol: float) -> None:
    """Second derivatives, built by ``dagrad.grad`` from the graph VJP, against differences of the gradient."""
    try:
        report = gradgradcheck(op, *case.args, attrs=case.attrs, eps=eps, atol=atol, rtol=rtol, seed=seed)
    except DagradError as exc:
        raise _Problem(f"differentiating its graph VJP again failed: {exc}") from None
    if report.ok:
        return
    lines = []
    for check in report.checks:
        if check.ok:
            continue
        idx = check.worst_index
        what = "the cotangent" if check.name == "cotangent" else f"input {_index_of(check.name)}"
        lines.append(
            f"second derivatives with respect to {what} are wrong\n"
            f"  worst element: {check.name}{format_index(idx)}: dagrad.grad twice {format_value(check.analytic[idx])}, "
            f"differences of the gradient {format_value(check.numeric[idx])} ({check.worst_ratio:.3g}x the tolerance)\n"
            f"  likely cause: the graph VJP uses a value (an input, out, a mask) in a way that is right as a "
            f"number but not as a function of the inputs; or an op it builds on has a wrong graph VJP"
        )
    raise _Problem("\n".join(lines))


# -------------------------------------------------------------- formatting --


def _describe(args: tuple) -> str:
    return ", ".join(f"{a.dtype}{format_shape(a.shape)}" for a in args)


def _shapes(shapes) -> str:
    return ", ".join(format_shape(s) for s in shapes)


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def _more(problems: list) -> list:
    return [f"  ... and {len(problems) - 5} more failing cases"] if len(problems) > 5 else []
