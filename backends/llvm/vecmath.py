"""Vector-friendly math functions emitted as LLVM IR.

``llvm.exp``, ``llvm.sin``... become scalar libm calls inside vectorized loops. The functions
here are straight-line arithmetic instead (``fmuladd``, bit casts, integer ops on the bit
pattern, ``select``, ``fabs``/``rint``/``floor``/``copysign``), with no calls and no branches,
so after inlining the loop vectorizer widens a loop that calls them. Special values follow
NumPy: ±inf, NaN, ±0, subnormal inputs and outputs.

``call(builder, name, args)`` defines ``graphc.<name>.f32`` / ``.f64`` once per module
(internal, ``alwaysinline``) and calls it. The polynomial coefficients in ``COEFFS`` come from
``vecmath_fit.py`` (near-minimax fits against mpmath). Errors below are what the tests verify
(``MAX_ULP``) over dense random samples of the whole range, against float64 (for float32)
or 80-bit long double / mpmath (for float64) references:

========  ===================================================================  =====  =====
function  method                                                               f32    f64
========  ===================================================================  =====  =====
exp       n = rint(x/ln2), r = x - n ln2 (Cody-Waite), 1 + r + r^2 q(r),      1      1
          times 2^n as two exact powers of two (gradual underflow is exact)
expm1     same reduction, 2^n (expm1(r) + 1 - 2^-n), 1 - 2^-n + r exactly     1.5    1.5
log       x = 2^k m, m in [sqrt(1/2), sqrt(2)), s = f/(2+f) with f = m - 1,   1      1
          log(m) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + z P(z)), z = s^2
log1p     log of u = 1 + x plus the rounding error of u divided by u          1      1
tanh      expm1(2|x|) / (expm1(2|x|) + 2), sign of x                          3      3
sigmoid   exp(-|x|) / (1 + exp(-|x|)) for x < 0, 1 / (1 + exp(-|x|)) else     3      3
          (a leaner exp: no extra-precise tail, 2^n from the rounding's bits)
erf       x + x P(x^2) for |x| < 1, else 1 - exp(-x^2) R(|x|), R fitted to    2      2
          erfc(x) exp(x^2) (one piece in f32, three selected pieces in f64)
pow       exp(y log|x|): f32 in float64 arithmetic; f64 with log in           1      1
          double-double (Dekker products) and exp of a double-double
atan      |x| reduced to |u| <= tan(pi/8): u = |x|, (|x|-1)/(|x|+1) or -1/|x|,   1      1
          atan|x| = base + u + u^3 P(u^2), base 0, pi/4 or pi/2 (two parts);
          float32 in float64 arithmetic
sin/cos   n = rint(x 2/pi), r = x - n pi/2 in float64 with pi/2 in four       1    1.5/2
          parts (Cody-Waite), sin or cos polynomial on [-pi/4, pi/4];
          float32 entirely in float64 arithmetic
========  ===================================================================  =====  =====

sigmoid is computed in the stable form, so for x < -88 (float32) it returns the true small
(subnormal) values where ``1/(1+np.exp(-x))`` returns 0. sin/cos meet their bound for
``|x| <= SINCOS_LIMIT`` (2^26 pi/2, about 1.05e8). Beyond it the reduction is no longer exact:
the absolute error grows like ``|x| 2^-52`` (below 1e-3 up to 2^40), results stay finite
and in [-1, 1], and for |x| past 2^53 they carry no information. A Payne-Hanek reduction
would fix that at a table lookup (a gather) per element.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal, getcontext
from fractions import Fraction

import llvmlite.ir as ir

FUNCTIONS: tuple[str, ...] = ("exp", "log", "log1p", "expm1", "tanh", "sigmoid", "erf", "pow",
                              "sin", "cos", "atan")

# The maximum error (ulps of the true result) the tests verify; see the module docstring.
MAX_ULP: dict[tuple[str, str], float] = {
    ("exp", "f32"): 1, ("exp", "f64"): 1,
    ("expm1", "f32"): 1.5, ("expm1", "f64"): 1.5,
    ("log", "f32"): 1, ("log", "f64"): 1,
    ("log1p", "f32"): 1, ("log1p", "f64"): 1,
    ("tanh", "f32"): 3, ("tanh", "f64"): 3,
    ("sigmoid", "f32"): 3, ("sigmoid", "f64"): 3,
    ("erf", "f32"): 2, ("erf", "f64"): 2,
    ("pow", "f32"): 1, ("pow", "f64"): 1,
    ("sin", "f32"): 1, ("sin", "f64"): 1.5,
    ("cos", "f32"): 1, ("cos", "f64"): 2,
    ("atan", "f32"): 1, ("atan", "f64"): 1,
}

# Exact constants from their decimal expansions, split into parts where a product with a
# small integer n must be exact (Cody-Waite): then x - n*hi loses nothing.
getcontext().prec = 60
_PI = Fraction(Decimal("3.14159265358979323846264338327950288419716939937510582097494459"))
_LN2 = Fraction(Decimal("0.693147180559945309417232121458176568075500134360255254120680009"))


def _split(value: Fraction, bits: int, parts: int) -> tuple[float, ...]:
    """``value`` as a sum of floats, all but the last with at most ``bits`` significant bits."""
    out = []
    for _ in range(parts - 1):
        exponent = math.frexp(float(value))[1]
        hi = Fraction(round(value * 2 ** (bits - exponent)), 2 ** (bits - exponent))
        out.append(float(hi))
        value -= hi
    return (*out, float(value))


_LN2_PARTS = {"f32": _split(_LN2, 16, 2), "f64": _split(_LN2, 32, 2)}  # n < 2^8 / 2^21
_TWO_THIRDS = _split(Fraction(2, 3), 53, 2)
_PIO2_PARTS = _split(_PI / 2, 27, 4)  # float64; n * part exact for n < 2^26
SINCOS_LIMIT = 2.0**26 * math.pi / 2
ERF_SPLIT = 1.0  # erf uses x P(x^2) below this, the erfc form above
ERF_PIECES = {"f32": (1.0, 3.93), "f64": (1.0, 1.6, 2.7, 5.95)}  # erf rounds to 1 beyond

# Generated by vecmath_fit.py: polynomial coefficients, lowest degree first.
COEFFS: dict[tuple[str, str], tuple[float, ...]] = {
    # degree 4 on [-0.347574, 0.347574], max relative error 1.70e-08 = 0.286 units of roundoff
    ("expm1", "f32"): (
        0.4999999701976776, 0.16666541993618011, 0.04166720435023308, 0.00836670957505703,
        0.0013882480561733246,
    ),
    # degree 9 on [-0.347574, 0.347574], max relative error 2.60e-17 = 0.235 units of roundoff
    ("expm1", "f64"): (
        0.5000000000000006, 0.16666666666666588, 0.0416666666665747, 0.008333333333390777,
        0.001388888893229123, 0.00019841269717052202, 2.480150434611611e-05,
        2.7557408425439356e-06, 2.7626425359328436e-07, 2.5053821828710648e-08,
    ),
    # degree 2 on [0, 0.0297316], max relative error 1.14e-09 = 0.019 units of roundoff
    ("log", "f32"): (
        0.6666678190231323, 0.3997710943222046, 0.2988443970680237,
    ),
    # degree 6 on [0, 0.0297316], max relative error 1.98e-18 = 0.018 units of roundoff
    ("log", "f64"): (
        0.666666666666674, 0.39999999999379693, 0.2857142875092988, 0.22222197624670675,
        0.18183617102189797, 0.15312616729391743, 0.14811085338845162,
    ),
    # degree 8 on [0, 0.0297316], max relative error 8.59e-21 = 0.000 units of roundoff
    ("logpow", "f64"): (
        0.4, 0.2857142857142836, 0.22222222222295465, 0.1818181816848307, 0.15384616823135674,
        0.13333236631234188, 0.11768796240462132, 0.10420755334071556, 0.11029157796254085,
    ),
    # degree 5 on [0, 1], max relative error 5.34e-08 = 0.896 units of roundoff
    ("erf", "f32"): (
        0.12837912142276764, -0.37612324953079224, 0.11280180513858795, -0.026711314916610718,
        0.004917551763355732, -0.0005631413660012186,
    ),
    # degree 11 on [0, 1], max relative error 3.62e-17 = 0.326 units of roundoff
    ("erf", "f64"): (
        0.12837916709551256, -0.3761263890318352, 0.11283791670944188, -0.026866170643111836,
        0.005223977606120523, -0.0008548325929382317, 0.00012055293578282117,
        -1.492471231919745e-05, 1.6447131692920778e-06, -1.6206314130184418e-07,
        1.3710979999061825e-08, -7.779464577622598e-10,
    ),
    # degree 3 on [0, 0.618422], max relative error 3.66e-09 = 0.061 units of roundoff
    ("sin", "f32"): (
        -0.1666666716337204, 0.008333329111337662, -0.00019839302694890648, 2.7180246888747206e-06,
    ),
    # degree 5 on [0, 0.618422], max relative error 7.08e-18 = 0.064 units of roundoff
    ("sin", "f64"): (
        -0.1666666666666663, 0.008333333333321973, -0.00019841269829468387, 2.7557313577927304e-06,
        -2.505074074733109e-08, 1.5895811902079206e-10,
    ),
    # degree 3 on [0, 0.618422], max relative error 7.00e-10 = 0.012 units of roundoff
    ("cos", "f32"): (
        0.0416666679084301, -0.0013888883404433727, 2.4799448510748334e-05,
        -2.7204839625483146e-07,
    ),
    # degree 5 on [0, 0.618422], max relative error 1.71e-18 = 0.015 units of roundoff
    ("cos", "f64"): (
        0.041666666666666595, -0.0013888888888872848, 2.4801587288718113e-05,
        -2.755731413975613e-07, 2.087569534337428e-09, -1.1358245640936085e-11,
    ),
    # degree 8 on [-1.465, 1.465], max relative error 4.08e-09 = 0.068 units of roundoff
    ("erfc0", "f32"): (
        0.21344050765037537, -0.07611648738384247, 0.025783933699131012, -0.008468281477689743,
        0.002425474813207984, -0.0007618615054525435, 0.0005041493568569422, 0.0002019793464569375,
        0.00010819903400260955,
    ),
    # degree 13 on [-0.3, 0.3], max relative error 6.11e-18 = 0.055 units of roundoff
    ("erfc0", "f64"): (
        0.3576426690860903, -0.19850822747167782, 0.09958197337290747, -0.04603444139123598,
        0.01986859978248068, -0.008082104672405612, 0.003120621212116401, -0.0011500847695152306,
        0.00040637856679847013, -0.00013817849997638416, 4.533533083959738e-05,
        -1.438314241809167e-05, 4.557323887754718e-06, -1.420618724787612e-06,
    ),
    # degree 13 on [-0.55, 0.55], max relative error 4.75e-18 = 0.043 units of roundoff
    ("erfc1", "f64"): (
        0.24026721104205964, -0.09523015961466233, 0.03552236787063513, -0.012571379127552545,
        0.004246951369402192, -0.0013761735099231248, 0.00042939281511728976,
        -0.00012942201738953417, 3.778382929282528e-05, -1.0711954162536643e-05,
        2.9491503465452306e-06, -7.818935057991013e-07, 2.1878028980048303e-07,
        -6.752828477638978e-08,
    ),
    # degree 13 on [-1.625, 1.625], max relative error 4.09e-20 = 0.000 units of roundoff
    ("erfc2", "f64"): (
        0.127209503509933, -0.028016961783903557, 0.006036143625937521, -0.0012737599411888167,
        0.00026356982232916625, -5.352000661521895e-05, 1.070126437935736e-05,
        -2.0852459352307655e-06, 3.870630337449066e-07, -1.1542014639138204e-07,
        -2.0995493747807936e-08, -2.1165615409471415e-08, -5.040334761039681e-09,
        -8.768382455966682e-10,
    ),
    # degree 10 on [0, 0.0295], max relative error 2.06e-18 = 0.019 units of roundoff
    ("atan", "f64"): (
        -0.3333333333333319, 0.19999999999952375, -0.14285714280074618, 0.11111110777372746,
        -0.09090897582984513, 0.0769205711049, -0.0666306877911002, 0.05847632592719123,
        -0.05038146867197078, 0.03803510015387224, -0.01787488723150308,
    ),
}


class _Format:
    """The bit layout of float or double."""

    def __init__(self, dtype: str, bits: int, mant: int, bias: int, pack: str) -> None:
        self.dtype, self.bits, self.mant, self.bias, self.pack = dtype, bits, mant, bias, pack

    def to_bits(self, value: float) -> int:
        """The IEEE bit pattern of ``value`` rounded to this format."""
        return int.from_bytes(struct.pack("<" + self.pack, value), "little")


_FORMATS = {"f32": _Format("f32", 32, 23, 127, "f"), "f64": _Format("f64", 64, 52, 1023, "d")}


class _Emit:
    """Scalar arithmetic in one float type, appended at the builder's position."""

    def __init__(self, builder: ir.IRBuilder, ty: ir.Type) -> None:
        self.b = builder
        self.ty = ty
        self.fmt = _FORMATS["f64" if isinstance(ty, ir.DoubleType) else "f32"]
        self.ity = ir.IntType(self.fmt.bits)

    def coeffs(self, name: str) -> tuple[float, ...]:
        return COEFFS[name, self.fmt.dtype]

    # constants and arithmetic
    def c(self, value: float) -> ir.Constant:
        return ir.Constant(self.ty, value)

    def ic(self, value: int) -> ir.Constant:
        return ir.Constant(self.ity, value)

    def add(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fadd(a, b)

    def sub(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fsub(a, b)

    def mul(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fmul(a, b)

    def div(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fdiv(a, b)

    def intrinsic(self, name: str, *args: ir.Value) -> ir.Value:
        fnty = ir.FunctionType(self.ty, [self.ty] * len(args))
        return self.b.call(self.b.module.declare_intrinsic(name, [self.ty], fnty), args)

    def fma(self, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
        """a*b + c, fused where the target has FMA (nothing here needs it fused)."""
        return self.intrinsic("llvm.fmuladd", a, b, c)

    def poly(self, u: ir.Value, coeffs: Sequence[float | ir.Value]) -> ir.Value:
        """Horner's rule, coefficients lowest degree first."""
        def const(c: float | ir.Value) -> ir.Value:
            return self.c(c) if isinstance(c, float) else c
        result = const(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            result = self.fma(result, u, const(c))
        return result

    def abs(self, a: ir.Value) -> ir.Value:
        return self.intrinsic("llvm.fabs", a)

    def rint(self, a: ir.Value) -> ir.Value:
        return self.intrinsic("llvm.rint", a)

    def floor(self, a: ir.Value) -> ir.Value:
        return self.intrinsic("llvm.floor", a)

    def copysign(self, a: ir.Value, sign: ir.Value) -> ir.Value:
        return self.intrinsic("llvm.copysign", a, sign)

    # comparisons and selection (ordered: false when either side is NaN)
    def lt(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fcmp_ordered("<", a, b)

    def ge(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fcmp_ordered(">=", a, b)

    def eq(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fcmp_ordered("==", a, b)

    def isnan(self, a: ir.Value) -> ir.Value:
        return self.b.fcmp_unordered("uno", a, a)

    def sel(self, cond: ir.Value, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.select(cond, a, b)

    def min(self, a: ir.Value, b: ir.Value) -> ir.Value:
        """a < b ? a : b, one vminps (NaN in ``a`` gives ``b``)."""
        return self.sel(self.lt(a, b), a, b)

    def max(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.sel(self.lt(b, a), a, b)

    # the bit pattern
    def bits(self, a: ir.Value) -> ir.Value:
        return self.b.bitcast(a, self.ity)

    def from_bits(self, i: ir.Value) -> ir.Value:
        return self.b.bitcast(i, self.ty)

    def pow2(self, kf: ir.Value) -> ir.Value:
        """2^k for an integral float k with a normal 2^k. Adding 1.5*2^mant puts k in the low
        mantissa bits; shifting k + bias into the exponent field drops everything above."""
        shifter = self.fmt.to_bits(1.5 * 2.0**self.fmt.mant)
        k_bits = self.b.add(self.bits(self.add(kf, self.c(1.5 * 2.0**self.fmt.mant))),
                            self.ic(self.fmt.bias - shifter))
        return self.from_bits(self.b.shl(k_bits, self.ic(self.fmt.mant)))

    def scale(self, p: ir.Value, nf: ir.Value) -> ir.Value:
        """p * 2^n for |n| up to twice the exponent range, as two exact powers of two, so the
        only rounding is the last product's (correct gradual underflow, overflow to inf)."""
        half = self.floor(self.mul(nf, self.c(0.5)))
        return self.mul(self.mul(p, self.pow2(half)), self.pow2(self.sub(nf, half)))

    # error-free transformations, for pow in double-double
    def fast_two_sum(self, a: ir.Value, b: ir.Value) -> tuple[ir.Value, ir.Value]:
        """s + e = a + b exactly, for |a| >= |b| (or a = 0)."""
        s = self.add(a, b)
        return s, self.sub(b, self.sub(s, a))

    def two_sum(self, a: ir.Value, b: ir.Value) -> tuple[ir.Value, ir.Value]:
        """Knuth: s + e = a + b exactly, for any a and b."""
        s = self.add(a, b)
        b_virtual = self.sub(s, a)
        a_virtual = self.sub(s, b_virtual)
        return s, self.add(self.sub(a, a_virtual), self.sub(b, b_virtual))

    def split(self, a: ir.Value) -> tuple[ir.Value, ir.Value]:
        """Veltkamp: a = hi + lo with 26-bit halves, so their products are exact."""
        t = self.mul(a, self.c(2.0**27 + 1))
        hi = self.sub(t, self.sub(t, a))
        return hi, self.sub(a, hi)

    def two_prod(self, a: ir.Value, b: ir.Value) -> tuple[ir.Value, ir.Value]:
        """Dekker: p + e = a*b exactly, without relying on a fused multiply-add."""
        p = self.mul(a, b)
        (ah, al), (bh, bl) = self.split(a), self.split(b)
        e = self.add(self.sub(self.mul(ah, bh), p), self.mul(ah, bl))
        e = self.add(self.add(e, self.mul(al, bh)), self.mul(al, bl))
        return p, e


# exp / expm1 ---------------------------------------------------------------------------------
# Thresholds (clamping there changes nothing): exp(hi) overflows, exp(lo) < half the smallest
# subnormal; below expm1's lo, expm1 rounds to -1.
_EXP_RANGE = {"f32": (-104.0, 89.0), "f64": (-746.0, 710.0)}
_EXPM1_LO = {"f32": -18.0, "f64": -38.0}


def _reduce_ln2(e: _Emit, x: ir.Value, x_lo: ir.Value | None = None) -> tuple[ir.Value, ...]:
    """n = rint(x/ln2) and x (+ x_lo) - n ln2 = r + r_lo with |r| <= ln2/2 (Cody-Waite:
    x - n ln2_hi is exact; r_lo keeps the rounding error of subtracting n ln2_lo)."""
    hi, lo = _LN2_PARTS[e.fmt.dtype]
    nf = e.rint(e.mul(x, e.c(1 / math.log(2))))
    x1 = e.fma(nf, e.c(-hi), x)
    n_lo = e.mul(nf, e.c(lo))
    r = e.sub(x1, n_lo)
    r_lo = e.sub(e.sub(x1, r), n_lo)
    if x_lo is None:
        return nf, r, r_lo
    return (nf, *e.two_sum(r, e.add(r_lo, x_lo)))  # renormalized: r_lo stays below ulp(r)


def _expm1_poly(e: _Emit, r: ir.Value, r_lo: ir.Value, c: ir.Value) -> ir.Value:
    """c + expm1(r + r_lo) = c + r + r^2 q(r) + r_lo (1 + r) on |r| <= ln2/2, with c + r
    taken exactly first (|c| >= |r| or c = 0), since it may cancel. q's relative error is
    below 0.3 units of roundoff (float32, degree 4) and 0.25 units (float64, degree 9)."""
    tail = e.fma(e.mul(r, r), e.poly(r, e.coeffs("expm1")), e.fma(r_lo, r, r_lo))
    hi, lo = e.fast_two_sum(c, r)
    return e.add(hi, e.add(lo, tail))


def _exp_core(e: _Emit, x: ir.Value, x_lo: ir.Value | None = None) -> ir.Value:
    """exp(x + x_lo) for any non-NaN x (NaN gives garbage, the caller selects)."""
    lo, hi = _EXP_RANGE[e.fmt.dtype]
    nf, r, r_lo = _reduce_ln2(e, e.max(e.min(x, e.c(hi)), e.c(lo)), x_lo)
    return e.scale(_expm1_poly(e, r, r_lo, e.c(1.0)), nf)


def _exp(e: _Emit, x: ir.Value) -> ir.Value:
    return e.sel(e.isnan(x), x, _exp_core(e, x))


def _expm1_core(e: _Emit, x: ir.Value) -> ir.Value:
    """expm1(x) for non-NaN x: with x = n ln2 + r, expm1(x) = 2^n (expm1(r) + (1 - 2^-n));
    1 - 2^-n is exact for the n where it matters (2^-n is capped where it no longer does)."""
    nf, r, r_lo = _reduce_ln2(e, e.max(e.min(x, e.c(_EXP_RANGE[e.fmt.dtype][1])),
                                       e.c(_EXPM1_LO[e.fmt.dtype])))
    one_minus = e.sub(e.c(1.0), e.pow2(e.b.fneg(e.min(nf, e.c(e.fmt.mant + 8.0)))))
    return e.scale(_expm1_poly(e, r, r_lo, one_minus), nf)


def _expm1(e: _Emit, x: ir.Value) -> ir.Value:
    # expm1 has the sign of x, which also gives expm1(-0) = -0
    return e.sel(e.isnan(x), x, e.copysign(_expm1_core(e, x), x))


def _tanh(e: _Emit, x: ir.Value) -> ir.Value:
    """tanh|x| = t / (t + 2), t = expm1(2|x|): no cancellation anywhere, and t = 2x exactly
    for tiny x. |x| is capped where tanh rounds to 1."""
    cap = 9.5 if e.fmt.dtype == "f32" else 19.5
    a = e.min(e.abs(x), e.c(cap))
    t = _expm1_core(e, e.add(a, a))
    y = e.div(t, e.add(t, e.c(2.0)))
    return e.sel(e.isnan(x), x, e.copysign(y, x))


# Below these, exp rounds to 0; above them 2^(n + mant + 1) is still normal (n = rint(x/ln2)).
_EXP_NONPOSITIVE_LO = {"f32": -104.0, "f64": -745.2}


def _exp_nonpositive(e: _Emit, a: ir.Value) -> tuple[ir.Value, float]:
    """e^a = s * scale for a <= 0, lean: the plain Cody-Waite reduction and
    2^n (1 + r (1 + r q(r))), within one ulp where _exp stays within 0.75. s = 2^(n + mant
    + 1) (1 + ...) stays normal and scale = 2^-(mant + 1); the caller folds scale into its
    own last step (sigmoid divides s by s + 1/scale), so a subnormal result rounds once
    (gradual underflow). A NaN stays NaN: the clamp keeps it, and so does every step after.

    k = a/ln2 + shifter rounds a/ln2 to the integer n, which lands in k's low mantissa
    bits. The shifter, 1.5*2^mant plus the bias of 2^(n + mant + 1), puts n + bias + mant
    + 1 there (between 1 and 2^(exponent bits) - 1 after the clamp, so the sign bit stays
    clear), and shifting k's bits left by mant makes them 2^(n + mant + 1): no integer add.

    Every operation here counts: a vector loop calling this (sigmoid, GELU) is bound by the
    throughput of the two FMA pipes, not by latency, so Horner's rule (one FMA a
    coefficient) beats Estrin's shorter but wider scheme, measured."""
    fmt = e.fmt
    shifter = 1.5 * 2.0**fmt.mant + fmt.bias + fmt.mant + 1
    hi, lo = _LN2_PARTS[fmt.dtype]
    a = e.max(e.c(_EXP_NONPOSITIVE_LO[fmt.dtype]), a)
    k = e.fma(a, e.c(1 / math.log(2)), e.c(shifter))
    nf = e.sub(k, e.c(shifter))
    r = e.fma(nf, e.c(-lo), e.fma(nf, e.c(-hi), a))
    expm1_r = e.mul(r, e.fma(r, e.poly(r, e.coeffs("expm1")), e.c(1.0)))
    power = e.from_bits(e.b.shl(e.bits(k), e.ic(fmt.mant)))
    # power (1 + expm1_r) in one rounding: the product with a power of two is exact
    return e.fma(expm1_r, power, power), 2.0 ** -(fmt.mant + 1)


def _sigmoid(e: _Emit, x: ir.Value) -> ir.Value:
    """1/(1 + e^-x) = e^x/(1 + e^x): with t = exp(-|x|) <= 1 nothing overflows, and for
    x < 0 the result keeps its relative accuracy down to the subnormals. x < 0 is read
    from the sign bit (on x86 the blend's own mask; -0 gives t = 1 either way).

    With t = s * scale, t/(1 + t) = s/(s + 1/scale) and 1/(1 + t) = (1/scale)/(s +
    1/scale): the same roundings (the sum's is scaled by a power of two, and a subnormal
    quotient still rounds once), one multiplication fewer."""
    s, scale = _exp_nonpositive(e, e.b.fneg(e.abs(x)))
    negative = e.b.icmp_signed("<", e.bits(x), e.ic(0))
    return e.div(e.sel(negative, s, e.c(1 / scale)), e.add(s, e.c(1 / scale)))


# log / log1p ---------------------------------------------------------------------------------
def _reduce_log(e: _Emit, x: ir.Value, subnormal: bool = True) -> tuple[ir.Value, ir.Value]:
    """x = 2^k (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), for finite x > 0: add the bits of
    1 - sqrt(1/2) so the exponent field reads k, then put the mantissa back on sqrt(1/2).
    Subnormal x are first scaled by 2^(mant+1)."""
    fmt = e.fmt
    if subnormal:
        tiny = e.lt(x, e.c(2.0 ** (1 - fmt.bias)))
        x = e.sel(tiny, e.mul(x, e.c(2.0 ** (fmt.mant + 1))), x)
    sqrt_half = fmt.to_bits(math.sqrt(0.5))
    u = e.b.add(e.bits(x), e.ic(fmt.to_bits(1.0) - sqrt_half))
    # k + bias is an integer below 2^mant: or-ed into 2^mant's mantissa it reads as a float
    biased = e.b.or_(e.b.lshr(u, e.ic(fmt.mant)), e.ic(fmt.to_bits(2.0**fmt.mant)))
    kf = e.sub(e.from_bits(biased), e.c(2.0**fmt.mant + fmt.bias))
    if subnormal:
        kf = e.sub(kf, e.sel(tiny, e.c(fmt.mant + 1.0), e.c(0.0)))
    m = e.from_bits(e.b.add(e.b.and_(u, e.ic(2**fmt.mant - 1)), e.ic(sqrt_half)))
    return kf, e.sub(m, e.c(1.0))  # m - 1 is exact (Sterbenz)


def _log_reduced(e: _Emit, kf: ir.Value, f: ir.Value, c: ir.Value | None = None) -> ir.Value:
    """k ln2 + log(1 + f) (+ c, a tiny correction). With s = f/(2+f), z = s^2:
    log(1+f) = 2 atanh(s) = f - hfsq + s (hfsq + z P(z)), hfsq = f^2/2, arranged as in fdlibm
    so the large terms are added last. |s| <= 0.1716; P's relative error is below 0.02
    units of roundoff (float32, degree 2; float64, degree 6)."""
    ln2_hi, ln2_lo = _LN2_PARTS[e.fmt.dtype]
    s = e.div(f, e.add(e.c(2.0), f))
    z = e.mul(s, s)
    hfsq = e.mul(e.c(0.5), e.mul(f, f))
    small = e.mul(kf, e.c(ln2_lo))
    if c is not None:
        small = e.add(small, c)
    t = e.fma(s, e.fma(z, e.poly(z, e.coeffs("log")), hfsq), small)
    return e.fma(kf, e.c(ln2_hi), e.sub(f, e.sub(hfsq, t)))


def _log_specials(e: _Emit, x: ir.Value, y: ir.Value, zero_at: float) -> ir.Value:
    """+inf -> +inf, zero_at -> -inf, below zero_at or NaN -> NaN."""
    y = e.sel(e.eq(x, e.c(math.inf)), x, y)
    y = e.sel(e.eq(x, e.c(zero_at)), e.c(-math.inf), y)
    return e.sel(e.b.fcmp_unordered("<", x, e.c(zero_at)), e.c(math.nan), y)


def _log(e: _Emit, x: ir.Value) -> ir.Value:
    return _log_specials(e, x, _log_reduced(e, *_reduce_log(e, x)), 0.0)


def _log1p(e: _Emit, x: ir.Value) -> ir.Value:
    """log(u) for u = fl(1 + x), plus c/u where c = (1 + x) - u is the rounding error of u
    (exactly: for x < 1, u - 1 and x - (u - 1) are exact by Sterbenz's lemma, for x >= 1
    u - x is)."""
    one = e.c(1.0)
    u = e.add(one, x)
    kf, f = _reduce_log(e, u, subnormal=False)  # u >= 2^-mant-1 is normal
    c = e.sel(e.lt(x, one), e.sub(x, e.sub(u, one)), e.sub(one, e.sub(u, x)))
    y = e.copysign(_log_reduced(e, kf, f, e.div(c, u)), x)  # log1p(±0) = ±0
    return _log_specials(e, x, y, -1.0)


# erf -----------------------------------------------------------------------------------------
def _erf(e: _Emit, x: ir.Value) -> ir.Value:
    """|x| < 1: x + x P(x^2) (P is small, so its rounding errors shrink). Above:
    erf = 1 - exp(-x^2) R(|x| - center), R fitted to erfc(x) exp(x^2) per piece, the
    piece's coefficients chosen with selects so there is one polynomial evaluation.
    Near-minimax errors (relative, of erf): below 0.9 units of roundoff in float32 (mostly
    from rounding P's coefficients) and 0.33 in float64."""
    dtype = e.fmt.dtype
    a = e.abs(x)
    small = e.fma(a, e.poly(e.mul(a, a), e.coeffs("erf")), a)
    edges = ERF_PIECES[dtype]
    ac = e.min(a, e.c(edges[-1]))  # erf rounds to 1 from edges[-1] on
    center: ir.Value = e.c((edges[0] + edges[1]) / 2)
    coeffs: list[ir.Value] = [e.c(c) for c in e.coeffs("erfc0")]
    for i in range(1, len(edges) - 1):
        inside = e.ge(ac, e.c(edges[i]))
        center = e.sel(inside, e.c((edges[i] + edges[i + 1]) / 2), center)
        coeffs = [e.sel(inside, e.c(new), old)
                  for new, old in zip(e.coeffs(f"erfc{i}"), coeffs, strict=True)]
    r = e.poly(e.sub(ac, center), coeffs)
    large = e.sub(e.c(1.0), e.mul(_exp_core(e, e.b.fneg(e.mul(ac, ac))), r))
    y = e.sel(e.lt(a, e.c(ERF_SPLIT)), small, large)
    return e.sel(e.isnan(x), x, e.copysign(y, x))


# pow -----------------------------------------------------------------------------------------
def _log_dd(e: _Emit, a: ir.Value) -> tuple[ir.Value, ir.Value]:
    """log(a) = hi + lo to about 2^-66 relative, for finite a > 0 (float64), since y log(a)
    may be 745 and must still be right to 2^-53. With k, f, s as in _log:
    log(a) = k ln2 + 2s + (2/3) s^3 + s^5 Q(s^2), where s = s_hi + s_lo and s^3 are carried
    as double-words (Dekker products) and the large terms are summed exactly. Q's relative
    error is below 1e-20 of log (degree 8)."""
    kf, f = _reduce_log(e, a)
    two = e.c(2.0)
    d = e.add(two, f)
    d_lo = e.sub(f, e.sub(d, two))  # 2 + f = d + d_lo exactly
    s = e.div(f, d)
    p, p_err = e.two_prod(s, d)
    s_lo = e.div(e.sub(e.sub(e.sub(f, p), p_err), e.mul(s, d_lo)), d)  # (f - s(d+d_lo))/d
    z, z_lo = e.two_prod(s, s)
    s3, s3_err = e.two_prod(z, s)
    s3_lo = e.add(s3_err, e.fma(s, z_lo, e.mul(e.mul(e.c(3.0), z), s_lo)))  # + 3 s^2 s_lo
    third_hi, third_lo = _TWO_THIRDS
    t, t_err = e.two_prod(s3, e.c(third_hi))
    t_lo = e.add(t_err, e.fma(s3, e.c(third_lo), e.mul(s3_lo, e.c(third_hi))))
    rest = e.mul(e.mul(s3, z), e.poly(z, COEFFS["logpow", "f64"]))
    ln2_hi, ln2_lo = _LN2_PARTS["f64"]
    hi, lo = e.fast_two_sum(e.mul(kf, e.c(ln2_hi)), e.add(s, s))  # |2s| < ln2
    hi, lo2 = e.fast_two_sum(hi, t)  # |t| < |2s| / 30
    small = e.add(e.fma(kf, e.c(ln2_lo), e.add(s_lo, s_lo)), e.add(t_lo, rest))
    return e.fast_two_sum(hi, e.add(e.add(lo, lo2), small))


def _pow_abs_f64(e: _Emit, ax: ir.Value, y: ir.Value) -> ir.Value:
    """|x|^y = exp(y log|x|) with y log|x| as a double-double, for float64."""
    hi, lo = _log_dd(e, ax)
    ok = e.b.and_(e.lt(e.c(0.0), ax), e.lt(ax, e.c(math.inf)))
    hi = e.sel(ok, hi, e.sel(e.eq(ax, e.c(0.0)), e.c(-math.inf), ax))  # log 0, log inf, NaN
    p, p_err = e.two_prod(y, hi)
    p_lo = e.fma(y, e.sel(ok, lo, e.c(0.0)), p_err)
    # past |p| = 1024 the result is 0 or inf anyway; p_lo is NaN where y*0 overflowed split()
    keep = e.b.and_(e.lt(e.abs(p), e.c(1024.0)), e.lt(e.abs(p_lo), e.c(math.inf)))
    p_lo = e.sel(keep, p_lo, e.c(0.0))
    return e.sel(e.isnan(p), p, _exp_core(e, p, p_lo))


def _pow_abs_f32(e: _Emit, ax: ir.Value, y: ir.Value) -> ir.Value:
    """|x|^y for float32 via float64: |y log x| < 150, so float64's log and exp leave an
    error near 2^-45 before the final rounding to float32."""
    d = _Emit(e.b, ir.DoubleType())
    ax64, y64 = e.b.fpext(ax, d.ty), e.b.fpext(y, d.ty)
    return e.b.fptrunc(_exp(d, d.mul(y64, _log(d, ax64))), e.ty)


def _pow(e: _Emit, x: ir.Value, y: ir.Value) -> ir.Value:
    """C99/NumPy pow: |x|^y (which already gives the 0, inf and NaN cases), negated for x
    with the sign bit set and odd integer y, NaN for finite x < 0 and non-integer y,
    1 for y = 0, x = 1, and x = -1 with y = ±inf."""
    ax = e.abs(x)
    r = (_pow_abs_f64 if e.fmt.dtype == "f64" else _pow_abs_f32)(e, ax, y)
    half = e.mul(y, e.c(0.5))
    integer = e.eq(e.floor(y), y)  # false for NaN, true for ±inf and |y| >= 2^mant
    odd = e.b.and_(integer, e.b.fcmp_ordered("!=", e.floor(half), half))
    negative = e.b.icmp_signed("<", e.bits(x), e.ic(0))
    r = e.sel(e.b.and_(negative, odd), e.b.fneg(r), r)
    finite_negative = e.b.and_(e.lt(x, e.c(0.0)), e.lt(e.c(-math.inf), x))
    r = e.sel(e.b.and_(finite_negative, e.b.not_(integer)), e.c(math.nan), r)
    one = e.c(1.0)
    unit = e.b.or_(e.eq(y, e.c(0.0)), e.eq(x, one))
    unit = e.b.or_(unit, e.b.and_(e.eq(x, e.c(-1.0)), e.eq(e.abs(y), e.c(math.inf))))
    return e.sel(unit, one, r)


# sin / cos -----------------------------------------------------------------------------------
def _sincos(e: _Emit, x: ir.Value, quadrant_offset: int) -> ir.Value:
    """Reduce |x| = n pi/2 + r + r_lo in float64 (four-part Cody-Waite: n times each of the
    first three parts is exact for n < 2^26, those subtractions cancel exactly, and r_lo
    keeps the last one's rounding error), then sin(|x|) or
    cos(|x|) is ±sin(r) or ±cos(r) by n mod 4: sin for even n + offset, minus for n + offset
    in {2, 3}. sin(r) = r + r^3 S(r^2), cos(r) = 1 - r^2/2 + r^4 C(r^2) on |r| <= pi/4,
    relative errors below 0.07 units of roundoff. float32 is evaluated in float64 too."""
    d = _Emit(e.b, ir.DoubleType())
    x64 = x if e.fmt.dtype == "f64" else e.b.fpext(x, d.ty)
    a = d.abs(x64)
    nf = d.rint(d.mul(a, d.c(float(2 / _PI))))
    p1, p2, p3, p4 = _PIO2_PARTS
    r2 = d.fma(nf, d.c(-p2), d.fma(nf, d.c(-p1), a))
    n_p3 = d.mul(nf, d.c(p3))
    r = d.sub(r2, n_p3)
    r_lo = d.fma(nf, d.c(-p4), d.sub(d.sub(r2, r), n_p3))  # r + r_lo: r's rounding error kept
    # past SINCOS_LIMIT r is not exact; keep r and r_lo where the polynomials are sane
    r = d.max(d.min(r, d.c(0.79)), d.c(-0.79))
    r_lo = d.max(d.min(r_lo, d.c(2.0**-50)), d.c(-(2.0**-50)))
    n = d.b.add(d.bits(d.add(nf, d.c(1.5 * 2.0**52))), d.ic(quadrant_offset))  # low bits: n
    z = d.mul(r, r)
    # sin(r + r_lo) = r + (r^3 S(r^2) + r_lo), cos(r + r_lo) = cos(r) - r r_lo
    sin_r = d.add(r, d.fma(d.mul(r, z), d.poly(z, COEFFS["sin", e.fmt.dtype]), r_lo))
    hz = d.mul(d.c(0.5), z)
    w = d.sub(d.c(1.0), hz)  # cos(r) = w + (rounding error of w + r^4 C), as in fdlibm
    w_err = d.fma(r, d.b.fneg(r_lo), d.sub(d.sub(d.c(1.0), w), hz))
    cos_r = d.add(w, d.fma(d.mul(z, z), d.poly(z, COEFFS["cos", e.fmt.dtype]), w_err))
    odd = d.b.icmp_unsigned("!=", d.b.and_(n, d.ic(1)), d.ic(0))
    sign = d.b.shl(d.b.and_(n, d.ic(2)), d.ic(62))  # bit 1 of n to the sign bit
    if quadrant_offset == 0:  # sin is odd: sin(x) = sign(x) sin|x|
        sign = d.b.xor(sign, d.b.and_(d.bits(x64), d.ic(1 << 63)))
    y = d.from_bits(d.b.xor(d.bits(d.sel(odd, cos_r, sin_r)), sign))
    y = d.sel(d.lt(a, d.c(math.inf)), y, d.c(math.nan))
    return y if e.fmt.dtype == "f64" else e.b.fptrunc(y, e.ty)


def _sin(e: _Emit, x: ir.Value) -> ir.Value:
    return _sincos(e, x, 0)


def _cos(e: _Emit, x: ir.Value) -> ir.Value:
    return _sincos(e, x, 1)  # cos(x) = sin(x + pi/2)


# atan ----------------------------------------------------------------------------------------
_TAN_PIO8 = math.tan(math.pi / 8)
_TAN_3PIO8 = math.tan(3 * math.pi / 8)
_PIO4_PARTS = _split(_PI / 4, 53, 2)
_PIO2_HALVES = _split(_PI / 2, 53, 2)


def _atan(e: _Emit, x: ir.Value) -> ir.Value:
    """atan|x| = base + atan(u) with u = n/d: u = |x| below tan(pi/8) (base 0),
    (|x|-1)/(|x|+1) below tan(3pi/8) (base pi/4; |x|-1 and |x|+1 are carried as
    double-words n + n_lo, d + d_lo), else -1/|x| (base pi/2, which also takes inf and
    NaN). The division's rounding error u_lo = (n + n_lo - u(d + d_lo))/d comes from a
    Dekker product, and enters times atan'(u) ~ 1 - u^2. atan(u) = u + u^3 P(u^2) on
    |u| <= tan(pi/8), P's relative error below 0.02 units of roundoff (degree 10);
    base + u is summed exactly, the small terms last. float32 is evaluated in float64
    too; the sign is x's (atan(-0) = -0)."""
    d = _Emit(e.b, ir.DoubleType())
    x64 = x if e.fmt.dtype == "f64" else e.b.fpext(x, d.ty)
    a = d.abs(x64)
    one, zero = d.c(1.0), d.c(0.0)
    small = d.b.fcmp_ordered("<=", a, d.c(_TAN_PIO8))
    middle = d.b.fcmp_ordered("<=", a, d.c(_TAN_3PIO8))

    def pick(first: ir.Value, second: ir.Value, third: ir.Value) -> ir.Value:
        return d.sel(small, first, d.sel(middle, second, third))

    plus_one, plus_one_lo = d.two_sum(a, one)
    minus_one, minus_one_lo = d.two_sum(a, d.c(-1.0))  # inexact below |x| = 1/2
    num = pick(a, minus_one, d.c(-1.0))
    num_lo = pick(zero, minus_one_lo, zero)
    den = pick(one, plus_one, a)
    den_lo = pick(zero, plus_one_lo, zero)
    u = d.div(num, den)
    p, p_err = d.two_prod(u, den)
    residual = d.sub(d.add(d.sub(d.sub(num, p), p_err), num_lo), d.mul(u, den_lo))
    u_lo = d.div(residual, den)
    u_lo = d.sel(d.lt(a, d.c(2.0**900)), u_lo, zero)  # huge |x|: split() would overflow
    base_hi = pick(zero, d.c(_PIO4_PARTS[0]), d.c(_PIO2_HALVES[0]))
    base_lo = pick(zero, d.c(_PIO4_PARTS[1]), d.c(_PIO2_HALVES[1]))
    z = d.mul(u, u)
    small_terms = d.add(base_lo, d.fma(u_lo, d.sub(one, z), zero))
    tail = d.fma(d.mul(u, z), d.poly(z, COEFFS["atan", "f64"]), small_terms)
    hi, lo = d.fast_two_sum(base_hi, u)
    y = d.copysign(d.add(hi, d.add(lo, tail)), x64)
    return y if e.fmt.dtype == "f64" else e.b.fptrunc(y, e.ty)


_EMITTERS: dict[str, Callable[..., ir.Value]] = {
    "exp": _exp, "log": _log, "log1p": _log1p, "expm1": _expm1, "tanh": _tanh,
    "sigmoid": _sigmoid, "erf": _erf, "pow": _pow, "sin": _sin, "cos": _cos, "atan": _atan,
}


def function(module: ir.Module, name: str, ty: ir.Type) -> ir.Function:
    """The internal, always-inlined function ``graphc.<name>.<f32|f64>`` of ``module``,
    defined on first use."""
    if name not in _EMITTERS:
        raise ValueError(f"unknown vecmath function {name!r}; known: {', '.join(FUNCTIONS)}")
    if not isinstance(ty, ir.FloatType | ir.DoubleType):
        raise TypeError(f"vecmath.{name} takes float or double, not {ty}")
    symbol = f"graphc.{name}.{'f64' if isinstance(ty, ir.DoubleType) else 'f32'}"
    if symbol in module.globals:
        return module.globals[symbol]
    arity = 2 if name == "pow" else 1
    fn = ir.Function(module, ir.FunctionType(ty, [ty] * arity), symbol)
    fn.linkage = "internal"
    for attribute in ("alwaysinline", "nounwind", "readnone"):
        fn.attributes.add(attribute)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    builder.ret(_EMITTERS[name](_Emit(builder, ty), *fn.args))
    return fn


def call(builder: ir.IRBuilder, name: str, args: Sequence[ir.Value]) -> ir.Value:
    """Emit ``name(*args)`` (float or double scalars, the type of ``args[0]``)."""
    fn = function(builder.module, name, args[0].type)
    if len(args) != len(fn.args):
        raise TypeError(f"vecmath.{name} takes {len(fn.args)} argument(s), got {len(args)}")
    return builder.call(fn, args)
