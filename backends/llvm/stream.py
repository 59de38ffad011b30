"""Large outputs written past the cache, with non-temporal stores.

An ordinary store to a line not in cache first reads the line (read for ownership), so
writing an n-byte output moves 2n bytes over the memory bus. A non-temporal store writes
whole lines without reading them. Measured here (a C loop, 2^24 float32, 1 thread):
``y = 2x + 1`` takes 5.0 ms with non-temporal stores and 7.1 ms without; ``np.copyto``
of the same bytes takes 8.4 ms.

LLVM's loop vectorizer gives up on a loop whose store is marked non-temporal unless the
store is aligned to the vector, which a scalar store never is. So a streamed loop
computes ``BLOCK_BYTES`` of output at a time into an aligned buffer on the stack (the
usual loop, vectorized by LLVM, all in L1), then copies the block out with
aligned vector stores marked ``!nontemporal``, written here as vector IR. The output
is first brought to a 32-byte boundary with ordinary stores. A closing ``sfence`` orders
the streamed stores before anything the thread does next.

Streaming pays only when the output would not stay in cache for its next reader, so it
is used for outputs of at least ``STREAM_BYTES`` known when compiling (half the last
level cache of the machines measured), on x86-64, for 4- and 8-byte elements.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import llvmlite.ir as ir

from graphc.backends.llvm import dtypes
from graphc.backends.llvm.dtypes import I64
from graphc.backends.llvm.loops import View, for_range, is_const, smin

#: outputs this large (bytes, known when compiling) are streamed
STREAM_BYTES = 16 << 20
#: bytes computed into the stack buffer per block. Small blocks keep the input's reads and
#: the output's streamed writes interleaved, as one loop would: x*2+1 over 2^24 float32 on
#: one thread took 5.3 ms with 512-byte blocks, 6.0 with 2 KiB, 6.6 with 8 KiB, and 8.1
#: not streamed (medians of 5, interleaved in one process)
BLOCK_BYTES = 512
VECTOR_BYTES = 32
_ELEMENT_BYTES = (4, 8)

Value = Callable[[ir.IRBuilder, ir.Value], ir.Value]


def applies(module: ir.Module, out: View, shape: tuple[ir.Value, ...]) -> bool:
    """Is an output of ``shape`` written as ``out`` streamed?"""
    size = dtypes.itemsize(out.dtype)
    return (module.triple.startswith("x86_64") and size in _ELEMENT_BYTES
            and all(is_const(n) for n in shape)
            and math.prod(n.constant for n in shape) * size >= STREAM_BYTES)


def store_range(b: ir.IRBuilder, out: View, start: ir.Value, stop: ir.Value,
                value: Value, interleave: int) -> None:
    """``out[i] = value(b, i)`` for ``i`` in ``[start, stop)`` (flat offsets), streamed."""
    storage = dtypes.storage_type(out.dtype)
    size = dtypes.itemsize(out.dtype)
    block, lanes = BLOCK_BYTES // size, VECTOR_BYTES // size
    with b.goto_entry_block():
        buffer = b.alloca(ir.ArrayType(storage, block), name="stream.block")
        buffer.align = 64

    # ordinary stores up to the first 32-byte boundary (all of them, if the output is not
    # even aligned to its elements: then no store could be aligned)
    address = b.ptrtoint(out.pointer(b, start), I64)
    offset = b.and_(address, I64(VECTOR_BYTES - 1))
    to_boundary = b.udiv(b.and_(b.sub(I64(VECTOR_BYTES), offset), I64(VECTOR_BYTES - 1)),
                         I64(size))
    unaligned = b.icmp_unsigned("!=", b.urem(offset, I64(size)), I64(0))
    count = b.sub(stop, start)
    head = b.select(unaligned, count, smin(b, to_boundary, count))
    with for_range(b, b.add(start, head), start=start, name="stream.head") as i:
        out.store_flat(b, i, value(b, i))

    with for_range(b, stop, start=b.add(start, head), step=I64(block),
                   name="stream.block") as first:
        n = smin(b, I64(block), b.sub(stop, first))
        with for_range(b, n, name="stream.compute", interleave=interleave) as j:
            slot = b.gep(buffer, [I64(0), j], inbounds=True)
            b.store(dtypes.to_storage(b, value(b, b.add(first, j, flags=["nsw"])),
                                      out.dtype), slot)
        vector = ir.VectorType(storage, lanes)
        whole = b.and_(n, I64(-lanes))
        with for_range(b, whole, step=I64(lanes), name="stream.copy") as j:
            chunk = b.load(b.gep(buffer, [I64(0), j], inbounds=True), typ=vector,
                           align=VECTOR_BYTES)
            target = out.pointer(b, b.add(first, j, flags=["nsw"]))
            store = b.store(chunk, target, align=VECTOR_BYTES)
            store.set_metadata("nontemporal", b.module.add_metadata([ir.Constant(
                ir.IntType(32), 1)]))
        with for_range(b, n, start=whole, name="stream.tail") as j:
            element = b.load(b.gep(buffer, [I64(0), j], inbounds=True), typ=storage)
            b.store(element, out.pointer(b, b.add(first, j, flags=["nsw"])))
    b.call(_sfence(b.module), [])



def _sfence(module: ir.Module) -> ir.Function:
    name = "llvm.x86.sse.sfence"
    if name in module.globals:
        return module.globals[name]
    return ir.Function(module, ir.FunctionType(ir.VoidType(), []), name)
