"""Reductions: values against NumPy, type rules, gradients by finite differences and
against torch, kink conventions (ties, zeros), symbolic dims and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc as gx
from graphc.ops import reduce
from tests.helpers import against_torch, assert_gradients, evaluate, requires_torch

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 4, 5))

AXES = [None, 0, -1, (0, 2), (-1, 1), ()]

# graphc reduction -> NumPy reference, both called as f(x, axis, keepdims)
VALUE_CASES = {
    "sum": (gx.sum, np.sum),
    "mean": (gx.mean, np.mean),
    "prod": (gx.prod, np.prod),
    "max": (gx.max, np.max),
    "min": (gx.min, np.min),
    "var": (gx.var, np.var),
    "std": (gx.std, np.std),
    "logsumexp": (gx.logsumexp,
                  lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis, keepdims=keepdims))),
    "norm": (lambda x, axis, keepdims: gx.norm(x, axis=axis, keepdims=keepdims),
             lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis, keepdims=keepdims))),
}


@pytest.mark.parametrize("name", VALUE_CASES)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_values_match_numpy(name, axis, keepdims):
    ours, reference = VALUE_CASES[name]
    got = evaluate(lambda x: ours(x, axis, keepdims), X)
    want = reference(X, axis, keepdims=keepdims)
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "var", "std",
                                  "argmax", "argmin"])
def test_tensor_methods_call_the_reductions(name):
    x = X[0]
    got = evaluate(lambda t: getattr(t, name)(1, True), x)
    np.testing.assert_allclose(got, getattr(np, name)(x, axis=1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("ddof", [0, 1, 2])
def test_var_and_std_ddof(ddof):
    got_var = evaluate(lambda x: gx.var(x, 1, ddof=ddof), X)
    got_std = evaluate(lambda x: gx.std(x, (0, 2), keepdims=True, ddof=ddof), X)
    np.testing.assert_allclose(got_var, np.var(X, 1, ddof=ddof), rtol=1e-12)
    np.testing.assert_allclose(got_std, np.std(X, (0, 2), keepdims=True, ddof=ddof), rtol=1e-12)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argmax_argmin_match_numpy_and_flatten_for_none(name, axis, keepdims):
    x = RNG.integers(0, 4, (3, 4, 5)).astype(np.float64)  # many ties: the first one wins
    got = evaluate(lambda t: getattr(gx, name)(t, axis, keepdims), x)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, getattr(np, name)(x, axis=axis, keepdims=keepdims))


def test_argmax_has_no_gradient():
    x = gx.input("x", (3, 4), "float64")
    index = gx.argmax(x, 1, keepdims=True)
    assert index.dtype == "int64" and not index.op.differentiable
    y = gx.sum(gx.cast(index, "float64") * x)
    g = gx.compile([x], gx.grad(y, x))(X[0, :3, :4])
    np.testing.assert_array_equal(g, np.argmax(X[0, :3, :4], 1)[:, None] * np.ones((3, 4)))


@pytest.mark.parametrize("dtype, name, want", [
    ("int8", "sum", "int64"), ("bool", "sum", "int64"), ("float32", "sum", "float32"),
    ("int32", "mean", "float64"), ("bool", "mean", "float64"), ("float32", "mean", "float32"),
    ("float16", "mean", "float16"), ("int16", "prod", "int64"), ("int32", "max", "int32"),
    ("uint8", "min", "uint8"), ("int64", "var", "float64"), ("float32", "std", "float32"),
    ("int32", "logsumexp", "float64"), ("float32", "logsumexp", "float32"),
    ("int32", "norm", "float64"), ("float32", "norm", "float32"),
])
def test_result_dtype_follows_numpy(dtype, name, want):
    x = gx.input("x", (2, 3), dtype)
    y = getattr(gx, name)(x, 1)
    assert y.dtype == want
    values = (RNG.integers(0, 3, (2, 3)) if dtype != "float16" else RNG.random((2, 3)))
    got = gx.compile([x], y)(values.astype(dtype))
    assert got.dtype == want
    if name not in ("logsumexp", "norm"):
        reference = getattr(np, name)(values.astype(dtype), axis=1)
        assert reference.dtype == want
        np.testing.assert_allclose(got, reference, rtol=1e-3)


# -- symbolic dims -----------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 2, 7])
def test_mean_and_var_over_a_symbolic_batch_divide_by_the_runtime_count(batch):
    x = gx.input("x", ("batch", 3), "float64")
    outputs = [gx.mean(x), gx.mean(x, 0), gx.var(x, 0, ddof=1), gx.std(x, (0, 1)),
               gx.mean(x, 1), gx.sum(x, 0), gx.max(x, 0), gx.logsumexp(x, 0),
               gx.norm(x, axis=0), gx.argmax(x, 0)]
    fn = gx.compile([x], outputs)
    a = RNG.standard_normal((batch, 3))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ddof=1 of one row: nan, as ours
        want = [a.mean(), a.mean(0), a.var(0, ddof=1), a.std(), a.mean(1), a.sum(0), a.max(0),
                np.log(np.exp(a).sum(0)), np.sqrt((a * a).sum(0)), a.argmax(0)]
    for got, expected in zip(fn(a), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_mean_of_a_symbolic_dim_bakes_in_no_size():
    x = gx.input("x", ("batch", 3), "float32")
    fn = gx.compile([x], gx.mean(x, 0))
    assert "axis_size" in fn.source
    column = np.array([[1], [2], [3], [6]], np.float32)
    np.testing.assert_allclose(fn(np.ones((4, 3), np.float32) * column), [3] * 3)
    assert fn(np.ones((2, 3), np.float32)).dtype == np.float32


def test_size_is_static_when_it_can_be():
    assert gx.size(gx.input("x", (2, 3, 4)), (0, 2)) == 8
    n = gx.size(gx.input("x", ("b", 3)), None, "float32")
    assert isinstance(n, gx.Tensor) and n.dtype == "float32" and n.shape == ()


def test_symbolic_gradients_of_mean_and_var():
    x = gx.input("x", ("batch", 3), "float64")
    y = gx.sum(gx.var(x, 0) * gx.constant([1.0, 2.0, 3.0])) + gx.mean(x)
    fn = gx.compile([x], gx.grad(y, x))
    for batch in (2, 5):
        a = RNG.standard_normal((batch, 3))
        centered = a - a.mean(0)
        want = 2 * centered / batch * np.array([1.0, 2.0, 3.0]) + 1 / a.size
        np.testing.assert_allclose(fn(a), want, rtol=1e-12)


# -- gradients ---------------------------------------------------------------------------------

def _normal(*shape):
    return lambda: RNG.standard_normal(shape)


def _distinct(*shape):  # no ties, far apart: safe for max/min finite differences
    return lambda: RNG.permutation(np.prod(shape)).reshape(shape) * 0.5 + 0.1


GRADIENT_TABLE = [
    # (label, graph builder, input generator, order)
    ("sum", lambda x: gx.sum(x, (0, 2)), _normal(2, 3, 2), 2),
    ("sum keepdims", lambda x: gx.sum(x, -1, True), _normal(2, 3), 2),
    ("mean", lambda x: gx.mean(x, 1), _normal(2, 3, 2), 2),
    ("mean all", lambda x: gx.mean(x), _normal(3, 2), 2),
    ("prod", lambda x: gx.prod(x, 1), _normal(2, 3, 2), 2),
    ("prod all", lambda x: gx.prod(x), _normal(2, 3), 2),
    ("var", lambda x: gx.var(x, 0), _normal(4, 3), 2),
    ("var ddof", lambda x: gx.var(x, (0, 1), True, ddof=1), _normal(3, 3), 2),
    ("std", lambda x: gx.std(x, -1), _normal(3, 4), 2),
    ("logsumexp", lambda x: gx.logsumexp(x, 1), _normal(3, 4), 2),
    ("logsumexp all", lambda x: gx.logsumexp(x, None, True), _normal(2, 3), 2),
    ("norm 2", lambda x: gx.norm(x, axis=1), _normal(3, 4), 2),
    ("norm fro", lambda x: gx.norm(x, "fro", axis=(0, 1)), _normal(3, 4), 2),
    ("norm 1", lambda x: gx.norm(x, 1, axis=0), _normal(3, 4), 2),
    ("norm 3", lambda x: gx.norm(x, 3), _normal(3, 4), 2),
    ("norm inf", lambda x: gx.norm(x, np.inf, axis=1), _distinct(3, 4), 1),
    ("max", lambda x: gx.max(x, 1), _distinct(3, 4), 1),
    ("max all", lambda x: gx.max(x), _distinct(3, 4), 1),
    ("min keepdims", lambda x: gx.min(x, (0, 2), True), _distinct(2, 3, 2), 1),
]


@pytest.mark.parametrize("label, f, make, order", GRADIENT_TABLE,
                         ids=[row[0] for row in GRADIENT_TABLE])
def test_gradients_match_finite_differences(label, f, make, order):
    assert_gradients(f, make(), order=order)


def test_prod_gradient_with_zeros():
    x = np.array([[2.0, 0.0, 3.0, -1.5],    # one zero
                  [0.0, 1.5, 0.0, 2.0],     # two zeros
                  [1.5, -2.0, 0.5, 3.0]])   # none
    g = evaluate(lambda t: gx.grad(gx.sum(gx.prod(t, 1) * gx.constant([1.0, 2.0, 3.0])), t), x)
    want = np.stack([[np.prod(np.delete(row, i)) for i in range(4)] for row in x])
    np.testing.assert_allclose(g, want * np.array([[1.0], [2.0], [3.0]]), rtol=1e-12)
    assert np.isfinite(g).all()
    # the Hessian is right at zeros too (it needs the zero kept as a factor)
    assert_gradients(lambda t: gx.prod(t, 1), x, order=2)


@pytest.mark.parametrize("name", ["max", "min"])
def test_ties_share_the_gradient_evenly(name):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [5.0, -1.0, 0.5, 4.0]])
    x = x if name == "max" else -x
    g = evaluate(lambda t: gx.grad(gx.sum(getattr(gx, name)(t, 1)), t), x)
    np.testing.assert_allclose(g, [[0, 0.5, 0.5, 0], [0.25] * 4, [1, 0, 0, 0]])


def test_logsumexp_is_stable():
    x = np.array([[1000.0, 1000.0, -1000.0], [-np.inf, -np.inf, -np.inf], [-1e4, -1e4 + 1, 0]])
    got = evaluate(lambda t: gx.logsumexp(t, 1), x)
    np.testing.assert_allclose(got[0], 1000.0 + np.log(2.0))
    assert got[1] == -np.inf
    np.testing.assert_allclose(got[2], 0.0, atol=1e-12)
    g = evaluate(lambda t: gx.grad(gx.logsumexp(t[0]), t), x)
    np.testing.assert_allclose(g[0], [0.5, 0.5, 0.0])


def test_norm_gradient_at_zero_is_zero():
    x = np.zeros((2, 3))
    g = evaluate(lambda t: gx.grad(gx.sum(gx.norm(t, axis=1)), t), x)
    np.testing.assert_array_equal(g, np.zeros((2, 3)))


@pytest.mark.parametrize("ord_", [2, 1, np.inf, -np.inf, 0, 3, 0.5, "fro"])
def test_norm_orders_match_numpy_vector_norms(ord_):
    x = X.reshape(3, 20)
    got = evaluate(lambda t: gx.norm(t, ord_, axis=1, keepdims=True), x)
    want = np.linalg.norm(x, 2 if ord_ == "fro" else ord_, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# -- torch as a second system ------------------------------------------------------------------

TORCH_CASES = [
    # (label, graphc, torch, input)
    ("sum", lambda x: gx.sum(x, (0, 2)), lambda t: t.sum((0, 2)), X),
    ("mean", lambda x: gx.mean(x, 1, True), lambda t: t.mean(1, keepdim=True), X),
    ("prod", lambda x: gx.prod(x, 1), lambda t: t.prod(1), X),
    ("var", lambda x: gx.var(x, (0, 1), ddof=1), lambda t: t.var((0, 1), correction=1), X),
    ("std", lambda x: gx.std(x, -1), lambda t: t.std(-1, correction=0), X),
    ("logsumexp", lambda x: gx.logsumexp(x, (1, 2)), lambda t: t.logsumexp((1, 2)), X),
    ("norm", lambda x: gx.norm(x, axis=(0, 2)),
     lambda t: __import__("torch").linalg.vector_norm(t, dim=(0, 2)), X),
    ("norm at zero", lambda x: gx.norm(x, axis=1),
     lambda t: __import__("torch").linalg.vector_norm(t, dim=1), np.zeros((2, 3))),
    ("norm 1 at zero", lambda x: gx.norm(x, 1, axis=1),
     lambda t: __import__("torch").linalg.vector_norm(t, 1, dim=1), np.zeros((2, 3))),
    ("prod with zeros", lambda x: gx.prod(x, 0), lambda t: t.prod(0),
     np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [3.0, 4.0, 5.0]])),
    ("amax ties", lambda x: gx.max(x, 1), lambda t: t.amax(1),
     np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, 1.0, -1.0]])),
    ("amin ties", lambda x: gx.min(x, (0, 1)), lambda t: t.amin((0, 1)),
     np.array([[1.0, -3.0, -3.0], [2.0, -3.0, 2.0]])),
    ("inf norm ties", lambda x: gx.norm(x, np.inf, axis=1),
     lambda t: __import__("torch").linalg.vector_norm(t, float("inf"), dim=1),
     np.array([[1.0, -3.0, 3.0], [2.0, 0.5, 1.0]])),
]


@requires_torch
@pytest.mark.parametrize("label, ours, theirs, x", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_values_and_gradients_match_torch(label, ours, theirs, x):
    against_torch(ours, theirs, x, rtol=1e-10, atol=1e-12)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [
    lambda x: gx.sum(x, 2), lambda x: gx.mean(x, (0, -3)), lambda x: gx.max(x, (1, 1)),
    lambda x: gx.var(x, 5), lambda x: gx.argmax(x, 2), lambda x: gx.logsumexp(x, -4),
    lambda x: gx.norm(x, axis=9), lambda x: x.prod(3),
])
def test_bad_axis_names_the_op_and_the_shape(build):
    x = gx.input("x", (3, 4))
    with pytest.raises(gx.GraphcTypeError) as info:
        build(x)
    message = str(info.value)
    assert "axis" in message and "float32(3, 4)" in message
    assert message.split(":")[0] in {"sum", "mean", "max", "var", "argmax", "logsumexp",
                                     "norm", "prod"}
    assert "test_reduce.py" in message  # the user's line


def test_other_errors():
    x = gx.input("x", (3, 4))
    with pytest.raises(gx.GraphcTypeError, match="argmax: axis must be an int"):
        gx.argmax(x, (0, 1))
    with pytest.raises(gx.GraphcTypeError, match="norm: ord must be"):
        gx.norm(x, -2)
    with pytest.raises(gx.GraphcTypeError, match="max over axis 0 of size 0"):
        gx.max(gx.input("e", (0, 2)), 0)
    assert gx.sum(gx.input("e", (0, 2)), 0).shape == (2,)


def test_reduction_ops_are_registered_once_under_their_names():
    for op in [reduce._sum, reduce._prod, reduce._max, reduce._min, reduce._argmax,
               reduce._argmin, reduce._logsumexp, reduce._l2_norm, reduce._axis_size]:
        assert gx.ops.base.ALL_OPS[op.name] is op
