"""The activations pack passes dagrad's finite-difference check on every sample."""

import numpy as np
import pytest

import dagrad as dg

OPS = ["gelu", "silu", "softplus", "elu", "leaky_relu"]


@pytest.mark.parametrize("name", OPS)
def test_op_is_registered_by_the_activations_plugin(name):
    assert dg.registry().ops[name].plugin == "activations"


@pytest.mark.parametrize("name", OPS)
def test_op_matches_finite_differences_on_its_samples(name):
    op = dg.registry().op(name)
    for sample in op.samples(np.random.default_rng(1)):
        report = dg.gradcheck(op, *sample.args, **sample.attrs)
        assert report, f"{sample.label}: {report}"


def test_gelu_agrees_with_its_definition_at_known_points():
    g = dg.Graph()
    x = g.input("x", shape=(3,))
    y = dg.ops.gelu(x)
    out = g.forward(y, {"x": np.array([-1.0, 0.0, 1.0])}).value(y)
    np.testing.assert_allclose(out, [-0.158808, 0.0, 0.841192], atol=1e-6)
