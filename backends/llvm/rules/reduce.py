"""Reductions that need more than one accumulator or more than one pass.

``argmax``/``argmin`` carry (best value, its index); ``logsumexp`` takes the max,
then sums exp(x − max); ``l2_norm`` is a sum of squares and a square root;
``axis_size`` counts elements at run time. (``sum``, ``max``, ``min`` and ``prod``
are fused reductions in ``rules.elementwise``.)

The lane helpers here are shared with ``rules.nn`` (softmax and friends): an array
is read as *lanes*, the reduced axes moved last, each lane walked by ``lane_pass``.
When a lane is one flat run of memory (the reduced axes trail a contiguous array,
or the one reduced axis has stride 1) the pass is a single flat loop that LLVM
vectorizes; otherwise nested loops read through the strides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import llvmlite.ir as ir
import numpy as np

from graphc.backends.llvm import dtypes, loops
from graphc.backends.llvm.dtypes import I64, convert, is_float, is_signed
from graphc.backends.llvm.loops import View, for_range, loop_nest
from graphc.backends.llvm.rules import rule
from graphc.backends.llvm.rules.elementwise import FAST, elementwise, reduce_elementwise

#: ``body(builder, loaded values, accumulators, flat inner index)`` returns the value to
#: write (or ``None``) and the new accumulators
LaneBody = Callable[[ir.IRBuilder, list[ir.Value], list[ir.Value], ir.Value],
                    tuple[ir.Value | None, list[ir.Value]]]


# -- lanes --------------------------------------------------------------------------------------

def lanes(view: View, axes: Sequence[int]) -> tuple[View, bool]:
    """``view`` with ``axes`` moved last (kept axes first, in order), and whether each lane
    (the trailing ``len(axes)`` axes) is one flat run ``base + j`` of memory.

    Decide this on the caller's views, whose static shapes and strides are constants."""
    axes = tuple(axes)
    kept = [k for k in range(view.ndim) if k not in axes]
    order = kept + list(axes)
    moved = View(view.ptr, tuple(view.shape[k] for k in order),
                 tuple(view.strides[k] for k in order), view.dtype)
    trailing = axes == tuple(range(view.ndim - len(axes), view.ndim))
    flat = (view.contiguous and trailing) or _row_major(moved.shape[len(kept):],
                                                         moved.strides[len(kept):])
    return moved, flat


def _row_major(shape: Sequence[ir.Value], strides: Sequence[ir.Value]) -> bool:
    """Are constant ``strides`` row-major over ``shape`` (axes of size one aside)? A
    symbolic size is allowed on the outermost axis that is not of size one."""
    expected: int | None = 1
    for n, s in zip(reversed(shape), reversed(strides), strict=True):
        if loops.is_const(n, 1):
            continue
        if expected is None or not loops.is_const(s, expected):
            return False
        expected = n.constant if loops.is_const(n) else None
    return True


def kept_output(ctx, out: View, shape: Sequence, axes: Sequence[int]) -> View:
    """The contiguous output of a reduction over ``axes`` of an array of ``shape``, read as
    an array of the kept axes only (whatever ``keepdims`` was)."""
    kept = [d for k, d in enumerate(shape) if k not in axes]
    return loops.contiguous(ctx.builder, out.ptr, ctx.shape(kept), out.dtype)


def lane_pass(b: ir.IRBuilder, reads: Sequence[View], write: View | None,
              outer: Sequence[ir.Value], flat: bool, inits: Sequence[ir.Value],
              body: LaneBody) -> list[ir.Value]:
    """One pass over lane ``outer`` of every view in ``reads`` (and ``write``), all of the
    same lane shape; returns the final accumulators (started at ``inits``).

    ``flat``: every view's lanes are flat runs, so one flat loop covers them."""
    slots = [_entry_alloca(b, v.type) for v in inits]
    for slot, v in zip(slots, inits, strict=True):
        b.store(v, slot)
    views = [*reads, *([write] if write is not None else [])]
    inner = views[0].shape[len(outer):]
    zeros = [I64(0)] * len(inner)

    def step(values: list[ir.Value], j: ir.Value, store: Callable[[ir.Value], None]) -> None:
        accs = [b.load(s, typ=v.type) for s, v in zip(slots, inits, strict=True)]
        value, new = body(b, values, accs, j)
        for slot, v in zip(slots, new, strict=True):
            b.store(v, slot)
        if write is not None:
            store(value)

    if flat:
        bases = [v.offset(b, [*outer, *zeros]) for v in views]
        with for_range(b, loops.product(b, inner), name="j") as j:
            offsets = [b.add(base, j, flags=["nsw"]) for base in bases]
            values = [v.load_flat(b, o) for v, o in zip(reads, offsets, strict=False)]
            step(values, j, lambda value: write.store_flat(b, offsets[-1], value))
    else:
        counter = _entry_alloca(b, I64)
        b.store(I64(0), counter)
        with loop_nest(b, inner, name="r") as index:
            full = [*outer, *index]
            j = b.load(counter, typ=I64)
            values = [v.load(b, full) for v in reads]
            step(values, j, lambda value: write.store(b, full, value))
            b.store(b.add(j, I64(1), flags=["nsw"]), counter)
    return [b.load(s, typ=v.type) for s, v in zip(slots, inits, strict=True)]


def _entry_alloca(b: ir.IRBuilder, ty: ir.Type) -> ir.Value:
    with b.goto_entry_block():
        return b.alloca(ty)


def compute_dtype(dtype: str) -> str:
    """Float math runs in the input's float type; half in single, ints and bools in
    double (NumPy's result type for softmax and logsumexp of ints)."""
    if dtype == "float16":
        return "float32"
    return dtype if is_float(dtype) else "float64"


def sum_dtype(dtype: str) -> str:
    """float32 sums accumulate in float64 (as ``rules.elementwise`` does)."""
    return "float64" if dtype == "float32" else dtype


def transcendental(b: ir.IRBuilder, name: str, x: ir.Value) -> ir.Value:
    """``name(x)`` from the vector math library (vectorizes, unlike libm calls)."""
    from graphc.backends.llvm import vecmath

    return vecmath.call(b, name, [x])


def maximum(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """IEEE maximum: NaN propagates, as ``np.max``."""
    return dtypes.intrinsic(b, "llvm.maximum", x, y)


def is_finite(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    inf = ir.Constant(x.type, float("inf"))
    return b.fcmp_ordered("!=", dtypes.intrinsic(b, "llvm.fabs", x), inf)


# -- argmax, argmin -----------------------------------------------------------------------------

def extreme_identity(kind: str, dtype: str) -> ir.Constant:
    """The value no element loses to in a search for the max (min): ∓inf, or the integer
    type's bound."""
    if is_float(dtype):
        return dtypes.constant(dtype, float("-inf") if kind == "argmax" else float("inf"))
    if dtype == "bool":
        return dtypes.constant(dtype, kind != "argmax")
    info = np.iinfo(dtype)
    return dtypes.constant(dtype, int(info.min if kind == "argmax" else info.max))


def _extreme(b: ir.IRBuilder, kind: str, acc: ir.Value, x: ir.Value, dtype: str) -> ir.Value:
    """max (min) of two elements; NaN wins, as in ``np.max``."""
    if is_float(dtype):
        return dtypes.intrinsic(b, "llvm.maximum" if kind == "argmax" else "llvm.minimum",
                                acc, x)
    cmp = ">" if kind == "argmax" else "<"
    compare = b.icmp_signed if is_signed(dtype) else b.icmp_unsigned
    return b.select(compare(cmp, x, acc), x, acc)


def arg_fold(b: ir.IRBuilder, kind: str, src: View, outer: Sequence[ir.Value],
             flat: bool) -> ir.Value:
    """The flat inner index of the first max (min) of lane ``outer`` of ``src``, the lane's
    length for an empty lane.

    Two passes that both vectorize: the extreme e (NaN if the lane holds one), then the
    least j with x_j = e or x_j NaN (the first NaN when e is NaN; no NaN is there
    otherwise), as a min-reduction of ``j if match else n``."""
    dtype = src.dtype

    def extreme(kb, values, accs, j):
        return None, [_extreme(kb, kind, accs[0], values[0], dtype)]

    (peak,) = lane_pass(b, [src], None, outer, flat, [extreme_identity(kind, dtype)], extreme)
    n = loops.product(b, src.shape[len(outer):])

    def first(kb, values, accs, j):
        x = values[0]
        if is_float(dtype):
            match = kb.or_(kb.fcmp_ordered("==", x, peak), kb.fcmp_unordered("uno", x, x))
        else:
            match = kb.icmp_unsigned("==", x, peak)
        candidate = kb.select(match, j, n)
        return None, [kb.select(kb.icmp_signed("<", candidate, accs[0]), candidate, accs[0])]

    return lane_pass(b, [src], None, outer, flat, [n], first)[0]


@rule("argmax", "argmin")
def lower_arg_extremum(ctx, node, out: View, inputs: list[View]) -> None:
    x = node.inputs[0]
    kind = node.op.name
    axes = tuple(range(x.ndim)) if node.attr["axis"] is None else (node.attr["axis"],)
    src, flat = lanes(inputs[0], axes)
    dst = kept_output(ctx, out, x.shape, axes)
    n_outer = x.ndim - len(axes)
    static_empty = any(x.shape[a] == 0 for a in axes)
    check = static_empty or any(isinstance(x.shape[a], str) for a in axes)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        src, dst = local
        if check:
            size = loops.product(kb, src.shape[n_outer:])
            ctx.fail_if(kb, kb.icmp_signed("==", size, I64(0)),
                        f"attempt to get {kind} of an empty sequence")
        with loop_nest(kb, src.shape[:n_outer], name="o") as outer:
            dst.store(kb, outer, arg_fold(kb, kind, src, outer, flat))

    ctx.kernel(kind, [src, dst], emit, can_fail=check)


# -- logsumexp, l2_norm -------------------------------------------------------------------------

@rule("logsumexp")
def lower_logsumexp(ctx, node, out: View, inputs: list[View]) -> None:
    """out = m + log Σ exp(x − m), m the max (0 when it is not finite: all −inf or empty
    gives log 0 = −inf, NaN and +inf propagate), as the reference."""
    x = node.inputs[0]
    axes = node.attr["axis"]
    src, flat = lanes(inputs[0], axes)
    dst = kept_output(ctx, out, x.shape, axes)
    n_outer = x.ndim - len(axes)
    compute = compute_dtype(x.dtype)
    acc = sum_dtype(compute)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        src, dst = local
        with loop_nest(kb, src.shape[:n_outer], name="o") as outer:
            peak = lane_max(kb, src, outer, flat, compute)
            peak = kb.select(is_finite(kb, peak), peak, dtypes.constant(compute, 0))
            total = lane_sum_exp(kb, src, None, outer, flat, peak, compute, acc)
            log = transcendental(kb, "log", convert(kb, total, acc, compute))
            dst.store(kb, outer, convert(kb, kb.fadd(log, peak), compute, dst.dtype))

    ctx.kernel("logsumexp", [src, dst], emit)


def lane_max(b: ir.IRBuilder, src: View, outer: Sequence[ir.Value], flat: bool,
             compute: str) -> ir.Value:
    """max over lane ``outer`` of ``src`` (as ``compute``), from −inf; NaN propagates."""
    def body(kb, values, accs, j):
        return None, [maximum(kb, accs[0], convert(kb, values[0], src.dtype, compute))]

    return lane_pass(b, [src], None, outer, flat, [dtypes.constant(compute, float("-inf"))],
                     body)[0]


def lane_sum_exp(b: ir.IRBuilder, src: View, write: View | None, outer: Sequence[ir.Value],
                 flat: bool, peak: ir.Value, compute: str, acc: str) -> ir.Value:
    """Σ exp(x − peak) over lane ``outer`` (accumulated as ``acc``), also writing each
    exp(x − peak) to ``write`` when given. A float16 ``write`` sums the values as
    written (rounded to half), as the reference sums its float16 array."""
    def body(kb, values, accs, j):
        e = transcendental(kb, "exp", kb.fsub(convert(kb, values[0], src.dtype, compute), peak))
        stored = convert(kb, e, compute, write.dtype) if write is not None else None
        if write is not None and write.dtype == "float16":
            e = convert(kb, stored, "float16", compute)
        return stored, [kb.fadd(accs[0], convert(kb, e, compute, acc), flags=FAST)]

    return lane_pass(b, [src], write, outer, flat, [dtypes.constant(acc, 0)], body)[0]


@rule("l2_norm")
def lower_l2_norm(ctx, node, out: View, inputs: list[View]) -> None:
    """sqrt(Σ x²): the fused sum of squares, then the square root in place."""
    x = node.inputs[0]
    dtype = node.dtype

    def square(b, values):
        v = convert(b, values[0][0], values[0][1], dtype)
        return b.fmul(v, v), dtype

    reduce_elementwise(ctx, "l2_norm", out, inputs, square, x.shape, "sum", node.attr["axis"])
    elementwise(ctx, "sqrt", out, [out],
                lambda b, values: (dtypes.intrinsic(b, "llvm.sqrt", values[0][0]), dtype))


# -- axis_size ----------------------------------------------------------------------------------

@rule("axis_size")
def lower_axis_size(ctx, node, out: View, inputs: list[View]) -> None:
    """The run-time product of the input's dims over ``axis``, as ``dtype``."""
    x = node.inputs[0]
    sizes = [ctx.dim(x.shape[a]) for a in node.attr["axis"]]

    def emit(kb: ir.IRBuilder, local: list[View], scalars: list[ir.Value]) -> None:
        (dst,) = local
        count = loops.product(kb, scalars)
        dst.store_flat(kb, I64(0), convert(kb, count, "int64", dst.dtype))

    ctx.kernel("axis_size", [out], emit, scalars=sizes)
