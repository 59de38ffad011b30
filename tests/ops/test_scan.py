"""Scans and sorting (cumsum, cumprod, argsort, sort, topk): values against NumPy, stability
and NaN order, dtypes, gradients by finite differences (zeros in cumprod included) and
errors."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.ops import scan
from tests.helpers import assert_gradients, evaluate

RNG = np.random.default_rng(11)
X = RNG.standard_normal((3, 4, 5))


def _reference_scan(ufunc, x, axis, exclusive, reverse):
    """The scan by definition: ufunc over each window, identity for an empty one."""
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    out = np.empty(x.shape, np.result_type(x, np.int64) if x.dtype.kind in "biu" else x.dtype)
    for i in range(n):
        window = range(i + exclusive, n) if reverse else range(0, i + 1 - exclusive)
        out[..., i] = ufunc.reduce(x[..., list(window)], axis=-1)
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("name, ufunc", [("cumsum", np.add), ("cumprod", np.multiply)])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_scans_match_their_definition(name, ufunc, axis, exclusive, reverse):
    got = evaluate(lambda t: getattr(gx.ops.scan, name)(t, axis, exclusive, reverse), X)
    want = _reference_scan(ufunc, X, axis, exclusive, reverse)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_inclusive_scans_equal_numpy_bit_for_bit(name):
    x = RNG.standard_normal((4, 33)).astype(np.float32)
    got = evaluate(lambda t: getattr(scan, name)(t, 1), x)
    np.testing.assert_array_equal(got, getattr(np, name)(x, axis=1))


@pytest.mark.parametrize("dtype, want", [("int8", "int64"), ("bool", "int64"),
                                         ("uint32", "uint64"), ("int32", "int64"),
                                         ("float16", "float16"), ("float32", "float32")])
def test_scan_dtypes_widen_as_numpy(dtype, want):
    x = gx.input("x", (2, 3), dtype)
    assert scan.cumsum(x, 1).dtype == want and scan.cumprod(x, 0).dtype == want
    values = RNG.integers(0, 3, (2, 3)).astype(dtype)
    got = gx.compile([x], scan.cumsum(x, 1))(values)
    np.testing.assert_array_equal(got, np.cumsum(values, 1))


def test_empty_axis_and_symbolic_dims():
    x = gx.input("x", ("n", 3), "float64")
    fn = gx.compile([x], [scan.cumsum(x, 0, exclusive=True), scan.cumprod(x, 1, reverse=True)])
    for n in (0, 1, 4):
        a = RNG.standard_normal((n, 3))
        s, p = fn(a)
        np.testing.assert_allclose(s, _reference_scan(np.add, a, 0, True, False), atol=1e-12)
        np.testing.assert_allclose(p, _reference_scan(np.multiply, a, 1, False, True))


# -- sorting ------------------------------------------------------------------------------------

TIES = np.array([[2.0, 1.0, 2.0, 1.0, np.nan, 3.0, np.nan],
                 [0.0, 0.0, 0.0, -1.0, 5.0, 5.0, -1.0]])


@pytest.mark.parametrize("descending", [False, True])
def test_argsort_is_stable_with_nan_largest(descending):
    got = evaluate(lambda t: scan.argsort(t, 1, descending), TIES)
    assert got.dtype == np.int64
    for row, order in zip(TIES, got, strict=True):
        key = [(-(np.inf if np.isnan(v) else v) if descending else
                (np.inf if np.isnan(v) else v), i) for i, v in enumerate(row)]
        assert list(order) == [i for _, i in sorted(key)]
    if not descending:
        np.testing.assert_array_equal(got, np.argsort(TIES, 1, kind="stable"))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "int32", "uint8", "bool"])
def test_sort_matches_numpy(axis, descending, dtype):
    x = (RNG.integers(0, 4, (3, 4, 5))).astype(dtype)
    got = evaluate(lambda t: scan.sort(t, axis, descending), x)
    want = np.sort(x, axis)
    np.testing.assert_array_equal(got, np.flip(want, axis) if descending else want)


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_topk_values_and_indices(largest, k):
    x = RNG.integers(0, 3, (4, 5)).astype(np.float32)  # ties: lower index first
    values, indices = evaluate(lambda t: list(scan.topk(t, k, 1, largest)), x)
    key = -x if largest else x
    want = np.lexsort((np.broadcast_to(np.arange(5), x.shape), key), axis=1)[:, :k]
    np.testing.assert_array_equal(indices, want)
    np.testing.assert_array_equal(values, np.take_along_axis(x, want, 1))


# -- gradients ----------------------------------------------------------------------------------

ZEROS = np.array([[1.5, 0.0, 2.0, -1.0, 0.5],     # one zero
                  [0.0, 2.0, 0.0, 1.2, -0.7],     # two zeros
                  [0.8, -1.1, 0.0, 0.0, 0.0],     # three zeros
                  [0.8, -1.1, 0.9, 1.4, 1.3]])    # none

GRADIENT_TABLE = [
    # (label, graph builder, input, order)
    *[(f"cumsum ex={e} rev={r}", lambda x, e=e, r=r: scan.cumsum(x, 1, e, r), X[0], 2)
      for e in (False, True) for r in (False, True)],
    *[(f"cumprod ex={e} rev={r}", lambda x, e=e, r=r: scan.cumprod(x, -1, e, r), X[0], 2)
      for e in (False, True) for r in (False, True)],
    *[(f"cumprod zeros ex={e} rev={r}", lambda x, e=e, r=r: scan.cumprod(x, 1, e, r), ZEROS, 2)
      for e in (False, True) for r in (False, True)],
    ("cumprod axis 0", lambda x: scan.cumprod(x, 0), X[:, :, 0], 2),
    ("sort", lambda x: scan.sort(x, 0), X[1], 2),
    ("sort descending", lambda x: scan.sort(x, -1, True), X[1], 2),
    ("topk", lambda x: scan.topk(x, 2, 1)[0], X[2], 2),
    ("topk smallest", lambda x: scan.topk(x, 3, 0, largest=False)[0], X[2], 2),
]


@pytest.mark.parametrize("label, f, x, order", GRADIENT_TABLE, ids=[r[0] for r in GRADIENT_TABLE])
def test_gradients_match_finite_differences(label, f, x, order):
    assert_gradients(f, x, order=order)


def test_cumprod_gradient_with_zeros_is_the_product_of_the_others():
    g = evaluate(lambda t: gx.grad(gx.sum(scan.cumprod(t, 1)), t), ZEROS)
    want = [[sum(np.prod(np.delete(row[:i + 1], k)) for i in range(k, 5)) for k in range(5)]
            for row in ZEROS]
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-15)
    assert np.isfinite(g).all()


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("build, message", [
    (lambda x: scan.cumsum(x, 2), "cumsum: .*axis"),
    (lambda x: scan.cumprod(x, (0, 1)), "cumprod: axis must be an int"),
    (lambda x: scan.argsort(x, -3), "argsort: .*axis"),
    (lambda x: scan.topk(x, 5, 1), "topk: k=5 is larger than axis 1 of size 4"),
    (lambda x: scan.topk(x, -1, 1), "topk: k must be a non-negative int"),
])
def test_errors_name_the_op(build, message):
    with pytest.raises(gx.GraphcTypeError, match=message):
        build(gx.input("x", (3, 4)))


def test_ops_are_registered_once_under_their_names():
    for op in (scan._cumsum, scan._cumprod, scan._argsort):
        assert gx.ops.base.ALL_OPS[op.name] is op
    assert not scan._argsort.differentiable
