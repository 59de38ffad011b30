"""Vector math in LLVM IR: NumPy's values (in ulps) over the whole float range, NumPy's
special values, and loops that vectorize."""

from __future__ import annotations

import ctypes
import re
import time
from collections.abc import Callable

import llvmlite.ir as ir
import numpy as np
import pytest
import scipy.special

from graphc.backends.llvm import target, vecmath
from graphc.backends.llvm.vecmath import FUNCTIONS, MAX_ULP

DTYPES = {"f32": np.float32, "f64": np.float64}
IR_TYPES = {"f32": ir.FloatType(), "f64": ir.DoubleType()}
CASES = [(name, dtype) for name in FUNCTIONS for dtype in DTYPES]


def build_kernel(module: ir.Module, name: str, dtype: str) -> None:
    """``void k_<name>_<dtype>(ptr x, [ptr y,] ptr out, i64 n)``: out[i] = f(x[i], ...)."""
    ty, ptr, i64 = IR_TYPES[dtype], ir.PointerType(), ir.IntType(64)
    arity = 2 if name == "pow" else 1
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr] * (arity + 1) + [i64]),
                     f"k_{name}_{dtype}")
    *inputs, out, n = fn.args
    for arg in (*inputs, out):
        arg.add_attribute("noalias")
    entry, body, done = (fn.append_basic_block(b) for b in ("entry", "body", "done"))
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(i64, 0)), body, done)
    builder.position_at_end(body)
    i = builder.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    def element(p: ir.Argument) -> ir.Value:
        return builder.gep(p, [i], inbounds=True, source_etype=ty)

    args = [builder.load(element(p), typ=ty) for p in inputs]
    builder.store(vecmath.call(builder, name, args), element(out))
    following = builder.add(i, ir.Constant(i64, 1))
    i.add_incoming(following, body)
    builder.cbranch(builder.icmp_signed("<", following, n), body, done)
    builder.position_at_end(done)
    builder.ret_void()


class Kernels:
    """All (function, dtype) loops, compiled once into one object."""

    def __init__(self) -> None:
        module = target.new_module("vecmath_test")
        for name, dtype in CASES:
            build_kernel(module, name, dtype)
        self.optimized = target.optimize(module)
        self._object = target.LoadedObject([target.emit_object(self.optimized)])
        self._functions: dict[str, Callable] = {}

    def ir(self, name: str, dtype: str) -> str:
        return str(self.optimized.get_function(f"k_{name}_{dtype}"))

    def __call__(self, name: str, *inputs: np.ndarray) -> np.ndarray:
        dtype = "f32" if inputs[0].dtype == np.float32 else "f64"
        symbol = f"k_{name}_{dtype}"
        if symbol not in self._functions:
            argtypes = [ctypes.c_void_p] * (len(inputs) + 1) + [ctypes.c_int64]
            self._functions[symbol] = ctypes.CFUNCTYPE(None, *argtypes)(
                self._object.address(symbol))
        inputs = tuple(np.ascontiguousarray(a) for a in np.broadcast_arrays(*inputs))
        out = np.empty_like(inputs[0])
        self._functions[symbol](*(a.ctypes.data for a in (*inputs, out)), out.size)
        return out


@pytest.fixture(scope="module")
def kernels() -> Kernels:
    return Kernels()


# references: float64 for float32 results, 80-bit long double (or mpmath) for float64 ----------
def sigmoid_ref(x: np.ndarray) -> np.ndarray:
    t = np.exp(-np.abs(x))
    return np.where(x < 0, t, 1) / (1 + t)


def erf_ref_f64(x: np.ndarray) -> np.ndarray:
    import mpmath

    mpmath.mp.prec = 80
    hard = (np.abs(x) < 6) & (np.abs(x) > 1e-30)  # elsewhere erf(x) is ±1 or 2x/sqrt(pi)
    with np.errstate(invalid="ignore"):
        out = np.sign(x).astype(np.longdouble)
    tiny = np.abs(x) <= 1e-30
    out[tiny] = x[tiny].astype(np.longdouble) * (2 / np.sqrt(np.pi, dtype=np.longdouble))
    out[np.isnan(x)] = np.nan
    # mpmath -> decimal string -> long double keeps the extra bits
    out[hard] = [np.longdouble(mpmath.nstr(mpmath.erf(mpmath.mpf(float(v))), 25))
                 for v in x[hard]]
    return out


NUMPY_REF: dict[str, Callable] = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "tanh": np.tanh,
    "sigmoid": sigmoid_ref, "erf": scipy.special.erf, "pow": np.power, "sin": np.sin,
    "cos": np.cos, "atan": np.arctan,
}


def reference(name: str, dtype: str, *inputs: np.ndarray) -> np.ndarray:
    """The true value in higher precision (float64 for float32, long double for float64)."""
    if dtype == "f64" and name == "erf":
        return erf_ref_f64(inputs[0])
    wide = np.float64 if dtype == "f32" else np.longdouble
    with np.errstate(all="ignore"):
        return NUMPY_REF[name](*(a.astype(wide) for a in inputs))


def ulp_error(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| in ulps of ``ref`` in got's format; 0 or inf where either is not finite
    (equal after rounding ``ref``, NaN matching NaN, or not)."""
    info = np.finfo(got.dtype)
    with np.errstate(all="ignore"):
        rounded = ref.astype(got.dtype)
    special = ~np.isfinite(rounded) | ~np.isfinite(got)
    same = (got == rounded) | (np.isnan(got) & np.isnan(rounded))
    _, exponent = np.frexp(np.abs(ref))
    ulp = np.ldexp(np.ones_like(ref), np.maximum(exponent - info.nmant - 1,
                                                 info.minexp - info.nmant))
    with np.errstate(all="ignore"):
        err = np.abs(got.astype(ref.dtype) - ref) / ulp
    return np.where(special, np.where(same, 0.0, np.inf), err).astype(np.float64)


def assert_ulps(name: str, dtype: str, got: np.ndarray, inputs: tuple[np.ndarray, ...]) -> float:
    err = ulp_error(got, reference(name, dtype, *inputs))
    worst = int(np.argmax(err))
    assert err[worst] <= MAX_ULP[name, dtype], (
        f"{name} {dtype}: {err[worst]:.3g} ulp at {[a[worst] for a in inputs]}: "
        f"got {got[worst]!r}, want {reference(name, dtype, *(a[worst:worst + 1] for a in inputs))}")
    return float(err[worst])


# samples ----------------------------------------------------------------------------------
def random_bits(dtype: str, count: int, seed: int) -> np.ndarray:
    """Uniformly random bit patterns: every exponent, subnormals, infinities and NaNs."""
    rng = np.random.default_rng(seed)
    bits = np.uint32 if dtype == "f32" else np.uint64
    return rng.integers(0, np.iinfo(bits).max, count, dtype=bits, endpoint=True).view(
        DTYPES[dtype])


def edge_values(dtype: str) -> np.ndarray:
    """±0, ±inf, NaN, subnormals, normal limits, and a few ulps around the thresholds where
    exp and friends overflow, underflow to subnormals, or round to 0."""
    t = DTYPES[dtype]
    info = np.finfo(t)
    tiny_sub = np.array(info.smallest_subnormal, t)
    points = [0, np.inf, np.nan, tiny_sub, tiny_sub * 3, info.smallest_normal,
              info.smallest_normal - tiny_sub, info.max, info.eps, 1, 2, 0.5, 1e-3,
              np.log(info.max), np.log(info.smallest_normal), np.log(tiny_sub),
              np.log(tiny_sub) - 0.7, np.pi, np.pi / 2, np.pi / 4, 3 * np.pi / 4, 100, 1e4]
    base = np.array(points, t)
    around = [base]
    with np.errstate(all="ignore"):
        for _ in range(5):
            around += [np.nextafter(base, t(np.inf), dtype=t), np.nextafter(base, t(0), dtype=t)]
            base = around[-2]
    values = np.concatenate(around)
    return np.concatenate([values, -values])


def samples(name: str, dtype: str) -> np.ndarray:
    t = DTYPES[dtype]
    rng = np.random.default_rng(1)
    count = 1 << 22 if dtype == "f32" else 1 << 19
    if (name, dtype) == ("erf", "f64"):
        count = 1 << 16  # its reference is mpmath, one point at a time
    log_uniform = np.exp(rng.uniform(-25, 8, count // 4)) * rng.choice([-1, 1], count // 4)
    around_one = 1 + rng.uniform(-1, 1, count // 8) * 10.0 ** rng.uniform(-8, 0, count // 8)
    parts = [random_bits(dtype, count, 2), log_uniform, around_one, edge_values(dtype)]
    if name in ("sin", "cos"):
        parts.append(rng.uniform(-vecmath.SINCOS_LIMIT, vecmath.SINCOS_LIMIT, count // 8))
    x = np.concatenate([p.astype(t) for p in parts])
    if name in ("sin", "cos"):
        x = x[np.abs(x) <= vecmath.SINCOS_LIMIT]
    return x


@pytest.mark.parametrize(("name", "dtype"), [c for c in CASES if c[0] != "pow"])
def test_unary_ulps(kernels: Kernels, name: str, dtype: str) -> None:
    x = samples(name, dtype)
    assert_ulps(name, dtype, kernels(name, x), (x,))


def pow_samples(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Random bit patterns for both; moderate, integer and half-integer exponents for
    random and negative bases; and exponents aimed near overflow and underflow."""
    t = DTYPES[dtype]
    rng = np.random.default_rng(3)
    count = 1 << 20 if dtype == "f32" else 1 << 18
    x = random_bits(dtype, count, 4)
    y = np.concatenate([random_bits(dtype, count // 4, 5).astype(t),
                        rng.uniform(-30, 30, count // 4).astype(t),
                        rng.integers(-40, 41, count // 4).astype(t),
                        (rng.integers(-80, 81, count // 4) / 2).astype(t)])
    base = np.exp(rng.uniform(-30, 30, count)) * rng.choice([-1, 1], count)
    lim = np.log(np.finfo(t).max) * rng.uniform(-1.1, 1.1, count)
    near = np.round(lim / np.log(np.abs(base)))  # integers: negative bases stay defined
    edges = edge_values(dtype)
    xs, ys = np.meshgrid(edges, edges)
    return (np.concatenate([x, base.astype(t), base.astype(t), xs.ravel()]),
            np.concatenate([y, rng.uniform(-8, 8, count).astype(t), near.astype(t), ys.ravel()]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_ulps(kernels: Kernels, dtype: str) -> None:
    x, y = pow_samples(dtype)
    assert_ulps("pow", dtype, kernels("pow", x, y), (x, y))


SPECIAL_X = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, -2.0, 1e3, -1e3, 50.0, -50.0]
SPECIAL_POW = [(a, b) for a in (0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 10.0, -10.0,
                                np.inf, -np.inf, np.nan)
               for b in (0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 401.0, -401.0,
                         400.0, -400.0, np.inf, -np.inf, np.nan)]


def numpy_same_dtype(name: str, *inputs: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if name == "sigmoid":
            return (1 / (1 + np.exp(-inputs[0]))).astype(inputs[0].dtype)
        return NUMPY_REF[name](*inputs).astype(inputs[0].dtype)


def assert_identical(got: np.ndarray, want: np.ndarray, inputs: tuple[np.ndarray, ...]) -> None:
    """NaN for NaN, equal infinities and zeros with the same sign, and within two ulps for
    ordinary values (pow(-2, 3) = -8, sigmoid(-50) = 1.9e-22)."""
    ordinary = np.isfinite(want) & (want != 0)
    with np.errstate(all="ignore"):
        close = np.abs(got - want) <= 2 * np.spacing(np.abs(want))
    same = (got == want) & (np.signbit(got) == np.signbit(want))
    same |= np.isnan(got) & np.isnan(want)
    same |= ordinary & close
    bad = np.flatnonzero(~same)
    assert not bad.size, [(tuple(a[i] for a in inputs), got[i], want[i]) for i in bad[:5]]


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_special_values_match_numpy(kernels: Kernels, name: str, dtype: str) -> None:
    t = DTYPES[dtype]
    if name == "pow":
        inputs = tuple(np.array(v, t) for v in zip(*SPECIAL_POW, strict=True))
    else:
        inputs = (np.array(SPECIAL_X, t),)
    if name in ("sin", "cos"):
        inputs = (inputs[0][np.abs(inputs[0]) < 100],)
    assert_identical(kernels(name, *inputs), numpy_same_dtype(name, *inputs), inputs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_subnormal_results(kernels: Kernels, dtype: str) -> None:
    """exp underflows gradually to the smallest subnormal and then to 0, log reads
    subnormal inputs exactly (log(2^-k) = -k ln2)."""
    t = DTYPES[dtype]
    info = np.finfo(t)
    k = np.arange(-info.minexp + 1, -info.minexp + info.nmant + 1)  # the subnormal powers
    tiny = np.ldexp(np.ones(k.size, t), -k)
    assert np.all(kernels("exp", (-k * np.log(2.0)).astype(t)) > 0)
    np.testing.assert_allclose(kernels("log", tiny), -k * np.log(2.0), rtol=2 * info.eps)
    assert kernels("exp", np.array([np.log(info.smallest_subnormal) - 1], t))[0] == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_sincos_beyond_cody_waite_range(kernels: Kernels, dtype: str) -> None:
    """Past SINCOS_LIMIT the absolute error grows like |x| 2^-52; huge arguments give
    finite values in [-1, 1] (not NumPy's)."""
    t = DTYPES[dtype]
    rng = np.random.default_rng(6)
    x = np.exp(rng.uniform(np.log(vecmath.SINCOS_LIMIT), np.log(2.0**40), 1 << 14)).astype(t)
    huge = np.array([2.0**60, 1e30, np.finfo(t).max, -np.finfo(t).max], t)
    for name in ("sin", "cos"):
        err = np.abs(kernels(name, x) - reference(name, dtype, x))
        assert np.all(err <= np.abs(x.astype(np.float64)) * 2.0**-50)
        y = kernels(name, huge)
        assert np.all(np.abs(y) <= 1)


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_loops_vectorize_without_calls(kernels: Kernels, name: str, dtype: str) -> None:
    body = kernels.ir(name, dtype)
    assert re.search(r"<[48] x (float|double)>", body), "the loop was not vectorized"
    called = set(re.findall(r"call [^@]*@([\w.]+)\(", body))
    assert all(c.startswith("llvm.") for c in called), called
    assert not any(c.startswith(("llvm.exp", "llvm.log", "llvm.sin", "llvm.cos", "llvm.pow",
                                 "llvm.tanh")) for c in called), called


def test_exp_f32_uses_the_hosts_full_vector_width(kernels: Kernels) -> None:
    body = kernels.ir("exp", "f32")
    lanes = 16 if "+avx512f" in target.host_features().split(",") else 8  # AVX2: 8
    assert f"<{lanes} x float>" in body
    assert "@exp" not in body and "@llvm.exp" not in body


def test_function_defined_once_per_module() -> None:
    module = target.new_module("once")
    fn = ir.Function(module, ir.FunctionType(ir.FloatType(), [ir.FloatType()] * 2), "f")
    builder = ir.IRBuilder(fn.append_basic_block())
    a, b = fn.args
    total = builder.fadd(vecmath.call(builder, "exp", [a]), vecmath.call(builder, "exp", [b]))
    builder.ret(builder.fadd(total, vecmath.call(builder, "pow", [a, b])))
    names = [g.name for g in module.global_values]
    assert names.count("graphc.exp.f32") == 1 and "graphc.pow.f32" in names
    assert "alwaysinline" in module.globals["graphc.exp.f32"].attributes
    with pytest.raises(ValueError, match="unknown vecmath function"):
        vecmath.call(builder, "gamma", [a])


@pytest.mark.parametrize("name", ["exp", "tanh"])
def test_throughput_f32(kernels: Kernels, name: str) -> None:
    """Printed, not asserted: elements per ns of the compiled loop and of NumPy."""
    x = np.random.default_rng(7).uniform(-10, 10, 1 << 24).astype(np.float32)

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    ours = best(lambda: kernels(name, x))
    theirs = best(lambda: getattr(np, name)(x))
    print(f"\n{name} f32 over 2^24: vecmath {x.size / ours / 1e9:.2f} Gelem/s, "
          f"numpy {x.size / theirs / 1e9:.2f} Gelem/s ({theirs / ours:.1f}x)")


@pytest.mark.parametrize("key", [("log", "f32"), ("sin", "f64")])
def test_coefficients_are_reproducible(key: tuple[str, str]) -> None:
    """vecmath_fit.py regenerates the pasted table (two cheap entries checked here)."""
    from graphc.backends.llvm import vecmath_fit

    spec = next(s for s in vecmath_fit._specs() if (s.name, s.dtype) == key)
    coeffs, error = vecmath_fit.fit(spec)
    assert tuple(coeffs) == vecmath.COEFFS[key]
    assert error < (2.0**-24 if key[1] == "f32" else 2.0**-53) / 4
