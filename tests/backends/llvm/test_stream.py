"""Outputs written with non-temporal stores: every size, dtype and thread split gives
NumPy's values, and the stores really are non-temporal."""

from __future__ import annotations

import itertools
import platform

import numpy as np
import pytest

import graphc as gx
from graphc.backends.llvm import stream

NAMES = itertools.count()
X86 = platform.machine() in ("x86_64", "AMD64")
pytestmark = pytest.mark.skipif(not X86, reason="streaming is for x86-64 hosts")


@pytest.fixture
def small_streams(monkeypatch):
    """Stream outputs from 256 bytes, with no disk cache (its entries predate the patch)."""
    monkeypatch.setattr(stream, "STREAM_BYTES", 256)
    monkeypatch.setenv("GRAPHC_CACHE", "0")


def fused_3x_plus_1(x: np.ndarray) -> np.ndarray:
    """x*3 + 1 rounded once, as the kernel's fused multiply-add computes it: in float64
    the sum is exact for float32 x from 2^-26 up (and rounds to 1 below)."""
    return (x.astype(np.float64) * 3 + 1).astype(np.float32)


def _compile(shape, dtype: str):
    x = gx.input(f"x{next(NAMES)}", shape, dtype)
    return gx.compile([x], x * 3 + 1, backend="llvm")


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("n", [64, 67, 1000, 2048 + 5, 3 * 2048 + 1, 20_000])
def test_streamed_outputs_equal_numpy(small_streams, dtype, n):
    fn = _compile((n,), dtype)
    assert "!nontemporal" in fn.llvm_ir
    x = (np.arange(n) % 251 - 100).astype(dtype)
    np.testing.assert_array_equal(fn(x), x * np.array(3, dtype) + np.array(1, dtype))


def test_outputs_split_across_threads_are_streamed_piece_by_piece(small_streams,
                                                                  monkeypatch):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "3")
    n = (1 << 20) + 13
    fn = _compile((n,), "float32")
    x = np.random.default_rng(0).standard_normal(n).astype("float32")
    np.testing.assert_array_equal(fn(x), fused_3x_plus_1(x))


def test_the_stores_are_vector_non_temporal_stores(small_streams):
    fn = _compile((4096,), "float32")
    assert "vmovntps" in fn.asm or "movntps" in fn.asm


@pytest.mark.parametrize(("shape", "dtype"), [((8,), "float32"), ((4096,), "int8"),
                                              (("n",), "float32")])
def test_small_symbolic_or_narrow_outputs_are_not_streamed(small_streams, shape, dtype):
    fn = _compile(shape, dtype)
    assert "!nontemporal" not in fn.llvm_ir


def test_the_default_threshold_streams_only_large_outputs(monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    assert "!nontemporal" not in _compile((1 << 20,), "float32").llvm_ir
    big = _compile((stream.STREAM_BYTES // 4,), "float32")
    assert "!nontemporal" in big.llvm_ir
    x = np.linspace(-1, 1, stream.STREAM_BYTES // 4, dtype="float32")
    np.testing.assert_array_equal(big(x), fused_3x_plus_1(x))


def test_bodies_bound_by_computing_are_not_streamed(small_streams):
    x = gx.input(f"x{next(NAMES)}", (4096,), "float32")
    fn = gx.compile([x], gx.gelu(x, approximate="tanh") + 1.0, backend="llvm")
    assert "!nontemporal" not in fn.llvm_ir
