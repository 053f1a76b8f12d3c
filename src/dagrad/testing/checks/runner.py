"""``check_op`` and ``check_plugin``: run every check on every case and collect what failed into one report."""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from ...errors import HigherOrderError, PluginError
from ...opdef import Op
from ...plugins import PluginInfo, registry
from .cases import Case, SampleSource, cases_from, generated_cases, in_registry, resolve, who
from .numerics import check_float32, check_gradients, check_integer_inputs, check_mixed_precision
from .report import OpCheckFailure, OpCheckReport, Problem, Refused, indent, more_cases
from .rules import (check_dtype_rule, check_saves, check_shape_rule, check_unknown_sizes, check_vjp_structure,
                    run_forward, why_no_gradients)
from .second_order import check_graph_vjp, check_second_order

__all__ = ["OpCheckFailure", "OpCheckReport", "check_op", "check_plugin", "loaded_plugin"]


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
    dagrad.testing.OpCheckFailure: op 'cube' (not registered) failed 1 of 1 cases:
    ...
    """
    __tracebackhide__ = True  # pytest: show the explanation, not this frame
    op = resolve(op_or_name)
    rng = np.random.default_rng(seed)
    cases = cases_from(op, samples, rng)
    if not cases:
        raise OpCheckFailure(
            f"{who(op)} has nothing to check: it has no samples. Give it samples=... "
            f"(see dagrad.ops.samples) or pass samples= to check_op"
        )
    if generated:
        cases += generated_cases(op, cases, rng)
    report = OpCheckReport(op.name, op.plugin)
    problems = []
    with in_registry(op):
        for position, case in enumerate(cases):
            try:
                skipped = _check_case(op, case, seed, eps, atol, rtol, first=position == 0)
            except Refused:
                continue  # a generated shape the op's own rule turns down: nothing to check
            except Problem as problem:
                problems.append(f"  case {case.label!r}:\n" + indent(str(problem), 4))
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
        head = f"{who(op)} failed {len(problems)} of {len(cases)} cases:"
        raise OpCheckFailure("\n".join([head, *problems[:5], *more_cases(problems)]), problems)
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
    info = loaded_plugin(name)
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


def loaded_plugin(name: str) -> PluginInfo:
    """The registered plugin ``name``, which must have loaded; a ``PluginError`` says what is wrong otherwise."""
    reg = registry()
    info = reg.plugins.get(name)
    if info is None:
        known = ", ".join(sorted(reg.plugins)) or "none"
        raise PluginError(f"no plugin named {name!r} is registered (registered: {known})")
    if info.status != "loaded":
        raise PluginError(f"plugin {info.described} is {info.status}: {info.error}")
    return info


def _check_case(op: Op, case: Case, seed: int, eps: float, atol: float, rtol: float,
                first: bool = False) -> Optional[str]:
    """Every check of one case; returns why gradients were not checked, if they were not."""
    try:
        attrs = op.bind_attrs(case.attrs)
    except TypeError as exc:
        raise Problem(f"the case's attributes do not fit the op: {exc}") from None
    args = tuple(np.asarray(a) for a in case.args)
    args64 = tuple(a.astype(np.float64) if a.dtype.kind == "f" else a for a in args)
    if case.generated and op.shape_rule is not None:
        try:
            op.shape_rule(*[a.shape for a in args64], **attrs)
        except ValueError:
            raise Refused from None
    out, res = run_forward(op, args64, attrs)
    check_shape_rule(op, args64, attrs, out)
    check_unknown_sizes(op, args64, attrs, out)
    check_dtype_rule(op, args64, attrs, out)
    skipped = why_no_gradients(op, args64, out)
    if skipped:
        check_float32(op, case, args, attrs, seed, gradients=False)
        if first:
            check_integer_inputs(op, args64, attrs)
        return skipped
    try:
        check_vjp_structure(op, args64, attrs, out, res, seed)
    except HigherOrderError:
        return "its VJP raises HigherOrderError (it cannot be differentiated)"
    check_saves(op, args64, attrs, out, seed)
    check_gradients(op, case, args64, out, seed, eps, atol, rtol)
    check_float32(op, case, args, attrs, seed)
    check_mixed_precision(op, case, args, attrs, seed)
    if op.has_graph_vjp:
        check_graph_vjp(op, case, seed)
        check_second_order(op, case, seed, eps, atol, rtol)
    if first:
        check_integer_inputs(op, args64, attrs)
    return None
