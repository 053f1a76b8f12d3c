"""einsum with a repeated index takes a diagonal, as numpy's does ('ii->', 'ii->i', 'bii->bi', 'iij,jk->ik'), and its
gradient goes back onto that diagonal, to any order."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg


def _run(tensor):
    return tensor.graph.forward(tensor).value(tensor)


@pytest.mark.parametrize("spec, shapes", [("ii->", [(3, 3)]), ("ii", [(3, 3)]), ("ii->i", [(3, 3)]),
                                          ("bii->bi", [(2, 3, 3)]), ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
                                          ("iji->j", [(2, 4, 2)]), ("iii->", [(2, 2, 2)])])
def test_einsum_with_repeated_indices_takes_diagonals_and_its_gradient_goes_back_to_them(spec, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=s) for s in shapes]
    g = dg.Graph()
    params = [g.param(f"x{i}", a) for i, a in enumerate(arrays)]
    y = dg.einsum(spec, *params)
    np.testing.assert_allclose(_run(y), np.einsum(spec, *arrays))
    assert dg.gradcheck(g, loss=dg.sum(y * y), wrt=[p.name for p in params])
    first = g.backward(dg.sum(y)).grad(params[0])
    assert (first[~_on_repeated_diagonal(spec, shapes[0])] == 0).all()


def _on_repeated_diagonal(spec: str, shape: tuple) -> np.ndarray:
    term = spec.split("->")[0].split(",")[0]
    mask = np.zeros(shape, bool)
    for index in np.ndindex(*shape):
        mask[index] = all(index[i] == index[j] for i in range(len(term)) for j in range(len(term)) if term[i] == term[j])
    return mask


def test_einsum_trace_differentiates_twice_through_graph_vjps():
    g = dg.Graph()
    x = g.param("x", np.array([[1.0, 2.0], [3.0, 4.0]]))
    loss = dg.einsum("ii->", x) ** 2                       # (tr x)^2: gradient 2 tr(x) I, Hessian 2 I (x) I
    gx = dg.grad(loss, x)
    np.testing.assert_allclose(g.forward(gx).value(gx), 10.0 * np.eye(2))
    hessian = dg.hessian(loss, x)
    expected = 2.0 * np.einsum("ij,kl->ijkl", np.eye(2), np.eye(2))
    np.testing.assert_allclose(g.forward(hessian).value(hessian), expected)


def test_einsum_refuses_a_repeated_output_index_and_unequal_diagonal_sizes():
    g = dg.Graph()
    with pytest.raises(dg.ShapeError, match="output 'ii' repeats an index"):
        dg.einsum("i->ii", g.param("v", np.ones(3)))
    with pytest.raises(dg.ShapeError, match="index 'i' is repeated in 'ii' with sizes 2 and 3"):
        dg.einsum("ii->i", g.param("m", np.ones((2, 3))))
