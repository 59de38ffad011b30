"""Scalar programs as LLVM IR: a constant affine step ``c ± k*y`` is one fused multiply-add
(rounded once), and nothing else is contracted, so what cancels in NumPy cancels here."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import graphc as gx
from tests.helpers import kernel_bodies

NAMES = itertools.count()
RNG = np.random.default_rng(0)


def _compile(build, arity: int = 1, dtype: str = "float32"):
    inputs = [gx.input(f"s{next(NAMES)}", (64,), dtype) for _ in range(arity)]
    return gx.compile(inputs, build(*inputs), backend="llvm")


def _kernel_arithmetic(fn) -> list[str]:
    """The floating-point instructions of the compiled kernels (not the entry's)."""
    found = []
    for body in kernel_bodies(fn.llvm_ir_unoptimized).values():
        found += re.findall(r"\b(fmul|fadd|fsub|llvm\.fmuladd)\b", body)
    return found


AFFINE = {
    "x*3 + 1": (lambda x: x * 3.0 + 1.0, lambda x: x * 3 + 1),
    "1 - x*3": (lambda x: 1.0 - x * 3.0, lambda x: 1 - x * 3),
    "x*3 - 1": (lambda x: x * 3.0 - 1.0, lambda x: x * 3 - 1),
    "0.5 + 3*x": (lambda x: 0.5 + 3.0 * x, lambda x: 0.5 + 3 * x),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", AFFINE)
def test_constant_affine_steps_round_once(case, dtype):
    build, exact = AFFINE[case]
    fn = _compile(build, dtype=dtype)
    assert _kernel_arithmetic(fn) == ["llvm.fmuladd"]
    # in [0.5, 4) every product and sum below is exact in the wider type, so rounding it
    # to dtype is the one rounding a fused multiply-add makes
    x = RNG.uniform(0.5, 4, 64).astype(dtype)
    wide = np.longdouble if dtype == "float64" else np.float64
    np.testing.assert_array_equal(fn(x), exact(x.astype(wide)).astype(dtype))


def test_a_product_read_twice_is_not_fused():
    fn = _compile(lambda x: (x * 3.0 + 1.0) * (x * 3.0))
    assert "llvm.fmuladd" not in _kernel_arithmetic(fn)
    x = RNG.standard_normal(64).astype("float32")
    np.testing.assert_array_equal(fn(x), (x * np.float32(3) + np.float32(1)) * (x * np.float32(3)))


def test_a_variable_minus_a_product_cancels_as_in_numpy():
    # y - 3x with y = 3x is exactly 0 in NumPy; fused, it would be the product's rounding error
    fn = _compile(lambda x, y: y - x * 3.0, arity=2)
    assert "llvm.fmuladd" not in _kernel_arithmetic(fn)
    x = RNG.standard_normal(64).astype("float32")
    np.testing.assert_array_equal(fn(x, x * np.float32(3)), np.zeros(64, "float32"))


def test_integer_affine_steps_stay_integer():
    fn = _compile(lambda x: x * 3 + 1, dtype="int32")
    x = np.arange(-32, 32, dtype="int32")
    np.testing.assert_array_equal(fn(x), x * 3 + 1)
