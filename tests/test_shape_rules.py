"""Shape rules compute shapes from sizes alone: they agree with numpy, keep unknown sizes unknown, and never
allocate memory in proportion to the sizes they are given (a model file is small; its declared sizes need not be)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dagrad as dg
from dagrad.index import encode_index
from dagrad.shapes import broadcasts_to, dims_agree, fits, indexed_shape, shapes_agree

BUNDLED_PLUGINS = {"builtins", "activations", "conv"}
OPS = sorted(name for name, op in dg.registry().ops.items() if op.plugin in BUNDLED_PLUGINS)


# ------------------------------------------------ sizes that may be unknown ---


@pytest.mark.parametrize("a, b, agree", [
    (3, 3, True), (None, 3, True), (3, None, True), (None, None, True), (0, 0, True),
    (3, 4, False), (1, 4, False), (0, 1, False),  # equality: a size of 1 does not broadcast here
])
def test_dims_agree_unless_both_are_known_and_differ(a, b, agree):
    assert dims_agree(a, b) is agree
    assert dims_agree(b, a) is agree


@pytest.mark.parametrize("a, b, agree", [
    ((), (), True), ((None, 3), (8, 3), True), ((None, None), (2, 5), True),
    ((8, 3), (8, 4), False), ((3,), (1, 3), False), ((None,), (None, None), False), ((), (None,), False),
])
def test_shapes_agree_need_the_same_rank_and_agreeing_sizes(a, b, agree):
    assert shapes_agree(a, b) is agree
    assert shapes_agree(b, a) is agree


BROADCASTS = [
    # same rank: sizes equal, or 1 in the shape
    ((3, 4), (3, 4), True), ((1, 4), (3, 4), True), ((3, 1), (3, 4), True), ((1, 1), (3, 4), True),
    ((3, 4), (3, 1), False), ((4, 3), (3, 4), False), ((2, 4), (3, 4), False),
    # rank: fewer axes take new ones in front; more axes never fit
    ((), (), True), ((), (2, 3), True), ((4,), (2, 3, 4), True), ((3, 1), (2, 3, 4), True),
    ((3,), (3, 1), False), ((2, 3), (3,), False), ((1, 1), (1,), False), ((1,), (), False),
    # size 0 and size 1: a 1 stretches to 0, a 0 fits only 0, a 1 in the target takes only 1
    ((0,), (0,), True), ((1,), (0,), True), ((0, 1), (3, 0, 4), True), ((1, 3), (0, 3), True),
    ((0,), (1,), False), ((0,), (3,), False), ((3,), (0,), False), ((2,), (1,), False),
    # unknown sizes agree with any size, on either side, but not across ranks
    ((None,), (3,), True), ((None,), (1,), True), ((None,), (0,), True), ((3,), (None,), True),
    ((None, 4), (2, None), True), ((None,), (None, None), True), ((1, None), (None, 5), True),
    ((None, 3), (None, 4), False), ((None, None), (None,), False), ((3, None), (4, None), False),
]


@pytest.mark.parametrize("shape, target, fits_in", BROADCASTS)
def test_broadcasts_to_stretches_size_1_and_adds_leading_axes_but_never_widens(shape, target, fits_in):
    assert broadcasts_to(shape, target) is fits_in
    if None not in shape + target:  # numpy is the reference where every size is known
        try:
            numpy_fits = np.broadcast_to(np.empty(shape), target).shape == target
        except ValueError:
            numpy_fits = False
        assert numpy_fits is fits_in


def test_broadcast_to_takes_an_unknown_size_into_a_size_1_target_and_refuses_an_unknown_target_size():
    g = dg.Graph()
    x = g.input("x", shape=(None,))
    assert dg.broadcast_to(x, (2, 1)).shape == (2, 1)  # known only at run time: fed with size 1, it fits
    with pytest.raises(dg.ShapeError, match="must give every size.*broadcast_like"):
        dg.broadcast_to(g.input("y", shape=(3,)), (None, 3))
    with pytest.raises(dg.ShapeError, match=r"\(4,\) does not broadcast to \(3,\)"):
        dg.broadcast_to(g.input("z", shape=(4,)), (3,))


def test_shape_rules_comparing_sizes_refuse_a_known_mismatch_and_accept_an_unknown_size():
    g = dg.Graph()
    q = g.input("q", shape=(2, None, 4))
    k = g.input("k", shape=(2, 5, 4))
    assert dg.ops.scaled_dot_product_attention(q, k, g.input("v", shape=(2, None, 6))).shape == (2, None, 6)
    with pytest.raises(dg.ShapeError, match="different lengths"):
        dg.ops.scaled_dot_product_attention(q, k, g.input("w", shape=(2, 3, 6)))


# ------------------------------------------------------- getitem vs numpy ---


@st.composite
def shapes_and_indices(draw):
    """A shape of up to 4 small sizes and an index into it: mostly valid, sometimes not (out of range,
    mismatched boolean arrays, too many items, two ellipses), mixing every kind numpy accepts."""
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=4)))
    items: list = []
    axis = 0
    for _ in range(draw(st.integers(0, 5))):
        size = shape[axis] if axis < len(shape) else 3  # the axis an item lands on is a guess after "..."
        kind = draw(st.sampled_from(["int", "slice", "slice", "none", "ellipsis", "ints", "ints", "bools", "bool0"]))
        if kind == "int":
            items.append(draw(st.integers(-size - 1, size)))
        elif kind == "slice":
            bound = st.none() | st.integers(-7, 7)
            items.append(slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3, -1, -2]))))
        elif kind == "none":
            items.append(None)
            continue
        elif kind == "ellipsis":
            items.append(Ellipsis)
            continue
        elif kind == "ints":
            ishape = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
            low, high = (-size, size - 1) if size and draw(st.integers(0, 9)) else (-size - 1, size + 1)
            items.append(np.asarray(draw(st.lists(st.integers(low, high), min_size=int(np.prod(ishape)),
                                                  max_size=int(np.prod(ishape)))), dtype=np.intp).reshape(ishape))
        elif kind == "bools":
            k = draw(st.integers(1, 2))
            dims = list(shape[axis:axis + k]) or [2]
            if draw(st.integers(0, 9)) == 0:
                dims[0] += 1  # a boolean index that does not match
            items.append(np.asarray(draw(st.lists(st.booleans(), min_size=int(np.prod(dims)),
                                                  max_size=int(np.prod(dims)))), dtype=bool).reshape(dims))
            axis += len(dims) - 1
        else:
            items.append(np.asarray(draw(st.booleans())))
            continue
        axis += 1
    return shape, tuple(items)


def _numpy_shape(shape, index):
    try:
        return np.zeros(shape)[index].shape
    except (IndexError, ValueError):
        return None


def _rule_shape(shape, index):
    try:
        return dg.registry().op("getitem").shape_rule(shape, index=encode_index(index))
    except ValueError:
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes_and_indices())
def test_getitem_shape_rule_agrees_with_numpy(case):
    shape, index = case
    assert _rule_shape(shape, index) == _numpy_shape(shape, index)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes_and_indices(), st.data())
def test_getitem_with_unknown_sizes_claims_only_what_every_fed_size_gives(case, data):
    shape, index = case
    if not shape:
        return
    unknown = data.draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    declared = tuple(None if u else d for d, u in zip(shape, unknown))
    claimed = _rule_shape(declared, index)
    for _ in range(4):
        fed = tuple(data.draw(st.integers(0, 6)) if u else d for d, u in zip(shape, unknown))
        real = _numpy_shape(fed, index)
        if claimed is None:
            assert real is None, f"the rule refused {declared} but numpy indexes {fed}"
        elif real is not None:
            assert fits(real, claimed), f"declared {declared} claims {claimed}; fed {fed} gives {real}"


@pytest.mark.parametrize("index, expected", [
    ((slice(None, 3),), (None, 5)),                    # issue 8.15: not (3, 5)
    ((slice(1, None, 2),), (None, 5)),
    ((slice(None), slice(None, 3)), (None, 3)),        # a known axis keeps its slice length
    ((np.arange(4),), (4, 5)),                          # the index array decides the size
    ((np.array([True, False, True]), 0), (2,)),         # a boolean array picks its true entries
    ((Ellipsis, None), (None, 5, 1)),
])
def test_slicing_an_unknown_axis_keeps_it_unknown(index, expected):
    g = dg.Graph()
    x = g.input("x", shape=(None, 5))
    assert x[index].shape == expected


def test_a_slice_of_an_unknown_axis_then_fails_at_build_time_only_if_it_must():
    g = dg.Graph()
    x = g.input("x", shape=(None, 5))
    first3 = x[:3]
    y = first3 + g.const(np.ones((3, 5)))               # may fit: the fed size decides
    res = g.forward(y, {"x": np.zeros((4, 5))})
    assert res.value(y).shape == (3, 5)
    with pytest.raises(dg.OpError):
        g.forward(y, {"x": np.zeros((2, 5))})           # fed 2 rows: x[:3] has 2, a run-time error naming the node


def test_getitem_shape_errors_name_the_node():
    g = dg.Graph()
    x = g.input("x", shape=(4, 5))
    with pytest.raises(dg.ShapeError, match=r"getitem.*index 7 is out of bounds for axis 1 with size 5"):
        x[:, [0, 7]]
    with pytest.raises(dg.ShapeError, match="boolean index did not match"):
        x[np.ones(3, bool)]


# ------------------------------------------------------------ squeeze ---


def test_squeeze_of_an_unknown_size_without_axis_is_refused_asking_for_the_axis():
    g = dg.Graph()
    x = g.input("x", shape=(None, 3, 1))
    with pytest.raises(dg.ShapeError, match=r"axis 0 is known only when fed.*squeeze\(x, axis=\.\.\.\)"):
        dg.squeeze(x)
    assert dg.squeeze(x, 2).shape == (None, 3)        # naming the axes says what will happen
    assert dg.squeeze(x, 0).shape == (3, 1)           # and asserts that the unknown axis is fed as 1
    y = dg.squeeze(x, 0)
    assert g.forward(y, {"x": np.ones((1, 3, 1))}).value(y).shape == (3, 1)
    with pytest.raises(dg.OpError, match="squeeze"):
        g.forward(y, {"x": np.ones((2, 3, 1))})


# ------------------------------------------------------------ allocation ---


HUGE = 10**12  # sizes no machine could allocate: a rule that allocates fails loudly or eats memory
LARGE = 10**5  # sizes whose products numpy still accepts, so a rule that allocates does allocate


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_getitem_with_a_large_boolean_index_on_a_huge_input_allocates_nothing_of_its_size():
    # Issue 9.7: a 553-byte model file made loading allocate 18.6 GiB through this shape rule.
    mask = np.zeros(20_000, bool)
    mask[::7] = True
    g = dg.Graph()
    x = g.input("x", shape=(None, 4 * HUGE))
    peak = _peak_bytes(lambda: x[mask, 1:])
    assert peak < 2_000_000, f"{peak} bytes"
    assert x[mask, 1:].shape == (int(mask.sum()), 4 * HUGE - 1)
    wrong = g.input("wrong", shape=(10**6, 4))
    with pytest.raises(dg.ShapeError, match="boolean index did not match"):
        _peak_bytes(lambda: wrong[mask])


@pytest.mark.parametrize("name", OPS)
def test_no_shape_rule_allocates_in_proportion_to_the_sizes_it_is_given(name):
    # Every sample of every op, with every size above 1 made 100,000 times larger.
    op = dg.registry().op(name)
    if op.shape_rule is None:
        pytest.skip("no shape rule")
    samples = op.samples(np.random.default_rng(0))
    checked = 0
    for sample in samples:
        shapes = [np.shape(a) for a in sample.args]
        # Scale every size above 1 so that the inputs still fit each other (broadcasting, matching axes).
        huge = [tuple(d * LARGE if d > 1 else d for d in s) for s in shapes]
        attrs = op.bind_attrs(sample.attrs)

        def infer():
            try:
                op.shape_rule(*huge, **attrs)
            except ValueError:
                pass  # a refusal (a fixed reshape target, say) is fine: it allocated nothing either

        peak = _peak_bytes(infer)
        assert peak < 200_000, f"op {name!r}, case {sample.label!r}: the shape rule allocated {peak} bytes"
        checked += 1
    assert checked
