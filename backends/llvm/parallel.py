"""Splitting a kernel's loop across threads, from inside native code.

A parallel kernel takes its range ``[start, stop)`` as its last two arguments. The
entry runs it on ``[0, n)`` in pieces: one piece per extra thread, started with
``pthread_create`` on a small worker that unpacks the arguments from a struct on
the caller's stack; the calling thread runs the first piece, then joins the others.
If a thread cannot be started, the caller runs that piece itself. Small loops run
on the calling thread only: each thread gets at least ``MIN_PER_THREAD`` elements.

The thread count is ``GRAPHC_NUM_THREADS`` (default: the CPUs this process may use),
read when compiling; it is part of the IR, hence of the cache key.
"""

from __future__ import annotations

import llvmlite.ir as ir

from graphc.backends.llvm.dtypes import I32, I64, PTR
from graphc.backends.llvm.host import num_threads

#: elements per thread below which a loop is not split. Starting a thread costs ≈ 15 µs,
#: and right after a GEMM OpenBLAS's own threads still spin on the other core: with 2^16 an
#: MLP step (2^17-element activations) ran 0.56 ms slower on 2 threads than on 1 (7.06 vs
#: 6.50 ms, interleaved in one process); with 2^18 it runs as fast as on 1.
MIN_PER_THREAD = 1 << 18
_ALIGN = 64  # pieces start on multiples of 64 elements, so vector loops stay aligned

_CREATE = ir.FunctionType(I32, [PTR, PTR, PTR, PTR])
_JOIN = ir.FunctionType(I32, [I64, PTR])


def _worker(module: ir.Module, kernel: ir.Function) -> ir.Function:
    """``void *worker(void *args)``: call ``kernel`` with the arguments packed at ``args``."""
    fn = ir.Function(module, ir.FunctionType(PTR, [PTR]), f"{kernel.name}.worker")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    args = []
    for k, a in enumerate(kernel.args):  # every argument travels as one i64 (see _pack)
        word = b.load(b.gep(fn.args[0], [I64(k)], source_etype=I64), typ=I64)
        args.append(b.inttoptr(word, PTR) if a.type == PTR else word)
    b.call(kernel, args)
    b.ret(ir.Constant(PTR, None))
    return fn


def one_thread(n: ir.Value) -> bool:
    """Does a loop over ``[0, n)`` always run on one thread (one thread in all, or a size
    known too small to split)?"""
    return num_threads() == 1 or (isinstance(n, ir.Constant) and n.constant < 2 * MIN_PER_THREAD)


def call(ctx, kernel: ir.Function, args: list[ir.Value], n: ir.Value) -> None:
    """Run ``kernel(*args, start, stop)`` over ``[0, n)``, split across threads when large."""
    b = ctx.builder
    threads = num_threads()
    if one_thread(n):
        b.call(kernel, [*args, I64(0), n])
        return
    big = b.icmp_signed(">=", n, I64(2 * MIN_PER_THREAD))
    with b.if_else(big) as (split, single):
        with split:
            _split(ctx, kernel, args, n, threads)
        with single:
            b.call(kernel, [*args, I64(0), n])


def _split(ctx, kernel: ir.Function, args: list[ir.Value], n: ir.Value, threads: int) -> None:
    b = ctx.builder
    worker = _worker(ctx.module, kernel)
    create = ctx.extern("pthread_create", _CREATE)
    join = ctx.extern("pthread_join", _JOIN)
    # pieces of ceil(n / threads) elements, rounded up to a multiple of _ALIGN
    piece = b.sdiv(b.add(n, I64(threads - 1)), I64(threads))
    piece = b.mul(b.sdiv(b.add(piece, I64(_ALIGN - 1)), I64(_ALIGN)), I64(_ALIGN))
    started = []
    for t in range(1, threads):
        start = b.mul(piece, I64(t))
        start = b.select(b.icmp_signed("<", start, n), start, n)
        stop = b.select(b.icmp_signed("<", b.add(start, piece), n), b.add(start, piece), n)
        with b.goto_entry_block():
            block = b.alloca(I64, size=I64(len(kernel.args)))  # one word per argument
            handle = b.alloca(I64)
        for k, value in enumerate([*args, start, stop]):
            word = b.ptrtoint(value, I64) if value.type == PTR else value
            b.store(word, b.gep(block, [I64(k)], source_etype=I64))
        rc = b.call(create, [handle, ir.Constant(PTR, None), worker, block])
        failed = b.icmp_signed("!=", rc, I32(0))
        with b.if_then(failed, likely=False):  # no thread: run the piece here
            b.call(kernel, [*args, start, stop])
        started.append((failed, handle))
    first_stop = b.select(b.icmp_signed("<", piece, n), piece, n)
    b.call(kernel, [*args, I64(0), first_stop])
    for failed, handle in started:
        with b.if_then(b.not_(failed)):
            b.call(join, [b.load(handle, typ=I64), ir.Constant(PTR, None)])
