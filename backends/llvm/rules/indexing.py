"""Indexing: basic indexing as views, gathers, their scatter-add adjoints, and one_hot.

* ``getitem`` (ints, slices of any step, new axes) is always a strided view: the base
  pointer moves to the first element and each stride is multiplied by its step. Over a
  symbolic dim the bounds follow Python's slice rules at run time, and a slice the graph
  was built with a static size for is checked to have it (``graphc.ops._dims``).
* ``take``, ``take_along_axis`` gather through indices read from data. Every index is
  checked natively: ``-n <= i < n`` (negative ones count from the end, as NumPy), else
  the call fails naming the op. Their adjoints add back in the order NumPy's
  ``np.add.at`` does (row-major over the cotangent), so repeated indices accumulate
  to the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import llvmlite.ir as ir
import numpy as np

from graphc.backends.llvm import dtypes, loops
from graphc.backends.llvm.dtypes import I64, is_float, is_signed
from graphc.backends.llvm.loops import View, loop_nest
from graphc.backends.llvm.rules import rule, view_rule
from graphc.backends.llvm.rules.elementwise import broadcast, elementwise

#: a run-time condition that must be false, and what it means when it is true
Problem = tuple[ir.Value, str]


# -- helpers shared with ``rules.shape`` ------------------------------------------------------

def check(ctx, problems: Sequence[Problem]) -> None:
    """Fail the call (naming the node) when any problem's condition holds at run time."""
    if not problems:
        return
    b = ctx.builder
    cond = reduce(b.or_, [c for c, _ in problems])
    message = "; or ".join(dict.fromkeys(m for _, m in problems))

    def emit(kb: ir.IRBuilder, _: list, scalars: list[ir.Value]) -> None:
        ctx.fail_if(kb, scalars[0], message)

    ctx.kernel(f"check_{ctx.node.op.name}", [], emit, scalars=[cond], can_fail=True)


def add(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """``x + y`` on i64, folding constants."""
    if loops.is_const(x) and loops.is_const(y):
        return I64(x.constant + y.constant)
    if loops.is_const(x, 0):
        return y
    return x if loops.is_const(y, 0) else b.add(x, y)


def shifted(b: ir.IRBuilder, view: View, offset: ir.Value, shape: Sequence[ir.Value],
            strides: Sequence[ir.Value], contiguous: bool = False) -> View:
    """A view of ``view``'s memory starting ``offset`` elements further. The pointer is
    not ``inbounds``: an empty view may start one past the end."""
    ptr = view.ptr if loops.is_const(offset, 0) else b.gep(
        view.ptr, [offset], source_etype=dtypes.storage_type(view.dtype))
    return View(ptr, tuple(shape), tuple(strides), view.dtype, contiguous)


def fill(ctx, out: View, value: float | int | bool) -> None:
    """``out[...] = value``, cast as NumPy assigns (``np.asarray(value).astype``)."""
    with np.errstate(all="ignore"):
        cast = np.asarray(value).astype(out.dtype).item()
    elementwise(ctx, "fill", out, [], lambda b, _: (dtypes.constant(out.dtype, cast), out.dtype),
                shape=ctx.node.shape)


def as_index(b: ir.IRBuilder, value: ir.Value, dtype: str) -> ir.Value:
    """An index element (any integer dtype) as an i64."""
    if value.type.width == 64:
        return value
    return b.sext(value, I64) if is_signed(dtype) else b.zext(value, I64)


def bounded(ctx, b: ir.IRBuilder, raw: ir.Value, dtype: str, n: ir.Value, axis: int,
            size) -> ir.Value:
    """``raw`` (an index of ``dtype``) into an axis of ``n`` elements, negative ones counted
    from the end; fails the call (inside a ``can_fail`` kernel) when it is out of range."""
    i = as_index(b, raw, dtype)
    if is_signed(dtype):
        i = b.select(b.icmp_signed("<", i, I64(0)), b.add(i, n), i)
    # one unsigned compare catches both ends (a still-negative index is huge unsigned)
    ctx.fail_if(b, b.icmp_unsigned(">=", i, n),
                f"an index is out of bounds for axis {axis} with size {size}")
    return i


def add_into(b: ir.IRBuilder, acc: ir.Value, value: ir.Value, dtype: str) -> ir.Value:
    """``acc + value`` as ``np.add`` computes it (no reassociation: bits must match)."""
    if is_float(dtype):
        return b.fadd(acc, value)
    return b.or_(acc, value) if dtype == "bool" else b.add(acc, value)


# -- basic indexing -----------------------------------------------------------------------------


def _smax(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed(">", x, y), x, y)


def _bound(b: ir.IRBuilder, n: ir.Value, value: int, low: ir.Value, high: ir.Value) -> ir.Value:
    """A slice bound normalised as Python does: negative counts from the end, then clamped
    to ``[low, high]``."""
    if value >= 0:
        return loops.smin(b, I64(value), high)
    return _smax(b, b.add(n, I64(value)), low)


def slice_bounds(b: ir.IRBuilder, n: ir.Value, start: int | None, stop: int | None,
                 step: int) -> tuple[ir.Value, ir.Value]:
    """The first index and the length of ``range(n)[start:stop:step]`` for a run-time ``n``
    (``PySlice_AdjustIndices``)."""
    if step > 0:
        first = I64(0) if start is None else _bound(b, n, start, I64(0), n)
        end = n if stop is None else _bound(b, n, stop, I64(0), n)
        span = b.sub(end, first)
        count = b.sdiv(b.add(span, I64(step - 1)), I64(step))
        return first, b.select(b.icmp_signed(">", span, I64(0)), count, I64(0))
    last = b.sub(n, I64(1))
    first = last if start is None else _bound(b, n, start, I64(-1), last)
    end = I64(-1) if stop is None else _bound(b, n, stop, I64(-1), last)
    span = b.sub(first, end)
    count = b.add(b.sdiv(b.sub(span, I64(1)), I64(-step)), I64(1))
    return first, b.select(b.icmp_signed(">", span, I64(0)), count, I64(0))


def index_view(ctx, view: View, in_shape: Sequence, index: Sequence,
               out_shape: Sequence) -> tuple[View, list[Problem]]:
    """``view[index]`` (the ``getitem`` attribute: ints, ``(start, stop, step)``, ``None``)
    as a strided view of ``out_shape``, and the run-time conditions under which it would
    not have that shape (a slice or int index of a symbolic dim that is too small)."""
    b = ctx.builder
    offset: ir.Value = I64(0)
    shape: list[ir.Value] = []
    strides: list[ir.Value] = []
    problems: list[Problem] = []
    axis = 0
    for entry in index:
        if entry is None:  # a new axis
            shape.append(I64(1))
            strides.append(I64(0))
            continue
        n_static, n, stride = in_shape[axis], view.shape[axis], view.strides[axis]
        if isinstance(entry, int):
            if isinstance(n_static, int):  # checked in range when the graph was built
                i = I64(entry % n_static)
            else:
                i = b.add(n, I64(entry)) if entry < 0 else I64(entry)
                bad = b.icmp_signed("<", i, I64(0)) if entry < 0 else \
                    b.icmp_signed("<=", n, I64(entry))
                problems.append((bad, f"index {entry} is out of bounds for axis {axis} with "
                                      f"size {n_static}"))
        else:
            start, stop, step = entry
            step = 1 if step is None else step
            declared = out_shape[len(shape)]
            if isinstance(n_static, int):
                picked = range(n_static)[slice(start, stop, step)]
                i = I64(picked.start if len(picked) else 0)
            else:
                first, count = slice_bounds(b, n, start, stop, step)
                if declared != n_static:
                    problems.append((b.icmp_signed("!=", count, ctx.dim(declared)),
                                     f"the slice along axis {axis} does not have the "
                                     f"{declared} elements the graph was built for (a slice "
                                     "of a symbolic dim that is too small at run time)"))
                i = b.select(b.icmp_signed(">", count, I64(0)), first, I64(0))
            shape.append(ctx.dim(declared))
            strides.append(loops.product(b, [stride, I64(step)]))
        offset = add(b, offset, loops.product(b, [i, stride]))
        axis += 1
    contiguous = view.contiguous and _keeps_contiguous(index)
    return shifted(b, view, offset, shape, strides, contiguous), problems


def _keeps_contiguous(index: Sequence) -> bool:
    """Does ``index`` pick a contiguous block of a row-major array? (Ints, then at most one
    step-1 slice, then whole axes; new axes anywhere.)"""
    sliced = False
    for entry in index:
        if entry is None:
            continue
        if sliced:  # after the first kept axis, every axis must be whole
            if not (isinstance(entry, tuple) and entry[:2] == (None, None)
                    and entry[2] in (None, 1)):
                return False
        elif isinstance(entry, tuple):
            if entry[2] not in (None, 1):
                return False
            sliced = True
    return True


@view_rule("getitem")
def view_getitem(ctx, node, inputs: list[View]) -> View:
    x = node.inputs[0]
    view, problems = index_view(ctx, inputs[0], x.shape, node.attr["index"], node.shape)
    check(ctx, problems)
    return view


@rule("slice_scatter")
def lower_slice_scatter(ctx, node, out: View, inputs: list[View]) -> None:
    """Zeros with ``g`` written at ``index``: a fill, then a copy into the strided view."""
    g, like = node.inputs
    target, problems = index_view(ctx, out, like.shape, node.attr["index"], g.shape)
    check(ctx, problems)
    fill(ctx, out, 0)
    elementwise(ctx, "slice_scatter", target, [inputs[0]], lambda b, values: values[0],
                shape=g.shape)


# -- gathers and scatter-adds -------------------------------------------------------------------

@rule("take")
def lower_take(ctx, node, out: View, inputs: list[View]) -> None:
    """``out[o, j, r] = x[o, indices[j], r]`` (``o``: axes before ``axis``, ``r``: after)."""
    x, indices = node.inputs
    axis, k = node.attr["axis"], indices.ndim

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, src, idx = local
        with loop_nest(kb, dst.shape[:axis + k], name="t") as index:
            outer, j = index[:axis], index[axis:]
            i = bounded(ctx, kb, idx.load(kb, j), indices.dtype, src.shape[axis], axis,
                        x.shape[axis])
            with loop_nest(kb, src.shape[axis + 1:], name="r") as rest:
                dst.store(kb, [*outer, *j, *rest], src.load(kb, [*outer, i, *rest]))

    ctx.kernel("take", [out, *inputs], emit, can_fail=True)


@rule("take_scatter_add")
def lower_take_scatter_add(ctx, node, out: View, inputs: list[View]) -> None:
    """``out = 0; out[o, indices[j], r] += g[o, j, r]`` in row-major order of ``g``."""
    g, indices, like = node.inputs
    axis, k = node.attr["axis"], indices.ndim
    fill(ctx, out, 0)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, src, idx = local
        with loop_nest(kb, src.shape[:axis + k], name="t") as index:
            outer, j = index[:axis], index[axis:]
            i = bounded(ctx, kb, idx.load(kb, j), indices.dtype, dst.shape[axis], axis,
                        like.shape[axis])
            with loop_nest(kb, src.shape[axis + k:], name="r") as rest:
                at = [*outer, i, *rest]
                dst.store(kb, at, add_into(kb, dst.load(kb, at),
                                           src.load(kb, [*outer, *j, *rest]), out.dtype))

    ctx.kernel("take_scatter_add", [out, *inputs[:2]], emit, can_fail=True)


def _along_axis_views(ctx, data: View, data_shape: Sequence, indices: View,
                      iteration: Sequence, axis: int) -> tuple[View, View, tuple]:
    """``data`` and ``indices`` broadcast over the other axes of the ``iteration`` shape
    (static dims); ``data`` keeps its own size along ``axis``."""
    b = ctx.builder
    own = tuple(iteration[:axis]) + (data_shape[axis],) + tuple(iteration[axis + 1:])
    data_view = broadcast(b, data, ctx.shape(own), own)
    return data_view, broadcast(b, indices, ctx.shape(iteration), iteration), own


@rule("take_along_axis")
def lower_take_along_axis(ctx, node, out: View, inputs: list[View]) -> None:
    """``out[..., j, ...] = x[..., indices[..., j, ...], ...]`` (other axes broadcast)."""
    x, indices = node.inputs
    axis = node.attr["axis"]
    src, idx, _ = _along_axis_views(ctx, inputs[0], x.shape, inputs[1], node.shape, axis)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, src, idx = local
        with loop_nest(kb, dst.shape) as index:
            i = bounded(ctx, kb, idx.load(kb, index), indices.dtype, src.shape[axis], axis,
                        x.shape[axis])
            dst.store(kb, index, src.load(kb, [*index[:axis], i, *index[axis + 1:]]))

    ctx.kernel("take_along_axis", [out, src, idx], emit, can_fail=True)


@rule("take_along_axis_scatter_add")
def lower_take_along_axis_scatter_add(ctx, node, out: View, inputs: list[View]) -> None:
    """``out = 0; out[..., indices[..., j, ...], ...] += g[..., j, ...]``, row-major over
    ``g`` as ``np.add.at`` goes."""
    g, indices, like = node.inputs
    axis = node.attr["axis"]
    # iterate over g's positions: the result's shape with g's size along the axis
    iteration = tuple(node.shape[:axis]) + (g.shape[axis],) + tuple(node.shape[axis + 1:])
    src = broadcast(ctx.builder, inputs[0], ctx.shape(iteration), iteration)
    idx = broadcast(ctx.builder, inputs[1], ctx.shape(iteration), iteration)
    fill(ctx, out, 0)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, src, idx = local
        with loop_nest(kb, src.shape) as index:
            i = bounded(ctx, kb, idx.load(kb, index), indices.dtype, dst.shape[axis], axis,
                        like.shape[axis])
            at = [*index[:axis], i, *index[axis + 1:]]
            dst.store(kb, at, add_into(kb, dst.load(kb, at), src.load(kb, index), out.dtype))

    ctx.kernel("take_along_axis_scatter_add", [out, src, idx], emit, can_fail=True)


@rule("one_hot")
def lower_one_hot(ctx, node, out: View, inputs: list[View]) -> None:
    """``out[..., d] = (labels[...] == d)``; labels outside ``[0, depth)`` give zeros."""
    dtype = node.inputs[0].dtype

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, labels = local
        with loop_nest(kb, dst.shape[:-1], name="l") as index:
            label = as_index(kb, labels.load(kb, index), dtype)
            with loops.for_range(kb, dst.shape[-1], name="d") as d:
                hit = kb.icmp_signed("==", label, d)
                dst.store(kb, [*index, d], dtypes.convert(kb, hit, "bool", out.dtype))

    ctx.kernel("one_hot", [out, inputs[0]], emit)
