"""Elementwise ops, fused kernels and fused reductions on the llvm backend, against the
numpy backend (the reference)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.ops.elementwise import ELEMENTWISE

RNG = np.random.default_rng(0)

#: test inputs per op arity: values that exercise signs, zero and the interesting ranges
UNARY_VALUES = np.array([-3.5, -1.0, -0.25, 0.0, 0.3, 1.0, 2.5, 7.0])


def _compile_both(inputs, outputs, **kwargs):
    return (gx.compile(inputs, outputs, backend="numpy", **kwargs),
            gx.compile(inputs, outputs, backend="llvm", **kwargs))


def _formula_args(name: str, dtype: str) -> tuple[list, dict]:
    """Graph inputs and arrays for op ``name``; positive values where the op needs them."""
    op = ELEMENTWISE[name]
    formula = op.formula
    arrays = []
    for k, _ in enumerate(formula.inputs):
        if name == "where" and k == 0:
            arrays.append(np.array([True, False] * 4))
        elif name in ("log", "sqrt", "pow") and k == 0 or name == "log1p":
            arrays.append(np.abs(UNARY_VALUES).astype(dtype) + 0.5)
        elif name in ("div", "reciprocal") and k == len(formula.inputs) - 1:
            arrays.append((UNARY_VALUES + 0.1).astype(dtype))
        elif name.endswith("_shift") and k == 1:
            arrays.append(np.arange(8).astype(dtype) * 9 - 3)  # negative and too-wide counts
        elif formula.result == "int":
            arrays.append(np.array([-7, -1, 0, 3, 5, 100, -128, 9]).astype(dtype))
        elif formula.result == "bool" and name.startswith("logical_"):
            arrays.append(UNARY_VALUES > 0)
        else:
            arrays.append(np.roll(UNARY_VALUES, k).astype(dtype))
    return arrays, _params(name)


def _params(name: str) -> dict:
    params = ELEMENTWISE[name].formula.params
    values = {"alpha": 0.7, "lo": -1.0, "hi": 2.0, "lambd": 0.5, "threshold": 0.2,
              "value": -2.0, "beta": 1.5, "scale": 1.2}
    return {p: values.get(p, 0.6) for p in params}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(n for n in ELEMENTWISE if n != "identity"))
def test_every_elementwise_op_matches_numpy(name: str, dtype: str) -> None:
    if ELEMENTWISE[name].formula.result == "int":  # integer-only ops: the same widths in ints
        dtype = {"float32": "int32", "float64": "int64"}[dtype]
    arrays, params = _formula_args(name, dtype)
    xs = [gx.input(f"x{k}", a.shape, a.dtype) for k, a in enumerate(arrays)]
    y = ELEMENTWISE[name](*xs, **params)
    for optimize in (True, False):
        ref, llvm = _compile_both(xs, y, optimize=optimize)
        tol = 2e-6 if dtype == "float32" else 1e-13
        np.testing.assert_allclose(llvm(*arrays), ref(*arrays), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool"])
def test_integer_and_bool_arithmetic_wraps_like_numpy(dtype: str) -> None:
    info_max = 1 if dtype == "bool" else min(np.iinfo(dtype).max, 1000)
    a = RNG.integers(0, info_max + 1, 20).astype(dtype)
    b = RNG.integers(0, info_max + 1, 20).astype(dtype)
    x, y = gx.input("x", a.shape, dtype), gx.input("y", b.shape, dtype)
    outputs = [x + y, x * y, gx.maximum(x, y), gx.minimum(x, y), x < y, gx.equal(x, y)]
    if dtype != "bool":
        outputs += [x - y, gx.abs(x), gx.sign(x), x * x * x]
    ref, llvm = _compile_both([x, y], outputs)
    for got, want in zip(llvm(a, b), ref(a, b), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("src,dst", [("float64", "float32"), ("float32", "int32"),
                                     ("float64", "int64"), ("int64", "float32"),
                                     ("float32", "bool"), ("bool", "float64"),
                                     ("int32", "int8"), ("uint8", "int64"),
                                     ("float32", "float16"), ("float16", "float64")])
def test_cast_matches_astype(src: str, dst: str) -> None:
    values = np.array([-7.9, -1.5, -0.0, 0.0, 0.49, 1.5, 2.5, 100.25])
    a = values.astype(src) if src != "uint8" else np.abs(values).astype(src)
    x = gx.input("x", a.shape, src)
    ref, llvm = _compile_both([x], gx.cast(x, dst))
    np.testing.assert_array_equal(llvm(a), ref(a))


def test_special_values_propagate_like_numpy() -> None:
    a = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0], np.float64)
    b = np.array([1.0, np.nan, 2.0, -0.0, 0.0, np.nan], np.float64)
    x, y = gx.input("x", a.shape, "float64"), gx.input("y", b.shape, "float64")
    outputs = [gx.maximum(x, y), gx.minimum(x, y), x < y, gx.not_equal(x, y), gx.sign(x),
               gx.abs(x), x / y, gx.max(x), gx.sum(x * 0 + y)]
    ref, llvm = _compile_both([x, y], outputs)
    for got, want in zip(llvm(a, b), ref(a, b), strict=True):
        np.testing.assert_array_equal(got, want)


BROADCASTS = [((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((5,), ()),
              ((), ()), ((0, 4), (4,)), ((2, 1, 4), (1, 3, 1))]


@pytest.mark.parametrize("sa,sb", BROADCASTS)
def test_fused_kernels_broadcast(sa: tuple, sb: tuple) -> None:
    a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
    x, y = gx.input("x", sa, "float64"), gx.input("y", sb, "float64")
    z = gx.maximum(x * 2 - y, 0.0) * y + 1.0
    ref, llvm = _compile_both([x, y], z)
    np.testing.assert_allclose(llvm(a, b), ref(a, b), rtol=1e-15)


def test_symbolic_dims_bind_per_call() -> None:
    x, b = gx.input("x", ("n", 3), "float32"), gx.input("b", (3,), "float32")
    fn = gx.compile([x, b], [x * b + 1.0, gx.sum(x, axis=1)], backend="llvm")
    bias = np.array([1, 2, 3], np.float32)
    for n in (1, 5, 0, 1000, 5):
        a = RNG.standard_normal((n, 3)).astype(np.float32)
        y, s = fn(a, bias)
        np.testing.assert_allclose(y, a * bias + 1, rtol=1e-6)
        np.testing.assert_allclose(s, a.sum(1), rtol=1e-5, atol=1e-6)


def test_non_contiguous_and_misaligned_arguments_are_read_correctly() -> None:
    x = gx.input("x", (4, 3), "float64")
    fn = gx.compile([x], x * 3.0, backend="llvm")
    base = RNG.standard_normal((3, 4))
    np.testing.assert_array_equal(fn(base.T), base.T * 3.0)
    strided = RNG.standard_normal((8, 6))[::2, ::2]
    np.testing.assert_array_equal(fn(strided), strided * 3.0)
    raw = np.zeros(4 * 3 * 8 + 1, np.uint8)
    odd = np.frombuffer(raw.data, np.float64, 12, offset=1).reshape(4, 3)
    assert not odd.flags.aligned
    np.testing.assert_array_equal(fn(odd), odd * 3.0)


REDUCTIONS = [("sum", None, False), ("sum", 0, False), ("sum", 1, True), ("sum", (0, 2), False),
              ("max", -1, False), ("max", 0, True), ("min", (1, 2), False), ("prod", 1, False),
              ("max", None, False), ("min", None, True)]


@pytest.mark.parametrize("kind,axis,keepdims", REDUCTIONS)
@pytest.mark.parametrize("optimize", [True, False])
def test_reductions_match_numpy(kind: str, axis, keepdims: bool, optimize: bool) -> None:
    a = RNG.standard_normal((3, 4, 5))
    x = gx.input("x", a.shape, "float64")
    body = x * x - 0.5 if kind != "prod" else x * 0.5 + 1.0
    y = getattr(gx, kind)(body, axis=axis, keepdims=keepdims)
    ref, llvm = _compile_both([x], y, optimize=optimize)
    np.testing.assert_allclose(llvm(a), ref(a), rtol=1e-13)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_integer_and_bool_reductions(axis) -> None:
    a = RNG.integers(-50, 50, (6, 7)).astype(np.int32)
    x = gx.input("x", a.shape, "int32")
    outputs = [gx.sum(x, axis), gx.max(x, axis), gx.min(x, axis), gx.sum(x > 0, axis)]
    ref, llvm = _compile_both([x], outputs)
    for got, want in zip(llvm(a), ref(a), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_float32_sum_of_ten_million_elements_stays_accurate() -> None:
    a = RNG.random(10_000_000, dtype=np.float32)
    x = gx.input("x", a.shape, "float32")
    total = gx.compile([x], gx.sum(x), backend="llvm")(a)
    exact = a.astype(np.float64).sum()
    assert abs(float(total) - exact) / exact < 1e-6  # a float32 running sum is off by ~1e-3


def test_max_of_an_empty_axis_raises_like_numpy() -> None:
    x = gx.input("x", ("n", 3), "float64")
    fn = gx.compile([x], gx.max(x, axis=0), backend="llvm")
    with pytest.raises(gx.GraphcError, match="zero-size"):
        fn(np.zeros((0, 3)))
    np.testing.assert_array_equal(fn(np.ones((2, 3))), np.ones(3))


def test_outputs_are_fresh_arrays_and_repeated_outputs_are_copies() -> None:
    x = gx.input("x", (3,), "float64")
    y = x + 1.0
    fn = gx.compile([x], [y, y, x], backend="llvm")
    a = np.arange(3.0)
    first = fn(a)
    assert first[0] is not first[1] and not np.shares_memory(first[2], a)
    first[0][:] = 99
    np.testing.assert_array_equal(fn(a)[1], a + 1)


def test_updates_apply_in_place_and_atomically() -> None:
    w = gx.param("w", np.ones(4, np.float32))
    x = gx.input("x", (4,), "float32")
    loss = gx.sum(w * x)
    step = gx.compile([x], loss, updates={w: w - 0.5 * x}, backend="llvm")
    a = np.arange(4, dtype=np.float32)
    assert step(a) == pytest.approx(6.0)
    np.testing.assert_array_equal(w.value, 1 - 0.5 * a)
    with pytest.raises(gx.ArgumentError):
        step(np.ones(5, np.float32))
    np.testing.assert_array_equal(w.value, 1 - 0.5 * a)


INTEGER_DTYPES = ["int8", "int32", "int64", "uint8", "uint16", "uint64"]


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
def test_integer_division_and_remainders_never_trap(dtype: str) -> None:
    """x/0, x%0 and MIN/−1 are defined in native code and give NumPy's values."""
    info = np.iinfo(dtype)
    a = np.array([7, 7, info.min, info.max, 0, 5, 6, info.min], dtype)
    b = np.array([0, 2, 0, 3, 0, 5, 4, 1], dtype)
    if info.min < 0:
        a = np.concatenate([a, np.array([info.min, -7, -7, 7, -1], dtype)])
        b = np.concatenate([b, np.array([-1, 2, -2, -2, -1], dtype)])
    x, y = gx.input("x", a.shape, dtype), gx.input("y", b.shape, dtype)
    ref, llvm = _compile_both([x, y], [gx.fmod(x, y), gx.mod(x, y), gx.trunc_div(x, y)])
    with np.errstate(all="ignore"):
        want = ref(a, b)
        assert np.array_equal(want[0], np.fmod(a, b)) and np.array_equal(want[1], np.mod(a, b))
    for got, w in zip(llvm(a, b), want, strict=True):
        assert got.dtype == w.dtype
        np.testing.assert_array_equal(got, w)


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
def test_bitwise_and_shifts_match_numpy(dtype: str) -> None:
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max, 64, dtype=dtype, endpoint=True)
    b = RNG.integers(info.min, info.max, 64, dtype=dtype, endpoint=True)
    counts = (np.arange(64) % (2 * info.bits + 4)).astype(dtype)  # past the width too
    x, y, n = (gx.input(k, (64,), dtype) for k in "xyn")
    outputs = [gx.bitwise_and(x, y), gx.bitwise_or(x, y), gx.bitwise_xor(x, y),
               gx.bitwise_not(x), gx.left_shift(x, n), gx.right_shift(x, n)]
    ref, llvm = _compile_both([x, y, n], outputs)
    want = [a & b, a | b, a ^ b, ~a, np.left_shift(a, counts), np.right_shift(a, counts)]
    for got, r, w in zip(llvm(a, b, counts), ref(a, b, counts), want, strict=True):
        np.testing.assert_array_equal(r, w)
        np.testing.assert_array_equal(got, w)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_float_remainders_round_and_derived_math_at_special_values(dtype: str) -> None:
    a = np.array([5.0, -5.0, 5.0, -5.0, 0.0, -0.0, 5.5, np.inf, -3.0, np.nan, 2.5, -2.5, 0.5,
                  1.0, -1.0, 7.25], dtype)
    b = np.array([3.0, 3.0, -3.0, -3.0, -2.0, 2.0, 0.0, 2.0, np.inf, 1.0, 1.0, 1.0, 1.0,
                  0.5, 0.0, -2.0], dtype)
    x, y = gx.input("x", a.shape, dtype), gx.input("y", b.shape, dtype)
    outputs = [gx.fmod(x, y), gx.mod(x, y), gx.round(x), gx.ceil(x), gx.trunc(x),
               gx.isnan(x), gx.isinf(x), gx.atan(x)]
    ref, llvm = _compile_both([x, y], outputs)
    with np.errstate(all="ignore"):
        want = [np.fmod(a, b), np.mod(a, b), np.round(a), np.ceil(a), np.trunc(a),
                np.isnan(a), np.isinf(a), np.arctan(a)]
    for got, r, w in zip(llvm(a, b), ref(a, b), want, strict=True):
        assert got.dtype == w.dtype
        np.testing.assert_allclose(r, w, rtol=1e-3 if dtype == "float16" else 1e-6)
        np.testing.assert_allclose(got, w, rtol=1e-3 if dtype == "float16" else 1e-6)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(w))
