"""Kernels written in place: the output array over a dying input is one argument of the
kernel, so LLVM vectorizes the loop without a runtime overlap check (which fails when the
two pointers are equal, and left every in-place loop scalar)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import graphc as gx
from tests.helpers import kernel_bodies

NAMES = itertools.count()
RNG = np.random.default_rng(0)


def _kernels(fn, name: str) -> list[str]:
    """The optimized bodies of the compiled kernels whose name contains ``name``."""
    return [body for kernel, body in kernel_bodies(fn.llvm_ir).items()
            if name in kernel and not kernel.endswith(".worker")]  # not a thread's stub


def _pointer_arguments(body: str) -> int:
    return len(re.findall(r"\bptr\b", body.split("{", 1)[0]))


@pytest.mark.parametrize("batch", [64, "batch"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_dense_epilogue_runs_vectorized_in_place(batch, activation: str) -> None:
    x = gx.input(f"x{next(NAMES)}", (batch, 48), "float32")
    wv = RNG.standard_normal((48, 32)).astype(np.float32)
    bv = RNG.standard_normal(32).astype(np.float32)
    z = x @ gx.constant(wv) + gx.constant(bv)
    fn = gx.compile([x], gx.relu(z) if activation == "relu" else gx.tanh(z), backend="llvm")
    (body,) = _kernels(fn, f"dense_{activation}")
    # the output over the product is one pointer; the bias is the other
    assert _pointer_arguments(body) == 2
    assert "vector.memcheck" not in body
    assert re.search(r"store <(8|16) x float>", body), "the epilogue was not vectorized"
    a = RNG.standard_normal((64, 48)).astype(np.float32)
    z = a.astype(np.float64) @ wv + bv
    expected = np.maximum(z, 0) if activation == "relu" else np.tanh(z)
    np.testing.assert_allclose(fn(a), expected, rtol=2e-5, atol=2e-5)


def test_fused_kernel_over_its_dying_input_runs_vectorized() -> None:
    x = gx.input(f"x{next(NAMES)}", ("n", 64), "float32")
    wv = RNG.standard_normal((64, 64)).astype(np.float32)
    t = x @ gx.constant(wv)  # a fresh array that dies in the kernel below, which then
    u = gx.maximum(t, 0.0) * 3.0 + t  # writes over it (u is no output: outputs get theirs)
    fn = gx.compile([x], u @ gx.constant(wv), backend="llvm")
    (body,) = _kernels(fn, "fused")
    assert _pointer_arguments(body) == 1
    assert "vector.memcheck" not in body
    a = RNG.standard_normal((37, 64)).astype(np.float32)
    tt = a.astype(np.float64) @ wv
    np.testing.assert_allclose(fn(a), (np.maximum(tt, 0) * 3 + tt) @ wv, rtol=1e-4, atol=1e-3)


def test_distinct_arrays_keep_their_own_arguments() -> None:
    x, y = (gx.input(f"v{next(NAMES)}", (1000,), "float32") for _ in range(2))
    fn = gx.compile([x, y], gx.exp(x) * y + x, backend="llvm")
    (body,) = _kernels(fn, "fused")
    assert _pointer_arguments(body) == 3
    a, c = RNG.standard_normal((2, 1000)).astype(np.float32)
    np.testing.assert_allclose(fn(a, c), np.exp(a) * c + a, rtol=1e-6, atol=1e-6)
