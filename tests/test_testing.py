"""dagrad.testing: check_op finds broken ops and explains them like a compiler error."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

import dagrad as dg
from dagrad.shapes import elementwise, same_as_first
from dagrad.testing import OpCheckFailure, check_op, check_plugin, likely_cause, op_tests

pytest_plugins = ["pytester"]

X = np.array([[0.5, -1.2, 2.0], [1.5, 0.7, -0.4]])


def unary(forward, vjp, **kw):
    op = dg.op(shape=same_as_first, saves=("inputs",), **kw)(forward)
    op.vjp(vjp)
    return op


def failure_of(op, **kw) -> str:
    with pytest.raises(OpCheckFailure) as info:
        check_op(op, samples=kw.pop("samples", [dg.Sample((X,), {}, "a 2x3 matrix")]), **kw)
    return str(info.value)


def cube(x):
    return x ** 3


# ---------------------------------------------------- what a failure says --


def test_a_wrong_sign_is_explained_with_op_case_input_worst_element_and_values():
    message = failure_of(unary(cube, lambda g, x, out: (-3 * g * x ** 2,)), generated=False)
    assert "op 'cube' (not registered) failed 1 of 1 cases" in message
    assert "case 'a 2x3 matrix'" in message
    assert "gradient of input 0 (float64(2, 3)) is wrong" in message
    assert "worst element: input0[" in message and "analytic " in message and "numeric " in message
    assert "likely cause: wrong sign" in message


def test_a_factor_of_two_is_named():
    message = failure_of(unary(cube, lambda g, x, out: (6 * g * x ** 2,)), generated=False)
    assert "off by a constant factor: 2x" in message


def test_a_zero_gradient_is_named():
    message = failure_of(unary(cube, lambda g, x, out: (None,)), generated=False)
    assert "zero gradient" in message and "None" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_in_the_vjp_is_named():
    message = failure_of(unary(cube, lambda g, x, out: (g * x / 0.0 * 0.0,)), generated=False)
    assert "NaN/Inf" in message


def test_gradients_returned_in_the_wrong_order_are_named():
    @dg.op(shape=elementwise, saves=("inputs",))
    def times(x, y):
        return x * y

    @times.vjp
    def _(g, x, y, out):
        return g * x, g * y        # swapped

    message = failure_of(times, samples=[dg.Sample((X, X[::-1] + 3.0), {}, "two matrices")], generated=False)
    assert "wrong order" in message and "input 1" in message


def test_a_transposed_gradient_is_named():
    @dg.op(shape=lambda a, b: (a[0], b[1]), saves=("inputs",))
    def mm(a, b):
        return a @ b

    @mm.vjp
    def _(g, a, b, out):
        return (g @ b.T).T, a.T @ g   # ga transposed (square, so the shapes still fit)

    a, b = np.arange(1.0, 10.0).reshape(3, 3), np.array([[0.3, -1.0, 2.0], [1.0, 0.5, -0.2], [0.1, 0.9, 1.1]])
    message = failure_of(mm, samples=[dg.Sample((a, b), {}, "3x3 @ 3x3")], generated=False)
    assert "transposed" in message


def test_a_mean_instead_of_a_sum_over_broadcast_axes_is_named():
    @dg.op(shape=elementwise, saves=())
    def plus(x, b):
        return x + b

    @plus.vjp
    def _(g, x, b, out):
        return g, g.mean(axis=0, keepdims=True)

    message = failure_of(plus, samples=[dg.Sample((X, X[:1] * 2), {}, "bias row")], generated=False)
    assert "broadcast 2-fold" in message and "SUM of g" in message


def test_a_gradient_the_engine_cannot_sum_back_is_explained():
    @dg.op(shape=elementwise, saves=())
    def plus(x, b):
        return x + b

    @plus.vjp
    def _(g, x, b, out):
        return g, g.sum(axis=1)       # wrong axis: (2,) cannot become (1, 3)

    message = failure_of(plus, samples=[dg.Sample((X, X[:1]), {}, "bias row")], generated=False)
    assert "gradient for input 1 has shape (2,), but the input has shape (1, 3)" in message


def test_a_wrong_shape_rule_is_caught_against_the_real_output():
    op = dg.op(shape=lambda x: (x[0],), saves=("inputs",))(cube)
    op.vjp(lambda g, x, out: (3 * g * x ** 2,))
    message = failure_of(op, generated=False)
    assert "the shape rule says (2,) for inputs (2, 3), but the forward returned (2, 3)" in message


def test_a_vjp_must_return_one_gradient_per_input():
    @dg.op(shape=elementwise)
    def times(x, y):
        return x * y

    times.vjp(lambda g, x, y, out: (g * y,))
    message = failure_of(times, samples=[dg.Sample((X, X), {}, "pair")], generated=False)
    assert "one gradient (or None) per input, 2 in all; it returned 1 values" in message


def test_float64_constants_that_promote_float32_are_caught():
    promoting = unary(lambda x: x * np.float64(2.0), lambda g, x, out: (g * 2.0,))
    promoting.name = "double"
    message = failure_of(promoting, generated=False)
    assert "float32" in message and "float64" in message


def test_an_op_without_samples_is_a_failure_not_a_silent_pass():
    @dg.op(shape=same_as_first)
    def scaled(x, *, k=1.0):
        return k * x

    with pytest.raises(OpCheckFailure, match="nothing to check"):
        check_op(scaled)


def test_likely_cause_falls_back_to_the_formula_when_nothing_matches():
    numeric = np.array([1.0, 2.0, 3.0])
    assert "derivative formula" in likely_cause(np.array([1.0, -5.0, 0.5]), numeric, input_index=0)


def test_a_shape_rule_that_states_a_size_depending_on_an_unknown_one_is_caught():
    # The class of issue 8.15's slicing bug: x[:3] on an unknown axis claimed 3 entries.
    def first3_rule(x):
        return (3 if x[0] is None else min(3, x[0]),) + tuple(x[1:])

    op = dg.op(shape=first3_rule, saves=())(lambda x: x[:3])
    op.name = "first3"
    op.vjp(lambda g, x: (np.concatenate([g, np.zeros((x.shape[0] - g.shape[0],) + x.shape[1:], g.dtype)]),))
    message = failure_of(op, samples=[dg.Sample((np.ones((4, 2)),), {}, "4 rows")], generated=False)
    assert "with input 0's axis 0 unknown (inputs (?, 2)) the shape rule claims (3, 2)" in message
    assert "for a fed size of 0 it says (0, 2)" in message


def test_a_shape_rule_that_cannot_know_the_rank_must_refuse_an_unknown_size():
    # The class of issue 8.15's squeeze bug: numpy drops an unknown axis if it is fed as 1.
    op = dg.op(shape=lambda x: tuple(d for d in x if d != 1), saves=())(lambda x: np.squeeze(x))
    op.name = "squeeze_all"
    op.vjp(lambda g, x: (g.reshape(x.shape),))
    message = failure_of(op, samples=[dg.Sample((np.ones((2, 3)),), {}, "2x3")], generated=False)
    assert "for a fed size of 1 it says (3,)" in message


def test_a_vjp_that_mixes_a_float64_input_into_a_float32_gradient_is_caught():
    @dg.op(shape=elementwise, dtype=dg.extend.first_dtype, saves=("inputs",))
    def scaled(x, s):
        return (x * s).astype(x.dtype)

    @scaled.vjp
    def _(g, x, s):
        return g * s, g * x             # g * s is float64 when s is

    message = failure_of(scaled, samples=[dg.Sample((X, X[:1] + 2), {}, "pair")], generated=False)
    assert "mixed precision (input0 float32, input1 float64)" in message
    assert "returned a float64 gradient for input 0" in message


def test_a_float_op_that_computes_small_integers_in_float16_is_caught():
    op = dg.op(shape=same_as_first, dtype=dg.extend.float_dtype, saves=("out",))(lambda x: np.exp(x))
    op.name = "exp_without_float_inputs"
    op.vjp(lambda g, x, out: (g * out,))
    message = failure_of(op, generated=False)
    assert "bool inputs: the dtype rule says float64, but the forward returned float16" in message
    assert "float_inputs=True" in message


# --------------------------------------------------------- graph VJPs --


def cube_with_graph_vjp(rule):
    op = unary(cube, lambda g, x: (3 * g * x ** 2,))
    op.graph_vjp(rule)
    return op


def test_a_graph_vjp_that_disagrees_with_the_numpy_vjp_is_named():
    message = failure_of(cube_with_graph_vjp(lambda g, x: (3 * g * x,)), generated=False)
    assert "the graph VJP disagrees with the numpy VJP for input 0" in message
    assert "graph VJP " in message and "numpy VJP " in message


def test_a_graph_vjp_built_on_an_op_with_a_wrong_vjp_fails_the_second_order_check():
    ok = check_op(cube_with_graph_vjp(lambda g, x: (3 * g * x * x,)), samples=[dg.Sample((X,), {}, "m")])
    assert ok.second_order and "second derivatives too" in str(ok)

    @dg.op(shape=same_as_first, saves=("inputs",), name="square_with_wrong_vjp")
    def square(x):
        return x * x

    square.vjp(lambda g, x: (g * x,))             # should be 2 g x: wrong only to the second order of cube
    try:
        dg.register_ops(square, plugin="wrong-square")
        message = failure_of(cube_with_graph_vjp(lambda g, x: (3 * g * square(x),)), generated=False)
    finally:
        dg.load_plugins()
    assert "second derivatives with respect to input 0 are wrong" in message
    assert "dagrad.grad twice" in message and "differences of the gradient" in message


def test_an_op_without_a_graph_vjp_passes_with_a_note():
    report = check_op(unary(cube, lambda g, x: (3 * g * x ** 2,)), samples=[dg.Sample((X,), {}, "m")])
    assert not report.second_order
    assert "note: no graph VJP" in str(report) and "@cube.graph_vjp" in str(report)


# -------------------------------------------------- what passes, and how --


def test_a_correct_op_passes_on_its_samples_and_generated_shapes():
    report = check_op(unary(cube, lambda g, x, out: (3 * g * x ** 2,)), samples=[dg.Sample((X,), {}, "m")])
    assert report.generated == 5 and len(report.cases) == 6
    assert "6 cases passed (1 samples + 5 generated)" in str(report)


def test_an_op_with_a_bool_output_is_checked_without_gradients_saying_why():
    report = check_op("less")
    assert report.cases and set(report.no_gradients) == set(report.cases)
    assert "gradients not checked (all cases): the output is bool" in str(report)


def test_an_op_with_an_integer_output_and_a_vjp_is_checked_without_gradients():
    @dg.op(shape=same_as_first, dtype=lambda x: np.dtype("int64"), saves=())
    def rounded(x):
        return np.round(x).astype(np.int64)

    rounded.vjp(lambda g, x: (np.zeros(x.shape),))
    report = check_op(rounded, samples=[dg.Sample((X,), {}, "m")])
    assert "gradients not checked (all cases): the output is int64" in str(report)
    wrong = dg.op(shape=same_as_first, saves=())(lambda x: x > 0)  # declares float64 (promotion), returns bool
    wrong.name = "positive"
    assert "the dtype rule says float64 for inputs ['float64'], but the forward returned bool" in failure_of(wrong)


def test_an_op_without_a_vjp_is_checked_for_everything_else():
    op = dg.op(shape=same_as_first, dtype=dg.extend.float_dtype, float_inputs=True)(lambda x: np.floor(x))
    op.name = "floor_no_vjp"
    report = check_op(op, samples=[dg.Sample((X,), {}, "m")])
    assert "gradients not checked (all cases): the op declares no VJP" in str(report)


def test_generated_cases_cover_broadcasting_scalars_and_size_zero():
    report = check_op("mul")
    labels = " ".join(report.cases)
    assert "(3, 1) and (4,)" in labels and "() and (2, 3)" in labels and "(0, 3)" in labels


def test_check_plugin_checks_every_op_of_a_plugin_and_names_the_plugin_in_failures():
    bad = unary(cube, lambda g, x, out: (-3 * g * x ** 2,), samples=lambda rng: [dg.Sample((X,), {}, "m")])
    good = unary(lambda x: 2 * x, lambda g, x, out: (2 * g,), name="twice", samples=lambda rng: [dg.Sample((X,))])
    bad.name = "cube_wrong_sign"
    try:
        dg.register_ops(bad, good, plugin="demo-broken")
        with pytest.raises(OpCheckFailure) as info:
            check_plugin("demo-broken")
        assert "plugin 'demo-broken': 1 op(s) failed" in str(info.value)
        assert "op 'cube_wrong_sign' (demo-broken)" in str(info.value)
        assert "twice" not in str(info.value)
    finally:
        dg.load_plugins()


def test_check_plugin_of_an_unknown_plugin_is_a_plugin_error():
    with pytest.raises(dg.PluginError, match="no plugin named 'nope'"):
        check_plugin("nope")


test_every_activation_op_passes = op_tests("activations")


def test_op_tests_for_a_missing_plugin_is_one_failing_test_saying_so():
    test = op_tests("not-installed-anywhere")
    with pytest.raises(pytest.fail.Exception, match="neither a registered plugin nor an op"):
        test()


# ------------------------------------------------------- the pytest plugin --


def _plugin_args() -> list:
    installed = any(ep.name == "dagrad" for ep in metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "dagrad.testing.pytest_plugin"]


def test_the_pytest_plugin_offers_a_marker_and_a_header(pytester):
    pytester.makepyfile(
        test_mine="""
        import pytest
        from dagrad.testing import check_op, op_tests

        test_ops = op_tests("activations")

        @pytest.mark.dagrad_ops("gelu", "builtins")
        def test_each(dagrad_op):
            assert dagrad_op.name
        """
    )
    result = pytester.runpytest_subprocess(*_plugin_args(), "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*passed*"])
    outcome = result.parseoutcomes()
    reg = dg.registry()
    assert outcome["passed"] == len(reg.plugins["activations"].ops) + 1 + len(reg.plugins["builtins"].ops)
    header = pytester.runpytest_subprocess(*_plugin_args(), "--co", "-p", "no:cacheprovider")
    header.stdout.fnmatch_lines(["dagrad *, plugins: builtins*activations*"])
