"""Every executor computes what the reference interpreter defines, and a plan prints as the code that runs it.

A plan runs through the interpreter loop (its first ``CODEGEN_AFTER_RUNS`` runs,
checked and profiled runs) or through Python generated for it (later runs),
written as one function or, for a large plan, as several parts run in turn
("parts" below splits every plan, two instructions a part); ``run_reference``
is the ~25-line definition of what running means. On random DAGs all of them
must give identical values and gradients, and the same backward order.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from test_composite_gradients import build_dag, random_dags

import dagrad as dg
from dagrad.scheduler import codegen, run_reference
from dagrad.scheduler.plan import CODEGEN_AFTER_RUNS

EXECUTORS = ("loop", "codegen", "parts")


def split(monkeypatch, size) -> None:
    """Generated code written in parts of ``size`` instructions, however small the plan (None: as configured)."""
    if size is not None:
        monkeypatch.setattr(codegen, "INSTRUCTIONS_PER_FUNCTION", size)
        monkeypatch.setattr(codegen, "INSTRUCTIONS_PER_PART", size)


def use(monkeypatch, executor: str) -> None:
    """Run plans through ``executor``: "parts" is generated code split after every two instructions."""
    split(monkeypatch, 2 if executor == "parts" else None)
    monkeypatch.setenv("DAGRAD_EXECUTOR", "loop" if executor == "loop" else "codegen")


def run_with(monkeypatch, executor: str, plan, feeds=None, **kwargs):
    use(monkeypatch, executor)
    plan.runs = 0
    plan.program.code = None   # written again, as one function or as parts
    return plan.run(feeds, **kwargs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(random_dags())
def test_loop_and_generated_code_agree_with_the_reference_on_random_dags(monkeypatch, recipe):
    g, loss, leaves, feeds = build_dag(recipe)
    plan = g.compile(loss, loss=loss, wrt=leaves, keep="all")
    values, grads = run_reference(plan, feeds)
    for executor in EXECUTORS:
        res = run_with(monkeypatch, executor, plan, feeds)
        assert set(res.values) == set(values), executor
        for name, v in values.items():
            np.testing.assert_array_equal(res.value(name), v, err_msg=f"{executor}: value of {name}")
        assert set(res.grads) == set(grads), executor
        for name, gr in grads.items():
            np.testing.assert_array_equal(res.grad(name), gr, err_msg=f"{executor}: gradient of {name}")
        assert res.order == [n for n in reversed(plan.nodes) if n in grads], executor


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("keep", ["wrt", "all"])
def test_an_mlp_runs_the_same_through_every_executor(monkeypatch, executor, keep):
    rng = np.random.default_rng(0)
    g = dg.Graph()
    x = g.input("x", shape=(None, 4), dtype="float32")
    y = g.input("y", shape=(None,), dtype="int64")
    h = dg.nn.dense(x, 8, activation="relu", name="fc1")
    logits = dg.nn.dense(h, 3, name="fc2")
    loss = dg.softmax_cross_entropy(logits, y)
    feeds = {"x": rng.normal(size=(5, 4)).astype(np.float32), "y": rng.integers(0, 3, size=5)}
    plan = g.compile(loss, loss=loss, keep=keep)
    values, grads = run_reference(plan, feeds)
    res = run_with(monkeypatch, executor, plan, feeds)
    for name in res.grads:
        np.testing.assert_allclose(res.grad(name), grads[name], rtol=1e-6, err_msg=name)
    assert res.value(loss) == pytest.approx(float(values[loss.name]))


def test_print_plan_shows_the_generated_code_instruction_by_instruction():
    g = dg.Graph()
    x = g.input("x", shape=(None, 2))
    W = g.param("W", np.ones((2, 2)))
    loss = dg.sum(dg.tanh(x @ W), name="loss")
    plan = g.compile(loss, loss=loss, keep="wrt")
    text = str(plan)
    assert text.startswith("# dagrad plan: backward from 'loss' with respect to 'W'; keep='wrt'\ndef run(")
    lines = text.splitlines()
    forward = [line.split("#")[0].strip() for line in lines if line.strip().startswith("v") and "= " in line]
    assert forward[:5] == ["v0 = fed[0]", "v1 = stored[0]", "v2 = matmul(v0, v1)", "v3 = tanh(v2)",
                           "v4 = sum(v3, axis=None, keepdims=False)"]
    assert "del v2" in text                                          # matmul's output dies after tanh reads it
    assert "gs = vjp_tanh(g3, placeholder(s2, float64), out=v3)" in text  # tanh saves only its output
    assert "gs = vjp_matmul(g2, v0, v1, needs=(False, True))" in text   # no gradient wanted for the fed batch
    compile(text, "<plan>", "exec")                                  # the printed form is the code that runs


def test_a_large_plan_prints_and_runs_as_parts_that_hand_on_only_what_later_parts_read(monkeypatch):
    use(monkeypatch, "parts")
    g = dg.Graph()
    x = g.param("x", np.array([0.5, -0.5]))
    h = x
    for _ in range(4):
        h = dg.tanh(h * 0.9)
    loss = dg.sum(h, name="loss")
    plan = g.compile(loss, loss=loss, keep="wrt")
    text = str(plan)
    compile(text, "<plan>", "exec")                                  # the printed form is the code that runs
    parts = text.split("\ndef ")[1:]
    assert len(parts) > 3 and all(p.startswith(f"part_{k + 1}(") for k, p in enumerate(parts))
    assert "live['v0'] = v0" in parts[0]                             # x is read again by the backward pass
    handed_on = re.findall(r"live\['(\w+)'\] = ", text)
    assert sorted(handed_on) == sorted(re.findall(r"live\.pop\('(\w+)'\)", text))  # each is taken up later
    assert handed_on.count("v2") == 1 and "v3" in handed_on  # mul's output is read once, tanh's waits for its VJP
    res = plan.run()
    assert len(plan.program.code.parts) == len(parts)
    np.testing.assert_array_equal(res.grad(x), run_reference(plan)[1]["x"])


def test_only_plans_past_the_one_function_limit_are_split_and_then_into_parts_of_the_part_size(monkeypatch):
    monkeypatch.setenv("DAGRAD_EXECUTOR", "codegen")
    monkeypatch.setattr(codegen, "INSTRUCTIONS_PER_PART", 3)

    def chain(ops: int):
        g = dg.Graph()
        h = x = g.param("x", np.array([0.5, -0.5]))
        for _ in range(ops):
            h = dg.tanh(h)
        loss = dg.sum(h, name="loss")
        plan = g.compile(loss, loss=loss, keep="wrt")
        return plan, 1 + len(plan.forward) + len(plan.backward)   # the param's input line is one too

    small, small_size = chain(2)
    monkeypatch.setattr(codegen, "INSTRUCTIONS_PER_FUNCTION", small_size)
    small.run()
    assert small.program.code.parts == () and small.program.code.function is not None
    large, large_size = chain(5)
    res = large.run()
    assert len(large.program.code.parts) == -(-large_size // 3)        # ceil: parts of the part size
    np.testing.assert_array_equal(res.grad("x"), run_reference(large)[1]["x"])


def test_hostile_names_cannot_reach_the_generated_code_except_as_escaped_text(monkeypatch):
    g = dg.Graph()
    evil = "x'); import os; os.system('true'); ('"
    w = g.param(evil, np.array([1.0, 2.0]))
    loss = dg.sum(w * w, name="# newline? \\n nope")
    plan = g.compile(loss, loss=loss)
    res = run_with(monkeypatch, "codegen", plan)
    assert plan.program.code is not None                                 # generated code ran
    np.testing.assert_array_equal(res.grad(evil), [2.0, 4.0])
    for line in str(plan).splitlines():
        code = line.split("  # ")[0]
        assert "os.system" not in code or repr(evil) in code


@pytest.mark.parametrize("executor", ["codegen", "parts"])
def test_an_error_in_generated_code_names_the_node_op_and_plugin(monkeypatch, fresh_registry, executor):
    @dg.op(shape=dg.shapes.same_as_first, saves=("inputs",))
    def explode_on_second_call(x):
        "x, but raises when x holds a negative entry"
        if (x < 0).any():
            raise ValueError("negative entry")
        return x + 0

    @explode_on_second_call.vjp
    def _(g, x):
        return (g,)

    dg.register_ops(explode_on_second_call, plugin="boom-pack")
    g = dg.Graph()
    x = g.input("x", shape=(2,))
    loss = dg.sum(dg.ops.explode_on_second_call(dg.tanh(x)), name="loss")
    plan = g.compile(loss, loss=loss, wrt=[x])
    use(monkeypatch, executor)
    with pytest.raises(dg.OpError, match=r"node 'explode_on_second_call' \(op 'explode_on_second_call' from plugin "
                                         r"'boom-pack'\) raised in its forward with inputs float64\(2,\): "
                                         r"ValueError: negative entry"):
        plan.run({"x": np.array([1.0, -1.0])})


def test_profiling_times_every_node_through_the_loop():
    g = dg.Graph()
    x = g.param("x", [1.0, 2.0])
    loss = dg.sum(dg.exp(x), name="loss")
    plan = g.compile(loss, loss=loss)
    for _ in range(3):
        plan.run()
    res = plan.run(profile=True)
    assert set(res.forward_times) == {"exp", "loss"} and set(res.backward_times) == {"exp", "loss"}


def test_a_plan_switches_to_generated_code_once_it_has_run_enough_to_repay_compiling_it(monkeypatch):
    monkeypatch.delenv("DAGRAD_EXECUTOR", raising=False)
    g = dg.Graph()
    x = g.param("x", [1.0, 2.0])
    loss = dg.sum(dg.tanh(x) * 3.0, name="loss")
    plan = g.compile(loss, loss=loss)
    for _ in range(CODEGEN_AFTER_RUNS):
        loop_result = plan.run()
    assert plan.program.code is None                                     # a plan run a few times never compiles
    generated = plan.run()
    assert plan.program.code is not None
    np.testing.assert_array_equal(generated.grad(x), loop_result.grad(x))


def test_checked_runs_go_through_the_loop_even_once_code_is_generated(monkeypatch):
    g = dg.Graph()
    x = g.input("x", shape=(2,))
    loss = dg.sum(dg.log(x), name="loss")
    plan = g.compile(loss, loss=loss, wrt=[x])
    run_with(monkeypatch, "codegen", plan, {"x": np.array([1.0, 2.0])})
    assert plan.program.code is not None and "check_finite" not in str(plan)
    with pytest.raises(dg.AnomalyError, match="'log'"), np.errstate(invalid="ignore"):
        plan.run({"x": np.array([1.0, -1.0])}, check=True)


def test_an_op_named_like_a_generated_local_does_not_shadow_it(monkeypatch, fresh_registry):
    @dg.op(shape=dg.shapes.same_as_first, saves=())
    def v1(x):
        "x doubled, under a name the generated code uses for slot 1's value"
        return 2 * x

    @v1.vjp
    def _(g, x):
        return (2 * g,)

    dg.register_ops(v1, plugin="names-pack")
    g = dg.Graph()
    w = g.param("w", np.array([1.0, 2.0]))
    loss = dg.sum(dg.ops.v1(w), name="loss")
    plan = g.compile(loss, loss=loss)
    res = run_with(monkeypatch, "codegen", plan)
    np.testing.assert_array_equal(res.value(loss), 6.0)
    np.testing.assert_array_equal(res.grad(w), [2.0, 2.0])


@pytest.mark.parametrize("executor", ["codegen", "parts"])
@pytest.mark.parametrize("attribute", ["v2", "s1", "r0", "g3", "o4"])
def test_an_attribute_spelled_like_a_generated_local_is_not_taken_for_one(monkeypatch, fresh_registry, executor,
                                                                           attribute):
    namespace: dict = {}
    text = (f"def scaled(x, *, {attribute}=2.0):\n    'x times the attribute'\n    return x * {attribute}\n"
            f"def vjp(g, x, *, {attribute}):\n    return (g * {attribute},)\n")
    exec(text, namespace)  # noqa: S102 - the test's own source: an op whose attribute has that name
    scaled = dg.op(shape=dg.shapes.same_as_first, saves=())(namespace["scaled"])
    scaled.vjp(namespace["vjp"])
    dg.register_ops(scaled, plugin="attribute-pack")
    g = dg.Graph()
    x = g.input("x", shape=(None,))                                  # unknown sizes: shapes s<slot> are recorded
    h = x
    for _ in range(4):
        h = dg.tanh(h * 0.9)                                          # mul's outputs are freed early
    loss = dg.sum(dg.ops.scaled(h, **{attribute: 3.0}), name="loss")
    plan = g.compile(loss, loss=loss, wrt=[x])
    feeds = {"x": np.array([0.5, -0.5])}
    res = run_with(monkeypatch, executor, plan, feeds)
    np.testing.assert_array_equal(res.grad(x), run_reference(plan, feeds)[1]["x"])


@pytest.mark.parametrize("executor", ["codegen", "parts"])
@pytest.mark.parametrize("op_name", ["part_1", "part", "list", "tuple", "\uff560", "\ufb01lter", "__builtins__"])
def test_an_op_named_like_a_name_of_the_generated_code_runs_as_itself(monkeypatch, fresh_registry, executor, op_name):
    def doubled(x):
        "2 x"
        return x * 2.0

    op = dg.op(shape=dg.shapes.same_as_first, saves=(), name=op_name)(doubled)
    op.vjp(lambda g, x: (g * 2.0,))
    dg.register_ops(op, plugin="name-pack")
    g = dg.Graph()
    x = g.param("x", np.array([0.5, -0.5]))
    loss = dg.sum(dg.apply(op_name, dg.tanh(x)), name="loss")
    plan = g.compile(loss, loss=loss)
    res = run_with(monkeypatch, executor, plan)
    np.testing.assert_array_equal(res.grad(x), run_reference(plan)[1]["x"])


def test_plans_past_the_codegen_cap_stay_in_the_loop_and_the_cap_is_read_at_every_run(monkeypatch):
    from dagrad.scheduler import plan as plans

    use(monkeypatch, "codegen")
    g = dg.Graph()
    x = g.param("x", [1.0, 2.0])
    loss = dg.sum(dg.tanh(x) * 3.0, name="loss")
    plan = g.compile(loss, loss=loss)
    size = len(plan.forward) + len(plan.backward)
    monkeypatch.setattr(plans, "CODEGEN_MAX_INSTRUCTIONS", size - 1)
    plan.run()
    assert plan.program.code is None                                     # DAGRAD_EXECUTOR=codegen or not
    monkeypatch.setattr(plans, "CODEGEN_MAX_INSTRUCTIONS", size)
    plan.run()
    assert plan.program.code is not None


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_shape_rule_computing_sizes_with_numpy_runs_in_every_executor(monkeypatch, fresh_registry, executor):
    def doubled_shape(shape):
        return tuple(np.int64(d) for d in shape)                  # numpy integers, as np.prod or x.max() give

    @dg.op(shape=doubled_shape, saves=())
    def doubled(x):
        "2 x, with a shape rule that returns numpy integers"
        return 2.0 * x

    doubled.vjp(lambda g, x: (2.0 * g,))
    dg.register_ops(doubled, plugin="numpy-sizes")
    g = dg.Graph()
    w = g.param("w", np.array([0.5, -0.5, 1.0]))
    h = dg.ops.doubled(dg.tanh(w))
    assert h.shape == (3,) and type(h.shape[0]) is int             # written into code and files as a literal
    loss = dg.sum(h, name="loss")
    plan = g.compile(loss, loss=loss)
    res = run_with(monkeypatch, executor, plan)
    np.testing.assert_array_equal(res.grad(w), run_reference(plan)[1]["w"])


def test_a_shape_rule_returning_sizes_that_are_not_integers_is_named(fresh_registry):
    @dg.op(shape=lambda shape: (3.0,), saves=())
    def floaty(x):
        "a shape rule with a float size"
        return x

    dg.register_ops(floaty, plugin="float-sizes")
    g = dg.Graph()
    with pytest.raises(dg.ShapeError, match=r"the shape rule of op 'floaty' returned \(3\.0,\); sizes must be integers"):
        dg.ops.floaty(g.param("w", np.ones(3)))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_with_nothing_to_differentiate_every_executor_and_the_reference_keep_no_gradient(monkeypatch, executor):
    g = dg.Graph()
    w = g.param("w", np.array([1.0, 2.0]))
    loss = dg.sum(w * w, name="loss")
    plan = g.compile(loss, loss=loss, wrt=[])
    res = run_with(monkeypatch, executor, plan)
    assert res.grads == run_reference(plan)[1] == {} and res.order == []
    assert res.value(loss) == 5.0
