"""scatter_elements: type rule, NumPy meaning (against a loop reference) and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.errors import GraphcError, GraphcTypeError

COMBINE = {"none": lambda old, new: new, "add": np.add, "mul": np.multiply,
           "max": np.maximum, "min": np.minimum}


def reference(data, indices, updates, axis, reduction):
    """The ONNX ScatterElements loop, written out."""
    out = data.copy()
    for p in np.ndindex(indices.shape):
        at = list(p)
        at[axis] = indices[p]
        out[tuple(at)] = COMBINE[reduction](out[tuple(at)], updates[p])
    return out


def run(data, indices, updates, axis, reduction):
    d = gx.input("d", data.shape, data.dtype.name)
    i = gx.input("i", indices.shape, indices.dtype.name)
    u = gx.input("u", updates.shape, updates.dtype.name)
    f = gx.compile([d, i, u], [gx.scatter_elements(d, i, u, axis, reduction)], backend="numpy")
    return f(data, indices, updates)[0]


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_matches_loop_reference(reduction, axis, dtype):
    rng = np.random.default_rng(0)
    data = rng.integers(-5, 5, (4, 5)).astype(dtype)
    shape = (3, 4)  # smaller than data on the other axis: allowed
    n = data.shape[axis]
    indices = rng.integers(-n, n, shape)
    if reduction == "none":  # unique targets per column/row so the order does not matter
        indices = np.stack([rng.permutation(n)[:shape[axis % 2]] for _ in range(
            shape[1 - axis % 2])], axis=1 - axis % 2)
    updates = rng.integers(-5, 5, shape).astype(dtype)
    np.testing.assert_array_equal(run(data, indices, updates, axis, reduction),
                                  reference(data, indices, updates, axis % 2, reduction))


def test_repeated_indices_last_write_wins():
    out = run(np.zeros(3, np.float32), np.array([1, 1, 1]), np.array([1, 2, 3], np.float32),
              0, "none")
    np.testing.assert_array_equal(out, [0, 3, 0])


@pytest.mark.parametrize("build, message", [
    (lambda d: gx.scatter_elements(d, np.zeros((2, 2), np.float32), d), "integers"),
    (lambda d: gx.scatter_elements(d, np.zeros((2, 2), np.int64), d[:1]), "one shape"),
    (lambda d: gx.scatter_elements(d, np.zeros((3,), np.int64), d[0]), "dims"),
    (lambda d: gx.scatter_elements(d, np.zeros((2, 3), np.int64), d, reduction="xor"),
     "reduction"),
])
def test_type_errors(build, message):
    d = gx.input("d", (2, 3), "float32")
    with pytest.raises(GraphcTypeError, match=message):
        build(d)


def test_out_of_range_index_raises():
    with pytest.raises(GraphcError, match="out of bounds"):
        run(np.zeros(3, np.float32), np.array([3]), np.ones(1, np.float32), 0, "add")


@pytest.mark.parametrize("reduction", ["none", "add"])
def test_gradient(reduction):
    indices = np.array([[1, 0, 2], [1, 2, 0]])  # repeats: column 0 writes row 1 twice
    data = np.arange(9, dtype=np.float64).reshape(3, 3) / 7
    updates = np.arange(6, dtype=np.float64).reshape(2, 3) / 5 - 0.3
    report = gx.check_grad(
        lambda d, u: gx.scatter_elements(d, indices, u, 0, reduction) ** 2, [data, updates])
    assert report.ok, report


def test_gradient_of_max_is_refused():
    d, u = gx.input("d", (3,), "float32"), gx.input("u", (2,), "float32")
    y = gx.sum(gx.scatter_elements(d, np.array([0, 1]), u, reduction="max"))
    with pytest.raises(GraphcError, match="no gradient"):
        gx.grad(y, [u])
