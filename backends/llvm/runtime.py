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
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.backends.llvm import dims as dim_rules
from graphc.backends.llvm import externs
from graphc.backends.llvm.lower import ARRAY_DATA_OFFSET, Buffer, Layout
from graphc.errors import GraphcError

ALIGN = 64  # bytes: a cache line, and more than any vector load needs
ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _data_offset_holds() -> bool:
    """Does this NumPy keep an array's data pointer where the object entry reads it?"""
    probe = np.arange(3.0)
    return ctypes.c_void_p.from_address(id(probe) + ARRAY_DATA_OFFSET).value == \
        probe.ctypes.data


OBJECT_ENTRY_OK = _data_offset_holds()


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
                 constants: Sequence[np.ndarray]) -> None:
        self.dims = dims
        #: (shape, dtype) of each output, for the arrays each call returns
        self.output_specs = [(shape_of(b.shape, dims), np.dtype(b.dtype)) for b in layout.outputs]
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


class Runtime:
    """The loaded entry point of one compiled graph and its frames."""

    def __init__(self, address: int, layout: Layout, nodes: Sequence[Any],
                 failures: dict[int, str], keep_alive: Any, objects_address: int = 0) -> None:
        self._entry = ENTRY_TYPE(address)
        n_arrays = (len(layout.inputs) + len(layout.params) + len(layout.outputs)
                    + len(layout.updates))
        self._objects_entry = None
        if objects_address and OBJECT_ENTRY_OK:
            self._objects_entry = ctypes.CFUNCTYPE(
                ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                *[ctypes.py_object] * n_arrays)(objects_address)
        #: no symbolic dims: one frame per thread, and the fast path of ``call_static``
        self.static = not any(isinstance(d, str) for b in layout.inputs for d in b.shape)
        self._input_specs = [(np.dtype(b.dtype), tuple(b.shape)) for b in layout.inputs]
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

    def frame(self, dims: dict[str, int]) -> Frame:
        frames = getattr(self._local, "frames", None)
        if frames is None:
            frames = self._local.frames = {}
        key = tuple(sorted(dims.items()))
        frame = frames.get(key)
        if frame is None:
            frame = frames[key] = Frame(self.layout, dict(dims), self._constants)
        return frame

    def run(self, args: list[np.ndarray], params: list[np.ndarray],
            dims: dict[str, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Run on checked arguments (any strides: copied to contiguous when needed)."""
        args = [a if a.flags.c_contiguous and a.flags.aligned else _contiguous(a) for a in args]
        return self._call(self.frame(dims), args, params)

    def call_static(self, args: Sequence[Any], params: list[np.ndarray],
                    ndarray: type = np.ndarray, empty: Any = np.empty) -> Any:
        """The fast path for graphs without symbolic dims: if every argument is already a
        contiguous, aligned array of exactly the declared dtype and shape, run and return
        ``(outputs, updates)``; otherwise ``None`` (the caller takes the checking path).
        Every step here is on the per-call path: this is what a call costs (about 1 µs)."""
        if len(args) != len(self._input_specs):
            return None
        for a, (dtype, shape) in zip(args, self._input_specs, strict=False):  # length checked
            if a.__class__ is not ndarray or a.dtype is not dtype or a.shape != shape:
                return None
            flags = a.flags
            if not (flags.c_contiguous and flags.aligned):
                return None
        entry = self._objects_entry
        if entry is None or self.layout.updates:
            return self._call(self.frame({}), args, params)
        try:
            frame = self._local.static
        except AttributeError:
            frame = self._local.static = self.frame({})
        outputs = [empty(shape, dtype) for shape, dtype in frame.output_specs]
        status = entry(frame.slots_pointer, frame.dims_pointer, self._fns_pointer, *args,
                       *params, *outputs)
        if status:
            self._raise(status - 1, args)
        return outputs, []

    def _call(self, frame: Frame, args: Sequence[np.ndarray],
              params: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        outputs = [np.empty(shape, dtype) for shape, dtype in frame.output_specs]
        updated = [params[self.layout.update_params[k]] if k in self.layout.updates_in_place
                   else np.empty(frame.update_shapes[k], buf.dtype)  # the param's own array
                   for k, buf in enumerate(self.layout.updates)]
        if self._objects_entry is not None:
            status = self._objects_entry(frame.slots_pointer, frame.dims_pointer,
                                         self._fns_pointer, *args, *params, *outputs, *updated)
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


def _contiguous(a: np.ndarray) -> np.ndarray:
    """A C-contiguous, aligned copy (``ascontiguousarray`` keeps a misaligned buffer)."""
    copy = np.ascontiguousarray(a)
    return copy if copy.flags.aligned else copy.copy()
