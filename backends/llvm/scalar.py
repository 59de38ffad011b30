"""Scalar-IR programs (the meaning of every elementwise op) as LLVM IR.

A fused kernel's body is a ``graphc.ops.scalar.Program``. Each instruction is
typed the way NumPy would type it on arrays of the inputs' dtypes (found by
running the program once on one-element arrays), its operands converted to that
type, and emitted as straight-line IR: transcendental functions come from
``vecmath``, so a loop around the body vectorizes.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Mapping

import llvmlite.ir as ir
import numpy as np

from graphc.backends.llvm import dtypes
from graphc.backends.llvm.dtypes import convert, is_float, is_signed
from graphc.ops.scalar import NUMPY_PRIMITIVES, Arg, Program

Typed = tuple[ir.Value, str]  # an IR value and its NumPy dtype

TRANSCENDENTAL = ("exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "erf", "atan",
                   "sigmoid")
_COMPARE = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=",
            "equal": "==", "not_equal": "!="}


@functools.lru_cache(maxsize=4096)
def instruction_dtypes(program: Program, inputs: tuple[tuple[str, str], ...],
                       params: tuple[tuple[str, float], ...], compute: str) -> tuple[str, ...]:
    """The dtype of each instruction's result, as NumPy computes it for inputs of these
    dtypes (numbers take ``compute`` when it is a float type, as in ``Program.evaluate``)."""
    arrays = {name: np.zeros(1, dtype) for name, dtype in inputs}
    numbers = dict(params)

    def operand(arg) -> np.ndarray:  # bare numbers and params are typed as in a program
        if isinstance(arg, str) and arg in arrays:
            return arrays[arg]
        number = numbers[arg] if isinstance(arg, str) else arg
        return np.zeros(1, constant_dtype(number, compute))

    types = []
    with np.errstate(all="ignore"):
        for dest, op, args in program.instrs:
            arrays[dest] = np.asarray(NUMPY_PRIMITIVES[op](*map(operand, args)))
            types.append(arrays[dest].dtype.name)
    return tuple(types)


def constant_dtype(value: float | int, compute: str) -> str:
    """The dtype a bare number (a constant or an attribute param) takes in a program:
    ``compute`` when it is a float type, else NumPy's own."""
    if np.dtype(compute).kind == "f":
        return compute
    return np.asarray(value).dtype.name


def emit_program(b: ir.IRBuilder, program: Program, inputs: Mapping[str, Typed],
                 params: Mapping[str, float], compute: str) -> Typed:
    """Emit ``program`` on typed ``inputs`` and numeric attribute ``params``."""
    types = instruction_dtypes(program, tuple(sorted((k, t) for k, (_, t) in inputs.items())),
                               tuple(sorted(params.items())), compute)
    values: dict[str, Typed] = dict(inputs)

    def read(arg) -> Typed:
        if isinstance(arg, str) and arg in values:
            return values[arg]
        number = params[arg] if isinstance(arg, str) else arg
        dtype = constant_dtype(number, compute)
        return dtypes.constant(dtype, number), dtype

    affine = _affine_pairs(program, types, set(inputs))
    fused_products = {mul for mul, _ in affine.values()}
    for (dest, op, args), dtype in zip(program.instrs, types, strict=True):
        if dest in fused_products:
            continue  # computed inside the FMA of the one instruction that reads it
        if dest in affine:
            mul, (k, y) = affine[dest]
            c = next(a for a in args if a != mul)
            k_value, y_value, c_value = (convert(b, *read(a), dtype) for a in (k, y, c))
            if op == "sub" and args[1] == mul:  # c - k*y = (-k)*y + c, exactly
                k_value = b.fneg(k_value)
            elif op == "sub":  # k*y - c = k*y + (-c), exactly
                c_value = b.fneg(c_value)
            values[dest] = (_intrinsic(b, "llvm.fmuladd", k_value, y_value, c_value), dtype)
            continue
        values[dest] = (emit_primitive(b, op, [read(a) for a in args], dtype), dtype)
    return read(program.result)


def _affine_pairs(program: Program, types: tuple[str, ...],
                  inputs: set[str]) -> dict[str, tuple[str, tuple[Arg, str]]]:
    """The additions to fuse with a product into one FMA: ``c ± k*y`` with numbers c and
    k, whose product is read nowhere else, in float32 or float64. Maps the addition's
    dest to (the product's dest, (k, y)).

    Only constant terms are fused. The sum then differs from NumPy's two roundings by at
    most one rounding of the product, and is never less accurate. A sum of two products,
    or ``a - k*y`` where a may equal k*y, is left alone, so that two paths NumPy computes
    alike, and that cancel there, cancel here too."""
    names = inputs | {dest for dest, _, _ in program.instrs}
    dtype_of = {dest: dtype for (dest, _, _), dtype in zip(program.instrs, types, strict=True)}
    uses = Counter(a for _, _, args in program.instrs for a in args if a in names)
    uses[program.result] += 1
    products = {}
    for dest, op, args in program.instrs:
        variables = [a for a in args if isinstance(a, str) and a in names]
        if (op == "mul" and len(args) == 2 and len(variables) == 1 and uses[dest] == 1
                and dtype_of[dest] in ("float32", "float64")):
            products[dest] = (next(a for a in args if a not in variables), variables[0])
    pairs = {}
    for dest, op, args in program.instrs:
        if op not in ("add", "sub") or len(args) != 2:
            continue
        mul = next((a for a in args if a in products), None)
        constant = [a for a in args if not (isinstance(a, str) and a in names)]
        if mul is not None and len(constant) == 1 and dtype_of[dest] == dtype_of[mul]:
            pairs[dest] = (mul, products[mul])
    return pairs


def emit_primitive(b: ir.IRBuilder, op: str, args: list[Typed], dtype: str) -> ir.Value:
    """One scalar primitive with result dtype ``dtype``."""
    if op in _COMPARE:
        common = np.result_type(*(a[1] for a in args)).name
        x, y = (convert(b, v, t, common) for v, t in args)
        return _compare(b, _COMPARE[op], x, y, common)
    if op.startswith("logical_"):
        bits = [convert(b, v, t, "bool") for v, t in args]
        if op == "logical_not":
            return b.not_(bits[0])
        return {"logical_and": b.and_, "logical_or": b.or_, "logical_xor": b.xor}[op](*bits)
    if op == "where":
        cond = convert(b, args[0][0], args[0][1], "bool")
        x, y = (convert(b, v, t, dtype) for v, t in args[1:])
        return b.select(cond, x, y)
    if dtype == "float16":  # NumPy computes half precision in single and rounds each result
        wide = emit_primitive(b, op, [(convert(b, v, t, "float32"), "float32")
                                      for v, t in args], "float32")
        return convert(b, wide, "float32", "float16")
    operands = [convert(b, v, t, dtype) for v, t in args]
    return _ARITHMETIC[op](b, operands, dtype)


def _compare(b: ir.IRBuilder, cmp: str, x: ir.Value, y: ir.Value, dtype: str) -> ir.Value:
    if is_float(dtype):  # NaN compares false, except !=
        return b.fcmp_unordered(cmp, x, y) if cmp == "!=" else b.fcmp_ordered(cmp, x, y)
    if dtype == "bool" or not is_signed(dtype):
        return b.icmp_unsigned(cmp, x, y)
    return b.icmp_signed(cmp, x, y)


def _intrinsic(b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    return dtypes.intrinsic(b, name, *args)


def _float_op(fast: Callable, name: str) -> Callable:
    def emit(b: ir.IRBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        if not is_float(dtype):
            raise TypeError(f"{name} of {dtype}")
        return fast(b, xs)
    return emit


def _binary(float_op: str, int_op: str) -> Callable:
    def emit(b: ir.IRBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        if is_float(dtype):
            return getattr(b, float_op)(*xs)
        if dtype == "bool":  # NumPy: True + True is True (or), True * False is False (and)
            return (b.or_ if int_op == "add" else b.and_)(*xs)
        return getattr(b, int_op)(*xs)
    return emit


def _neg(b, xs, dtype):
    return b.fneg(xs[0]) if is_float(dtype) else b.neg(xs[0])


def _abs(b, xs, dtype):
    if is_float(dtype):
        return _intrinsic(b, "llvm.fabs", xs[0])
    if not is_signed(dtype):
        return xs[0]
    return b.select(b.icmp_signed("<", xs[0], ir.Constant(xs[0].type, 0)), b.neg(xs[0]), xs[0])


def _sign(b, xs, dtype):
    x = xs[0]
    zero, one = ir.Constant(x.type, 0), ir.Constant(x.type, 1)
    minus = ir.Constant(x.type, -1)
    if is_float(dtype):  # sign(±0) and sign(NaN) are x itself
        zero, one, minus = (ir.Constant(x.type, v) for v in (0.0, 1.0, -1.0))
        pos, neg = b.fcmp_ordered(">", x, zero), b.fcmp_ordered("<", x, zero)
        return b.select(pos, one, b.select(neg, minus, x))
    if not is_signed(dtype):
        return b.select(b.icmp_unsigned(">", x, zero), one, zero)
    return b.select(b.icmp_signed(">", x, zero), one,
                    b.select(b.icmp_signed("<", x, zero), minus, zero))


def _extremum(kind: str) -> Callable:
    def emit(b, xs, dtype):
        x, y = xs
        if is_float(dtype):  # NumPy's maximum propagates NaN: IEEE 754-2019 maximum
            return _intrinsic(b, f"llvm.{kind}imum", x, y)
        cmp = ">" if kind == "max" else "<"
        compare = b.icmp_signed if is_signed(dtype) else b.icmp_unsigned
        return b.select(compare(cmp, x, y), x, y)
    return emit


def _floor(b, xs, dtype):
    return _intrinsic(b, "llvm.floor", xs[0]) if is_float(dtype) else xs[0]


def _square(b, xs, dtype):
    return b.fmul(xs[0], xs[0]) if is_float(dtype) else b.mul(xs[0], xs[0])


def _reciprocal(b, xs, dtype):
    return b.fdiv(ir.Constant(xs[0].type, 1.0), xs[0])


def _pow(b, xs, dtype):
    if is_float(dtype):
        from graphc.backends.llvm import vecmath

        # NumPy's x ** 0.5 with a scalar exponent (as graph constants reach it) is sqrt:
        # −0 at −0 and nan at −inf, where C's pow gives +0 and +inf
        x, y = xs
        half = b.fcmp_ordered("==", y, ir.Constant(y.type, 0.5))
        return b.select(half, _intrinsic(b, "llvm.sqrt", x), vecmath.call(b, "pow", xs))
    return _int_pow(b, xs[0], xs[1], dtype)


def _int_pow(b: ir.IRBuilder, x: ir.Value, y: ir.Value, dtype: str) -> ir.Value:
    """Integer power by squaring (wrapping like NumPy). A negative exponent gives 0, and the
    kernel fails, as NumPy raises, when it registered ``b.graphc_checks``."""
    fn = _int_pow_function(b.module, x.type, is_signed(dtype))
    checks = getattr(b, "graphc_checks", None)
    if checks is not None and is_signed(dtype):
        checks.append((b.icmp_signed("<", y, ir.Constant(y.type, 0)),
                       "ValueError: Integers to negative integer powers are not allowed."))
    return b.call(fn, [x, y])


def _int_pow_function(module: ir.Module, ty: ir.IntType, signed: bool) -> ir.Function:
    name = f"graphc.ipow.{'s' if signed else 'u'}{ty.width}"
    if name in module.globals:
        return module.globals[name]
    fn = ir.Function(module, ir.FunctionType(ty, [ty, ty]), name)
    fn.linkage = "internal"
    base, exponent = fn.args
    entry, loop, done = (fn.append_basic_block(n) for n in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    negative = b.icmp_signed("<", exponent, ir.Constant(ty, 0)) if signed else ir.Constant(
        dtypes.I1, 0)
    early = b.select(negative, ir.Constant(ty, 0), ir.Constant(ty, 1))  # x**0 = 1, x**-k = 0
    b.cbranch(b.or_(negative, b.icmp_unsigned("==", exponent, ir.Constant(ty, 0))), done, loop)
    b.position_at_end(loop)
    acc, sq, e = b.phi(ty), b.phi(ty), b.phi(ty)
    acc.add_incoming(ir.Constant(ty, 1), entry)
    sq.add_incoming(base, entry)
    e.add_incoming(exponent, entry)
    odd = b.trunc(e, dtypes.I1)
    acc2 = b.select(odd, b.mul(acc, sq), acc)
    e2 = b.lshr(e, ir.Constant(ty, 1))
    sq2 = b.mul(sq, sq)
    acc.add_incoming(acc2, loop)
    sq.add_incoming(sq2, loop)
    e.add_incoming(e2, loop)
    b.cbranch(b.icmp_unsigned("==", e2, ir.Constant(ty, 0)), done, loop)
    b.position_at_end(done)
    result = b.phi(ty)
    result.add_incoming(early, entry)
    result.add_incoming(acc2, loop)
    b.ret(result)
    return fn


def _transcendental(name: str) -> Callable:
    def emit(b, xs, dtype):
        if not is_float(dtype):
            raise TypeError(f"{name} of {dtype}")
        from graphc.backends.llvm import vecmath

        return vecmath.call(b, name, xs)
    return emit


def _divide(b, xs, dtype):
    if is_float(dtype):
        return b.fdiv(*xs)
    raise TypeError(f"true division with an integer result type {dtype}")


def _round(b, xs, dtype):
    """Half to even (np.round); integers are already whole."""
    return _intrinsic(b, "llvm.roundeven", xs[0]) if is_float(dtype) else xs[0]


def _safe_divisor(b: ir.IRBuilder, y: ir.Value, dtype: str) -> ir.Value:
    """``y`` with 0 (and −1 for signed types, where MIN/−1 overflows) replaced by 1, so an
    integer division never traps; callers select NumPy's result for those divisors."""
    zero, one = ir.Constant(y.type, 0), ir.Constant(y.type, 1)
    bad = b.icmp_unsigned("==", y, zero)
    if is_signed(dtype):
        bad = b.or_(bad, b.icmp_signed("==", y, ir.Constant(y.type, -1)))
    return b.select(bad, one, y)


def _int_remainder(b: ir.IRBuilder, x: ir.Value, y: ir.Value, dtype: str) -> ir.Value:
    """C's x % y for integers; 0 for y = 0 (NumPy) and y = −1."""
    rem = b.srem if is_signed(dtype) else b.urem
    return rem(x, _safe_divisor(b, y, dtype))


def _fmod(b, xs, dtype):
    """C fmod: the sign of x (``frem`` is exactly fmod)."""
    if is_float(dtype):
        return b.frem(*xs)
    return _int_remainder(b, *xs, dtype)


def _mod(b, xs, dtype):
    """Floor modulo, as NumPy: r = fmod(x, y), plus y where r and y differ in sign;
    a zero float result takes y's sign, y = 0 gives NaN (floats) or 0 (integers)."""
    x, y = xs
    if is_float(dtype):
        zero = ir.Constant(x.type, 0.0)
        r = b.frem(x, y)
        flip = b.and_(b.fcmp_ordered("!=", r, zero),
                      b.xor(b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", r, zero)))
        r = b.select(flip, b.fadd(r, y), r)
        r = b.select(b.fcmp_ordered("==", r, zero), _intrinsic(b, "llvm.copysign", zero, y), r)
        return r
    r = _int_remainder(b, x, y, dtype)
    if not is_signed(dtype):
        return r
    zero = ir.Constant(x.type, 0)
    flip = b.and_(b.icmp_signed("!=", r, zero),
                  b.xor(b.icmp_signed("<", y, zero), b.icmp_signed("<", r, zero)))
    return b.select(flip, b.add(r, y), r)


def _trunc_div(b, xs, dtype):
    """C integer division toward zero; x/0 is 0 (NumPy), x/−1 is −x (wrapping)."""
    x, y = xs
    if is_float(dtype) or dtype == "bool":
        raise TypeError(f"trunc_div of {dtype}")
    div = b.sdiv if is_signed(dtype) else b.udiv
    q = div(x, _safe_divisor(b, y, dtype))
    if is_signed(dtype):
        q = b.select(b.icmp_signed("==", y, ir.Constant(y.type, -1)), b.neg(x), q)
    return b.select(b.icmp_unsigned("==", y, ir.Constant(y.type, 0)), ir.Constant(x.type, 0), q)


def _bitwise(name: str) -> Callable:
    def emit(b, xs, dtype):
        if is_float(dtype):
            raise TypeError(f"{name} of {dtype}")
        return getattr(b, name)(*xs)
    return emit


def _bitwise_not(b, xs, dtype):
    if is_float(dtype):
        raise TypeError(f"bitwise_not of {dtype}")
    return b.not_(xs[0])


def _shift(left: bool) -> Callable:
    """NumPy's shifts: a count of the width or more (unsigned compare, so negative counts
    too) gives 0, or −1 for a negative signed value shifted right; LLVM would give poison."""
    def emit(b, xs, dtype):
        if is_float(dtype) or dtype == "bool":
            raise TypeError(f"shift of {dtype}")
        x, n = xs
        width = ir.Constant(x.type, x.type.width)
        inside = b.icmp_unsigned("<", n, width)
        zero = ir.Constant(x.type, 0)
        if left:
            return b.select(inside, b.shl(x, n), zero)
        if not is_signed(dtype):
            return b.select(inside, b.lshr(x, n), zero)
        return b.ashr(x, b.select(inside, n, ir.Constant(x.type, x.type.width - 1)))
    return emit


_ARITHMETIC: dict[str, Callable[[ir.IRBuilder, list[ir.Value], str], ir.Value]] = {
    "add": _binary("fadd", "add"), "sub": _binary("fsub", "sub"),
    "mul": _binary("fmul", "mul"), "div": _divide, "pow": _pow, "neg": _neg, "abs": _abs,
    "sign": _sign, "floor": _floor, "square": _square, "reciprocal": _reciprocal,
    "sqrt": _float_op(lambda b, xs: _intrinsic(b, "llvm.sqrt", xs[0]), "sqrt"),
    "maximum": _extremum("max"), "minimum": _extremum("min"),
    "round": _round, "fmod": _fmod, "mod": _mod, "trunc_div": _trunc_div,
    "bitwise_and": _bitwise("and_"), "bitwise_or": _bitwise("or_"),
    "bitwise_xor": _bitwise("xor"), "bitwise_not": _bitwise_not,
    "left_shift": _shift(left=True), "right_shift": _shift(left=False),
    **{name: _transcendental(name) for name in TRANSCENDENTAL},
}
