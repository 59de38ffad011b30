"""cumsum, cumprod and argsort (with sort and topk built on it) on the llvm backend, against
the numpy backend (the reference): exactly, since both scan sequentially and sorting only
moves elements."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.ops import scan

RNG = np.random.default_rng(3)


def check(inputs, outputs, arrays, optimize: tuple[bool, ...] = (True,)) -> None:
    """llvm equals numpy exactly (NaNs in the same places), optimized (and not)."""
    for level in optimize:
        want = gx.compile(inputs, outputs, backend="numpy", optimize=level)(*arrays)
        got = gx.compile(inputs, outputs, backend="llvm", optimize=level)(*arrays)
        for g, w in zip(got if isinstance(got, tuple) else [got],
                        want if isinstance(want, tuple) else [want], strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)


def sample(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Small values with many ties; floats get a NaN and infinities."""
    if dtype == "bool":
        return RNG.integers(0, 2, shape).astype(bool)
    if dtype.startswith("float"):
        a = (RNG.standard_normal(shape) * 2).astype(dtype)
        a.flat[::7] = np.round(a.flat[::7])  # ties
        if a.size > 5:
            a.flat[3], a.flat[5] = np.nan, np.inf
        return a
    values = RNG.integers(0, 4, shape) - (0 if dtype.startswith("u") else 2)
    return values.astype(dtype)


CASES = [  # (graph shape, array shape, axis)
    ((5,), (5,), 0),
    ((3, 17), (3, 17), 1),
    ((3, 17), (3, 17), 0),
    ((2, 3, 4), (2, 3, 4), 1),
    ((2, 3, 4), (2, 3, 4), -1),
    (("n", 6), (4, 6), 0),
    (("n", 6), (4, 6), 1),
    ((3, "n"), (3, 1), -1),
    (("n", 4), (0, 4), 1),  # no lanes
    ((4, "n"), (4, 0), 1),  # empty lanes
]
DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "bool"]
#: every dtype on one layout, every layout on float32 (int32 for one)
TABLE = ([(*CASES[1], d) for d in DTYPES] + [(*c, "float32") for c in CASES if c != CASES[1]]
         + [(*CASES[5], "int32")])


@pytest.mark.parametrize("graph_shape, shape, axis, dtype", TABLE)
def test_scans_and_argsort_match_numpy(graph_shape, shape, axis, dtype):
    x = gx.input("x", graph_shape, dtype)
    outputs = [fn(x, axis, e, r) for fn in (scan.cumsum, scan.cumprod)
               for e in (False, True) for r in (False, True)]
    outputs += [scan.argsort(x, axis), scan.argsort(x, axis, descending=True)]
    check([x], outputs, [sample(shape, dtype)])


@pytest.mark.parametrize("n", [1, 2, 3, 15, 16, 17, 33, 64, 100])
def test_argsort_lengths_around_powers_of_two(n):
    x = gx.input("x", (2, n), "float64")
    a = RNG.integers(0, 5, (2, n)).astype(np.float64)
    check([x], [scan.argsort(x, 1), scan.argsort(x, 1, True), scan.sort(x)], [a])


def test_non_contiguous_and_broadcast_inputs():
    x = gx.input("x", (5, 4), "float32")
    t = gx.transpose(x)  # a strided view on llvm
    b = gx.broadcast_to(gx.reshape(x[0], (1, 4)), (3, 4))
    outputs = [scan.cumsum(t, 1, reverse=True), scan.cumprod(t, 0, exclusive=True),
               scan.argsort(t, 1, True), scan.cumsum(b, 0), scan.argsort(b, 0)]
    check([x], outputs, [sample((5, 4), "float32")])


def test_topk_and_gradients_compile():
    x = gx.input("x", (4, 6), "float64")
    values, indices = scan.topk(x, 3, 1)
    loss = gx.sum(values * values) + gx.sum(scan.cumprod(x, 0)) + gx.sum(scan.cumsum(x, 1))
    a = RNG.standard_normal((4, 6))
    a[1, 2] = 0.0  # a zero in cumprod's gradient
    check([x], [values, indices, gx.grad(loss, x)], [a], optimize=(True, False))


def test_unoptimized_graphs():
    x = gx.input("x", ("n", 5), "float64")
    outputs = [scan.cumsum(x, 0, True, True), scan.cumprod(x, 1, False, True),
               scan.argsort(x, 1, True)]
    check([x], outputs, [sample((3, 5), "float64")], optimize=(False,))
