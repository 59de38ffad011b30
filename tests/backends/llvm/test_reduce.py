"""argmax/argmin, logsumexp, the 2-norm and axis_size on the llvm backend, against the numpy
backend (the reference)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm.rules import RULES, VIEW_RULES, load_all

RNG = np.random.default_rng(0)


def _has_transpose_view() -> bool:
    load_all()
    return "transpose" in VIEW_RULES or "transpose" in RULES


needs_transpose = pytest.mark.skipif(not _has_transpose_view(),
                                     reason="the llvm backend has no transpose rule yet")


def check(inputs, outputs, arrays, *, rtol: float = 0.0, atol: float = 0.0) -> None:
    """llvm equals numpy (to ``rtol``/``atol``; exactly when both are 0), optimized or not."""
    for optimize in (True, False):
        ref = gx.compile(inputs, outputs, backend="numpy", optimize=optimize)
        llvm = gx.compile(inputs, outputs, backend="llvm", optimize=optimize)
        want, got = ref(*arrays), llvm(*arrays)
        for g, w in zip(got if isinstance(got, tuple) else [got],
                        want if isinstance(want, tuple) else [want], strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            if rtol or atol:
                np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
            else:
                np.testing.assert_array_equal(g, w)


def sample(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Values with many ties (small integers), so "first occurrence" matters."""
    if dtype == "bool":
        return RNG.integers(0, 2, shape).astype(bool)
    values = RNG.integers(0, 4 if dtype.startswith("u") else 7, shape)
    return (values - (0 if dtype.startswith("u") else 3)).astype(dtype)


# -- argmax, argmin -----------------------------------------------------------------------------

ARG_CASES = [  # (graph shape, array shape, axis)
    ((4, 5), (4, 5), None),
    ((4, 5), (4, 5), 0),
    ((4, 5), (4, 5), -1),
    ((2, 3, 4), (2, 3, 4), 1),
    ((2, 3, 4), (2, 3, 4), None),
    ((7,), (7,), 0),
    (("n", 5), (6, 5), 0),
    (("n", 5), (6, 5), 1),
    ((3, "n"), (3, 1), -1),
    (("n", 4), (0, 4), 1),  # no lanes: nothing to do
]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint8", "bool"])
@pytest.mark.parametrize("graph_shape,shape,axis", ARG_CASES)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_arg_extremum_matches_numpy(name, graph_shape, shape, axis, dtype, keepdims) -> None:
    x = gx.input("x", graph_shape, dtype)
    y = getattr(gx, name)(x, axis=axis, keepdims=keepdims)
    check([x], y, [sample(shape, dtype)])


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_arg_extremum_first_nan_wins(name: str, dtype: str) -> None:
    a = RNG.standard_normal((6, 5)).astype(dtype)
    a[1, 3] = a[1, 4] = np.nan  # the first NaN of a row wins
    a[2, 0] = np.nan
    a[3, :] = np.inf
    a[4, :] = -np.inf
    a[5, 2] = a[5, 4] = 9.0  # a tie: the first one wins
    x = gx.input("x", a.shape, dtype)
    check([x], [getattr(gx, name)(x, axis=1), getattr(gx, name)(x, axis=0),
                getattr(gx, name)(x)], [a])


@pytest.mark.parametrize("shape", [(3, 0), (0,)])
def test_argmax_of_an_empty_axis_raises_like_numpy(shape) -> None:
    x = gx.input("x", tuple("n" if d == 0 else d for d in shape), "float32")
    y = gx.argmax(x, axis=-1)
    for backend in ("numpy", "llvm"):
        with pytest.raises(gx.GraphcError, match="empty sequence"):
            gx.compile([x], y, backend=backend)(np.zeros(shape, "float32"))


@needs_transpose
@pytest.mark.parametrize("axis", [0, 1, None])
def test_arg_extremum_of_a_transposed_view(axis) -> None:
    x = gx.input("x", (4, 6), "float64")
    xt = gx.transpose(x)
    check([x], [gx.argmax(xt, axis=axis), gx.argmin(xt, axis=axis)], [sample((4, 6), "float64")])


# -- logsumexp ----------------------------------------------------------------------------------

LSE_CASES = [  # (graph shape, array shape, axis)
    ((4, 5), (4, 5), -1),
    ((4, 5), (4, 5), 0),
    ((4, 5), (4, 5), None),
    ((2, 3, 4), (2, 3, 4), (0, 2)),
    ((2, 3, 4), (2, 3, 4), (1, 2)),
    (("n", 6), (5, 6), 1),
    (("n", 6), (5, 6), 0),
    (("n", 6), (0, 6), 0),  # an empty axis: log 0 = -inf
    ((0, 3), (0, 3), 0),
    ((3, 1000), (3, 1000), 1),  # long rows: the vectorized loop and its tail
]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("graph_shape,shape,axis", LSE_CASES)
def test_logsumexp_matches_numpy(graph_shape, shape, axis, dtype, keepdims) -> None:
    x = gx.input("x", graph_shape, dtype)
    a = (RNG.standard_normal(shape) * 30).astype(dtype)
    tol = 2e-6 if dtype == "float32" else 1e-13
    check([x], gx.logsumexp(x, axis=axis, keepdims=keepdims), [a], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsumexp_extreme_rows(dtype: str) -> None:
    a = np.array([[-np.inf, -np.inf, -np.inf],   # all -inf: -inf
                  [np.inf, 0.0, 1.0],            # +inf: inf
                  [np.nan, 0.0, 1.0],            # NaN: NaN
                  [1e4, 1e4, -1e4],              # no overflow: 1e4 + log 2
                  [-1e4, -1e4 - 1.0, -2e4]], dtype)  # no underflow
    x = gx.input("x", a.shape, dtype)
    tol = 2e-6 if dtype == "float32" else 1e-13
    check([x], gx.logsumexp(x, axis=1), [a], rtol=tol)


def test_logsumexp_of_ints_is_float64() -> None:
    x = gx.input("x", (3, 4), "int32")
    check([x], gx.logsumexp(x, axis=1), [sample((3, 4), "int32")], rtol=1e-13)


@pytest.mark.parametrize("axis", [0, 1, (0, 1)])
def test_logsumexp_gradient_matches_numpy(axis) -> None:
    x = gx.input("x", (4, 5), "float64")
    loss = gx.sum(gx.logsumexp(x, axis=axis) ** 2)
    check([x], gx.grad(loss, [x]), [RNG.standard_normal((4, 5))], rtol=1e-12, atol=1e-14)


@needs_transpose
def test_logsumexp_of_a_transposed_view() -> None:
    x = gx.input("x", (4, 6), "float32")
    y = gx.logsumexp(gx.transpose(x), axis=1)
    check([x], y, [RNG.standard_normal((4, 6)).astype("float32")], rtol=2e-6)


# -- the 2-norm and axis_size -------------------------------------------------------------------

@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("graph_shape,shape,axis", LSE_CASES)
def test_l2_norm_matches_numpy(graph_shape, shape, axis, dtype, keepdims) -> None:
    x = gx.input("x", graph_shape, dtype)
    a = RNG.standard_normal(shape).astype(dtype)
    tol = 2e-6 if dtype == "float32" else 1e-13
    check([x], gx.norm(x, axis=axis, keepdims=keepdims), [a], rtol=tol)


def test_l2_norm_gradient_matches_numpy() -> None:
    x = gx.input("x", (3, 4), "float64")
    a = RNG.standard_normal((3, 4))
    a[1] = 0.0  # the gradient at a zero norm is 0
    check([x], gx.grad(gx.sum(gx.norm(x, axis=1)), [x]), [a], rtol=1e-13)


@pytest.mark.parametrize("axis,dtype", [((0,), "int64"), ((1,), "float32"), (None, "float64"),
                                        ((0, 2), "int32")])
def test_axis_size_counts_symbolic_dims(axis, dtype) -> None:
    x = gx.input("x", ("n", "m", 3), "float32")
    count = gx.size(x, axis=axis, dtype=dtype)
    for shape in [(2, 5, 3), (0, 4, 3), (7, 1, 3)]:
        check([x], count, [np.zeros(shape, "float32")])


def test_mean_over_a_symbolic_batch() -> None:
    x = gx.input("x", ("n", 4), "float32")
    a = RNG.standard_normal((9, 4)).astype("float32")
    check([x], [gx.mean(x, axis=0), gx.var(x)], [a], rtol=2e-6)
