"""A graph becomes one LLVM module with one native entry point.

The entry, ``int32 <symbol>(void **slots, const int64 *dims, void *const *fns)``, runs the
whole schedule of the memory plan. ``slots`` holds one pointer per array, in the order
of ``Layout``: inputs, params, constants, outputs, update values, then scratch
buffers for intermediates (which the runtime allocates once per shape signature);
``dims`` holds the symbolic sizes, ``fns`` the external functions (BLAS). It
returns 0, or 1 + the position of the node that failed (an index out of range).

Each node is lowered by its rule (``rules``) into an internal kernel function whose
array arguments are ``noalias`` (LLVM knows the arrays do not overlap; an array written
in place over an input is one argument) and whose static shapes and strides are
constants in its body. Kernels stay functions of their own,
called from the entry, never inlined into it: LLVM's passes then work on many small
functions, which takes half the time of one huge one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import llvmlite.ir as ir
import numpy as np

from graphc.backends.llvm import externs, loops, target
from graphc.backends.llvm.abi import (
    ARGUMENTS_DIFFER,
    ARRAY_DATA_OFFSET,
    ARRAY_FIELDS,
    CALL_CONTEXT,
    CALL_ENTRY,
    ENTRY,
    FAST_ENTRY,
    FAST_FLAGS,
    Buffer,
    Layout,
    vectorcall_eligible,
)
from graphc.backends.llvm.dtypes import I8, I32, I64, PTR
from graphc.backends.llvm.externs import Callee
from graphc.backends.llvm.loops import View
from graphc.backends.llvm.rules import RULES, VIEW_RULES, load_all
from graphc.errors import CompileError
from graphc.graph import Graph
from graphc.ops.leaves import constant_value
from graphc.passes.memory import plan as plan_memory
from graphc.tensor import Tensor
from graphc.types import Dim

LEAVES = ("input", "param", "constant")
#: entries calling more kernels than this are not optimized by LLVM (``optnone``): they
#: are straight-line code that loads pointers and calls kernels, which O3 took 55 ms of an
#: MLP step's compile to improve by well under a microsecond per call
OPTIMIZED_ENTRY_KERNELS = 15


@dataclass
class Lowered:
    """The unoptimized IR of a graph and how to call it."""

    module: ir.Module
    layout: Layout
    #: the node each failure status names (status = position + 1)
    nodes: list[Tensor]
    failures: dict[int, str]


class Context:
    """Lowering state of one entry function; rules use ``builder``, ``dim``, ``kernel``."""

    def __init__(self, module: ir.Module, layout: Layout, blas_ilp64: bool = False) -> None:
        self.module = module
        self.layout = layout
        #: call BLAS with 64-bit ints (``sgemm64``: NumPy's OpenBLAS), else 32-bit ones
        self.blas_ilp64 = blas_ilp64
        fn_type = ir.FunctionType(I32, [PTR, PTR, PTR])
        self.function = ir.Function(module, fn_type, ENTRY)
        self.slots_arg, self.dims_arg, self.fns_arg = self.function.args
        for a in self.function.args:
            a.add_attribute("noalias")
        self.builder = ir.IRBuilder(self.function.append_basic_block("entry"))
        self._dims: dict[str, ir.Value] = {}
        self._slots: dict[int, ir.Value] = {}
        self.node: Tensor | None = None  # the node being lowered
        self.position = 0
        self.failures: dict[int, str] = {}
        self.kernel_count = 0  # kernels made so far; the next is k<kernel_count>

    # -- values the rules need ------------------------------------------------------------------
    def dim(self, d: Dim) -> ir.Value:
        """The size ``d`` as an i64 (a constant when static)."""
        if isinstance(d, int):
            return I64(d)
        if d not in self._dims:
            if d not in self.layout.dims:
                self.layout.dims.append(d)
            b = self.builder
            with b.goto_entry_block():
                ptr = b.gep(self.dims_arg, [I64(self.layout.dims.index(d))], inbounds=True,
                            source_etype=I64)
                self._dims[d] = b.load(ptr, typ=I64, name=_ident(d))
        return self._dims[d]

    def shape(self, shape: Sequence[Dim]) -> tuple[ir.Value, ...]:
        return tuple(self.dim(d) for d in shape)

    def slot_pointer(self, slot: int) -> ir.Value:
        """The array in ``slot`` (one IR value per slot, so kernels can tell when an output
        is one of their inputs)."""
        if slot not in self._slots:
            b = self.builder
            with b.goto_entry_block():
                ptr = b.gep(self.slots_arg, [I64(slot)], inbounds=True, source_etype=PTR)
                self._slots[slot] = b.load(ptr, typ=PTR)
        return self._slots[slot]

    def extern(self, name: str, function_type: ir.FunctionType | None = None) -> ir.Value:
        """The address of an external function (``externs.NAMES``), from ``fns``; callable
        when its ``function_type`` is given."""
        if name not in self.layout.externs:
            self.layout.externs.append(name)
        b = self.builder
        ptr = b.gep(self.fns_arg, [I64(externs.NAMES.index(name))], inbounds=True,
                    source_etype=PTR)
        typ = ir.PointerType(function_type) if function_type is not None else PTR
        return b.load(ptr, typ=typ, name=name)

    def view(self, slot: int, node_or_shape: Any, dtype: str | None = None) -> View:
        shape = node_or_shape.shape if isinstance(node_or_shape, Tensor) else node_or_shape
        dtype = dtype or node_or_shape.dtype
        return loops.contiguous(self.builder, self.slot_pointer(slot), self.shape(shape), dtype)

    def scratch(self, shape: Sequence[Dim], dtype: str) -> View:
        """A temporary buffer live during the current node only (im2col columns, ...)."""
        self.layout.scratch.append(Buffer(tuple(shape), dtype, (self.position, self.position)))
        return self.view(self.layout.slot("scratch", len(self.layout.scratch) - 1),
                         tuple(shape), dtype)

    # -- kernels --------------------------------------------------------------------------------
    def kernel(self, name: str, views: Sequence[View],
               emit: Callable[[ir.IRBuilder, list[View], list[ir.Value]], None], *,
               scalars: Sequence[ir.Value] = (), can_fail: bool = False,
               noalias: bool = True, parallel: ir.Value | None = None) -> None:
        """Emit ``emit`` as an internal function over ``views`` (arrays, ``noalias`` unless
        an array is read and written in place) and ``scalars``, and call it.

        ``emit(builder, views, scalars)`` sees the views as the function's arguments. A
        kernel that ``can_fail`` returns an i32 status: ``ctx.fail_if`` inside it makes the
        entry return this node's failure status. A ``parallel`` kernel covers the range
        ``[start, stop)`` of ``range(parallel)`` given as its last two scalars, and is run
        split across threads when the range is large (``parallel.py``).
        """
        if parallel is not None and can_fail:
            raise ValueError("a parallel kernel cannot fail")
        from graphc.backends.llvm import parallel as threads

        # a range known to run on one thread is a constant in the body, as static sizes are
        static = isinstance(parallel, ir.Constant) and threads.one_thread(parallel)
        bounds = [I64(0), parallel] if static else []
        ranged = parallel is not None and not bounds
        # an array read and written in place (an output over a dying input: one slot, one
        # IR value) is one argument: LLVM then sees element i loaded and stored through the
        # same pointer and vectorizes without a runtime overlap check. As two arguments,
        # that check fails whenever they are equal, and every in-place loop ran scalar
        # (a bias + relu pass over 256x512 floats: 3x slower).
        first_of: dict[int, int] = {}
        for k, v in enumerate(views):
            first_of.setdefault(id(v.ptr), k)
        arg_types: list[ir.Type] = []
        for k, v in enumerate(views):
            arg_types += [PTR] * (first_of[id(v.ptr)] == k) + [I64] * (2 * v.ndim)
        arg_types += [s.type for s in scalars] + [I64, I64] * ranged
        ret = I32 if can_fail else ir.VoidType()
        fn = ir.Function(self.module, ir.FunctionType(ret, arg_types),
                         f"k{self.kernel_count}.{_ident(name)}")
        self.kernel_count += 1
        fn.linkage = "internal"
        # noinline: its static sizes are constants inside it already, and LLVM optimizes
        # forty small functions in half the time of one entry that inlined them all (an
        # MLP training step: 0.30 s instead of 0.60 s; the step runs as fast)
        fn.attributes.add("nounwind")
        fn.attributes.add("noinline")
        args = iter(fn.args)
        local: list[View] = []
        for k, v in enumerate(views):
            first = first_of[id(v.ptr)]
            if first == k:
                ptr = next(args)
                if noalias:  # distinct slots are distinct arrays while a kernel runs
                    ptr.add_attribute("noalias")
            else:
                ptr = local[first].ptr
            # sizes and strides known when compiling stay constants inside the kernel, so
            # rules can reason about them (a stride 0 is a broadcast) before any inlining
            shape = tuple(_static(v, next(args)) for v in v.shape)
            strides = tuple(_static(s, next(args)) for s in v.strides)
            if first != k and _same_layout(views[first], v):
                shape, strides = local[first].shape, local[first].strides
            local.append(View(ptr, shape, strides, v.dtype, v.contiguous))
        local_scalars = [*args, *bounds]
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        emit(b, local, local_scalars)
        if can_fail:
            b.ret(I32(0))
        else:
            b.ret_void()
        call_args: list[ir.Value] = []
        for k, v in enumerate(views):
            call_args += [v.ptr] * (first_of[id(v.ptr)] == k) + [*v.shape, *v.strides]
        call_args += list(scalars)
        if ranged:
            threads.call(self, fn, call_args, parallel)
            return
        result = self.builder.call(fn, call_args)
        if can_fail:
            failed = self.builder.icmp_signed("!=", result, I32(0))
            with self.builder.if_then(failed, likely=False):
                self.builder.ret(I32(self.position + 1))

    def fail_if(self, b: ir.IRBuilder, cond: ir.Value, message: str) -> None:
        """Inside a ``can_fail`` kernel: stop with this node's failure status when ``cond``."""
        self.failures[self.position] = message
        with b.if_then(cond, likely=False):
            b.ret(I32(1))


def _same_layout(a: View, b: View) -> bool:
    """Do two views of one array have the same shape and strides (the same IR values, or
    equal constants), so that one index reaches the same element through both?"""
    def same(x: ir.Value, y: ir.Value) -> bool:
        return x is y or (isinstance(x, ir.Constant) and isinstance(y, ir.Constant)
                          and x.constant == y.constant)
    return len(a.shape) == len(b.shape) and all(
        same(x, y) for x, y in zip((*a.shape, *a.strides), (*b.shape, *b.strides), strict=True))


def _static(caller_value: ir.Value, argument: ir.Value) -> ir.Value:
    return caller_value if isinstance(caller_value, ir.Constant) else argument


def _ident(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", text)[:40] or "v"


def lower(graph: Graph, name: str = "graphc", blas_ilp64: bool | None = None) -> Lowered:
    """Lower ``graph`` (optimized or not) into an IR module with one entry point; BLAS is
    called with 64-bit ints when ``blas_ilp64`` (default: ``externs.ilp64()``, as this
    process resolves BLAS), else with 32-bit ones (an exported library's BLAS)."""
    load_all()
    memory = plan_memory(graph)
    order = memory.order
    module = target.new_module(name)
    layout = Layout()
    ctx = Context(module, layout, externs.ilp64() if blas_ilp64 is None else blas_ilp64)

    for i in graph.inputs:
        layout.inputs.append(Buffer(i.shape, i.dtype))
    for p in graph.params:
        layout.params.append(Buffer(p.shape, p.dtype))
    constant_index: dict[Tensor, int] = {}
    for node in order:  # every slot before the outputs must be counted before they are placed
        if node.op.name == "constant":
            constant_index[node] = len(layout.constants)
            layout.constants.append(np.ascontiguousarray(constant_value(node)))
    roots = list(graph.roots)
    for o in graph.outputs:
        layout.outputs.append(Buffer(o.shape, o.dtype))
    param_index = {p: k for k, p in enumerate(graph.params)}
    for k, (p, v) in enumerate(graph.updates):
        layout.updates.append(Buffer(p.shape, p.dtype))
        layout.update_params.append(param_index[p])
        if v in memory.updates_in_place:
            layout.updates_in_place.add(k)
    root_slots = [layout.slot("outputs", k) for k in range(len(graph.outputs))]
    root_slots += [layout.slot("updates", k) for k in range(len(graph.updates))]

    # the first root a written node is gets its value directly; the others copy it
    direct: dict[Tensor, int] = {}
    for k, r in enumerate(roots):
        if r.op.name not in LEAVES and r.op.name not in VIEW_RULES and r not in direct:
            direct[r] = k
    # an update written in place goes straight into its param's array (and slot)
    in_place_param = dict(memory.updates_in_place)
    for value in in_place_param:
        direct.pop(value, None)

    views: dict[Tensor, View] = {}
    scratch_of: dict[Tensor, int] = {}  # node -> scratch index holding its value
    aliases: dict[Tensor, set[int]] = {}  # node -> scratch buffers its value may view
    input_index = {x: k for k, x in enumerate(graph.inputs)}
    position = {n: k for k, n in enumerate(order)}
    for pos, node in enumerate(order):
        ctx.node, ctx.position = node, pos
        op = node.op.name
        aliases[node] = set()
        if op == "input":
            views[node] = ctx.view(layout.slot("inputs", input_index[node]), node)
        elif op == "param":
            views[node] = ctx.view(layout.slot("params", param_index[node]), node)
        elif op == "constant":
            views[node] = ctx.view(layout.slot("constants", constant_index[node]), node)
        else:
            inputs = [views[i] for i in node.inputs]
            view = VIEW_RULES[op](ctx, node, inputs) if op in VIEW_RULES else None
            if view is not None:
                views[node] = view
                aliases[node] = set().union(*(aliases[i] for i in node.inputs))
            else:
                if op not in RULES:
                    raise CompileError(f"the llvm backend has no lowering for op {op!r}")
                if node in in_place_param:
                    param = in_place_param[node]
                    out = ctx.view(layout.slot("params", param_index[param]), param)
                elif node in direct:
                    out = ctx.view(root_slots[direct[node]], node)
                elif node in memory.out_buffer and memory.out_buffer[node] in scratch_of \
                        and not _reduces_into_its_input(node, memory):
                    buf = scratch_of[memory.out_buffer[node]]
                    scratch_of[node] = buf
                    out = ctx.view(layout.slot("scratch", buf), node)
                else:
                    layout.scratch.append(Buffer(node.shape, node.dtype, (pos, pos)))
                    scratch_of[node] = len(layout.scratch) - 1
                    out = ctx.view(layout.slot("scratch", scratch_of[node]), node)
                if node in scratch_of:
                    aliases[node] = {scratch_of[node]}
                RULES[op](ctx, node, out, inputs)
                views[node] = out
        for k, r in enumerate(roots):
            if r is node and direct.get(node) != k and node not in in_place_param:
                _copy(ctx, views[node], ctx.view(root_slots[k], node))
    ctx.builder.ret(I32(0))
    _object_entry(module, ctx.function, layout)
    if vectorcall_eligible(layout):
        _call_entry(module, ctx.function, layout)
    if ctx.kernel_count > OPTIMIZED_ENTRY_KERNELS:
        for fn in module.functions:
            if fn.name in (ENTRY, FAST_ENTRY, CALL_ENTRY):
                fn.attributes.add("optnone")  # LLVM requires noinline beside it
                fn.attributes.add("noinline")

    # a scratch buffer lives from its first write to the last read of anything viewing it
    last_use = {n: max(memory.last_use.get(n, position[n]), position[n]) for n in order}
    for node, bufs in aliases.items():
        for buf in bufs:
            start, end = layout.scratch[buf].live
            layout.scratch[buf] = Buffer(layout.scratch[buf].shape, layout.scratch[buf].dtype,
                                         (min(start, position[node]), max(end, last_use[node])))
    return Lowered(module, layout, order, ctx.failures)


def _reduces_into_its_input(node: Tensor, memory) -> bool:
    """A fused kernel ending in a reduction, planned to run in place on a dying input.
    The plan means its elementwise stage (the NumPy backend's ``out``), whose element k
    reads input element k only; this backend's kernel writes the reduced result instead,
    sweeping the input while it accumulates, so the writes would overtake the reads."""
    return node.op.name == "fused" and node.attr["reduce"] is not None \
        and node in memory.in_place


def _copy(ctx: Context, src: View, dst: View) -> None:
    from graphc.backends.llvm.rules.elementwise import copy

    copy(ctx, src, dst)


def _object_entry(module: ir.Module, entry: ir.Function, layout: Layout) -> None:
    """``int32 graphc_entry_objects(context, PyArrayObject *a0, ...)``: the entry for the
    runtime's fast path, ``context`` pointing to ``{slots, dims, fns, expected}`` (one
    argument instead of four: each costs ctypes time on every call). It takes the arrays
    themselves (inputs, params, outputs, update values; not constants, which the frame
    holds) and reads their data pointers natively, which costs nothing next to
    ``arr.ctypes.data`` in Python (≈1.5 µs each).

    When ``expected`` is not null (``[&PyArray_Type, descr of input 0, ...]``, addresses only
    known at run time) and every input has a static shape, each input is first checked to be
    exactly an ndarray of the declared dtype object and shape, C-contiguous and aligned; if
    one is not, nothing runs and the status is ``ARGUMENTS_DIFFER`` (the runtime then takes
    its checking path). That keeps the per-call checks of the common case out of Python."""
    slots_of = [*range(layout.slot("constants", 0)),
                *range(layout.slot("outputs", 0), layout.slot("scratch", 0))]
    fn = ir.Function(module, ir.FunctionType(I32, [PTR] * (1 + len(slots_of))), FAST_ENTRY)
    context, *arrays = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    slots, dims, fns, expected = (b.load(b.gep(context, [I64(k)], source_etype=PTR), typ=PTR)
                                  for k in range(4))
    run = fn.append_basic_block("run")
    static = all(isinstance(d, int) for buf in layout.inputs for d in buf.shape)
    if static and layout.inputs:
        differ = fn.append_basic_block("arguments_differ")
        b.cbranch(b.icmp_unsigned("!=", expected, ir.Constant(PTR, None)),
                  fn.append_basic_block("check"), run)
        b.position_at_end(fn.blocks[-1])
        array_type = b.load(expected, typ=I64)
        for k, buf in enumerate(layout.inputs):
            _check_array(b, arrays[k], buf, array_type,
                         b.load(b.gep(expected, [I64(k + 1)], source_etype=I64), typ=I64),
                         differ)
        b.branch(run)
        b.position_at_end(differ)
        b.ret(I32(ARGUMENTS_DIFFER))
    else:
        b.branch(run)
    b.position_at_end(run)
    for slot, array in zip(slots_of, arrays, strict=True):
        data = b.load(b.gep(array, [I64(ARRAY_DATA_OFFSET)], source_etype=I8), typ=PTR)
        b.store(data, b.gep(slots, [I64(slot)], source_etype=PTR))
    b.ret(b.call(entry, [slots, dims, fns]))


def _check_array(b: ir.IRBuilder, obj: ir.Value, buf: Buffer, array_type: ir.Value,
                 descr: ir.Value, differ: ir.Block) -> None:
    """Branch to ``differ`` unless ``obj`` is an ndarray (the exact type: its fields are only
    read then) of dtype object ``descr``, ``buf``'s shape, C-contiguous and aligned."""
    def read(name: str, ty: ir.Type, base: ir.Value = obj) -> ir.Value:
        return b.load(b.gep(base, [I64(ARRAY_FIELDS[name])], source_etype=I8), typ=ty)

    def require(condition: ir.Value, label: str) -> None:
        good = b.function.append_basic_block(label)
        b.cbranch(condition, good, differ)
        b.position_at_end(good)

    require(b.icmp_unsigned("==", read("type", I64), array_type), "is_ndarray")
    flags = b.and_(read("flags", I32), I32(FAST_FLAGS))
    fits = b.and_(b.and_(b.icmp_unsigned("==", read("descr", I64), descr),
                         b.icmp_signed("==", read("nd", I32), I32(len(buf.shape)))),
                  b.icmp_unsigned("==", flags, I32(FAST_FLAGS)))
    require(fits, "dtype_rank_flags")  # the shape array has nd entries: read it only now
    if buf.shape:
        shape = read("dimensions", PTR)
        same = [b.icmp_signed("==", b.load(b.gep(shape, [I64(j)], source_etype=I64), typ=I64),
                              I64(size)) for j, size in enumerate(buf.shape)]
        require(functools.reduce(b.and_, same), "shape")


def _call_entry(module: ir.Module, entry: ir.Function, layout: Layout) -> None:
    """``PyObject *graphc_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs)``: a
    ``METH_FASTCALL`` function the runtime wraps as a Python builtin, so a call costs what a
    builtin call costs instead of a ctypes call. ``args`` are the inputs then the params;
    ``self`` is an int64 array holding ``CALL_CONTEXT`` (C-API addresses only known at run
    time). It checks every argument as the fast entry does, allocates the output by calling
    ``numpy.empty(shape, dtype)``, runs the schedule with the GIL held, and returns the output.
    On anything else (an argument not as declared, a failure inside the schedule) it returns a
    new reference to the ``fallback`` object, and the runtime takes its checking path, which
    reports the error. NULL (with NumPy's exception set) only if allocating fails."""
    n_args = len(layout.inputs) + len(layout.params)
    fn = ir.Function(module, ir.FunctionType(PTR, [PTR, PTR, I64]), CALL_ENTRY)
    self_obj, args, nargs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    context = b.load(b.gep(self_obj, [I64(ARRAY_DATA_OFFSET)], source_etype=I8), typ=PTR)
    field = {name: b.load(b.gep(context, [I64(k)], source_etype=I64), typ=PTR)
             for k, name in enumerate(CALL_CONTEXT)}
    slots, dims, fns, expected = (
        b.load(b.gep(field["entry_context"], [I64(k)], source_etype=PTR), typ=PTR)
        for k in range(4))
    fallback = fn.append_basic_block("fallback")
    check = fn.append_basic_block("check")
    b.cbranch(b.icmp_signed("==", nargs, I64(n_args)), check, fallback)
    b.position_at_end(check)
    objects = [b.load(b.gep(args, [I64(k)], source_etype=PTR), typ=PTR) for k in range(n_args)]
    array_type = b.load(expected, typ=I64)
    for k, (obj, buf) in enumerate(zip(objects, [*layout.inputs, *layout.params], strict=True)):
        descr = b.load(b.gep(expected, [I64(k + 1)], source_etype=I64), typ=I64)
        _check_array(b, obj, buf, array_type, descr, fallback)
    # out = numpy.empty(shape, dtype)
    vectorcall_type = ir.FunctionType(PTR, [PTR, PTR, I64, PTR])
    out = b.call(Callee(field["PyObject_Vectorcall"], vectorcall_type),
                 [field["empty"], field["empty_args"], I64(2), ir.Constant(PTR, None)])
    allocated, failed = fn.append_basic_block("allocated"), fn.append_basic_block("no_memory")
    b.cbranch(b.icmp_unsigned("!=", out, ir.Constant(PTR, None)), allocated, failed)
    b.position_at_end(failed)
    b.ret(ir.Constant(PTR, None))
    b.position_at_end(allocated)
    for slot, obj in zip([*range(n_args), layout.slot("outputs", 0)], [*objects, out],
                         strict=True):
        data = b.load(b.gep(obj, [I64(ARRAY_DATA_OFFSET)], source_etype=I8), typ=PTR)
        b.store(data, b.gep(slots, [I64(slot)], source_etype=PTR))
    status = b.call(entry, [slots, dims, fns])
    done, undo = fn.append_basic_block("done"), fn.append_basic_block("undo")
    b.cbranch(b.icmp_signed("==", status, I32(0)), done, undo)
    b.position_at_end(done)
    b.ret(out)
    ref_type = ir.FunctionType(ir.VoidType(), [PTR])
    b.position_at_end(undo)
    b.call(Callee(field["Py_DecRef"], ref_type), [out])
    b.branch(fallback)
    b.position_at_end(fallback)
    b.call(Callee(field["Py_IncRef"], ref_type), [field["fallback"]])
    b.ret(field["fallback"])
