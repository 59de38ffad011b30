"""Conversions to float16 in native code: correctly rounded, and no libcall."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx


def _half_boundaries() -> np.ndarray:
    """Every finite half, the midpoints between neighbours (ties), their double
    neighbours, and values that overflow or underflow."""
    halves = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)
    mids = (halves[:-1] + halves[1:]) / 2
    rng = np.random.default_rng(0)
    return np.concatenate([halves, mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf),
                           -mids, rng.standard_normal(4000) * 1000,
                           [np.inf, -np.inf, np.nan, 1e300, -1e-300, 65519.99, 65520.0]])


@pytest.mark.parametrize("src", ["float64", "int64", "int32", "uint32", "uint64"])
def test_casts_to_float16_round_like_numpy(src):
    values = _half_boundaries()
    if src != "float64":
        low = -1e6 if src.startswith("int") else 0
        values = np.nan_to_num(values, nan=0, posinf=0, neginf=0).clip(low, 1e6).astype(src)
    x = gx.input("x", (len(values),), src)
    fn = gx.compile([x], gx.cast(x, "float16"), backend="llvm")
    with np.errstate(over="ignore"):
        want = values.astype(np.float16)
    got = fn(values)
    assert fn.asm.count("__trunc") == 0  # no libcall (one of another ABI crashed)
    np.testing.assert_array_equal(got.view(np.uint16)[~np.isnan(want)],
                                  want.view(np.uint16)[~np.isnan(want)])
    assert np.isnan(got).sum() == np.isnan(want).sum()


@pytest.mark.parametrize("reduce", [gx.sum, gx.mean, gx.norm])
def test_float16_reductions_accumulate_wide_and_round_once(reduce):
    data = np.random.default_rng(1).standard_normal((3, 50)).astype(np.float16)
    x = gx.input("x", data.shape, "float16")
    got = gx.compile([x], reduce(x, 1), backend="llvm")(data)
    want = gx.compile([x], reduce(x, 1), backend="numpy")(data)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=2e-3)
