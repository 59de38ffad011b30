"""Calling compiled code: buffers per shape signature, one native call per user call.

A ``Frame`` holds everything one shape signature needs: the scratch arena for
intermediates (sized from the dims, laid out so that buffers whose lifetimes do
not overlap share memory), the ``slots`` pointer array with the fixed pointers
(constants, scratch) filled in, and the dims array. Frames are cached per thread,
so several Python threads can call one compiled function at once (ctypes releases
the GIL during the call).
"""

from __future__ import annotations

import ctypes
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.backends.llvm import dims as dim_rules
from graphc.backends.llvm import externs
from graphc.backends.llvm.abi import (
    ARGUMENTS_DIFFER,
    ARRAY_FIELDS,
    CALL_CONTEXT,
    Buffer,
    Layout,
)
from graphc.errors import GraphcError

ALIGN = 64  # bytes: a cache line, and more than any vector load needs
ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _array_fields_hold() -> bool:
    """Does this NumPy (and CPython build) keep an array's fields where the fast entry reads
    them? Checked on arrays of several ranks, dtypes and flags."""
    def read(a: np.ndarray, name: str, ctype: Any) -> Any:
        return ctype.from_address(id(a) + ARRAY_FIELDS[name]).value

    probes = [np.arange(3.0), np.zeros((2, 5), np.float32)[:, ::2], np.array(2.5, np.int8),
              np.ones((4, 1, 3), np.int64)]
    for a in probes:
        shape = ctypes.cast(read(a, "dimensions", ctypes.c_void_p) or 0,
                            ctypes.POINTER(ctypes.c_int64))
        if not (read(a, "type", ctypes.c_void_p) == id(np.ndarray)
                and read(a, "data", ctypes.c_void_p) == a.ctypes.data
                and read(a, "nd", ctypes.c_int32) == a.ndim
                and all(shape[j] == n for j, n in enumerate(a.shape))
                and read(a, "descr", ctypes.c_void_p) == id(a.dtype)
                and read(a, "flags", ctypes.c_int32) & 0xFFFF == a.flags.num & 0xFFFF):
            return False
    return True


OBJECT_ENTRY_OK = _array_fields_hold()


def shape_of(shape: Sequence[int | str], dims: dict[str, int]) -> tuple[int, ...]:
    return tuple(dim_rules.resolve(d, dims) for d in shape)


def arena_layout(buffers: Sequence[Buffer], dims: dict[str, int]) -> tuple[list[int], int]:
    """Byte offsets for ``buffers`` in one arena, and its size: buffers alive at the same
    time never overlap; others may share memory (largest placed first, lowest fit)."""
    sizes = [max(1, int(np.prod(shape_of(b.shape, dims), dtype=np.int64))) *
             np.dtype(b.dtype).itemsize for b in buffers]
    sizes = [-(-s // ALIGN) * ALIGN for s in sizes]
    placed: list[tuple[int, int, int]] = []  # (offset, end, buffer index)
    offsets = [0] * len(buffers)
    for k in sorted(range(len(buffers)), key=lambda j: -sizes[j]):
        start, end = buffers[k].live
        busy = sorted((o, e) for o, e, j in placed
                      if not (buffers[j].live[1] < start or end < buffers[j].live[0]))
        offset = 0
        for o, e in busy:
            if offset + sizes[k] <= o:
                break
            offset = max(offset, e)
        offsets[k] = offset
        placed.append((offset, offset + sizes[k], k))
    return offsets, max((e for _, e, _ in placed), default=0)


class Frame:
    """The buffers of one shape signature on one thread."""

    def __init__(self, layout: Layout, dims: dict[str, int],
                 constants: Sequence[np.ndarray], fns: int = 0, expected: int = 0) -> None:
        self.dims = dims
        #: (shape, dtype) of each output, for the arrays each call returns
        self.output_specs = [(shape_of(b.shape, dims), np.dtype(b.dtype)) for b in layout.outputs]
        #: large outputs of the last call, handed out again once nobody else holds them
        self._returned: list[np.ndarray | None] = [
            None if np.prod(shape, dtype=np.int64) * dtype.itemsize < RECYCLE_BYTES else EMPTY
            for shape, dtype in self.output_specs]
        self.update_shapes = [shape_of(b.shape, dims) for b in layout.updates]
        offsets, size = arena_layout(layout.scratch, dims)
        self.arena = np.empty(size + ALIGN, np.uint8)
        base = -self.arena.ctypes.data % ALIGN + self.arena.ctypes.data
        self.slots = (ctypes.c_void_p * max(1, layout.n_slots))()
        for k, array in enumerate(constants):
            self.slots[layout.slot("constants", k)] = array.ctypes.data
        for k, offset in enumerate(offsets):
            self.slots[layout.slot("scratch", k)] = base + offset
        self.dims_array = np.array([dim_rules.resolve(d, dims) for d in layout.dims] or [0],
                                   np.int64)
        self.dims_pointer = self.dims_array.ctypes.data
        self.slots_pointer = ctypes.addressof(self.slots)
        # the fast entry's context {slots, dims, fns, expected}: with the input checks (when
        # ``expected`` is given) and without (for arguments already checked)
        self._contexts = [(ctypes.c_void_p * 4)(self.slots_pointer, self.dims_pointer, fns, e)
                          for e in (expected or None, None)]
        self.checked_context, self.unchecked_context = map(ctypes.addressof, self._contexts)

    def new_outputs(self) -> list[np.ndarray]:
        """Arrays for this call's outputs. A large one is the array the previous call
        returned if that has no other reference left (and no weak reference): a fresh one
        would be mapped from the OS and fault in page by page, which for a 64 MiB output
        costs as much as copying it. No caller can tell: nobody holds the old array."""
        outputs = []
        returned = self._returned
        for k, (shape, dtype) in enumerate(self.output_specs):
            last = returned[k]
            if last is None:  # small: NumPy's allocator is fast
                outputs.append(np.empty(shape, dtype))
                continue
            # references: the list, ``last``, getrefcount's argument
            if sys.getrefcount(last) != 3 or weakref.getweakrefcount(last):
                last = returned[k] = np.empty(shape, dtype)
            outputs.append(last)
        return outputs


class Runtime:
    """The loaded entry point of one compiled graph and its frames."""

    def __init__(self, address: int, layout: Layout, nodes: Sequence[Any],
                 failures: dict[int, str], keep_alive: Any, objects_address: int = 0,
                 call_address: int = 0) -> None:
        self._entry = ENTRY_TYPE(address)
        n_arrays = (len(layout.inputs) + len(layout.params) + len(layout.outputs)
                    + len(layout.updates))
        self._objects_entry = None
        if objects_address and OBJECT_ENTRY_OK:
            self._objects_entry = ctypes.CFUNCTYPE(
                ctypes.c_int32, ctypes.c_void_p, *[ctypes.py_object] * n_arrays)(objects_address)
        #: no symbolic dims: one frame per thread, and the fast path of ``call_static``
        self.static = not any(isinstance(d, str) for b in layout.inputs for d in b.shape)
        self._n_inputs = len(layout.inputs)
        # what the fast entry compares each input with: the ndarray type and the dtype
        # objects (NumPy's builtin dtypes are singletons)
        self._expected = (ctypes.c_int64 * (1 + len(layout.inputs) + len(layout.params)))(
            id(np.ndarray), *(id(np.dtype(b.dtype)) for b in [*layout.inputs, *layout.params]))
        self._expected_pointer = ctypes.addressof(self._expected)
        self._keep_alive = keep_alive  # the JIT engine owning the code
        self.layout = layout
        self._nodes = nodes
        self._failures = failures
        self._constants = [np.ascontiguousarray(c) for c in layout.constants]
        self._local = threading.local()
        fns = externs.addresses(layout.externs)
        self._fns = (ctypes.c_void_p * len(fns))(*fns)
        self._fns_pointer = ctypes.addressof(self._fns)
        self._first_output = layout.slot("outputs", 0)
        #: ``fn(*inputs, *params)`` as a Python builtin, for small graphs (else None): the
        #: output, or ``FALLBACK`` when the checking path must run
        self.vectorcall = None
        if call_address and OBJECT_ENTRY_OK and _small(layout):
            self.vectorcall = self._builtin(call_address)

    def _builtin(self, address: int) -> Any:
        """Wrap the native ``CALL_ENTRY`` as a builtin function bound to its context. It runs
        with the GIL held, on a frame of its own (one at a time, then)."""
        frame = Frame(self.layout, {}, self._constants, self._fns_pointer,
                      self._expected_pointer)
        (shape, dtype), = frame.output_specs
        empty_args = (ctypes.py_object * 2)(shape, dtype)
        api = ctypes.pythonapi
        fields = {"entry_context": frame.checked_context, "empty": id(np.empty),
                  "empty_args": ctypes.addressof(empty_args), "fallback": id(FALLBACK),
                  **{name: ctypes.cast(getattr(api, name), ctypes.c_void_p).value
                     for name in ("PyObject_Vectorcall", "Py_IncRef", "Py_DecRef")}}
        context = np.array([fields[name] for name in CALL_CONTEXT], np.uint64).view(np.int64)
        method = _MethodDef(b"graphc_call", address, METH_FASTCALL, None)
        # everything the native code points into lives as long as the runtime
        self._call_keep_alive = (frame, empty_args, context, method)
        return _new_builtin(ctypes.byref(method), context, None)

    def frame(self, dims: dict[str, int]) -> Frame:
        frames = getattr(self._local, "frames", None)
        if frames is None:
            frames = self._local.frames = {}
        key = tuple(sorted(dims.items()))
        frame = frames.get(key)
        if frame is None:
            frame = frames[key] = Frame(self.layout, dict(dims), self._constants,
                                        self._fns_pointer, self._expected_pointer)
        return frame

    def run(self, args: list[np.ndarray], params: list[np.ndarray],
            dims: dict[str, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Run on checked arguments (any strides: copied to contiguous when needed)."""
        args = [a if a.flags.c_contiguous and a.flags.aligned else _contiguous(a) for a in args]
        return self._call(self.frame(dims), args, params)

    def call_static(self, args: Sequence[Any], params: list[np.ndarray]) -> Any:
        """The fast path for graphs without symbolic dims: run and return ``(outputs,
        updates)`` if every argument is already an ndarray of exactly the declared dtype and
        shape, C-contiguous and aligned (checked in native code, before anything runs);
        otherwise ``None``, and the caller takes the checking path. Every step here is on
        the per-call path: this is what a call costs."""
        entry = self._objects_entry
        if entry is None or len(args) != self._n_inputs:
            return None
        try:
            frame = self._local.static
        except AttributeError:
            frame = self._local.static = self.frame({})
        outputs = frame.new_outputs()
        updated = self._update_arrays(frame, params) if self.layout.updates else []
        status = entry(frame.checked_context, *args, *params, *outputs, *updated)
        if status:
            if status == ARGUMENTS_DIFFER:
                return None
            self._raise(status - 1, args)
        return outputs, updated

    def _update_arrays(self, frame: Frame, params: list[np.ndarray]) -> list[np.ndarray]:
        """Where each update's new value goes: the param's own array when it is updated in
        place, else a new array."""
        layout = self.layout
        return [params[layout.update_params[k]] if k in layout.updates_in_place
                else np.empty(frame.update_shapes[k], buf.dtype)
                for k, buf in enumerate(layout.updates)]

    def _call(self, frame: Frame, args: Sequence[np.ndarray],
              params: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        outputs = [np.empty(shape, dtype) for shape, dtype in frame.output_specs]
        updated = self._update_arrays(frame, params)
        if self._objects_entry is not None:  # checked arguments: no native checks (None)
            status = self._objects_entry(frame.unchecked_context, *args, *params, *outputs,
                                         *updated)
        else:
            slots = frame.slots
            for k, a in enumerate([*args, *params]):
                slots[k] = a.ctypes.data
            for k, a in enumerate([*outputs, *updated]):
                slots[self._first_output + k] = a.ctypes.data
            status = self._entry(frame.slots_pointer, frame.dims_pointer, self._fns_pointer)
        if status:
            self._raise(status - 1, args)
        return outputs, updated

    def _raise(self, position: int, args: Sequence[np.ndarray]) -> None:
        node = self._nodes[position]
        message = self._failures.get(position, "failed")
        where = f"\n  built at {node.location}" if node.location else ""
        inputs = ", ".join(str(i.type) for i in node.inputs)
        raise GraphcError(f"{node.op.name}: {message}\n  inputs: ({inputs}){where}")


#: outputs this large are recycled (``Frame.new_outputs``); below, NumPy's allocator is fast
RECYCLE_BYTES = 1 << 20
#: a placeholder for a recyclable output before the first call: never handed out
EMPTY = np.empty(0)
#: what ``Runtime.vectorcall`` returns when its arguments need the checking path
FALLBACK = object()
#: the largest graph (bytes of inputs, params, output and scratch) ``vectorcall`` runs: it
#: holds the GIL, which for this much work costs other threads a few microseconds at most
VECTORCALL_BYTES = 1 << 16
METH_FASTCALL = 0x0080


class _MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


_new_builtin = ctypes.pythonapi.PyCFunction_NewEx
_new_builtin.restype = ctypes.py_object
_new_builtin.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]


def _small(layout: Layout) -> bool:
    buffers = [*layout.inputs, *layout.params, *layout.outputs, *layout.scratch]
    return sum(int(np.prod(b.shape, dtype=np.int64)) * np.dtype(b.dtype).itemsize
               for b in buffers) <= VECTORCALL_BYTES


def _contiguous(a: np.ndarray) -> np.ndarray:
    """A C-contiguous, aligned copy (``ascontiguousarray`` keeps a misaligned buffer)."""
    copy = np.ascontiguousarray(a)
    return copy if copy.flags.aligned else copy.copy()
