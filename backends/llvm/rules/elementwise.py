"""Elementwise ops, fused kernels and the reductions that end them.

Every elementwise op is a scalar program (``graphc.ops.scalar``); a fused kernel
is one program over several inputs. Both become one loop:

* the contiguous fast path: output and inputs are row-major arrays of the
  iteration shape (or scalars), so one flat loop covers them and vectorizes;
* the general path: nested loops, each input read through its strides (0 along
  broadcast axes), the innermost axis vectorized when its strides allow.

A reduction after the body (``sum``, ``max``, ``min``, ``prod``) either keeps one
accumulator per output element while it runs over trailing reduced axes (float32
sums and products accumulate in float64, so 10^7-element sums stay accurate) or,
for other axes, accumulates into the output as it sweeps the input in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import llvmlite.ir as ir

from graphc.backends.llvm import dtypes, loops, stream
from graphc.backends.llvm.dtypes import I64, convert, is_float, is_signed
from graphc.backends.llvm.loops import View, for_range, loop_nest
from graphc.backends.llvm.rules import rule, view_rule
from graphc.backends.llvm.scalar import TRANSCENDENTAL, Typed, emit_program
from graphc.ops.elementwise import ELEMENTWISE
from graphc.ops.fused import input_name

Body = Callable[[ir.IRBuilder, list[Typed]], Typed]
FAST = ("reassoc", "nsz", "arcp", "contract")  # what a vectorized reduction may reorder
#: vector iterations the flat loop runs side by side. LLVM's cost model picks 1 for a body as
#: long as exp, tanh or σ, whose one long dependency chain then fills the out-of-order window
#: alone; 4 chains at once run them 15-25% faster on Zen 3 (1-thread, in cache and from
#: memory), and cost a cheap body like x*2+1 nothing (measured: benchmarks/llvm.py GELU).
INTERLEAVE = 4
#: a reduction's kept innermost axis shorter than this (a float32 vector) leaves its outer
#: loops to the vectorizer too
NARROW = 8


def broadcast(b: ir.IRBuilder, view: View, shape: Sequence[ir.Value],
              static_shape: Sequence) -> View:
    """``view`` read as an array of ``shape`` (NumPy broadcasting: missing leading axes
    and axes of size one get stride 0)."""
    lead = len(shape) - view.ndim
    strides = [I64(0)] * lead
    for k, (size, stride) in enumerate(zip(view.shape, view.strides, strict=True)):
        broadcast_axis = loops.is_const(size, 1) and static_shape[lead + k] != 1
        strides.append(I64(0) if broadcast_axis else stride)
    same = lead == 0 and all(_same_size(n, m) for n, m in zip(view.shape, shape, strict=True))
    return View(view.ptr, tuple(shape), tuple(strides), view.dtype,
                contiguous=view.contiguous and same)


def _same_size(a: ir.Value, b: ir.Value) -> bool:
    """Are two sizes known equal when compiling (one IR value, or equal constants)?"""
    return a is b or loops.is_const(a) and loops.is_const(b) and a.constant == b.constant


def is_scalar(view: View) -> bool:
    return all(loops.is_const(s, 0) or loops.is_const(n, 1)
               for s, n in zip(view.strides, view.shape, strict=True))


def elementwise(ctx, name: str, out: View, inputs: Sequence[View], body: Body,
                shape: Sequence | None = None, can_fail: bool = False,
                memory_bound: bool = True) -> None:
    """Write ``body`` of the inputs (broadcast to ``shape``, default ``out``'s) into ``out``.

    A ``memory_bound`` body (no transcendental function) streams a large output past the
    cache (``stream``); for a body bound by computing, like GELU's, the block copy that
    streaming needs costs more than it saves (measured 3-7% slower on 2^24 floats).

    A body that ``can_fail`` (an integer power, whose negative exponents NumPy refuses)
    registers its conditions on the builder (``scalar.checked``); the loop then stops the
    entry with this node's failure when one holds, and runs on one thread."""
    static = tuple(shape) if shape is not None else tuple(ctx.node.shape)
    b = ctx.builder
    iteration = ctx.shape(static)
    views = [broadcast(b, v, iteration, static) for v in inputs]

    dst = View(out.ptr, iteration, out.strides, out.dtype, out.contiguous)
    if can_fail:
        def checked(kb: ir.IRBuilder, local: list[View], _: list) -> None:
            dst, srcs = local[0], local[1:]
            kb.graphc_checks = []
            with loop_nest(kb, dst.shape) as index:
                values = [v.load(kb, index) for v in srcs]
                dst.store(kb, index, _result(kb, body, srcs, values, dst.dtype))
                for cond, message in kb.graphc_checks:
                    ctx.fail_if(kb, cond, message)

        ctx.kernel(name, [dst, *views], checked, can_fail=True)
        return
    if dst.contiguous and all(v.contiguous or is_scalar(v) for v in views):
        # one flat loop over [start, stop), split across threads when large
        streamed = memory_bound and stream.applies(b.module, dst, iteration)

        def flat(kb: ir.IRBuilder, local: list[View], bounds: list) -> None:
            dst, srcs = local[0], local[1:]

            def value(kb: ir.IRBuilder, i: ir.Value) -> ir.Value:
                values = [v.load_flat(kb, I64(0) if is_scalar(v) and not v.contiguous else i)
                          for v in srcs]
                return _result(kb, body, srcs, values, dst.dtype)

            if streamed:  # an output too large to stay in cache goes straight to memory
                stream.store_range(kb, dst, bounds[0], bounds[1], value, INTERLEAVE)
                return
            with for_range(kb, bounds[1], start=bounds[0], interleave=INTERLEAVE) as i:
                dst.store_flat(kb, i, value(kb, i))

        ctx.kernel(name, [dst, *views], flat, parallel=loops.product(b, iteration))
        return

    def nested(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, srcs = local[0], local[1:]
        with loop_nest(kb, dst.shape) as index:
            values = [v.load(kb, index) for v in srcs]
            dst.store(kb, index, _result(kb, body, srcs, values, dst.dtype))

    ctx.kernel(name, [dst, *views], nested)


def _result(b: ir.IRBuilder, body: Body, srcs: list[View], values: list[ir.Value],
            dtype: str) -> ir.Value:
    value, got = body(b, [(v, s.dtype) for v, s in zip(values, srcs, strict=True)])
    return convert(b, value, got, dtype)


# -- reductions -------------------------------------------------------------------------------

_IDENTITY = {"sum": 0, "prod": 1}


def accumulator_dtype(kind: str, dtype: str) -> str:
    """float32 (and half) sums and products accumulate in float64."""
    return "float64" if kind in ("sum", "prod") and dtype in ("float16", "float32") else dtype


def combine(b: ir.IRBuilder, kind: str, acc: ir.Value, value: ir.Value, dtype: str) -> ir.Value:
    """``acc (+|*|max|min) value`` for one step of a reduction."""
    if is_float(dtype):
        if kind == "sum":
            return b.fadd(acc, value, flags=FAST)
        if kind == "prod":
            return b.fmul(acc, value, flags=FAST)
        return dtypes.intrinsic(b, f"llvm.{kind}imum", acc, value)  # NaN propagates, as np.max
    if dtype == "bool":
        return (b.or_ if kind in ("sum", "max") else b.and_)(acc, value)
    if kind == "sum":
        return b.add(acc, value)
    if kind == "prod":
        return b.mul(acc, value)
    compare = b.icmp_signed if is_signed(dtype) else b.icmp_unsigned
    return b.select(compare(">" if kind == "max" else "<", value, acc), value, acc)


def reduce_elementwise(ctx, name: str, out: View, inputs: Sequence[View], body: Body,
                       shape: Sequence, kind: str, axes: Sequence[int]) -> None:
    """``out = kind(body(inputs) over axes)``, the body iterated over ``shape``."""
    b = ctx.builder
    static = tuple(shape)
    iteration = ctx.shape(static)
    views = [broadcast(b, v, iteration, static) for v in inputs]
    axes = tuple(axes)
    kept = [k for k in range(len(static)) if k not in axes]
    # the output, read as an array of the iteration shape with stride 0 on reduced axes
    out_strides = list(loops.contiguous_strides(b, [iteration[k] for k in kept]))
    acc_strides = tuple(I64(0) if k in axes else out_strides[kept.index(k)]
                        for k in range(len(static)))
    dtype = out.dtype
    trailing = axes == tuple(range(len(static) - len(axes), len(static)))
    if kind in ("max", "min") and axes:
        empty = [static[k] for k in axes]
        if any(d == 0 for d in empty) or any(isinstance(d, str) for d in empty):
            _check_nonempty(ctx, [iteration[k] for k in axes], kind)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, srcs = local[0], local[1:]
        acc_dtype = accumulator_dtype(kind, dtype)
        if trailing:
            outer, inner = dst.shape[:len(kept)], dst.shape[len(kept):]
            with loop_nest(kb, outer, name="o") as index:
                start = _start(kb, kind, acc_dtype, srcs, [*index, *[I64(0)] * len(inner)],
                               body)
                acc = _reduce_inner(kb, kind, acc_dtype, srcs, index, inner, body, start)
                flat = View(dst.ptr, tuple(outer), tuple(dst.strides[:len(kept)]), dtype)
                flat.store(kb, index, convert(kb, acc, acc_dtype, dtype))
            return
        kept_view = View(dst.ptr, tuple(dst.shape[k] for k in kept),
                         tuple(dst.strides[k] for k in kept), dtype)
        with loop_nest(kb, kept_view.shape, name="z") as index:
            position = iter(index)
            first = [next(position) if k in kept else I64(0) for k in range(dst.ndim)]
            kept_view.store(kb, index, _start(kb, kind, dtype, srcs, first, body))
        # max/min start from the first element and combine it again: harmless, idempotent.
        # The innermost axis is kept, so contiguous in dst. Once LLVM has unrolled a short
        # one it vectorizes an outer loop instead, gathering with strides: 1.7x slower
        # than the plain loop for 10 columns, 2.2x faster for 3 (fewer than a vector).
        last = dst.shape[-1] if dst.shape else I64(1)
        narrow = isinstance(last, ir.Constant) and last.constant < NARROW
        with loop_nest(kb, dst.shape, vectorize_outer=narrow) as index:
            value = _result(kb, body, srcs, [v.load(kb, index) for v in srcs], dtype)
            dst.store(kb, index, combine(kb, kind, dst.load(kb, index), value, dtype))

    dst = View(out.ptr, iteration, acc_strides, dtype)
    ctx.kernel(name, [dst, *views], emit)


def _start(b, kind, dtype, srcs, index, body) -> ir.Value:
    """The accumulator's first value: the identity of a sum or product; for max/min the
    body at ``index``, the first element along the reduced axes (there is one: checked
    before the call)."""
    if kind in _IDENTITY:
        return dtypes.constant(dtype, _IDENTITY[kind])
    return _result(b, body, srcs, [v.load(b, index) for v in srcs], dtype)


def _reduce_inner(b, kind, acc_dtype, srcs, index, inner, body, start) -> ir.Value:
    """Fold the trailing axes ``inner`` at outer ``index``; a flat inner loop when every
    input is contiguous along them."""
    fn = b.function
    pre = b.block
    if all(v.contiguous or is_scalar(v) for v in srcs):
        count = loops.product(b, inner)
        bases = [v.offset(b, [*index, *[I64(0)] * len(inner)]) for v in srcs]
        body_block = fn.append_basic_block("r.body")
        done = fn.append_basic_block("r.done")
        b.cbranch(b.icmp_signed(">", count, I64(0)), body_block, done)
        b.position_at_end(body_block)
        j = b.phi(I64)
        acc = b.phi(start.type)
        j.add_incoming(I64(0), pre)
        acc.add_incoming(start, pre)
        values = [v.load_flat(b, base if is_scalar(v) else b.add(base, j))
                  for v, base in zip(srcs, bases, strict=True)]
        new = combine(b, kind, acc, _result(b, body, srcs, values, acc_dtype), acc_dtype)
        nxt = b.add(j, I64(1))
        j.add_incoming(nxt, b.block)
        acc.add_incoming(new, b.block)
        b.cbranch(b.icmp_signed("<", nxt, count), body_block, done)
        b.position_at_end(done)
        result = b.phi(start.type)
        result.add_incoming(start, pre)
        result.add_incoming(new, body_block)
        return result
    # strided: accumulate through a stack slot (LLVM promotes it to a register)
    slot = _entry_alloca(b, start.type)
    b.store(start, slot)
    with loop_nest(b, inner, name="r") as inner_index:
        values = [v.load(b, [*index, *inner_index]) for v in srcs]
        value = _result(b, body, srcs, values, acc_dtype)
        b.store(combine(b, kind, b.load(slot, typ=start.type), value, acc_dtype), slot)
    return b.load(slot, typ=start.type)


def _entry_alloca(b: ir.IRBuilder, ty: ir.Type) -> ir.Value:
    with b.goto_entry_block():
        return b.alloca(ty)


def _check_nonempty(ctx, sizes: list[ir.Value], kind: str) -> None:
    def emit(kb: ir.IRBuilder, _: list, scalars: list[ir.Value]) -> None:
        empty = kb.icmp_signed("==", loops.product(kb, scalars), I64(0))
        ctx.fail_if(kb, empty, f"zero-size array to reduction operation {kind}, which has no "
                               "identity")
    ctx.kernel(f"check_{kind}", [], emit, scalars=sizes, can_fail=True)


# -- rules --------------------------------------------------------------------------------------

def _program_body(program, params: dict, compute: str, names: Sequence[str]) -> Body:
    def body(b: ir.IRBuilder, values: list[Typed]) -> Typed:
        return emit_program(b, program, dict(zip(names, values, strict=True)), params, compute)
    return body


@rule("fused")
def lower_fused(ctx, node, out: View, inputs: list[View]) -> None:
    a = node.attr
    names = [input_name(k) for k in range(len(inputs))]
    body = _program_body(a["program"], {}, a["compute"], names)
    if a["reduce"] is None:
        elementwise(ctx, a["kernel"], out, inputs, body, a["shape"],
                    can_fail=_integer_power(a["program"], a["compute"]),
                    memory_bound=_memory_bound(a["program"]))
        return
    kind, axes, _ = a["reduce"]
    reduce_elementwise(ctx, a["kernel"], out, inputs, body, a["shape"], kind, axes)


def _lower_formula(ctx, node, out: View, inputs: list[View]) -> None:
    formula = node.op.formula
    params = {p: node.attr[p] for p in formula.params}
    dtype = node.dtype if is_float(node.dtype) else "float64"
    elementwise(ctx, node.op.name, out, inputs,
                _program_body(formula.value, params, dtype, formula.inputs),
                can_fail=_integer_power(formula.value, node.dtype),
                memory_bound=_memory_bound(formula.value))


def _memory_bound(program) -> bool:
    """Is a body cheap enough that memory, not computing, limits its loop?"""
    return not any(op in TRANSCENDENTAL or op == "pow" for op in program.ops)


def _integer_power(program, dtype: str) -> bool:
    """Does the body raise integers to powers (which fail on negative exponents)?"""
    return "pow" in program.ops and not is_float(dtype)


for _name in ELEMENTWISE:
    if _name != "identity":
        rule(_name)(_lower_formula)


@view_rule("identity")
def view_identity(ctx, node, inputs: list[View]) -> View:
    return inputs[0]


@rule("cast")
def lower_cast(ctx, node, out: View, inputs: list[View]) -> None:
    src = node.inputs[0].dtype
    elementwise(ctx, f"cast_{node.dtype}", out, inputs,
                lambda b, values: (convert(b, values[0][0], src, node.dtype), node.dtype))


@rule("bitcast")
def lower_bitcast(ctx, node, out: View, inputs: list[View]) -> None:
    src, dst = node.inputs[0].dtype, node.dtype

    def body(b, values):
        value = values[0][0]
        if src == "bool":  # i1 in registers; 0 or 1 in its byte
            return b.zext(value, dtypes.value_type(dst)), dst
        return b.bitcast(value, dtypes.value_type(dst)), dst

    elementwise(ctx, f"bitcast_{dst}", out, inputs, body)


@rule("full_like")
def lower_full_like(ctx, node, out: View, inputs: list[View]) -> None:
    value = node.attr["value"]
    elementwise(ctx, "full", out, [],
                lambda b, values: (dtypes.constant(node.dtype, value), node.dtype))


@rule("sum", "max", "min", "prod")
def lower_reduction(ctx, node, out: View, inputs: list[View]) -> None:
    x = node.inputs[0]
    src = x.dtype
    axes = node.attr["axis"]
    reduce_elementwise(ctx, node.op.name, out, inputs,
                       lambda b, values: (convert(b, values[0][0], src, node.dtype), node.dtype),
                       x.shape, node.op.name, axes)


def copy(ctx, src: View, dst: View) -> None:
    """``dst[...] = src`` (same shape), through strides."""
    elementwise(ctx, "copy", dst, [src], lambda b, values: values[0], shape=None)
