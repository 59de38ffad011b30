"""Loops and strided element access: the building blocks every kernel uses.

A ``View`` is an array as native code sees it: a base pointer, a shape and
strides (in elements, so a broadcast axis has stride 0), each an IR value.
Shapes and strides that are known when compiling are ``ir.Constant``s, which
LLVM folds, so a static-shape kernel has constant trip counts and strides.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import llvmlite.ir as ir

from graphc.backends.llvm import dtypes
from graphc.backends.llvm.dtypes import I64


@dataclass(frozen=True)
class View:
    """An array in native code: ``element[i] = ptr[sum(i[k] * strides[k])]``."""

    ptr: ir.Value
    shape: tuple[ir.Value, ...]
    strides: tuple[ir.Value, ...]
    dtype: str
    #: known at compile time to be row-major with no gaps (strides as ``contiguous`` gives)
    contiguous: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def offset(self, b: ir.IRBuilder, index: Sequence[ir.Value]) -> ir.Value:
        """The element offset of ``index`` (axes of size one or stride zero add nothing)."""
        total: ir.Value = I64(0)
        for i, s in zip(index, self.strides, strict=True):
            if is_const(s, 0):
                continue
            term = i if is_const(s, 1) else b.mul(i, s, flags=["nsw"])
            total = term if is_const(total, 0) else b.add(total, term, flags=["nsw"])
        return total

    def pointer(self, b: ir.IRBuilder, offset: ir.Value) -> ir.Value:
        return b.gep(self.ptr, [offset], inbounds=True,
                     source_etype=dtypes.storage_type(self.dtype))

    def load(self, b: ir.IRBuilder, index: Sequence[ir.Value]) -> ir.Value:
        """The element at ``index``, in its register type."""
        return self.load_flat(b, self.offset(b, index))

    def load_flat(self, b: ir.IRBuilder, offset: ir.Value) -> ir.Value:
        raw = b.load(self.pointer(b, offset), typ=dtypes.storage_type(self.dtype))
        return dtypes.to_register(b, raw, self.dtype)

    def store(self, b: ir.IRBuilder, index: Sequence[ir.Value], value: ir.Value) -> None:
        self.store_flat(b, self.offset(b, index), value)

    def store_flat(self, b: ir.IRBuilder, offset: ir.Value, value: ir.Value) -> None:
        b.store(dtypes.to_storage(b, value, self.dtype), self.pointer(b, offset))

    def size(self, b: ir.IRBuilder) -> ir.Value:
        return product(b, self.shape)


def is_const(value: ir.Value, number: int | None = None) -> bool:
    """Is ``value`` a constant (equal to ``number``, when given)?"""
    if not isinstance(value, ir.Constant):
        return False
    return number is None or value.constant == number


def smin(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """The smaller of two signed integers."""
    return b.select(b.icmp_signed("<", x, y), x, y)


def product(b: ir.IRBuilder, values: Sequence[ir.Value]) -> ir.Value:
    """The product of i64 values (1 for none), folding constants."""
    known = 1
    rest: list[ir.Value] = []
    for v in values:
        if is_const(v):
            known *= v.constant
        else:
            rest.append(v)
    total: ir.Value = I64(known)
    for v in rest:
        total = v if is_const(total, 1) else b.mul(total, v, flags=["nsw"])
    return total


def contiguous_strides(b: ir.IRBuilder, shape: Sequence[ir.Value]) -> tuple[ir.Value, ...]:
    """Row-major strides of ``shape``, in elements."""
    strides: list[ir.Value] = []
    step: ir.Value = I64(1)
    for size in reversed(shape):
        strides.append(step)
        step = product(b, [step, size])
    return tuple(reversed(strides))


def contiguous(b: ir.IRBuilder, ptr: ir.Value, shape: Sequence[ir.Value], dtype: str) -> View:
    """A row-major array."""
    return View(ptr, tuple(shape), contiguous_strides(b, shape), dtype, contiguous=True)


@contextlib.contextmanager
def for_range(b: ir.IRBuilder, stop: ir.Value, start: ir.Value | None = None,
              step: ir.Value | None = None, name: str = "i",
              interleave: int = 0, vectorize: bool = True) -> Iterator[ir.Value]:
    """``for i in range(start, stop, step)`` (step > 0); yields ``i`` with the builder
    positioned in the loop body. ``interleave`` > 0 fixes the vectorized loop's interleave
    count (``loop_hints``) instead of leaving it to LLVM's cost model; ``vectorize=False``
    keeps the loop vectorizer off it."""
    start = I64(0) if start is None else start
    step = I64(1) if step is None else step
    fn = b.function
    pre = b.block
    body = fn.append_basic_block(f"{name}.body")
    done = fn.append_basic_block(f"{name}.done")
    b.cbranch(b.icmp_signed("<", start, stop), body, done)
    b.position_at_end(body)
    i = b.phi(I64, name=name)
    i.add_incoming(start, pre)
    yield i
    nxt = b.add(i, step, flags=["nsw"])
    i.add_incoming(nxt, b.block)
    latch = b.cbranch(b.icmp_signed("<", nxt, stop), body, done)
    short = all(isinstance(v, ir.Constant) for v in (start, stop, step)) and (
        stop.constant - start.constant <= UNROLL_TRIPS * step.constant)
    if interleave or not short or not vectorize:
        latch.set_metadata("llvm.loop", loop_hints(b.module, interleave, unroll=short,
                                                   vectorize=vectorize))
    b.position_at_end(done)


#: loops of at most this many iterations, known when compiling, are left to LLVM's
#: unroller; longer loops are not unrolled (their vector bodies already are interleaved)
UNROLL_TRIPS = 16


def loop_hints(module: ir.Module, interleave: int = 0, unroll: bool = False,
               vectorize: bool = True) -> ir.MDValue:
    """``!llvm.loop`` metadata: the loop vectorizer runs ``interleave`` vector iterations
    side by side (0: its cost model decides) or, unless ``vectorize``, leaves the loop
    alone; and unless ``unroll``, so does the unroller. Fully unrolling a 512-iteration
    vector loop bought nothing measurable on an MLP step and cost LLVM a quarter of its
    time there. The node names itself as LLVM requires, and a unique string keeps
    llvmlite from sharing it between loops."""
    hints = []
    if interleave:
        hints.append(module.add_metadata([
            ir.MetaDataString(module, "llvm.loop.interleave.count"),
            ir.Constant(ir.IntType(32), interleave)]))
    if not vectorize:
        hints.append(module.add_metadata([
            ir.MetaDataString(module, "llvm.loop.vectorize.enable"),
            ir.Constant(ir.IntType(1), 0)]))
    if not unroll:
        hints.append(module.add_metadata([
            ir.MetaDataString(module, "llvm.loop.unroll.disable")]))
    loop = module.add_metadata([f"graphc.loop.{len(module.metadata)}", *hints])
    loop.operands = (loop, *hints)
    return loop


@contextlib.contextmanager
def loop_nest(b: ir.IRBuilder, shape: Sequence[ir.Value], name: str = "i",
              vectorize_outer: bool = True) -> Iterator[list[ir.Value]]:
    """Nested row-major loops over ``shape``; yields the index (innermost fastest).
    ``vectorize_outer=False`` leaves only the innermost loop to the vectorizer."""
    last = len(shape) - 1
    with contextlib.ExitStack() as stack:
        index = [stack.enter_context(for_range(b, n, name=f"{name}{k}",
                                               vectorize=vectorize_outer or k == last))
                 for k, n in enumerate(shape)]
        yield index


def if_then(b: ir.IRBuilder, cond: ir.Value):
    """``if cond:`` (with the branch weighted as unlikely when used for errors)."""
    return b.if_then(cond)
