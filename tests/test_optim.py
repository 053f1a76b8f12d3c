"""Optimizers match hand-computed updates step by step; clipping and schedules do what they say."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dagrad as dg
from dagrad.optim import schedules


class FakeResult:
    """Stands in for a backward Result: the optimizers read only ``.grads``."""

    def __init__(self, **grads):
        self.grads = {k: np.asarray(v, dtype=np.float64) for k, v in grads.items()}


def run_on_half_square(opt_factory, w0=1.0, steps=3):
    """Minimise f(w) = w**2 / 2 (gradient w) for ``steps`` steps; the trajectory of w."""
    params = {"w": np.array([w0])}
    opt = opt_factory(params)
    path = []
    for _ in range(steps):
        opt.step(FakeResult(w=params["w"].copy()))
        path.append(float(params["w"][0]))
    return path


# ------------------------------------------------------------------ SGD ---


def test_plain_sgd_steps_against_the_gradient():
    assert run_on_half_square(lambda p: dg.optim.SGD(p, lr=0.1)) == pytest.approx([0.9, 0.81, 0.729])


def test_sgd_momentum_matches_hand_computed_steps():
    # b1 = g1 = 1,                 w = 1 - 0.1*1       = 0.9
    # b2 = 0.9*1 + 0.9 = 1.8,      w = 0.9 - 0.1*1.8   = 0.72
    # b3 = 0.9*1.8 + 0.72 = 2.34,  w = 0.72 - 0.1*2.34 = 0.486
    path = run_on_half_square(lambda p: dg.optim.SGD(p, lr=0.1, momentum=0.9))
    assert path == pytest.approx([0.9, 0.72, 0.486])


def test_sgd_nesterov_matches_hand_computed_steps():
    # d = g + mu*b:  d1 = 1 + 0.9*1 = 1.9,          w = 0.81
    #   b2 = 0.9 + 0.81 = 1.71, d2 = 0.81 + 1.539 = 2.349,   w = 0.5751
    #   b3 = 1.539 + 0.5751 = 2.1141, d3 = 0.5751 + 1.90269 = 2.47779,  w = 0.327321
    path = run_on_half_square(lambda p: dg.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True))
    assert path == pytest.approx([0.81, 0.5751, 0.327321])


def test_sgd_weight_decay_adds_an_l2_gradient():
    # g + 0.5*w = 1.5*w, so w <- w * (1 - 0.1*1.5) = 0.85*w
    path = run_on_half_square(lambda p: dg.optim.SGD(p, lr=0.1, weight_decay=0.5))
    assert path == pytest.approx([0.85, 0.85**2, 0.85**3])


def test_sgd_dampening_scales_later_gradients_into_the_buffer():
    # b1 = g1 = 1 (no dampening on the first step), w = 0.9; b2 = 0.9*1 + 0.5*0.9 = 1.35, w = 0.765
    path = run_on_half_square(lambda p: dg.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5), steps=2)
    assert path == pytest.approx([0.9, 0.765])


def test_nesterov_without_momentum_is_refused():
    with pytest.raises(dg.DagradError, match="Nesterov"):
        dg.optim.SGD({"w": np.zeros(1)}, lr=0.1, nesterov=True)


# ----------------------------------------------------------------- Adam ---


def adam_reference(w0, steps, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    """Adam on f = w**2/2 written out with scalars, one line per formula of the paper."""
    w, m, v, path = w0, 0.0, 0.0, []
    for t in range(1, steps + 1):
        g = w
        if wd and decoupled:
            w = w * (1 - lr * wd)
        elif wd:
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (math.sqrt(v_hat) + eps)
        path.append(w)
    return path


def test_adam_first_step_is_lr_times_the_sign_of_the_gradient():
    # Bias correction: m_hat = g and v_hat = g**2 after one step, so the step is lr*g/|g|.
    params = {"w": np.array([1.0, -1.0, 3.0])}
    dg.optim.Adam(params, lr=0.1).step(FakeResult(w=[5.0, -0.01, 1e3]))
    assert params["w"] == pytest.approx([0.9, -0.9, 2.9], abs=1e-6)


def test_adam_second_step_matches_hand_computed_bias_correction():
    # Step 2 at w = 0.9: m = 0.09 + 0.09 = 0.18, v = 0.000999 + 0.00081 = 0.001809,
    # m_hat = 0.18 / 0.19, v_hat = 0.001809 / 0.001999.
    expected = 0.9 - 0.1 * (0.18 / 0.19) / (math.sqrt(0.001809 / 0.001999) + 1e-8)
    path = run_on_half_square(lambda p: dg.optim.Adam(p, lr=0.1), steps=2)
    assert path[1] == pytest.approx(expected, rel=1e-7)  # step 1 is 0.9 up to eps


def test_adam_matches_scalar_reference_for_several_steps():
    path = run_on_half_square(lambda p: dg.optim.Adam(p, lr=0.05, betas=(0.8, 0.99)), steps=6)
    assert path == pytest.approx(adam_reference(1.0, 6, 0.05, 0.8, 0.99), rel=1e-7)


def test_adam_weight_decay_is_an_l2_gradient():
    path = run_on_half_square(lambda p: dg.optim.Adam(p, lr=0.05, weight_decay=0.3), steps=5)
    assert path == pytest.approx(adam_reference(1.0, 5, 0.05, wd=0.3), rel=1e-7)


def test_adamw_decays_weights_decoupled_from_the_gradient():
    path = run_on_half_square(lambda p: dg.optim.AdamW(p, lr=0.05, weight_decay=0.3), steps=5)
    assert path == pytest.approx(adam_reference(1.0, 5, 0.05, wd=0.3, decoupled=True), rel=1e-7)
    coupled = run_on_half_square(lambda p: dg.optim.Adam(p, lr=0.05, weight_decay=0.3), steps=5)
    assert abs(path[-1] - coupled[-1]) > 1e-4


def test_adamw_shrinks_a_parameter_with_zero_gradient():
    params = {"w": np.array([2.0])}
    dg.optim.AdamW(params, lr=0.1, weight_decay=0.5).step(FakeResult(w=[0.0]))
    assert params["w"] == pytest.approx([2.0 * (1 - 0.1 * 0.5)])


# --------------------------------------------------------- common rules ---


def test_parameters_are_updated_in_place_and_keep_their_dtype():
    g = dg.Graph()
    w = g.param("w", np.array([1.0, 2.0], np.float32))
    loss = dg.sum(w * w)
    live = g.params["w"]
    for make in (lambda: dg.optim.SGD(g, lr=0.1, momentum=0.9), lambda: dg.optim.Adam(g), lambda: dg.optim.AdamW(g)):
        make().step(g.backward(loss))
    assert g.params["w"] is live
    assert live.dtype == np.float32
    assert np.all(live < np.array([1.0, 2.0]))


def test_a_parameter_without_gradient_is_skipped_and_gets_no_state():
    params = {"a": np.array([1.0]), "b": np.array([1.0])}
    opt = dg.optim.Adam(params, lr=0.1)
    opt.step(FakeResult(a=[1.0]))
    assert params["b"] == pytest.approx([1.0])
    assert "b" not in opt.state
    opt.step(FakeResult(a=[1.0], b=[1.0]))
    # b's first update has its own bias correction (t = 1): exactly lr * sign.
    assert params["b"] == pytest.approx([0.9])
    assert opt.state["a"]["t"] == 2 and opt.state["b"]["t"] == 1


def test_frozen_params_of_a_graph_are_not_touched():
    g = dg.Graph()
    w = g.param("w", np.array([1.0]))
    frozen = g.param("frozen", np.array([1.0]), trainable=False)
    loss = dg.sum(w * frozen)
    opt = dg.optim.SGD(g, lr=0.5)
    opt.step(g.backward(loss, wrt=["w", "frozen"]))
    assert g.value("frozen") == pytest.approx([1.0])
    assert g.value("w") == pytest.approx([0.5])


def test_each_backward_gives_fresh_gradients_so_there_is_no_zero_grad():
    g = dg.Graph()
    w = g.param("w", np.array([3.0]))
    loss = dg.sum(w * w)
    opt = dg.optim.SGD(g, lr=0.25)
    for _ in range(3):
        opt.step(g.backward(loss))      # w <- w - 0.25 * 2w = w / 2 each time
    assert g.value("w") == pytest.approx([0.375])


# ------------------------------------------------------------- clipping ---


def test_clipping_scales_all_gradients_to_the_global_norm():
    params = {"a": np.array([0.0]), "b": np.array([0.0])}
    opt = dg.optim.SGD(params, lr=1.0, clip_norm=1.0)
    result = FakeResult(a=[3.0], b=[4.0])
    opt.step(result)
    assert opt.last_grad_norm == pytest.approx(5.0)
    assert params["a"] == pytest.approx([-0.6], rel=1e-5)
    assert params["b"] == pytest.approx([-0.8], rel=1e-5)
    assert result.grads["a"] == pytest.approx([3.0])  # the Result itself is not modified


def test_clipping_leaves_small_gradients_alone():
    params = {"a": np.array([0.0])}
    opt = dg.optim.SGD(params, lr=1.0, clip_norm=10.0)
    opt.step(FakeResult(a=[3.0]))
    assert params["a"] == pytest.approx([-3.0])


def test_global_norm_treats_all_gradients_as_one_vector():
    assert dg.optim.global_norm([np.array([3.0]), np.array([[4.0, 12.0]])]) == pytest.approx(13.0)


def test_clip_norm_must_be_positive():
    with pytest.raises(dg.DagradError, match="clip_norm"):
        dg.optim.SGD({"w": np.zeros(1)}, clip_norm=0)


# ------------------------------------------------------------ schedules ---


def test_constant_schedule():
    assert [schedules.constant(0.3)(s) for s in (0, 10, 1000)] == [0.3, 0.3, 0.3]


def test_step_decay_multiplies_by_gamma_every_n_steps():
    s = schedules.step_decay(1.0, every=3, gamma=0.5)
    assert [s(i) for i in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_cosine_goes_from_lr_to_min_lr_and_stays():
    s = schedules.cosine(1.0, total_steps=10, min_lr=0.1)
    assert s(0) == pytest.approx(1.0)
    assert s(5) == pytest.approx(0.55)
    assert s(10) == pytest.approx(0.1)
    assert s(50) == pytest.approx(0.1)
    values = [s(i) for i in range(11)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_cosine_warmup_rises_linearly():
    s = schedules.cosine(1.0, total_steps=14, warmup=4)
    assert [s(i) for i in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert s(4) == pytest.approx(1.0)


def test_optimizer_uses_the_schedule_at_each_step():
    params = {"w": np.array([0.0])}
    opt = dg.optim.SGD(params, lr=schedules.step_decay(1.0, every=1, gamma=0.5))
    lrs = []
    for _ in range(3):
        lrs.append(opt.lr)
        opt.step(FakeResult(w=[1.0]))
    assert lrs == [1.0, 0.5, 0.25]
    assert params["w"] == pytest.approx([-1.75])
    assert opt.last_lr == 0.25 and opt.steps == 3


def test_bad_schedule_arguments_are_dagrad_errors():
    with pytest.raises(dg.DagradError):
        schedules.cosine(1.0, total_steps=5, warmup=5)
    with pytest.raises(dg.DagradError):
        schedules.step_decay(1.0, every=0)
