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
from graphc.backends.llvm.lower import Buffer, Layout
from graphc.errors import GraphcError

ALIGN = 64  # bytes: a cache line, and more than any vector load needs
ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


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
        self.output_shapes = [shape_of(b.shape, dims) for b in layout.outputs]
        self.output_dtypes = [np.dtype(b.dtype) for b in layout.outputs]
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


class Runtime:
    """The loaded entry point of one compiled graph and its frames."""

    def __init__(self, address: int, layout: Layout, nodes: Sequence[Any],
                 failures: dict[int, str], keep_alive: Any) -> None:
        self._entry = ENTRY_TYPE(address)
        self._keep_alive = keep_alive  # the JIT engine owning the code
        self.layout = layout
        self._nodes = nodes
        self._failures = failures
        self._constants = [np.ascontiguousarray(c) for c in layout.constants]
        self._local = threading.local()
        self._fns = (ctypes.c_void_p * max(1, len(externs.NAMES)))(*externs.addresses())
        self._fns_pointer = ctypes.addressof(self._fns)
        n = layout
        self._first_output = n.slot("outputs", 0)
        self._first_update = n.slot("updates", 0)
        self._first_param = n.slot("params", 0)

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
        frame = self.frame(dims)
        slots = frame.slots
        keep = []  # contiguous copies must outlive the call
        for k, a in enumerate(args):
            if not (a.flags.c_contiguous and a.flags.aligned):
                a = np.ascontiguousarray(a)
                if not a.flags.aligned:
                    a = a.copy()
                keep.append(a)
            slots[k] = a.ctypes.data
        for k, p in enumerate(params):
            slots[self._first_param + k] = p.ctypes.data
        outputs = [np.empty(s, d) for s, d in zip(frame.output_shapes, frame.output_dtypes,
                                                    strict=True)]
        for k, o in enumerate(outputs):
            slots[self._first_output + k] = o.ctypes.data
        updated = []
        for k, buf in enumerate(self.layout.updates):
            if k in self.layout.updates_in_place:  # written into the param's own array
                value = params[self.layout.update_params[k]]
            else:
                value = np.empty(frame.update_shapes[k], buf.dtype)
                slots[self._first_update + k] = value.ctypes.data
            updated.append(value)
        status = self._entry(ctypes.addressof(slots), frame.dims_pointer, self._fns_pointer)
        if status:
            self._raise(status - 1, args)
        return outputs, updated

    def _raise(self, position: int, args: Sequence[np.ndarray]) -> None:
        node = self._nodes[position]
        message = self._failures.get(position, "failed")
        where = f"\n  built at {node.location}" if node.location else ""
        inputs = ", ".join(str(i.type) for i in node.inputs)
        raise GraphcError(f"{node.op.name}: {message}\n  inputs: ({inputs}){where}")
