"""Shape ops: values against NumPy, symbolic dims, gradients by finite differences and
against torch, and the errors users see."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.ops import shape as shape_ops
from tests.helpers import against_torch, assert_gradients, evaluate, requires_torch, torch

RNG = np.random.default_rng(11)
X = RNG.standard_normal((3, 4, 5))


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
    ("concatenate", lambda x: gx.concatenate([x, x ** 2, x[:, :1]], 1), _normal(2, 3), 2),
    ("stack", lambda x: gx.stack([x, x * x], -1), _normal(2, 3), 2),
    ("split", lambda x: gx.split(x, [1, 3], 1)[1] ** 2, _normal(2, 4), 2),
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

TORCH_CASES = [
    # (label, graphc, torch, input)
    ("concatenate", lambda x: gx.concatenate([x, x[:, :1] * 2], 1),
     lambda t: torch.cat([t, t[:, :1] * 2], 1), X),
    ("pad reflect", lambda x: gx.pad(x, ((0, 0), (2, 1), (3, 2)), "reflect"),
     lambda t: torch.nn.functional.pad(t, (3, 2, 2, 1), mode="reflect"), X),
    ("pad edge", lambda x: gx.pad(x, ((0, 0), (2, 1), (3, 2)), "edge"),
     lambda t: torch.nn.functional.pad(t, (3, 2, 2, 1), mode="replicate"), X),
    ("pad constant", lambda x: gx.pad(x, ((1, 0), (2, 1), (0, 2)), constant_values=1.5),
     lambda t: torch.nn.functional.pad(t, (0, 2, 2, 1, 1, 0), value=1.5), X),
]


@requires_torch
@pytest.mark.parametrize("label, ours, theirs, x", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_values_and_gradients_match_torch(label, ours, theirs, x):
    against_torch(ours, theirs, x, rtol=1e-12, atol=1e-12)


def test_shape_ops_are_registered_once_under_their_names():
    ops = [shape_ops._reshape, shape_ops._transpose, shape_ops._broadcast_to,
           shape_ops._concatenate, shape_ops._pad]
    for op in ops:
        assert gx.ops.base.ALL_OPS[op.name] is op
