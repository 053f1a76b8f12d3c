"""Layout ops that copy entries (pad, flip, roll, tile, repeat, split/chunk, tril/triu, diagonal, trace): values as
numpy computes them, gradients that add the copies back up, shapes with unknown sizes, clear refusals. Finite
differences over every op's samples run in test_op_gradients.py; these tests pin the behaviour those samples
cannot name."""

from __future__ import annotations

import numpy as np
import pytest

import dagrad as dg

try:
    import torch
except ImportError:  # the PyTorch comparisons are optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (optional comparisons)")


def _run(tensor, feeds=None):
    return tensor.graph.forward(tensor, feeds or {}).value(tensor)


# ------------------------------------------------------------------- pad ---


@pytest.mark.parametrize("pad_width", [2, (1, 3), ((1, 3),), ((0, 1), (2, 0))])
@pytest.mark.parametrize("mode", ["constant", "reflect", "symmetric", "edge", "wrap"])
def test_pad_reads_pad_width_and_mode_as_numpy_does(pad_width, mode):
    x = np.arange(12.0).reshape(3, 4)
    g = dg.Graph()
    y = dg.pad(g.param("x", x), pad_width, mode=mode)
    np.testing.assert_array_equal(_run(y), np.pad(x, pad_width, mode=mode))
    assert y.shape == np.pad(x, pad_width, mode=mode).shape


def test_pad_gradient_adds_each_reflected_copy_to_the_entry_it_copies():
    g = dg.Graph()
    x = g.param("x", np.array([1.0, 2.0, 3.0]))
    y = dg.pad(x, (4, 0), mode="reflect")          # [1 2 3 2 | 1 2 3]: reflected twice, as numpy.pad does
    assert _run(y).tolist() == np.pad([1.0, 2.0, 3.0], (4, 0), mode="reflect").tolist()
    grad = g.backward(dg.sum(y)).grad(x)
    np.testing.assert_array_equal(grad, [2.0, 3.0, 2.0])


def test_pad_constant_value_gets_no_gradient_and_an_unknown_size_stays_unknown():
    g = dg.Graph()
    x = g.input("x", shape=(None, 2))
    y = dg.pad(x, ((1, 1), (0, 2)), constant_values=-1.0)
    assert y.shape == (None, 4)
    value = _run(y, {"x": np.ones((3, 2))})
    assert value.shape == (5, 4) and value[0, 0] == -1.0


@pytest.mark.parametrize("mode, words", [("replicate", "numpy's 'edge'"), ("circular", "numpy's 'wrap'"),
                                         ("mirror", "constant, reflect, symmetric, edge, wrap")])
def test_pad_refuses_an_unknown_mode_and_names_the_numpy_one(mode, words):
    g = dg.Graph()
    with pytest.raises(dg.ShapeError, match=words):
        dg.pad(g.param("x", np.ones(3)), 1, mode=mode)


def test_pad_refuses_reflecting_an_empty_axis_and_padding_a_scalar():
    g = dg.Graph()
    with pytest.raises(dg.ShapeError, match="axis 0 is empty"):
        dg.pad(g.param("x", np.ones((0, 2))), 1, mode="reflect")
    with pytest.raises(dg.ShapeError, match="0-d"):
        dg.pad(g.param("s", np.float64(1.0)), 1)
    with pytest.raises(dg.ShapeError, match="negative"):
        dg.pad(g.param("y", np.ones(2)), -1)


@needs_torch
def test_wrap_pad_gradients_match_torchs_circular_pad():
    # reflect and edge are compared with PyTorch on pad's samples (test_torch_parity.py); wrap's sample pads past
    # the axis, which F.pad refuses, so wrap within the axis is compared here.
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3, 9))
    g = dg.Graph()
    xt = g.param("x", x)
    grad = g.backward(dg.sum(dg.pad(xt, ((0, 0), (0, 0), (3, 1)), mode="wrap") * w)).grad(xt)
    tx = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.pad(tx, (3, 1), mode="circular") * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(grad, tx.grad.numpy())


# ------------------------------------------------------- flip, roll, tile ---


def test_flip_roll_and_tile_compute_what_numpy_computes_and_their_gradients_add_up():
    x = np.arange(6.0).reshape(2, 3)
    g = dg.Graph()
    p = g.param("x", x)
    flipped, rolled, tiled = dg.flip(p, 1), dg.roll(p, (1, -1), (0, 1)), dg.tile(p, (2, 1, 2))
    np.testing.assert_array_equal(_run(flipped), np.flip(x, 1))
    np.testing.assert_array_equal(_run(rolled), np.roll(x, (1, -1), (0, 1)))
    np.testing.assert_array_equal(_run(tiled), np.tile(x, (2, 1, 2)))
    grad = g.backward(dg.sum(tiled) + dg.sum(rolled * rolled)).grad(p)
    np.testing.assert_allclose(grad, 4.0 + 2 * x)                      # four tiles, and d(x**2)


def test_tile_zero_times_gives_an_empty_output_and_a_zero_gradient_of_the_input_shape():
    g = dg.Graph()
    x = g.param("x", np.ones((2, 3)))
    y = dg.tile(x, (0, 2))
    assert y.shape == (0, 6)
    gx = dg.grad(dg.sum(y), x)                       # the graph VJP needs x's shape, not just y's
    np.testing.assert_array_equal(g.forward(gx).value(gx), np.zeros((2, 3)))


# ---------------------------------------------------------------- repeat ---


def test_repeat_with_per_entry_counts_sums_each_run_of_copies_back():
    g = dg.Graph()
    x = g.param("x", np.array([[1.0, 2.0, 3.0]]))
    y = dg.repeat(x, [2, 0, 3], axis=1)
    np.testing.assert_array_equal(_run(y), [[1.0, 1.0, 3.0, 3.0, 3.0]])
    np.testing.assert_array_equal(g.backward(dg.sum(y)).grad(x), [[2.0, 0.0, 3.0]])


def test_repeat_of_an_unknown_axis_has_unknown_size_unless_the_counts_say_it():
    g = dg.Graph()
    x = g.input("x", shape=(None, 2))
    assert dg.repeat(x, 3, axis=0).shape == (None, 2)
    assert dg.repeat(x, [1, 2], axis=1).shape == (None, 3)
    assert dg.repeat(x, [1, 2, 0], axis=0).shape == (3, 2)             # three rows when it runs, or an error
    with pytest.raises(dg.ShapeError, match="2 repeats for an axis of 3"):
        dg.repeat(g.param("y", np.ones(3)), [1, 2])


def test_repeat_counts_must_be_static():
    g = dg.Graph()
    x = g.param("x", np.ones(3))
    counts = g.input("counts", shape=(3,), dtype="int64")
    with pytest.raises(dg.GraphError, match="counts known when the node is added"):
        dg.repeat(x, counts)


# ---------------------------------------------------------- split, chunk ---


def test_split_gives_one_node_per_piece_and_the_gradient_gathers_from_every_piece():
    g = dg.Graph()
    x = g.param("x", np.arange(12.0).reshape(6, 2))
    pieces = dg.split(x, 3, name="third")
    assert [t.name for t in pieces] == ["third_0", "third_1", "third_2"]
    assert {t.op for t in pieces} == {"split"} and [t.shape for t in pieces] == [(2, 2)] * 3
    np.testing.assert_array_equal(_run(pieces[1]), np.split(np.arange(12.0).reshape(6, 2), 3)[1])
    first, _, last = pieces
    grad = g.backward(dg.sum(first) * 2 + dg.sum(last * last)).grad(x)
    expected = np.zeros((6, 2))
    expected[:2] = 2
    expected[4:] = 2 * np.arange(8.0, 12.0).reshape(2, 2)
    np.testing.assert_array_equal(grad, expected)


def test_split_at_indices_follows_numpy_slicing_including_empty_and_negative_cuts():
    x = np.arange(7.0)
    g = dg.Graph()
    p = g.param("x", x)
    for cuts in ([2, 5], [-2], [3, 3], [5, 9], [6, 2]):
        pieces = dg.split(p, cuts)
        expected = np.split(x, cuts)
        assert [t.shape for t in pieces] == [e.shape for e in expected], cuts
        for t, e in zip(pieces, expected):
            np.testing.assert_array_equal(_run(t), e)


def test_split_of_an_unknown_axis_into_equal_pieces_is_checked_when_it_runs():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3))
    a, b = dg.split(x, 2)
    assert a.shape == (None, 3)
    np.testing.assert_array_equal(_run(b, {"x": np.arange(12.0).reshape(4, 3)}), np.arange(6.0, 12.0).reshape(2, 3))
    with pytest.raises(dg.DagradError, match="does not split into 2 equal sections"):
        _run(b, {"x": np.ones((3, 3))})
    with pytest.raises(dg.ShapeError, match="does not split into 2 equal sections"):
        dg.split(g.param("odd", np.ones(5)), 2)
    with pytest.raises(dg.ShapeError, match="into 0 pieces"):
        dg.split(x, 0)


@pytest.mark.parametrize("size, chunks, sizes", [(7, 4, [2, 2, 2, 1]), (6, 4, [2, 2, 2]), (5, 2, [3, 2]),
                                                 (1, 3, [1]), (0, 3, [0, 0, 0])])
def test_chunk_cuts_pieces_as_torch_chunk_does(size, chunks, sizes):
    g = dg.Graph()
    pieces = dg.chunk(g.param("x", np.ones((2, size))), chunks, axis=1)
    assert [t.shape[1] for t in pieces] == sizes
    if torch is not None:
        assert [c.shape[1] for c in torch.chunk(torch.ones(2, size), chunks, dim=1)] == sizes


def test_chunk_of_an_axis_of_unknown_size_is_refused_pointing_to_split():
    g = dg.Graph()
    with pytest.raises(dg.ShapeError, match=r"split\(x, 2, axis=0\)"):
        dg.chunk(g.input("x", shape=(None, 3)), 2)


# ------------------------------------------------ tril, diagonal, trace ---


def test_tril_and_triu_work_on_batches_and_pass_gradient_only_inside_the_triangle():
    x = np.arange(18.0).reshape(2, 3, 3)
    g = dg.Graph()
    p = g.param("x", x)
    lower, upper = dg.tril(p, -1), dg.triu(p, 1)
    np.testing.assert_array_equal(_run(lower), np.tril(x, -1))
    grad = g.backward(dg.sum(lower) + dg.sum(upper)).grad(p)
    np.testing.assert_array_equal(grad, np.broadcast_to(1.0 - np.eye(3), (2, 3, 3)))
    with pytest.raises(dg.ShapeError, match="at least 2 axes"):
        dg.tril(g.param("v", np.ones(3)))


@pytest.mark.parametrize("offset, axis1, axis2", [(0, 0, 1), (1, 1, 2), (-1, 2, 0), (3, 0, 2)])
def test_diagonal_and_trace_match_numpy_and_send_gradient_to_the_diagonal(offset, axis1, axis2):
    x = np.arange(24.0).reshape(3, 2, 4)
    g = dg.Graph()
    p = g.param("x", x)
    d, t = dg.diagonal(p, offset, axis1, axis2), dg.trace(p, offset, axis1, axis2)
    np.testing.assert_array_equal(_run(d), np.diagonal(x, offset, axis1, axis2))
    np.testing.assert_array_equal(_run(t), np.trace(x, offset, axis1, axis2))
    grad = g.backward(dg.sum(t)).grad(p)
    marked = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        if index[axis2] - index[axis1] == offset:
            marked[index] = 1.0
    np.testing.assert_array_equal(grad, marked)


def test_trace_of_integers_widens_like_numpy_and_diagonal_of_an_unknown_axis_is_unknown():
    g = dg.Graph()
    assert dg.trace(g.const(np.ones((2, 2), np.int8))).dtype == np.trace(np.ones((2, 2), np.int8)).dtype
    assert dg.diagonal(g.input("x", shape=(None, 4))).shape == (None,)
