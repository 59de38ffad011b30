"""Shape ops: reshape, transpose and broadcast_to as views; concatenate and pad as copies.

* ``transpose`` permutes shape and strides; ``broadcast_to`` gives stride 0 to the new
  and stretched axes: both are always views.
* ``reshape`` of a row-major view is a row-major view of the same memory. Of another
  view it is still a view when NumPy's no-copy rule finds strides (each group of old
  axes that merges into new ones is contiguous within itself; splitting needs nothing);
  otherwise the copying rule writes the elements in row-major order.
* ``concatenate`` copies each input into its block of the result; ``pad`` fills the
  result with the constant and copies the input into the interior.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import llvmlite.ir as ir

from graphc.backends.llvm import dims as dim_rules
from graphc.backends.llvm import loops
from graphc.backends.llvm.dtypes import I64
from graphc.backends.llvm.loops import View
from graphc.backends.llvm.rules import rule, view_rule
from graphc.backends.llvm.rules.elementwise import elementwise
from graphc.backends.llvm.rules.indexing import add, check, fill, shifted


def _same(b: ir.IRBuilder, values: list) -> tuple:
    return values[0]


# -- views ------------------------------------------------------------------------------------

@view_rule("transpose")
def view_transpose(ctx, node, inputs: list[View]) -> View:
    (x,), axes = inputs, node.attr["axes"]
    return View(x.ptr, tuple(x.shape[a] for a in axes), tuple(x.strides[a] for a in axes),
                x.dtype)


@view_rule("broadcast_to")
def view_broadcast_to(ctx, node, inputs: list[View]) -> View:
    """New leading axes and static size-1 axes stretched to another size get stride 0."""
    (x,), static = inputs, node.inputs[0].shape
    lead = len(node.shape) - x.ndim
    strides = [I64(0)] * lead + [
        I64(0) if d == 1 and node.shape[lead + k] != 1 else s
        for k, (d, s) in enumerate(zip(static, x.strides, strict=True))]
    return View(x.ptr, ctx.shape(node.shape), tuple(strides), x.dtype)


def is_row_major(view: View) -> bool:
    """Is ``view`` known when compiling to be row-major without gaps?"""
    if view.contiguous:
        return True
    expected: int = 1
    for n, s in zip(reversed(view.shape), reversed(view.strides), strict=True):
        if not loops.is_const(n):
            return False
        if n.constant != 1 and not loops.is_const(s, expected):
            return False
        expected *= n.constant
    return True


@view_rule("reshape")
def view_reshape(ctx, node, inputs: list[View]) -> View | None:
    (x,), b = inputs, ctx.builder
    shape = ctx.shape(node.shape)
    if is_row_major(x):
        return loops.contiguous(b, x.ptr, shape, x.dtype)
    strides = nocopy_strides(b, node.inputs[0].shape, x, node.shape, shape)
    return None if strides is None else View(x.ptr, shape, strides, x.dtype)


@rule("reshape")
def lower_reshape(ctx, node, out: View, inputs: list[View]) -> None:
    """A reshape no strides can express: copy in row-major order (the result, read with
    the input's shape, is a row-major array of it)."""
    (x,), static = inputs, node.inputs[0].shape
    dst = loops.contiguous(ctx.builder, out.ptr, x.shape, out.dtype)
    elementwise(ctx, "reshape", dst, [x], _same, shape=static)


# -- no-copy reshape (NumPy's ``_attempt_nocopy_reshape``, on symbolic sizes) ------------------

Size = tuple[int, Counter]  # a static dim as coefficient × product of named dims


def _size(dim) -> Size:
    if isinstance(dim, int):
        return dim, Counter()
    coefficient, names = 1, Counter()
    for part in dim_rules._split_top(dim, "*"):
        if part.isdigit():
            coefficient *= int(part)
        else:
            names[part] += 1
    return coefficient, names


def _times(a: Size, c: Size) -> Size:
    return a[0] * c[0], a[1] + c[1]


def _smaller(a: Size, c: Size) -> bool | None:
    """Is ``a`` a proper factor of ``c`` (True), ``c`` of ``a`` (False), or neither (None)?"""
    if not a[1] and not c[1]:
        return a[0] < c[0]
    if a[1] <= c[1] and a[0] and c[0] % a[0] == 0:
        return True
    if c[1] <= a[1] and c[0] and a[0] % c[0] == 0:
        return False
    return None


def nocopy_strides(b: ir.IRBuilder, old: Sequence, view: View, new: Sequence,
                   new_ir: Sequence[ir.Value]) -> list[ir.Value] | None:
    """Strides that read ``view`` (of static shape ``old``) as shape ``new`` without a copy,
    or None. Axes group where their sizes' products agree; the old axes of a group must
    be contiguous within it (checked on compile-time strides only)."""
    if any(d == 0 for d in old):
        return [I64(0)] * len(new)  # nothing is ever read
    olds = [k for k, d in enumerate(old) if d != 1]
    news = [k for k, d in enumerate(new) if d != 1]
    strides = [I64(0)] * len(new)  # size-1 axes are never stepped along
    oi = ni = 0
    while oi < len(olds) and ni < len(news):
        oj, nj = oi + 1, ni + 1
        o_size, n_size = _size(old[olds[oi]]), _size(new[news[ni]])
        while o_size != n_size:
            smaller = _smaller(n_size, o_size)
            if smaller is None or (nj if smaller else oj) >= len(news if smaller else olds):
                return None
            if smaller:
                n_size, nj = _times(n_size, _size(new[news[nj]])), nj + 1
            else:
                o_size, oj = _times(o_size, _size(old[olds[oj]])), oj + 1
        for k in range(oi, oj - 1):  # merged old axes: stride[k] = size[k+1] * stride[k+1]
            outer, inner = view.strides[olds[k]], view.strides[olds[k + 1]]
            size = old[olds[k + 1]]
            if not (loops.is_const(outer) and loops.is_const(inner) and isinstance(size, int)
                    and outer.constant == size * inner.constant):
                return None
        stride = view.strides[olds[oj - 1]]
        for k in reversed(range(ni, nj)):
            strides[news[k]] = stride
            stride = loops.product(b, [stride, new_ir[news[k]]])
        oi, ni = oj, nj
    return strides if oi == len(olds) and ni == len(news) else None


# -- copies -----------------------------------------------------------------------------------

@rule("concatenate")
def lower_concatenate(ctx, node, out: View, inputs: list[View]) -> None:
    """Each input into its block ``[start, start + size)`` along the (static) axis."""
    b, axis = ctx.builder, node.attr["axis"]
    # a block is contiguous when every axis before the joined one has size 1
    contiguous = all(d == 1 for d in node.shape[:axis])
    start = 0
    for x, view in zip(node.inputs, inputs, strict=True):
        size = x.shape[axis]
        if size:
            shape = list(out.shape)
            shape[axis] = I64(size)
            block = shifted(b, out, loops.product(b, [I64(start), out.strides[axis]]), shape,
                            out.strides, contiguous)
            elementwise(ctx, "concatenate", block, [view], _same, shape=x.shape)
        start += size


@rule("pad")
def lower_pad(ctx, node, out: View, inputs: list[View]) -> None:
    """Fill with the constant, then copy the input into the interior."""
    (x,), (view,), b = node.inputs, inputs, ctx.builder
    widths = node.attr["pad_width"]
    # a padded symbolic dim gets a derived name (``"n+2"``) the runtime sizes from its
    # spelling; padding a slice of a too-small dim breaks the spelling: check it
    problems = [
        (b.icmp_signed("!=", add(b, view.shape[k], I64(before + after)), out.shape[k]),
         f"the padded axis {k} does not have the {node.shape[k]} elements the graph was "
         "built for (a slice of a symbolic dim that is too small at run time)")
        for k, (before, after) in enumerate(widths) if isinstance(node.shape[k], str)]
    check(ctx, problems)
    fill(ctx, out, node.attr["value"])
    offset: ir.Value = I64(0)
    for (before, _), stride in zip(widths, out.strides, strict=True):
        offset = add(b, offset, loops.product(b, [I64(before), stride]))
    interior = shifted(b, out, offset, view.shape, out.strides)
    elementwise(ctx, "pad", interior, [view], _same, shape=x.shape)
