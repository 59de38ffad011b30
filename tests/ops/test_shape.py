"""Shape ops: values against NumPy, slicing of symbolic dims, gradients by finite
differences and against torch, and the errors users see."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.ops import shape as shape_ops
from tests.helpers import assert_gradients, evaluate

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
    with pytest.raises(gx.GraphcError, match="getitem: .*1 elements along axis 0 where the graph "
                                             "was built for 2"):
        fn(np.ones((2, 4)))


def test_an_int_index_out_of_a_symbolic_dim_fails_at_run_time_naming_the_node():
    x = gx.input("x", ("b", 4), "float64")
    fn = gx.compile([x], x[3])
    np.testing.assert_array_equal(fn(np.eye(5, 4)), np.eye(5, 4)[3])
    with pytest.raises(gx.GraphcError, match="getitem: IndexError"):
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
                    assert shape_ops.slice_length(n, start, stop, step) == \
                        len(range(n)[start:stop:step])
    assert shape_ops.offset_dim("b-1", 1) == "b"
    assert shape_ops.offset_dim("b*4", 2) == "(b·4)+2"
    assert shape_ops.offset_dim("(b·4)+2", -2) == "b*4"
    assert shape_ops.offset_dim(shape_ops.offset_dim("(b·4)/2", 1), -1) == "(b·4)/2"


# -- reshape, transpose, squeeze, expand_dims, broadcast_to -----------------------------------


def test_reshape_transpose_permute_squeeze_expand():
    out = evaluate(lambda x: [gx.reshape(x, (4, -1)), x.reshape(60), gx.transpose(x),
                              x.transpose(2, 0, 1), gx.permute(x, 1, -1, 0),
                              gx.permute(x, (2, 1, 0)), gx.squeeze(x[:, :1, None]),
                              gx.squeeze(x[:1, :, :1], (0, -1)), gx.expand_dims(x, (0, -1)),
                              gx.broadcast_to(x[:, :1], (2, 3, 4, 5))], X)
    want = [X.reshape(4, -1), X.reshape(60), X.T, X.transpose(2, 0, 1), X.transpose(1, 2, 0),
            X.transpose(2, 1, 0), np.squeeze(X[:, :1, None]), X[0, :, 0],
            X[None, ..., None], np.broadcast_to(X[:, :1], (2, 3, 4, 5))]
    for got, expected in zip(out, want, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_symbolic_reshape_and_squeeze():
    x = gx.input("x", ("b", 3, 4), "float64")
    flat = gx.reshape(x, (-1, 4))
    assert flat.shape == ("b*3", 4)
    back = gx.reshape(flat, ("b", 12))
    assert gx.squeeze(x[:, :1]).shape == ("b", 4)  # the symbolic dim is never squeezed
    assert gx.broadcast_to(gx.sum(flat, 1, True), flat.shape).shape == ("b*3", 4)
    a = RNG.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(gx.compile([x], back)(a), a.reshape(2, 12))


@pytest.mark.parametrize("build, message", [
    (lambda x: gx.reshape(x, (7, -1)), "reshape: cannot infer -1"),
    (lambda x: gx.reshape(x, (5, 5)), "reshape: cannot reshape"),
    (lambda x: gx.transpose(x, (0, 0, 1)), "transpose: axes .* not a permutation"),
    (lambda x: gx.transpose(x, (0, 1, 3)), "transpose: axis 3 is out of range"),
    (lambda x: gx.squeeze(x, 1), "squeeze: cannot squeeze axis 1 .* size is 4"),
    (lambda x: gx.expand_dims(x, 5), "expand_dims: axis 5 is out of range"),
    (lambda x: gx.broadcast_to(x, (4, 5)), "broadcast_to: cannot broadcast"),
    (lambda x: gx.broadcast_to(x, (2, "b", 5)), "broadcast_to: dims"),
])
def test_shape_errors_name_the_op_and_shapes(build, message):
    x = gx.input("x", (3, 4, 5))
    with pytest.raises(gx.GraphcTypeError, match=message) as info:
        build(x)
    assert "float32(3, 4, 5)" in str(info.value) and "test_shape.py" in str(info.value)


def test_squeezing_a_symbolic_axis_is_an_error():
    with pytest.raises(gx.GraphcTypeError, match="its size is b, not 1"):
        gx.squeeze(gx.input("x", ("b", 1)), 0)


# -- joining and splitting ---------------------------------------------------------------------


def test_concatenate_stack_split_match_numpy():
    a, b = X, RNG.standard_normal((3, 2, 5))
    out = evaluate(lambda x, y: [gx.concatenate([x, y, x], 1), gx.concatenate([x[:, :2], y], -1),
                                 gx.stack([x, x * 2], 0), gx.stack([x, x], -1),
                                 *gx.split(x, 5, -1), *gx.split(x, [1, 3, 3, 10], 1)], a, b)
    want = [np.concatenate([a, b, a], 1), np.concatenate([a[:, :2], b], -1),
            np.stack([a, a * 2], 0), np.stack([a, a], -1), *np.split(a, 5, -1),
            *np.split(a, [1, 3, 3, 10], 1)]
    for got, expected in zip(out, want, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_concatenate_promotes_dtypes_and_allows_symbolic_dims_off_axis():
    x, y = gx.input("x", ("b", 2), "float32"), gx.input("y", ("b", 3), "float64")
    z = gx.concatenate([x, y], 1)
    assert z.type == gx.TensorType(("b", 5), "float64")
    got = gx.compile([x, y], z)(np.ones((4, 2), np.float32), np.zeros((4, 3)))
    np.testing.assert_array_equal(got, np.concatenate([np.ones((4, 2)), np.zeros((4, 3))], 1))


@pytest.mark.parametrize("build, message", [
    (lambda x, y: gx.concatenate([x, y], 1), "differ off the joined axis 1"),
    (lambda x, y: gx.concatenate([x, x], 0), "joined axis 0 must be static"),
    (lambda x, y: gx.concatenate([x, x], 2), "axis 2 is out of range"),
    (lambda x, y: gx.concatenate([x, gx.input("v", (3,))], 0), "does not fit the shapes"),
    (lambda x, y: gx.stack([x, y]), "stack: needs tensors of one shape"),
    (lambda x, y: gx.split(y, 2, 1), "does not split into 2 equal sections"),
    (lambda x, y: gx.split(x, 2, 0), "cannot split the symbolic axis 0"),
])
def test_join_and_split_errors(build, message):
    x, y = gx.input("x", ("b", 3)), gx.input("y", (2, 3))
    with pytest.raises(gx.GraphcTypeError, match=message):
        build(x, y)


def test_split_of_a_symbolic_axis_at_indices():
    x = gx.input("x", ("b", 3), "float64")
    head, tail = gx.split(x, [2])
    assert head.shape == (2, 3) and tail.shape == ("b-2", 3)
    a = RNG.standard_normal((5, 3))
    got = gx.compile([x], [head, tail])(a)
    np.testing.assert_array_equal(got[0], a[:2])
    np.testing.assert_array_equal(got[1], a[2:])


def test_unused_split_pieces_get_zero_gradient():
    def f(x):
        pieces = gx.split(x, 4, 1)
        return gx.sum(pieces[1] * 3.0) + gx.sum(pieces[3] ** 2)

    g = evaluate(lambda x: gx.grad(f(x), x), X[:, :4, 0])
    want = np.zeros((3, 4))
    want[:, 1] = 3.0
    want[:, 3] = 2 * X[:, 3, 0]
    np.testing.assert_array_equal(g, want)


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


# -- padding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, (2, 0), ((1, 2), (0, 0), (3, 1))])
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
def test_pad_matches_numpy(width, mode):
    kwargs = {"constant_values": -2.5} if mode == "constant" else {}
    got = evaluate(lambda x: gx.pad(x, width, mode, **kwargs), X)
    np.testing.assert_array_equal(got, np.pad(X, width, mode, **kwargs))


def test_pad_errors():
    x = gx.input("x", ("b", 3))
    with pytest.raises(gx.GraphcTypeError, match="pad: mode 'reflect' needs a static size"):
        gx.pad(x, 1, "reflect")
    with pytest.raises(gx.GraphcTypeError, match="pad widths must be non-negative ints"):
        gx.pad(x, -1)
    with pytest.raises(gx.GraphcTypeError, match="mode must be one of"):
        gx.pad(x, 1, "circular")
    assert gx.pad(x, ((0, 0), (1, 1)), "reflect").shape == ("b", 5)


# -- gradients ---------------------------------------------------------------------------------

def _normal(*shape):
    return lambda: RNG.standard_normal(shape)


GRADIENT_TABLE = [
    # (label, graph builder, input generator, order)
    ("reshape", lambda x: gx.reshape(x, (3, -1)) ** 2, _normal(2, 3, 2), 2),
    ("transpose", lambda x: gx.permute(x, 2, 0, 1) * gx.transpose(x, (2, 0, 1)),
     _normal(2, 3, 2), 2),
    ("broadcast_to", lambda x: gx.broadcast_to(x, (3, 2, 3)) ** 3, _normal(2, 1), 2),
    ("squeeze", lambda x: gx.squeeze(x) ** 2, _normal(1, 3, 1), 2),
    ("getitem", lambda x: x[1:, ::-2, None] ** 2, _normal(3, 4), 2),
    ("getitem int", lambda x: x[-1, 1:3] * x[0, :2], _normal(3, 4), 2),
    ("concatenate", lambda x: gx.concatenate([x, x ** 2, x[:, :1]], 1), _normal(2, 3), 2),
    ("stack", lambda x: gx.stack([x, x * x], -1), _normal(2, 3), 2),
    ("split", lambda x: gx.split(x, [1, 3], 1)[1] ** 2, _normal(2, 4), 2),
    ("take", lambda x: gx.take(x, [0, 2, 2, -1], 1) ** 2, _normal(3, 4), 2),
    ("take flat", lambda x: gx.take(x, np.array([[5, 0], [5, 11]])) ** 2, _normal(3, 4), 2),
    ("take_along_axis", lambda x: gx.take_along_axis(x, np.array([[0], [2], [2]]), 1) ** 2,
     _normal(3, 4), 2),
    ("take_along_axis broadcast",
     lambda x: gx.take_along_axis(x, np.array([[[1, 0, 0]], [[2, 2, 1]]]), 1) ** 2,
     _normal(2, 3, 1), 2),
    ("pad constant", lambda x: gx.pad(x, ((1, 2), (0, 1)), constant_values=3.0) ** 2,
     _normal(3, 4), 2),
    ("pad reflect", lambda x: gx.pad(x, 2, "reflect") ** 2, _normal(3, 4), 2),
    ("pad edge", lambda x: gx.pad(x, ((1, 2), (0, 1)), "edge") ** 2, _normal(3, 4), 2),
    ("pad wrap", lambda x: gx.pad(x, (0, 3), "wrap") ** 2, _normal(3, 2), 2),
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
     lambda t: t.index_select(1, __import__("torch").tensor(IDX)), X),
    ("take_along_axis", lambda x: gx.take_along_axis(x, GATHER, 1),
     lambda t: t.gather(1, __import__("torch").tensor(GATHER)), X),
    ("concatenate", lambda x: gx.concatenate([x, x[:, :1] * 2], 1),
     lambda t: __import__("torch").cat([t, t[:, :1] * 2], 1), X),
    ("pad reflect", lambda x: gx.pad(x, ((0, 0), (2, 1), (3, 2)), "reflect"),
     lambda t: __import__("torch").nn.functional.pad(t, (3, 2, 2, 1), mode="reflect"), X),
    ("pad edge", lambda x: gx.pad(x, ((0, 0), (2, 1), (3, 2)), "edge"),
     lambda t: __import__("torch").nn.functional.pad(t, (3, 2, 2, 1), mode="replicate"), X),
    ("pad constant", lambda x: gx.pad(x, ((1, 0), (2, 1), (0, 2)), constant_values=1.5),
     lambda t: __import__("torch").nn.functional.pad(t, (0, 2, 2, 1, 1, 0), value=1.5), X),
]


@pytest.mark.parametrize("label, ours, theirs, x", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_values_and_gradients_match_torch(label, ours, theirs, x):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    out = theirs(t)
    cotangent = RNG.standard_normal(tuple(out.shape))
    (out * torch.tensor(cotangent)).sum().backward()
    xs = gx.input("x", x.shape, "float64")
    y = ours(xs)
    value, grad = gx.compile([xs], [y, gx.vjp(y, xs, cotangent)])(x)
    np.testing.assert_allclose(value, out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_shape_ops_are_registered_once_under_their_names():
    ops = [shape_ops._reshape, shape_ops._transpose, shape_ops._broadcast_to,
           shape_ops._concatenate, shape_ops._getitem, shape_ops._slice_scatter, shape_ops._take,
           shape_ops._take_scatter_add, shape_ops._take_along_axis,
           shape_ops._take_along_axis_scatter_add, shape_ops._one_hot, shape_ops._pad]
    for op in ops:
        assert gx.ops.base.ALL_OPS[op.name] is op
