"""scatter_elements on the LLVM backend: bit-equal to the NumPy backend, checked indices."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.errors import GraphcError


def both(inputs, outputs, *args, optimize=True):
    """Outputs of the numpy and the llvm backend on ``args``."""
    return [gx.compile(inputs, outputs, backend=be, optimize=optimize)(*args)
            for be in ("numpy", "llvm")]


CASES = [  # data shape, indices shape, axis, dtype
    ((4, 5), (3, 5), 0, "float32"),
    ((4, 5), (4, 2), 1, "float64"),
    ((4, 5), (2, 3), -1, "int32"),
    ((3, 2, 4), (3, 2, 6), 2, "int64"),
    ((6,), (6,), 0, "uint8"),
    ((4, 5), (0, 5), 0, "float32"),  # no updates: a copy
]


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
@pytest.mark.parametrize("shape, ishape, axis, dtype", CASES)
@pytest.mark.parametrize("optimize", [True, False])
def test_matches_numpy(reduction, shape, ishape, axis, dtype, optimize):
    rng = np.random.default_rng(1)
    n = shape[axis]
    data = rng.integers(0, 9, shape).astype(dtype)
    indices = rng.integers(-n if dtype != "uint8" else 0, n, ishape).astype("int32")
    updates = rng.integers(0, 9, ishape).astype(dtype)
    d, i, u = (gx.input(name, a.shape, a.dtype.name)
               for name, a in (("d", data), ("i", indices), ("u", updates)))
    y = gx.scatter_elements(d, i, u, axis, reduction)
    expected, got = both([d, i, u], [y], data, indices, updates, optimize=optimize)
    np.testing.assert_array_equal(got[0], expected[0])


def test_nan_propagates_through_max():
    d, u = gx.input("d", (3,), "float32"), gx.input("u", (2,), "float32")
    y = gx.scatter_elements(d, np.array([0, 2]), u, reduction="max")
    expected, got = both([d, u], [y], np.array([np.nan, 1, 2], np.float32),
                         np.array([5, np.nan], np.float32))
    np.testing.assert_array_equal(got[0], expected[0])
    assert np.isnan(got[0][[0, 2]]).all()


def test_symbolic_dims_and_transposed_input():
    d = gx.input("d", ("n", 3), "float32")
    i, u = gx.input("i", ("m", 3), "int64"), gx.input("u", ("m", 3), "float32")
    y = gx.scatter_elements(d, i, u, 0, "add")
    data = np.arange(12, dtype=np.float32).reshape(3, 4).T  # non-contiguous argument
    indices = np.array([[0, -1, 2], [3, 3, 0]])
    updates = np.ones((2, 3), np.float32)
    expected, got = both([d, i, u], [y], data, indices, updates)
    np.testing.assert_array_equal(got[0], expected[0])


@pytest.mark.parametrize("bad", [4, -5])
def test_out_of_range_index_fails(bad):
    d, i = gx.input("d", (4,), "float32"), gx.input("i", (2,), "int64")
    y = gx.scatter_elements(d, i, np.ones(2, np.float32))
    f = gx.compile([d, i], [y], backend="llvm")
    with pytest.raises(GraphcError, match="scatter_elements.*out of bounds"):
        f(np.zeros(4, np.float32), np.array([0, bad]))


def test_indices_longer_than_data_fail():
    d = gx.input("d", ("n", 2), "float32")
    i, u = gx.input("i", ("m", 2), "int64"), gx.input("u", ("m", 2), "float32")
    with pytest.raises(GraphcError):
        gx.scatter_elements(d, i, u, axis=1)  # "m" vs "n": not known to fit


@pytest.mark.parametrize("reduction", ["none", "add"])
def test_gradient_compiles(reduction):
    d, u = gx.input("d", (3, 3), "float64"), gx.input("u", (2, 3), "float64")
    indices = np.array([[1, 0, 2], [1, 2, 0]])
    y = gx.sum(gx.scatter_elements(d, indices, u, 0, reduction) ** 2)
    grads = gx.grad(y, [d, u])
    args = np.arange(9.0).reshape(3, 3), np.arange(6.0).reshape(2, 3) - 2
    expected, got = both([d, u], grads, *args)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e)
