"""uniform_like, normal_like and bernoulli_like from a counter-based generator.

Native code cannot replay NumPy's ``default_rng`` streams, so draws come from
Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
element ``i`` of call ``n`` of a node is the block

    philox((i mod 2³², i div 2³², n mod 2³², n div 2³²), stream_key(key, salt))

where ``salt`` numbers the random nodes sharing one key in a compiled function (so two
draws with one key are independent, as two draws from one NumPy generator are). A
per-node call counter, a private global of the module bumped atomically at each call,
makes every call draw fresh numbers; a fresh compile starts again at call 0, so the
sequence is reproducible from the key. Each element is a pure function of its
position, so the loop vectorizes.

Uniforms take the top 24 (float32) or 53 (float64) bits of the block; normals are
Box–Muller, sqrt(−2 log(1 − u₁)) · cos(2π u₂); a Bernoulli draw is ``word < p · 2³²``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import llvmlite.ir as ir

from graphc.backends.llvm import dtypes
from graphc.backends.llvm.dtypes import I32, I64, convert
from graphc.backends.llvm.loops import View, for_range
from graphc.backends.llvm.rules import rule
from graphc.backends.llvm.rules.reduce import transcendental

MASK64 = (1 << 64) - 1
PHILOX_M = (0xD2511F53, 0xCD9E8D57)  # the round multipliers
PHILOX_W = (0x9E3779B9, 0xBB67AE85)  # the key schedule's increments (golden ratio, √3 − 1)
ROUNDS = 10

#: ``draw(builder, the block's four i32 words)`` returns one element in its register type
Draw = Callable[[ir.IRBuilder, list[ir.Value]], ir.Value]


def splitmix64(x: int) -> int:
    """SplitMix64's finalizer (Steele et al., 2014): a bijective 64-bit mix."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream_key(key: int, salt: int = 0) -> tuple[int, int]:
    """The Philox key (two 32-bit words) of the ``salt``-th draw with ``key`` in a module."""
    mixed = splitmix64((key + salt * 0x9E3779B97F4A7C15) & MASK64)
    return mixed & 0xFFFFFFFF, mixed >> 32


def philox(b: ir.IRBuilder, counter: list[ir.Value], key: tuple[int, int]) -> list[ir.Value]:
    """Philox4x32-10 of four i32 counter words under a constant key."""
    c = list(counter)
    k0, k1 = key
    for r in range(ROUNDS):
        if r:
            k0, k1 = (k0 + PHILOX_W[0]) & 0xFFFFFFFF, (k1 + PHILOX_W[1]) & 0xFFFFFFFF
        hi0, lo0 = _mulhilo(b, PHILOX_M[0], c[0])
        hi1, lo1 = _mulhilo(b, PHILOX_M[1], c[2])
        c = [b.xor(b.xor(hi1, c[1]), I32(k0)), lo1, b.xor(b.xor(hi0, c[3]), I32(k1)), lo0]
    return c


def _mulhilo(b: ir.IRBuilder, m: int, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """The high and low 32-bit halves of the 64-bit product m · x."""
    product = b.mul(b.zext(x, I64), I64(m))
    return b.trunc(b.lshr(product, I64(32)), I32), b.trunc(product, I32)


def unit_uniform(b: ir.IRBuilder, words: list[ir.Value], dtype: str) -> ir.Value:
    """A uniform in [0, 1) of ``dtype`` (float32: 24 bits of ``words[0]``; float64: 53 bits
    of ``words[0:2]``), exact: k · 2⁻²⁴ or k · 2⁻⁵³."""
    ty = dtypes.value_type(dtype)
    if dtype == "float32":
        bits = b.lshr(words[0], I32(8))
        return b.fmul(b.uitofp(bits, ty), ir.Constant(ty, 2.0 ** -24))
    high = b.shl(b.zext(words[0], I64), I64(21))
    bits = b.or_(high, b.zext(b.lshr(words[1], I32(11)), I64))
    return b.fmul(b.sitofp(bits, ty), ir.Constant(ty, 2.0 ** -53))


def _compute(dtype: str) -> str:
    return "float32" if dtype in ("float16", "float32") else "float64"


def _uniform_draw(low: float, high: float, dtype: str) -> Draw:
    compute = _compute(dtype)

    def draw(b, words):
        u = unit_uniform(b, words, compute)
        span = dtypes.constant(compute, high - low)
        value = b.fadd(dtypes.constant(compute, low), b.fmul(span, u))
        return convert(b, value, compute, dtype)
    return draw


def _normal_draw(mean: float, std: float, dtype: str) -> Draw:
    compute = _compute(dtype)

    def draw(b, words):
        u1 = unit_uniform(b, words[:2], compute)
        u2 = unit_uniform(b, words[2:], compute)
        one = dtypes.constant(compute, 1.0)
        log = transcendental(b, "log", b.fsub(one, u1))  # 1 − u₁ ∈ (0, 1]: log is finite
        radius_sq = dtypes.intrinsic(b, "llvm.maxnum", b.fmul(dtypes.constant(compute, -2.0),
                                                               log), dtypes.constant(compute, 0))
        radius = dtypes.intrinsic(b, "llvm.sqrt", radius_sq)
        angle = b.fmul(dtypes.constant(compute, 2 * math.pi), u2)
        z = b.fmul(radius, transcendental(b, "cos", angle))
        value = b.fadd(dtypes.constant(compute, mean), b.fmul(dtypes.constant(compute, std), z))
        return convert(b, value, compute, dtype)
    return draw


def _bernoulli_draw(p: float, dtype: str) -> Draw:
    threshold = min(round(p * 2.0 ** 32), 1 << 32)  # P(word < threshold) = threshold / 2³²

    def draw(b, words):
        hit = b.icmp_unsigned("<", b.zext(words[0], I64), I64(threshold))
        return convert(b, hit, "bool", dtype)
    return draw


def _lower_random(ctx, node, out: View, draw: Draw) -> None:
    """Fill ``out`` (contiguous) with ``draw`` of element i's Philox block, for this call."""
    module = ctx.module
    key = node.attr["key"] & MASK64
    salt = 0
    while f"graphc.rng.{key}.{salt}" in module.globals:
        salt += 1
    calls = ir.GlobalVariable(module, I64, f"graphc.rng.{key}.{salt}")
    calls.linkage = "internal"
    calls.initializer = I64(0)
    call = ctx.builder.atomic_rmw("add", calls, I64(1), "monotonic")
    stream = stream_key(key, salt)

    def emit(kb: ir.IRBuilder, local: list[View], scalars: list[ir.Value]) -> None:
        (dst,), (n,) = local, scalars
        call_words = [kb.trunc(n, I32), kb.trunc(kb.lshr(n, I64(32)), I32)]
        with for_range(kb, dst.size(kb)) as i:
            index_words = [kb.trunc(i, I32), kb.trunc(kb.lshr(i, I64(32)), I32)]
            words = philox(kb, [*index_words, *call_words], stream)
            dst.store_flat(kb, i, draw(kb, words))

    ctx.kernel(node.op.name, [out], emit, scalars=[call])


@rule("uniform_like")
def lower_uniform_like(ctx, node, out: View, inputs: list[View]) -> None:
    a = node.attr
    _lower_random(ctx, node, out, _uniform_draw(a["low"], a["high"], node.dtype))


@rule("normal_like")
def lower_normal_like(ctx, node, out: View, inputs: list[View]) -> None:
    a = node.attr
    _lower_random(ctx, node, out, _normal_draw(a["mean"], a["std"], node.dtype))


@rule("bernoulli_like")
def lower_bernoulli_like(ctx, node, out: View, inputs: list[View]) -> None:
    _lower_random(ctx, node, out, _bernoulli_draw(node.attr["p"], node.dtype))
