"""Indexing ops (``x[...]``, take, take_along_axis, one_hot): values against NumPy,
slicing of symbolic dims, gradients by finite differences and against torch, and
the errors users see."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.ops import _dims, indexing
from tests.helpers import against_torch, assert_gradients, evaluate, requires_torch, torch

RNG = np.random.default_rng(11)
X = RNG.standard_normal((3, 4, 5))


# -- basic indexing ----------------------------------------------------------------------------

INDEXES = [
    1, -1, (0, 2), (slice(None), 1), (slice(1, 3),), (slice(None, None, -1),),
    (slice(3, 0, -2), slice(None), slice(1, None, 2)), (..., 2), (1, ..., slice(None, 2)),
    (None, 1), (slice(None), None, slice(2, 4), None), (Ellipsis,), (), (-1, -1, -1),
    (slice(-2, None), 0, slice(None, -3, -1)), (slice(10, 20),), (slice(-10, 2),),
    (np.int64(2), slice(np.int32(1), None)), (None, ..., None),
]


@pytest.mark.parametrize("index", INDEXES, ids=[repr(i) for i in INDEXES])
def test_getitem_matches_numpy(index):
    got = evaluate(lambda x: x[index], X)
    want = X[index]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_full_index_is_the_input_itself():
    x = gx.input("x", (3, 4))
    assert x[:] is x and x[...] is x and x[:, ::1] is x


def test_iterating_a_tensor_slices_its_first_axis():
    rows = evaluate(lambda x: list(x), X[0])
    for got, want in zip(rows, X[0], strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("index, message", [
    (3, "index 3 is out of range for axis 0 of size 3"),
    ((0, -5), "index -5 is out of range for axis 1 of size 4"),
    ((0, 0, 0, 0), "too many indices"),
    ((..., 0, ...), "single ellipsis"),
    (slice(None, None, 0), "step cannot be zero"),
    (slice(0.5, 2), "slice bounds must be ints"),
    ([0, 2], "advanced indexing with list .* gx.take"),
    (np.array([0, 1]), "advanced indexing with ndarray .* gx.take"),
    ((slice(None), True), "advanced indexing with bool"),
])
def test_getitem_errors_are_clear(index, message):
    x = gx.input("x", (3, 4, 5))
    with pytest.raises(gx.GraphcTypeError, match=message) as info:
        x[index]
    assert "getitem" in str(info.value) and "float32(3, 4, 5)" in str(info.value)


def test_indexing_with_a_tensor_suggests_take():
    x, i = gx.input("x", (3, 4)), gx.input("i", (2,), "int64")
    with pytest.raises(gx.GraphcTypeError, match="gx.take"):
        x[i]


# -- slicing symbolic dims ---------------------------------------------------------------------

SYMBOLIC_SLICES = [
    # (index, the static type of the result along the symbolic axis)
    ((slice(None), slice(1, 3)), ("b", 2)),
    ((slice(1, 3),), (2, 4)),
    ((slice(None, 2),), (2, 4)),
    ((slice(-2, None),), (2, 4)),
    ((slice(-1, -4, -1),), (3, 4)),
    ((slice(2, None, -1),), (3, 4)),
    ((slice(None, None, -1),), ("b", 4)),
    ((slice(1, None),), ("b-1", 4)),
    ((slice(None, -1),), ("b-1", 4)),
    ((slice(1, -1),), ("b-2", 4)),
    ((slice(None, 0, -1),), ("b-1", 4)),
    ((slice(None, None, 2),), ("b/2", 4)),
    ((slice(1, None, 3),), ("(b-1)/3", 4)),
    ((slice(-5, 3),), ("b[-5:3]", 4)),
    ((0,), (4,)),
    ((-1, slice(None, None, 2)), (2,)),
]


@pytest.mark.parametrize("index, shape", SYMBOLIC_SLICES, ids=[repr(s[0]) for s in SYMBOLIC_SLICES])
def test_slices_of_a_symbolic_dim(index, shape):
    x = gx.input("x", ("b", 4), "float64")
    y = x[index]
    assert y.shape == shape
    fn = gx.compile([x], [y, gx.grad(gx.sum(y * y), x)])
    for batch in (3, 4, 7):
        a = RNG.standard_normal((batch, 4))
        value, grad = fn(a)
        np.testing.assert_array_equal(value, a[index])
        want = np.zeros_like(a)
        want[index] = 2 * a[index]
        np.testing.assert_array_equal(grad, want)


def test_a_static_slice_too_long_for_the_runtime_dim_is_an_error():
    x = gx.input("x", ("b", 4), "float64")
    fn = gx.compile([x], x[1:3])
    assert fn(np.ones((5, 4))).shape == (2, 4)
    # the numpy backend's words, or the llvm backend's
    with pytest.raises(gx.GraphcError, match="getitem: .*(1 elements along axis 0 where the "
                                             "graph was built for 2|along axis 0 does not "
                                             "have the 2 elements the graph was built for)"):
        fn(np.ones((2, 4)))


def test_an_int_index_out_of_a_symbolic_dim_fails_at_run_time_naming_the_node():
    x = gx.input("x", ("b", 4), "float64")
    fn = gx.compile([x], x[3])
    np.testing.assert_array_equal(fn(np.eye(5, 4)), np.eye(5, 4)[3])
    with pytest.raises(gx.GraphcError, match="getitem: (IndexError|index 3 is out of bounds "
                                             "for axis 0)"):
        fn(np.ones((2, 4)))


def test_derived_dims_broadcast_and_cancel():
    x = gx.input("x", ("b", 3), "float64")
    diff = x[1:] - x[:-1]  # both "b-1"
    assert diff.shape == ("b-1", 3)
    padded = gx.pad(diff, ((1, 0), (0, 0)))
    assert padded.shape == ("b", 3)
    total = gx.sum(gx.mean(diff * diff, 0) + padded[-1])
    fn = gx.compile([x], [padded + x, total, gx.grad(total, x)])
    for batch in (2, 6):
        a = RNG.standard_normal((batch, 3))
        d = np.diff(a, axis=0)
        summed, value, grad = fn(a)
        np.testing.assert_allclose(summed, np.pad(d, ((1, 0), (0, 0))) + a)
        np.testing.assert_allclose(value, (d * d).mean(0).sum() + d[-1].sum())
        # d total / d a by hand: the mean of squares, then the last difference
        g_d = 2 * d / (batch - 1)
        g_d[-1] += 1
        want = np.zeros_like(a)
        want[1:] += g_d
        want[:-1] -= g_d
        np.testing.assert_allclose(grad, want, rtol=1e-12)


def test_slicing_a_flattened_symbolic_dim():
    x = gx.input("x", ("b", 3), "float64")
    y = gx.reshape(x, -1)[2:]
    assert y.shape == ("(b·3)-2",)
    fn = gx.compile([x], [y, gx.grad(gx.sum(y), x)])
    value, grad = fn(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(value, [2, 3, 4, 5])
    np.testing.assert_array_equal(grad, [[0, 0, 1], [1, 1, 1]])


def test_slice_length_formula():
    for n in range(6):
        for start in [None, -7, -2, 0, 1, 4]:
            for stop in [None, -6, -1, 0, 2, 9]:
                for step in [None, 1, 2, -1, -3]:
                    assert _dims.slice_length(n, start, stop, step) == \
                        len(range(n)[start:stop:step])
    assert _dims.offset_dim("b-1", 1) == "b"
    assert _dims.offset_dim("b*4", 2) == "(b·4)+2"
    assert _dims.offset_dim("(b·4)+2", -2) == "b*4"
    assert _dims.offset_dim(_dims.offset_dim("(b·4)/2", 1), -1) == "(b·4)/2"


# -- gathering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("indices, axis", [
    ([0, 2, 2, -1], 1), (np.array([[1, 0], [2, 2]]), 0), ([5, 0, 59], None), (2, -1),
    (np.zeros((0,), np.int64), 2),
])
def test_take_matches_numpy(indices, axis):
    got = evaluate(lambda x: gx.take(x, indices, axis), X)
    np.testing.assert_array_equal(got, np.take(X, indices, axis))


def test_take_with_runtime_indices_and_symbolic_batch():
    x, i = gx.input("x", ("b", 4), "float64"), gx.input("i", ("n",), "int32")
    y = gx.take(x, i, 1)
    assert y.shape == ("b", "n")
    fn = gx.compile([x, i], [y, gx.grad(gx.sum(y), x)])
    a, idx = RNG.standard_normal((3, 4)), np.array([3, 3, 0, -1, 1], np.int32)
    value, grad = fn(a, idx)
    np.testing.assert_array_equal(value, np.take(a, idx, 1))
    want = np.zeros_like(a)
    np.add.at(want, (slice(None), idx), 1.0)  # repeated indices accumulate
    np.testing.assert_array_equal(grad, want)


@pytest.mark.parametrize("indices, axis", [
    (np.array([[0], [3], [1]])[:, :, None], 1),
    (np.array([[[4, 0, 0]]]), 2),
    (np.array([[[1]], [[2]], [[0]]]).repeat(5, 2), 1),
    (np.array([59, 0, 7]), None),
])
def test_take_along_axis_matches_numpy(indices, axis):
    got = evaluate(lambda x: gx.take_along_axis(x, indices, axis), X)
    np.testing.assert_array_equal(got, np.take_along_axis(X, indices, axis))


def test_cross_entropy_with_integer_labels_over_a_symbolic_batch():
    logits, labels = gx.input("logits", ("b", 5), "float64"), gx.input("labels", ("b",), "int64")
    picked = gx.take_along_axis(logits, gx.expand_dims(labels, -1), -1)
    loss = gx.mean(gx.logsumexp(logits, -1) - gx.squeeze(picked, -1))
    fn = gx.compile([logits, labels], [loss, gx.grad(loss, logits)])
    for batch in (1, 4):
        z, y = RNG.standard_normal((batch, 5)), RNG.integers(0, 5, batch)
        value, grad = fn(z, y)
        softmax = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        np.testing.assert_allclose(value, -np.log(softmax[np.arange(batch), y]).mean())
        np.testing.assert_allclose(grad, (softmax - np.eye(5)[y]) / batch, atol=1e-15)


def test_one_hot():
    labels = np.array([[0, 3], [-100, 4]])
    got = evaluate(lambda t: gx.one_hot(t, 4), labels)
    assert got.dtype == np.float32 and got.shape == (2, 2, 4)
    want = np.zeros((2, 2, 4), np.float32)
    want[0, 0, 0] = want[0, 1, 3] = 1  # -100 and 4 are out of range: rows of zeros
    np.testing.assert_array_equal(got, want)
    assert evaluate(lambda t: gx.one_hot(t, 3, "float64"), np.array([2])).dtype == np.float64


@pytest.mark.parametrize("build, message", [
    (lambda x: gx.take(x, gx.input("f", (2,)), 0), "take: indices must be integers"),
    (lambda x: gx.take(x, [0, 3], 0), "take: indices 0..3 are out of range for axis 0"),
    (lambda x: gx.take(x, [0], 3), "take: axis 3 is out of range"),
    (lambda x: gx.take_along_axis(x, np.array([1]), 0), "indices need as many dims as x"),
    (lambda x: gx.take_along_axis(x, np.zeros((2, 2, 1), int), 2), "dims 2 vs 3"),
    (lambda x: gx.one_hot(gx.input("f", (2,)), 3), "one_hot: indices must be integers"),
    (lambda x: gx.one_hot([1, 2], -1), "depth must be a non-negative int"),
])
def test_gather_errors(build, message):
    x = gx.input("x", (3, 4, 5))
    with pytest.raises(gx.GraphcTypeError, match=message):
        build(x)


# -- gradients ---------------------------------------------------------------------------------

def _normal(*shape):
    return lambda: RNG.standard_normal(shape)


GRADIENT_TABLE = [
    # (label, graph builder, input generator, order)
    ("getitem", lambda x: x[1:, ::-2, None] ** 2, _normal(3, 4), 2),
    ("getitem int", lambda x: x[-1, 1:3] * x[0, :2], _normal(3, 4), 2),
    ("take", lambda x: gx.take(x, [0, 2, 2, -1], 1) ** 2, _normal(3, 4), 2),
    ("take flat", lambda x: gx.take(x, np.array([[5, 0], [5, 11]])) ** 2, _normal(3, 4), 2),
    ("take_along_axis", lambda x: gx.take_along_axis(x, np.array([[0], [2], [2]]), 1) ** 2,
     _normal(3, 4), 2),
    ("take_along_axis broadcast",
     lambda x: gx.take_along_axis(x, np.array([[[1, 0, 0]], [[2, 2, 1]]]), 1) ** 2,
     _normal(2, 3, 1), 2),
]


@pytest.mark.parametrize("label, f, make, order", GRADIENT_TABLE,
                         ids=[row[0] for row in GRADIENT_TABLE])
def test_gradients_match_finite_differences(label, f, make, order):
    assert_gradients(f, make(), order=order)


# -- torch as a second system ------------------------------------------------------------------

IDX = np.array([2, 0, 2, 3])
GATHER = np.array([[[0, 2, 1, 1, 0]], [[2, 2, 2, 2, 2]], [[1, 0, 0, 0, 1]]])

TORCH_CASES = [
    # (label, graphc, torch, input)
    ("getitem", lambda x: x[1:, ::2, -1], lambda t: t[1:, ::2, -1], X),
    ("take", lambda x: gx.take(x, IDX, 1),
     lambda t: t.index_select(1, torch.tensor(IDX)), X),
    ("take_along_axis", lambda x: gx.take_along_axis(x, GATHER, 1),
     lambda t: t.gather(1, torch.tensor(GATHER)), X),
]


@requires_torch
@pytest.mark.parametrize("label, ours, theirs, x", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_values_and_gradients_match_torch(label, ours, theirs, x):
    against_torch(ours, theirs, x, rtol=1e-12, atol=1e-12)


def test_indexing_ops_are_registered_once_under_their_names():
    ops = [indexing._getitem, indexing._slice_scatter, indexing._take, indexing._take_scatter_add,
           indexing._take_along_axis, indexing._take_along_axis_scatter_add, indexing._one_hot]
    for op in ops:
        assert gx.ops.base.ALL_OPS[op.name] is op
