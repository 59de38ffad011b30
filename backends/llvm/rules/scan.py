"""LLVM lowering rules for graphc/ops/scan.py: ``cumsum``, ``cumprod`` and ``argsort``.

Both walk the array as lanes along the op's axis (``rules.reduce.lanes``). A scan is one
sequential pass per lane (the running value is the accumulator, as ``ufunc.accumulate``,
so float results match NumPy's bit for bit); ``reverse`` reads and writes the lane
backwards through negated strides. ``argsort`` sorts each lane as (key, index) pairs in
scratch lanes: insertion sort of short runs, then bottom-up merges. Both move an element
only past keys it strictly precedes (a merge takes the left run's element unless the
right one strictly precedes it), so the sort is stable, and "precedes" orders NaN as the
largest value, as NumPy.

Lane lengths reach the loops through ``_opaque``: with a constant length LLVM fully
unrolls every lane's loop (and specializes the sort), which costs compile time and gains
nothing for a sequential scan or a data-dependent sort.
"""

from __future__ import annotations

from collections.abc import Callable

import llvmlite.ir as ir

from graphc.backends.llvm import dtypes
from graphc.backends.llvm.dtypes import I64, convert, is_float, is_signed
from graphc.backends.llvm.loops import View, for_range, loop_nest, smin
from graphc.backends.llvm.rules import rule
from graphc.backends.llvm.rules.reduce import lane_pass, lanes

# -- cumsum, cumprod ----------------------------------------------------------------------------


def _opaque(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """``value``, hidden from the optimizer: an empty asm statement passes it through."""
    asm = ir.InlineAsm(ir.FunctionType(I64, [I64]), "", "=r,0")
    return b.call(asm, [value])


def _reversed_last(b: ir.IRBuilder, view: View) -> View:
    """``view`` with its last axis walked backwards (start at the end, negated stride)."""
    n, s = view.shape[-1], view.strides[-1]
    last = b.mul(b.sub(n, I64(1)), s)
    start = b.select(b.icmp_signed(">", n, I64(0)), last, I64(0))
    ptr = view.pointer(b, start)
    return View(ptr, view.shape, (*view.strides[:-1], b.neg(s)), view.dtype)


@rule("cumsum", "cumprod")
def lower_scan(ctx, node, out: View, inputs: list[View]) -> None:
    axis, exclusive, reverse = (node.attr[k] for k in ("axis", "exclusive", "reverse"))
    product = node.op.name == "cumprod"
    src, flat_src = lanes(inputs[0], (axis,))
    dst, flat_dst = lanes(out, (axis,))
    flat = flat_src and flat_dst and not reverse
    dtype, in_dtype = node.dtype, node.inputs[0].dtype
    n_outer = node.ndim - 1

    def combine(b: ir.IRBuilder, acc: ir.Value, x: ir.Value) -> ir.Value:
        if is_float(dtype):
            return b.fmul(acc, x) if product else b.fadd(acc, x)
        return b.mul(acc, x) if product else b.add(acc, x)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        src, dst = local
        n = _opaque(kb, src.shape[-1])
        src, dst = (View(v.ptr, (*v.shape[:-1], n), v.strides, v.dtype) for v in (src, dst))
        if reverse:
            src, dst = _reversed_last(kb, src), _reversed_last(kb, dst)

        def body(b, values, accs, j):
            new = combine(b, accs[0], convert(b, values[0], in_dtype, dtype))
            return (accs[0] if exclusive else new), [new]

        with loop_nest(kb, src.shape[:n_outer], name="o") as outer:
            lane_pass(kb, [src], dst, outer, flat, [dtypes.constant(dtype, int(product))], body)

    ctx.kernel(node.op.name, [src, dst], emit)


#: the length of the runs insertion-sorted before merging
RUN = 16

# -- argsort ------------------------------------------------------------------------------------


def _less(b: ir.IRBuilder, x: ir.Value, y: ir.Value, dtype: str) -> ir.Value:
    """x < y with NaN the largest value (NaN < NaN is false)."""
    if is_float(dtype):
        nan_y = b.fcmp_unordered("uno", y, y)
        x_is_number = b.fcmp_ordered("ord", x, x)
        return b.or_(b.fcmp_ordered("<", x, y), b.and_(nan_y, x_is_number))
    compare = b.icmp_signed if is_signed(dtype) else b.icmp_unsigned
    return compare("<", x, y)


def _alloca(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    with b.goto_entry_block():
        slot = b.alloca(value.type)
    b.store(value, slot)
    return slot


def _while(b: ir.IRBuilder, cond: Callable[[], ir.Value], name: str):
    """``while cond(): body`` (a context manager around the body)."""
    import contextlib

    @contextlib.contextmanager
    def loop():
        fn = b.function
        head = fn.append_basic_block(f"{name}.head")
        body = fn.append_basic_block(f"{name}.body")
        done = fn.append_basic_block(f"{name}.done")
        b.branch(head)
        b.position_at_end(head)
        b.cbranch(cond(), body, done)
        b.position_at_end(body)
        yield
        b.branch(head)
        b.position_at_end(done)

    return loop()



def _sort_function(module: ir.Module, dtype: str, descending: bool) -> ir.Function:
    """``ptr sort(keys, stride, n, index_a, index_b, key_a, key_b)``: merge-sorts the lane
    ``keys[j * stride]``, j < n, as (key, index) pairs in the scratch lanes (two int64, two
    of ``dtype``) and returns the index lane holding the order. A function of its own,
    kept out of line and called with an opaque length, so LLVM neither unrolls a copy of
    it per lane nor specializes it for a constant length (compiling stays fast)."""
    name = f"graphc.sort.{dtype}.{'desc' if descending else 'asc'}"
    if name in module.globals:
        return module.globals[name]
    ptr = dtypes.PTR
    fn = ir.Function(module, ir.FunctionType(ptr, [ptr, I64, I64, ptr, ptr, ptr, ptr]), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    fn.attributes.add("nounwind")
    keys_ptr, stride, n, *bufs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    keys = View(keys_ptr, (n,), (stride,), dtype)
    index_a, index_b, key_a, key_b = (View(p, (n,), (I64(1),), t) for p, t in
                                      zip(bufs, ("int64", "int64", dtype, dtype), strict=True))
    b.ret(_merge_sort(b, keys, (index_a, index_b), (key_a, key_b), descending))
    return fn


def _merge_sort(b: ir.IRBuilder, keys: View, index: tuple[View, View],
                key: tuple[View, View], descending: bool) -> ir.Value:
    """Bottom-up merge sort of the 1-D ``keys`` as (key, index) pairs, between the two
    buffers of ``index`` and of ``key`` (the merges compare keys read in order, not through
    the indices); returns the pointer of the index buffer holding the order."""
    n = keys.shape[0]
    with for_range(b, n, name="fill") as i:
        index[0].store_flat(b, i, i)
        key[0].store_flat(b, i, keys.load(b, [i]))

    def precedes(a: ir.Value, c: ir.Value) -> ir.Value:
        """Does key ``a`` (of the right run) go strictly before key ``c`` (of the left)?"""
        return _less(b, c, a, keys.dtype) if descending else _less(b, a, c, keys.dtype)

    # runs of RUN elements by insertion sort (stable: an element moves left only past keys
    # it strictly precedes), then merges of doubling width
    with for_range(b, n, step=I64(RUN), name="block") as lo:
        hi = smin(b, b.add(lo, I64(RUN)), n)
        with for_range(b, hi, start=b.add(lo, I64(1)), name="ins") as i:
            value, position = key[0].load_flat(b, i), index[0].load_flat(b, i)
            hole = _alloca(b, i)

            def shifts() -> ir.Value:
                at = b.load(hole, typ=I64)
                before = b.sub(at, I64(1))
                inside = b.icmp_signed(">", at, lo)
                other = key[0].load_flat(b, b.select(inside, before, lo))
                return b.and_(inside, precedes(value, other))

            with _while(b, shifts, "shift"):
                at = b.load(hole, typ=I64)
                before = b.sub(at, I64(1))
                key[0].store_flat(b, at, key[0].load_flat(b, before))
                index[0].store_flat(b, at, index[0].load_flat(b, before))
                b.store(before, hole)
            at = b.load(hole, typ=I64)
            key[0].store_flat(b, at, value)
            index[0].store_flat(b, at, position)

    swapped = _alloca(b, dtypes.constant("bool", False))
    width = _alloca(b, I64(RUN))
    with _while(b, lambda: b.icmp_signed("<", b.load(width, typ=I64), n), "pass"):
        w = b.load(width, typ=I64)
        flip = b.load(swapped, typ=dtypes.I1)

        def pick(pair: tuple[View, View], source: bool) -> View:
            first, second = (pair[1], pair[0]) if source else pair
            return View(b.select(flip, first.ptr, second.ptr), first.shape, first.strides,
                        first.dtype)

        src_i, dst_i, src_k, dst_k = (pick(index, True), pick(index, False), pick(key, True),
                                      pick(key, False))
        with for_range(b, n, step=b.mul(w, I64(2)), name="run") as lo:
            mid = smin(b, b.add(lo, w), n)
            hi = smin(b, b.add(mid, w), n)
            left, right = _alloca(b, lo), _alloca(b, mid)
            with for_range(b, hi, start=lo, name="k") as k:
                i, j = b.load(left, typ=I64), b.load(right, typ=I64)
                left_open = b.icmp_signed("<", i, mid)
                right_open = b.icmp_signed("<", j, hi)
                # read only inside [lo, hi): an exhausted run's position reads lo instead
                at_i, at_j = b.select(left_open, i, lo), b.select(right_open, j, lo)
                key_i, key_j = src_k.load_flat(b, at_i), src_k.load_flat(b, at_j)
                take_right = b.and_(right_open,
                                    b.or_(b.not_(left_open), precedes(key_j, key_i)))
                dst_k.store_flat(b, k, b.select(take_right, key_j, key_i))
                dst_i.store_flat(b, k, b.select(take_right, src_i.load_flat(b, at_j),
                                                src_i.load_flat(b, at_i)))
                b.store(b.add(i, b.zext(b.not_(take_right), I64)), left)
                b.store(b.add(j, b.zext(take_right, I64)), right)
        b.store(b.not_(flip), swapped)
        b.store(b.mul(w, I64(2)), width)
    return b.select(b.load(swapped, typ=dtypes.I1), index[1].ptr, index[0].ptr)


@rule("argsort")
def lower_argsort(ctx, node, out: View, inputs: list[View]) -> None:
    axis, descending = node.attr["axis"], node.attr["descending"]
    keys, _ = lanes(inputs[0], (axis,))
    dst, _ = lanes(out, (axis,))
    n = node.shape[axis]
    bufs = [ctx.scratch((n,), "int64"), ctx.scratch((n,), "int64"),
            ctx.scratch((n,), keys.dtype), ctx.scratch((n,), keys.dtype)]
    n_outer = node.ndim - 1
    sort = _sort_function(ctx.module, keys.dtype, descending)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        keys, dst, *scratch = local
        length = keys.shape[-1]
        with loop_nest(kb, keys.shape[:n_outer], name="o") as outer:
            lane = keys.pointer(kb, keys.offset(kb, [*outer, I64(0)]))
            args = [lane, _opaque(kb, keys.strides[-1]), _opaque(kb, length),
                    *(v.ptr for v in scratch)]
            result = View(kb.call(sort, args), (length,), (I64(1),), "int64")
            with for_range(kb, length, name="w") as j:
                dst.store(kb, [*outer, j], result.load_flat(kb, j))

    ctx.kernel("argsort", [keys, dst, *bufs], emit, noalias=False)
