"""LLVM lowering rules for graphc/ops/scatter.py.

``scatter_elements``: copy ``data`` into the output, then walk ``indices`` / ``updates``
in row-major order (as ``np.<ufunc>.at`` does, so repeated indices combine, or the
last one wins, exactly as the NumPy reference), writing or combining each update at
its target. Every index is checked natively (``-n <= i < n``) and the other
coordinates are checked against the output's extent (symbolic dims), so no data
makes the kernel touch memory outside its buffers.
"""

from __future__ import annotations

import llvmlite.ir as ir

from graphc.backends.llvm import dtypes
from graphc.backends.llvm.dtypes import is_float, is_signed
from graphc.backends.llvm.loops import View, loop_nest
from graphc.backends.llvm.rules import rule
from graphc.backends.llvm.rules.elementwise import copy
from graphc.backends.llvm.rules.indexing import bounded


def _combine(b: ir.IRBuilder, reduction: str, old: ir.Value, new: ir.Value,
             dtype: str) -> ir.Value:
    """``old (none|add|mul|max|min) new`` as the NumPy ufunc computes it (no fast-math:
    bits must match; float max/min propagate NaN as ``np.maximum``)."""
    if reduction == "none":
        return new
    if dtype == "bool":
        return (b.or_ if reduction in ("add", "max") else b.and_)(old, new)
    if is_float(dtype):
        if reduction == "add":
            return b.fadd(old, new)
        if reduction == "mul":
            return b.fmul(old, new)
        return dtypes.intrinsic(b, f"llvm.{reduction}imum", old, new)
    if reduction == "add":
        return b.add(old, new)
    if reduction == "mul":
        return b.mul(old, new)
    compare = b.icmp_signed if is_signed(dtype) else b.icmp_unsigned
    return b.select(compare(">" if reduction == "max" else "<", new, old), new, old)


@rule("scatter_elements")
def lower_scatter_elements(ctx, node, out: View, inputs: list[View]) -> None:
    """``out = data; out[p with p[axis] = indices[p]] op= updates[p]`` over ``p``."""
    data, indices, _ = node.inputs
    axis, reduction = node.attr["axis"], node.attr["reduction"]
    copy(ctx, inputs[0], out)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, idx, upd = local
        with loop_nest(kb, upd.shape, name="p") as p:
            at = list(p)
            for d, (i, n) in enumerate(zip(p, dst.shape, strict=True)):
                if d != axis and not (isinstance(n, ir.Constant) and isinstance(
                        upd.shape[d], ir.Constant) and upd.shape[d].constant <= n.constant):
                    ctx.fail_if(kb, kb.icmp_unsigned(">=", i, n),
                                f"indices exceed data on axis {d}")
            at[axis] = bounded(ctx, kb, idx.load(kb, p), indices.dtype, dst.shape[axis], axis,
                               data.shape[axis])
            dst.store(kb, at, _combine(kb, reduction, dst.load(kb, at), upd.load(kb, p),
                                       out.dtype))

    ctx.kernel("scatter_elements", [out, inputs[1], inputs[2]], emit, can_fail=True)
