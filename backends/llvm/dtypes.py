"""NumPy dtypes as LLVM types, and NumPy's conversions between them.

Booleans are stored as one byte (0 or 1, as NumPy stores them) and computed
with as ``i1``. Integers are signed or unsigned by dtype; LLVM's integer types
carry no sign, so every operation that depends on it (compare, divide, widen,
convert) asks ``is_signed``.
"""

from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()

_STORAGE: dict[str, ir.Type] = {
    "bool": I8, "int8": I8, "uint8": I8, "int16": ir.IntType(16), "uint16": ir.IntType(16),
    "int32": I32, "uint32": I32, "int64": I64, "uint64": I64,
    "float16": ir.HalfType(), "float32": ir.FloatType(), "float64": ir.DoubleType(),
}


def storage_type(dtype: str) -> ir.Type:
    """The type an element of ``dtype`` has in memory."""
    return _STORAGE[dtype]


def value_type(dtype: str) -> ir.Type:
    """The type an element of ``dtype`` has in registers (``i1`` for bool)."""
    return I1 if dtype == "bool" else _STORAGE[dtype]


def itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def is_float(dtype: str) -> bool:
    return np.dtype(dtype).kind == "f"


def is_signed(dtype: str) -> bool:
    return np.dtype(dtype).kind == "i"


def constant(dtype: str, value: float | int | bool) -> ir.Constant:
    """``value`` as an IR constant of ``dtype``'s register type."""
    if dtype == "bool":
        return ir.Constant(I1, int(bool(value)))
    if is_float(dtype):
        return ir.Constant(value_type(dtype), float(value))
    return ir.Constant(value_type(dtype), int(value))


def to_register(b: ir.IRBuilder, value: ir.Value, dtype: str) -> ir.Value:
    """A loaded element in its register type (a stored bool byte becomes ``i1``)."""
    return b.icmp_unsigned("!=", value, I8(0)) if dtype == "bool" else value


def to_storage(b: ir.IRBuilder, value: ir.Value, dtype: str) -> ir.Value:
    """A register value in its memory type (``i1`` becomes a 0/1 byte)."""
    return b.zext(value, I8) if dtype == "bool" else value


def convert(b: ir.IRBuilder, value: ir.Value, src: str, dst: str) -> ir.Value:
    """NumPy's ``astype`` on one register value.

    Float to int truncates toward zero and saturates (NaN gives 0), where LLVM's plain
    ``fptosi`` would give poison: NumPy leaves out-of-range conversions undefined, and
    native code must stay defined whatever the data.
    """
    if src == dst:
        return value
    tgt = value_type(dst)
    if dst == "bool":
        if is_float(src):
            return b.fcmp_unordered("!=", value, ir.Constant(value.type, 0.0))
        return b.icmp_unsigned("!=", value, ir.Constant(value.type, 0))
    if src == "bool":
        return b.uitofp(value, tgt) if is_float(dst) else b.zext(value, tgt)
    if dst == "float16" and src in ("float64", *_WIDE_INTS):
        return _to_half(b, value if src == "float64" else convert(b, value, src, "float64"))
    if is_float(src) and is_float(dst):
        widen = itemsize(dst) > itemsize(src)
        return b.fpext(value, tgt) if widen else b.fptrunc(value, tgt)
    if is_float(src):
        name = "llvm.fptosi.sat" if is_signed(dst) else "llvm.fptoui.sat"
        fn = b.module.declare_intrinsic(name, [tgt, value.type],
                                        ir.FunctionType(tgt, [value.type]))
        return b.call(fn, [value])
    if is_float(dst):
        return b.sitofp(value, tgt) if is_signed(src) else b.uitofp(value, tgt)
    if itemsize(dst) > itemsize(src):
        return b.sext(value, tgt) if is_signed(src) else b.zext(value, tgt)
    if itemsize(dst) < itemsize(src):
        return b.trunc(value, tgt)
    return value  # same width, other signedness: the same bits


#: integers whose conversion to half LLVM would lower to a libcall
_WIDE_INTS = ("int32", "int64", "uint32", "uint64")


def _to_half(b: ir.IRBuilder, d: ir.Value) -> ir.Value:
    """double → half, correctly rounded, with no libcall.

    LLVM lowers ``fptrunc double to half`` to ``__truncdfhf2``, which the JIT resolves to
    a libgcc symbol of another ABI (a crash). Rounding twice, double → float → half, can
    err on ties, so the first step rounds to odd: truncate toward zero and set the last
    bit if anything was lost. float keeps 13 more bits than half, so the final
    round-to-nearest-even then sees the exact tie information.
    """
    f32 = ir.FloatType()
    f = b.fptrunc(d, f32)  # round to nearest
    back = b.fpext(f, d.type)
    inexact = b.fcmp_ordered("!=", back, d)
    away = b.fcmp_ordered(">", intrinsic(b, "llvm.fabs", back), intrinsic(b, "llvm.fabs", d))
    bits = b.bitcast(f, ir.IntType(32))
    bits = b.select(away, b.sub(bits, ir.Constant(bits.type, 1)), bits)  # toward zero
    bits = b.select(inexact, b.or_(bits, ir.Constant(bits.type, 1)), bits)  # sticky bit
    return b.fptrunc(b.bitcast(bits, f32), ir.HalfType())


def intrinsic(b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    """Call the LLVM intrinsic ``name`` overloaded on its first argument's type, returning
    that type (``llvm.fabs``, ``llvm.maximum``, ``llvm.fmuladd``, ...)."""
    ty = args[0].type
    fn = b.module.declare_intrinsic(name, [ty], ir.FunctionType(ty, [a.type for a in args]))
    return b.call(fn, list(args))
