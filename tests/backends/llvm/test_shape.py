"""Shape ops (reshape, transpose, broadcast_to, concatenate, pad) on the llvm backend,
against the numpy backend: exact equality, views where strides allow."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx

RNG = np.random.default_rng(0)


def _data(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if dtype == "bool":
        return RNG.random(shape) > 0.5
    return RNG.integers(-50, 50, shape).astype(dtype) if dtype == "int64" else \
        RNG.standard_normal(shape).astype(dtype)


def assert_same(inputs, outputs, arrays, optimize: bool = True) -> gx.Compiled:
    """Compile on both backends, compare every output exactly; return the llvm function."""
    ref = gx.compile(inputs, outputs, backend="numpy", optimize=optimize)
    llvm = gx.compile(inputs, outputs, backend="llvm", optimize=optimize)
    want, got = ref(*arrays), llvm(*arrays)
    if not isinstance(outputs, list):
        want, got = [want], [got]
    for w, g in zip(want, got, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    return llvm


# each case: input shape (with symbolic dims), run-time shape, and the graph of x
CASES = {
    "reshape": (("n", 6), (4, 6), lambda x: gx.reshape(x, (-1, 3, 2))),
    "reshape_flat": (("n", 6), (3, 6), lambda x: gx.reshape(x, (-1,))),
    "reshape_static": ((4, 6), (4, 6), lambda x: gx.reshape(x, (2, 12))),
    "reshape_transposed": ((4, 6), (4, 6), lambda x: gx.reshape(x.T, (3, 8))),
    "reshape_transposed_sym": (("n", 6), (5, 6), lambda x: gx.reshape(x.T, (-1,))),
    "reshape_split_slice": ((4, 6), (4, 6), lambda x: gx.reshape(x[:, 1:5], (4, 2, 2))),
    "reshape_merge_slice": ((4, 3, 2), (4, 3, 2), lambda x: gx.reshape(x[1:], (3, 6))),
    "expand_squeeze_of_view": (("n", 6), (3, 6),
                               lambda x: gx.squeeze(gx.expand_dims(x.T[::2], 1), 1)),
    "views_of_views": (("n", 6), (5, 6), lambda x: gx.reshape(x.T[1:5, ::-2], (-1, 2))),
    "transpose": ((2, 3, 4), (2, 3, 4), lambda x: gx.transpose(x, (1, 2, 0))),
    "transpose_sym": (("n", 3, 4), (5, 3, 4), lambda x: gx.transpose(x, (2, 0, 1))),
    "broadcast_to": ((3, 1), (3, 1), lambda x: gx.broadcast_to(x, (2, 3, 4))),
    "broadcast_to_sym": (("n", 1), (4, 1), lambda x: gx.broadcast_to(x, ("n", 5))),
    "concatenate": ((3, 4), (3, 4), lambda x: gx.concatenate([x, x[:1], x[::-1]], axis=0)),
    "concatenate_axis1": (("n", 4), (3, 4), lambda x: gx.concatenate([x[:, :1], x.T.T], 1)),
    "concatenate_empty_piece": ((3, 4), (3, 4), lambda x: gx.concatenate([x[:0], x], 0)),
    "stack": (("n", 4), (2, 4), lambda x: gx.stack([x, x[:, ::-1]], axis=1)),
    "pad": ((3, 4), (3, 4), lambda x: gx.pad(x, ((1, 2), (0, 3)), constant_values=2.5)),
    "pad_sym": (("n", 4), (3, 4), lambda x: gx.pad(x, 2)),
    "pad_of_slice_sym": (("n", 4), (5, 4), lambda x: gx.pad(x[2:], ((2, 1), (0, 0)))),
    "pad_transposed": ((3, 4), (3, 4), lambda x: gx.pad(x.T, ((0, 1), (2, 0)))),
    "pad_edge": ((3, 4), (3, 4), lambda x: gx.pad(x, ((1, 2), (2, 0)), mode="edge")),
    "pad_reflect": ((3, 4), (3, 4), lambda x: gx.pad(x, 2, mode="reflect")),
    "pad_wrap": ((3, 4), (3, 4), lambda x: gx.pad(x, ((0, 4), (1, 1)), mode="wrap")),
}


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_shape_op_matches_numpy(case: str, optimize: bool) -> None:
    dtype = ("float32", "int64", "bool")[sorted(CASES).index(case) % 3]  # each on a third
    shape, runtime, build = CASES[case]
    x = gx.input("x", shape, dtype)
    assert_same([x], [build(x)], [_data(runtime, dtype)], optimize)


@pytest.mark.parametrize("case", ["reshape", "transpose", "concatenate", "pad_sym"])
def test_non_contiguous_and_empty_arguments(case: str) -> None:
    shape, runtime, build = CASES[case]
    x = gx.input("x", shape, "float64")
    data = _data(runtime[::-1], "float64").T  # a transposed (Fortran-order) argument
    llvm = assert_same([x], [build(x)], [data])
    if isinstance(shape[0], str):  # n = 0: empty results
        empty = np.zeros((0, *runtime[1:]))
        np.testing.assert_array_equal(llvm(empty)[0], gx.compile([x], build(x))(empty))


def test_concatenate_promotes_dtypes() -> None:
    a, b = gx.input("a", ("n", 2), "int64"), gx.input("b", ("n", 3), "float32")
    assert_same([a, b], [gx.concatenate([a, b], axis=1)],
                [np.arange(8).reshape(4, 2), _data((4, 3), "float32")])


@pytest.mark.parametrize("build,copies", [
    (lambda x: gx.reshape(x, (4, 3)), False),                 # contiguous
    (lambda x: gx.transpose(x), False),
    (lambda x: gx.broadcast_to(x, (5, 2, 6)), False),
    (lambda x: gx.reshape(x[:, 1:5], (2, 2, 2)), False),      # splits a strided axis
    (lambda x: gx.reshape(gx.expand_dims(x.T, 0), (6, 2)), False),  # only size-1 axes
    (lambda x: gx.reshape(x.T, (12,)), True),                 # merges non-adjacent strides
])
def test_reshape_is_a_view_when_strides_allow(build, copies: bool) -> None:
    x = gx.input("x", (2, 6), "float32")
    y = build(x) * 2.0  # consumed by a kernel, so the view itself is never copied out
    llvm = assert_same([x], [y], [_data((2, 6), "float32")], optimize=False)
    assert (".reshape" in llvm.llvm_ir_unoptimized) == copies


def test_pad_of_too_small_slice_fails_like_numpy() -> None:
    x = gx.input("x", ("n", 2), "float32")
    y = gx.pad(x[2:], ((2, 0), (0, 0)))  # "n-2" padded by 2 is "n" only when n >= 2
    for backend in ("numpy", "llvm"):
        with pytest.raises(gx.GraphcError, match="pad"):
            gx.compile([x], y, backend=backend)(np.ones((1, 2), np.float32))


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("case", ["reshape_transposed_sym", "views_of_views", "broadcast_to",
                                  "broadcast_to_sym", "concatenate", "stack", "pad_sym",
                                  "pad_edge", "pad_reflect", "transpose_sym"])
def test_gradients_match_numpy(case: str, optimize: bool) -> None:
    shape, runtime, build = CASES[case]
    x = gx.input("x", shape, "float64")
    y = build(x)
    loss = gx.sum(y * y * 0.5)
    (g,) = gx.grad(loss, [x])
    data = _data(runtime, "float64")
    ref = gx.compile([x], g, backend="numpy", optimize=optimize)(data)
    got = gx.compile([x], g, backend="llvm", optimize=optimize)(data)
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)
