"""Indexing ops (getitem, take, take_along_axis, their scatter-add adjoints, slice_scatter,
one_hot) on the llvm backend, against the numpy backend: exact equality, native bounds
checks, and the dims that slicing derives."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm import dims as dim_rules
from graphc.ops._dims import offset_dim, slice_length
from graphc.ops.indexing import _take_along_axis_scatter_add, _take_scatter_add

RNG = np.random.default_rng(1)
DTYPES = ("float32", "int64", "bool")


def _data(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if dtype == "bool":
        return RNG.random(shape) > 0.5
    return RNG.integers(-50, 50, shape).astype(dtype) if dtype == "int64" else \
        RNG.standard_normal(shape).astype(dtype)


def assert_same(inputs, outputs, arrays, optimize: bool = True) -> None:
    """Compile on both backends and compare every output exactly."""
    want = gx.compile(inputs, outputs, backend="numpy", optimize=optimize)(*arrays)
    got = gx.compile(inputs, outputs, backend="llvm", optimize=optimize)(*arrays)
    for w, g in zip(want, got, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


# -- getitem ----------------------------------------------------------------------------------

INDEXES = {
    "slice": lambda x: x[1:4],
    "tail": lambda x: x[1:],
    "head_negative": lambda x: x[:-2],
    "reverse": lambda x: x[::-1],
    "negative_step": lambda x: x[-2::-2, ::-3],
    "step": lambda x: x[1::3, 1:5:2],
    "int": lambda x: x[2],
    "negative_int": lambda x: x[-1, 1:],
    "int_inner": lambda x: x[:, -2],
    "newaxis": lambda x: x[None, 1:3, None, ::2],
    "ellipsis": lambda x: x[..., 3],
    "mixed_sign": lambda x: x[-5:4],
    "empty": lambda x: x[3:1],
    "empty_negative_step": lambda x: x[1:3:-1],
    "views_of_views": lambda x: gx.reshape(x.T[1:, ::-1][::2], (-1,)),
    "transposed_slice": lambda x: x.T[::-2, 1:-1],
}


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("shape", [(6, 7), ("n", 7), ("n", "m")])
@pytest.mark.parametrize("name", sorted(INDEXES))
def test_getitem_matches_numpy(name: str, shape: tuple, optimize: bool) -> None:
    dtype = DTYPES[sorted(INDEXES).index(name) % 3]  # each dtype on a third of the cases
    x = gx.input("x", shape, dtype)
    sizes = {(6, 7): [(6, 7)], ("n", 7): [(6, 7), (9, 7), (5, 7)],
             ("n", "m"): [(6, 7), (9, 8), (5, 6)]}[shape]
    y = INDEXES[name](x)
    for size in sizes:
        assert_same([x], [y, y * 1], [_data(size, dtype)], optimize)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5])
def test_derived_dims_at_small_sizes(n: int) -> None:
    """Slices whose size grows with n: at small n, derived dims clamp to zero."""
    x = gx.input("x", ("n",), "float64")
    ys = [x[1:], x[:-2], x[::-2], x[1::2], x[-2::-1], x[:3:-1], x[-5:3], x[2:][1:],
          x[1:][::2], x[2:] - x[:-2]]
    if n:  # pad(x[1:], 1) is named "n+1", which is 2, not 1, at n = 0: llvm refuses it
        ys.append(gx.pad(x[1:], 1))
    assert_same([x], ys, [np.arange(n, dtype=np.float64)])


@pytest.mark.parametrize("build,runtime,message", [
    (lambda x: x[1:4], 2, "slice along axis 0"),  # a static size over a symbolic dim
    (lambda x: x[5], 3, "index 5 is out of bounds"),
    (lambda x: x[-4], 3, "index -4 is out of bounds"),
])
def test_getitem_of_too_small_symbolic_dim_fails(build, runtime: int, message: str) -> None:
    x = gx.input("x", ("n", 2), "float32")
    y = build(x)
    data = np.ones((runtime, 2), np.float32)
    for backend in ("numpy", "llvm"):
        with pytest.raises(gx.GraphcError, match="getitem"):
            gx.compile([x], y, backend=backend)(data)
    with pytest.raises(gx.GraphcError, match=message):
        gx.compile([x], y, backend="llvm")(data)


def test_getitem_of_a_non_contiguous_argument() -> None:
    x = gx.input("x", ("n", 5), "float64")
    data = _data((5, 4), "float64").T  # Fortran order
    assert_same([x], [x[1:, ::-2], x.T[2]], [data])


# -- dims the runtime derives from their names ------------------------------------------------

SLICES = [(1, None, None), (None, -1, None), (None, None, -1), (None, None, -2),
          (1, None, 2), (-2, None, -1), (None, 3, -1), (-5, 3, None), (2, -1, -1),
          (-3, None, 3), (None, -4, -3)]


@pytest.mark.parametrize("outer", [None, (1, None, None), (None, None, 2), "pad"])
@pytest.mark.parametrize("bounds", SLICES)
def test_dims_resolve_slices_like_python(bounds: tuple, outer) -> None:
    """The runtime's ``dims.resolve`` of a derived name is the length Python gives."""
    for n in range(12):
        name, size = "n", n
        if outer == "pad":
            name, size = offset_dim("n", 3), n + 3
        elif outer is not None:
            name, size = slice_length("n", *outer), len(range(n)[slice(*outer)])
        derived = slice_length(name, *bounds)
        want = len(range(size)[slice(*bounds)])
        if isinstance(derived, str):
            assert dim_rules.resolve(derived, {"n": n}) == want, (derived, n)


# -- gathers ----------------------------------------------------------------------------------

TAKES = {
    "axis0": ((5, 3), "int64", np.array([0, -1, 4, 2, 2]), 0),
    "axis1_2d_indices": ((4, 3), "int32", np.array([[0, 2], [-3, 1]]), 1),
    "uint8": ((4, 3), "uint8", np.array([2, 0, 3]), 0),
    "symbolic": (("n", 3), "int64", np.array([1, -2, 0]), 0),
    "empty_indices": ((4, 3), "int64", np.zeros((0,), np.int64), 1),
    "scalar_index": ((4, 3), "int64", np.array(-1), 1),
}


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("name", sorted(TAKES))
def test_take_matches_numpy(name: str, optimize: bool) -> None:
    dtype = DTYPES[sorted(TAKES).index(name) % 3]
    shape, index_dtype, indices, axis = TAKES[name]
    x = gx.input("x", shape, dtype)
    i = gx.input("i", indices.shape, index_dtype)
    ys = [gx.take(x, i, axis=axis), gx.take(x.T, i, axis=1 - axis), gx.take(x, i)]
    data = _data(tuple(4 if isinstance(d, str) else d for d in shape), dtype)
    assert_same([x, i], ys, [data, indices.astype(index_dtype)], optimize)


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("x_shape,i_shape,axis,dtype", [
    ((4, 5), (4, 2), 1, "float32"), ((4, 5), (1, 3), 1, "int64"), ((1, 5), (3, 2), 1, "bool"),
    ((4, 5), (2, 5), 0, "float32"), (("n", 5), ("n", 1), -1, "int64"),
    ((2, 3, 4), (2, 1, 4), 1, "bool")])
def test_take_along_axis_matches_numpy(x_shape, i_shape, axis: int, dtype: str,
                                       optimize: bool) -> None:
    x = gx.input("x", x_shape, dtype)
    i = gx.input("i", i_shape, "int64")
    runtime = [3 if isinstance(d, str) else d for d in x_shape]
    n = runtime[axis]
    indices = RNG.integers(-n, n, [3 if isinstance(d, str) else d for d in i_shape])
    assert_same([x, i], [gx.take_along_axis(x, i, axis)], [_data(tuple(runtime), dtype),
                                                            indices], optimize)


@pytest.mark.parametrize("build,bad", [
    (lambda x, i: gx.take(x, i, axis=0), np.array([0, 5, 1])),
    (lambda x, i: gx.take(x, i, axis=1), np.array([-4, 0, 1])),
    (lambda x, i: gx.take_along_axis(x, gx.reshape(i, (1, 3)), 0), np.array([5, 0, 0])),
    (lambda x, i: gx.take_along_axis(x, gx.reshape(i, (1, 3)), 1), np.array([0, -9, 0])),
])
def test_out_of_range_indices_fail_naming_the_op(build, bad: np.ndarray) -> None:
    x = gx.input("x", (5, 3), "float32")
    i = gx.input("i", (3,), "int64")
    y = build(x, i)
    data = np.ones((5, 3), np.float32)
    for backend in ("numpy", "llvm"):
        with pytest.raises(gx.GraphcError, match=y.op.name):
            gx.compile([x, i], y, backend=backend)(data, bad)
    with pytest.raises(gx.GraphcError, match="out of bounds"):
        gx.compile([x, i], y, backend="llvm")(data, bad)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_scatter_adds_accumulate_duplicates_like_add_at(dtype: str) -> None:
    g = gx.input("g", (3, 6), dtype)
    like = gx.input("like", (3, 4), dtype)
    i = gx.input("i", (6,), "int64")
    j = gx.input("j", (3, 6), "int64")
    ys = [_take_scatter_add(g, i, like, axis=1), _take_along_axis_scatter_add(g, j, like, axis=1)]
    data = (_data((3, 6), dtype) * 1000).astype(dtype)
    indices = np.array([1, 1, -1, 3, 1, 0])
    along = RNG.integers(-4, 4, (3, 6))
    assert_same([g, like, i, j], ys, [data, np.zeros((3, 4), dtype), indices, along])


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
@pytest.mark.parametrize("label_dtype", ["int64", "int32", "uint8"])
def test_one_hot_matches_numpy(label_dtype: str, dtype: str, optimize: bool) -> None:
    labels = gx.input("labels", ("n", 2), label_dtype)
    ys = [gx.one_hot(labels, 5, dtype), gx.one_hot(labels.T, 0, dtype)]
    values = np.array([[0, 4], [5, 2], [200, 1]]).astype(label_dtype)
    if label_dtype != "uint8":
        values[0, 0] = -1  # out of range: a row of zeros
    assert_same([labels], ys, [values], optimize)


# -- gradients (the backward graphs use the scatter ops) ----------------------------------------

GRADS = {
    "getitem": lambda x, i: x[1::2, ::-1],
    "getitem_int_newaxis": lambda x, i: x[None, -1, 1:],
    "views_of_views": lambda x, i: gx.reshape(x.T[1:, ::-2], (-1,)),
    "take_repeated": lambda x, i: gx.take(x, i, axis=0),
    "take_axis1": lambda x, i: gx.take(x, i[:2], axis=1),
    "take_along_axis": lambda x, i: gx.take_along_axis(x[:4], gx.reshape(i, (4, 1)), 1),
    "take_along_axis_broadcast": lambda x, i: gx.take_along_axis(
        gx.broadcast_to(x[:1], (5, 3)), gx.reshape(i, (4, 1))[:, :1][:1], 1),
    "pad_then_take": lambda x, i: gx.take(gx.pad(x, 1), i + 1, axis=0),
}


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), ("n", 3)])
@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradients_match_numpy(name: str, shape: tuple, optimize: bool) -> None:
    x = gx.input("x", shape, "float64")
    i = gx.input("i", (4,), "int64")
    y = GRADS[name](x, i)
    (g,) = gx.grad(gx.sum(y * y * 0.5), [x])  # the cotangent of y is y itself
    data, indices = _data((5, 3), "float64"), np.array([1, -1, 1, 2])
    want = gx.compile([x, i], g, backend="numpy", optimize=optimize)(data, indices)
    got = gx.compile([x, i], g, backend="llvm", optimize=optimize)(data, indices)
    np.testing.assert_array_equal(got, want)
