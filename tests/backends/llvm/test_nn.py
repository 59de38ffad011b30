"""softmax, log_softmax, first_max_mask and maxout on the llvm backend, against the numpy
backend (the reference)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.ops.nn import first_max_mask
from tests.backends.llvm.test_reduce import check, needs_transpose, sample

RNG = np.random.default_rng(1)

SOFTMAX_CASES = [  # (graph shape, array shape, axis)
    ((4, 5), (4, 5), -1),
    ((4, 5), (4, 5), 0),
    ((4, 5), (4, 5), (0, 1)),
    ((2, 3, 4), (2, 3, 4), 1),
    ((2, 3, 4), (2, 3, 4), (1, 2)),
    ((2, 3, 4), (2, 3, 4), (0, 2)),
    ((2, 3, 4), (2, 3, 4), -3),
    (("n", 7), (5, 7), -1),
    (("n", 7), (5, 7), 0),
    ((3, "n"), (3, 9), 1),
    (("n", 7), (0, 7), -1),  # no lanes
    ((2, 1000), (2, 1000), 1),  # long rows: the vectorized loop and its tail
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("graph_shape,shape,axis", SOFTMAX_CASES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_matches_numpy(name, graph_shape, shape, axis, dtype) -> None:
    x = gx.input("x", graph_shape, dtype)
    a = (RNG.standard_normal(shape) * 10).astype(dtype)
    tol = 3e-6 if dtype == "float32" else 1e-13
    check([x], getattr(gx, name)(x, axis=axis), [a], rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_over_an_empty_axis_is_empty(name: str) -> None:
    """NumPy's reference raises (its max has no identity); native code has nothing to do."""
    x = gx.input("x", (3, "n"), "float32")
    f = gx.compile([x], getattr(gx, name)(x, axis=1), backend="llvm")
    assert f(np.zeros((3, 0), "float32")).shape == (3, 0)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_extreme_rows(name: str, dtype: str) -> None:
    a = np.array([[1e4, 1e4, -1e4],          # no overflow
                  [-1e4, -1e4 - 1.0, -2e4],  # no underflow to 0/0
                  [np.nan, 0.0, 1.0],        # NaN spreads over its row
                  [-np.inf, 0.0, 1.0],       # exp(-inf) = 0; log_softmax -inf
                  [-np.inf, -np.inf, -np.inf],  # NaN, as the reference
                  [np.inf, 0.0, 1.0]], dtype)
    x = gx.input("x", a.shape, dtype)
    tol = 3e-6 if dtype == "float32" else 1e-13
    check([x], getattr(gx, name)(x, axis=1), [a], rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_ints_is_float64(name: str) -> None:
    x = gx.input("x", (3, 4), "int64")
    check([x], getattr(gx, name)(x), [sample((3, 4), "int64")], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("axis", [-1, 0, (0, 1)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_gradient_matches_numpy(name: str, axis) -> None:
    x = gx.input("x", (4, 5), "float64")
    w = gx.constant(RNG.standard_normal((4, 5)))
    loss = gx.sum(getattr(gx, name)(x, axis=axis) * w)
    check([x], gx.grad(loss, [x]), [RNG.standard_normal((4, 5))], rtol=1e-12, atol=1e-14)


def test_cross_entropy_training_step_matches_numpy() -> None:
    x = gx.input("x", ("n", 6), "float32")
    w = gx.param("w", RNG.standard_normal((6, 3)).astype("float32"))
    y = gx.input("y", ("n", 3), "float32")
    loss = -gx.mean(gx.sum(y * gx.log_softmax(x @ w), axis=1))
    gw = gx.grad(loss, [w])[0]
    a = RNG.standard_normal((8, 6)).astype("float32")
    labels = np.eye(3, dtype="float32")[RNG.integers(0, 3, 8)]
    check([x, y], [loss, gw], [a, labels], rtol=2e-5, atol=1e-6)


@needs_transpose
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_of_a_transposed_view(axis: int) -> None:
    x = gx.input("x", (5, 7), "float32")
    xt = gx.transpose(x)
    check([x], [gx.softmax(xt, axis=axis), gx.log_softmax(xt, axis=axis)],
          [RNG.standard_normal((5, 7)).astype("float32")], rtol=3e-6, atol=3e-7)


# -- first_max_mask and maxout ------------------------------------------------------------------

MASK_CASES = [  # (graph shape, array shape, axis)
    ((4, 5), (4, 5), 1),
    ((4, 5), (4, 5), 0),
    ((2, 3, 4), (2, 3, 4), 1),
    (("n", 5), (6, 5), 0),
    (("n", 5), (6, 5), 1),
    (("n", 5), (0, 5), 1),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("graph_shape,shape,axis", MASK_CASES)
def test_first_max_mask_matches_numpy(graph_shape, shape, axis, dtype) -> None:
    x = gx.input("x", graph_shape, dtype)
    check([x], first_max_mask(x, axis=axis), [sample(shape, dtype)])


def test_first_max_mask_puts_the_one_on_the_first_nan() -> None:
    a = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 2.0, 1.0, 0.0]], "float32")
    x = gx.input("x", a.shape, "float32")
    check([x], first_max_mask(x, axis=1), [a])


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("graph_shape,shape,pieces,axis", [
    ((4, 6), (4, 6), 3, -1), ((4, 6), (4, 6), None, 0), (("n", 8), (5, 8), 2, 1),
    ((2, 3, 4), (2, 3, 4), None, 1)])
def test_maxout_matches_numpy(graph_shape, shape, pieces, axis, dtype) -> None:
    x = gx.input("x", graph_shape, dtype)
    check([x], gx.maxout(x, pieces, axis=axis), [sample(shape, dtype)])


def test_maxout_gradient_goes_to_the_first_maximum() -> None:
    x = gx.input("x", (3, 6), "float64")
    a = sample((3, 6), "float64")  # many ties
    check([x], gx.grad(gx.sum(gx.maxout(x, 3) * 2.0), [x]), [a])
