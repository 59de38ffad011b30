"""softmax, log_softmax, first_max_mask and maxout.

softmax and log_softmax walk each lane (the softmax axes, moved last) three times:
the max m, then Σ exp(x − m), then the result, so exp never overflows. softmax
writes exp(x − m) in the second pass and divides it in place in the third. Lanes
that are flat runs of memory (the axes trail a contiguous array) get flat loops
that vectorize; see ``rules.reduce`` for the lane helpers.
"""

from __future__ import annotations

import llvmlite.ir as ir

from graphc.backends.llvm import dtypes
from graphc.backends.llvm.dtypes import convert
from graphc.backends.llvm.loops import View, loop_nest
from graphc.backends.llvm.rules import rule
from graphc.backends.llvm.rules.elementwise import reduce_elementwise
from graphc.backends.llvm.rules.reduce import (
    arg_fold,
    compute_dtype,
    lane_max,
    lane_pass,
    lane_sum_exp,
    lanes,
    sum_dtype,
    transcendental,
)


def _softmax_kernel(ctx, node, out: View, inputs: list[View], log: bool) -> None:
    x = node.inputs[0]
    axes = node.attr["axis"]
    src, src_flat = lanes(inputs[0], axes)
    dst, dst_flat = lanes(out, axes)
    flat = src_flat and dst_flat
    n_outer = x.ndim - len(axes)
    compute = compute_dtype(x.dtype)
    acc = sum_dtype(compute)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        src, dst = local
        with loop_nest(kb, src.shape[:n_outer], name="o") as outer:
            peak = lane_max(kb, src, outer, flat, compute)
            if log:
                total = lane_sum_exp(kb, src, None, outer, flat, peak, compute, acc)
                log_total = transcendental(kb, "log", convert(kb, total, acc, compute))
                _write_log_softmax(kb, src, dst, outer, flat, peak, log_total, compute)
            else:
                total = lane_sum_exp(kb, src, dst, outer, flat, peak, compute, acc)
                if dst.dtype == "float16":  # the reference's Σ is a float16 array's sum
                    total = convert(kb, convert(kb, total, acc, "float16"), "float16", acc)
                _normalize(kb, dst, outer, flat, convert(kb, total, acc, compute), compute)

    ctx.kernel(node.op.name, [src, dst], emit)


def _write_log_softmax(b, src: View, dst: View, outer, flat: bool, peak: ir.Value,
                       log_total: ir.Value, compute: str) -> None:
    """out = (x − m) − log Σ exp(x − m), as the reference rounds it."""
    def body(kb, values, accs, j):
        shifted = kb.fsub(convert(kb, values[0], src.dtype, compute), peak)
        return convert(kb, kb.fsub(shifted, log_total), compute, dst.dtype), []

    lane_pass(b, [src], dst, outer, flat, [], body)


def _normalize(b, dst: View, outer, flat: bool, total: ir.Value, compute: str) -> None:
    """out = e / Σ e, in place (a division, as the reference: no reciprocal rounding)."""
    def body(kb, values, accs, j):
        e = convert(kb, values[0], dst.dtype, compute)
        return convert(kb, kb.fdiv(e, total), compute, dst.dtype), []

    lane_pass(b, [dst], dst, outer, flat, [], body)


@rule("softmax")
def lower_softmax(ctx, node, out: View, inputs: list[View]) -> None:
    _softmax_kernel(ctx, node, out, inputs, log=False)


@rule("log_softmax")
def lower_log_softmax(ctx, node, out: View, inputs: list[View]) -> None:
    _softmax_kernel(ctx, node, out, inputs, log=True)


@rule("first_max_mask")
def lower_first_max_mask(ctx, node, out: View, inputs: list[View]) -> None:
    """1 at the first maximum of each lane along ``axis`` (NaN first, as ``np.argmax``),
    0 elsewhere; an empty lane writes nothing."""
    axis = node.attr["axis"]
    src, src_flat = lanes(inputs[0], (axis,))
    dst, dst_flat = lanes(out, (axis,))
    flat = src_flat and dst_flat
    n_outer = node.ndim - 1
    one, zero = dtypes.constant(node.dtype, 1), dtypes.constant(node.dtype, 0)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        src, dst = local
        with loop_nest(kb, src.shape[:n_outer], name="o") as outer:
            arg = arg_fold(kb, "argmax", src, outer, flat)

            def body(kb, values, accs, j):
                return kb.select(kb.icmp_signed("==", j, arg), one, zero), []

            lane_pass(kb, [], dst, outer, flat, [], body)

    ctx.kernel("first_max_mask", [src, dst], emit)


@rule("maxout")
def lower_maxout(ctx, node, out: View, inputs: list[View]) -> None:
    """The max along ``axis`` (the fused max reduction)."""
    x = node.inputs[0]
    reduce_elementwise(ctx, "maxout", out, inputs, lambda b, values: values[0], x.shape, "max",
                       (node.attr["axis"],))

