"""What generated code and the runtime agree on, with no LLVM in sight.

The names of the entry points, the fields of NumPy's array struct the fast entry
reads, and the ``Layout`` of the ``slots`` array. The runtime, the disk cache and a
library loaded from it need only this module, so running cached code never imports
llvmlite (``lower`` builds the code these describe).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphc.types import Dim

ENTRY = "graphc_entry"
FAST_ENTRY = "graphc_entry_objects"
#: byte offsets of the ``PyArrayObject_fields`` the fast entry reads (after ``PyObject_HEAD``,
#: whose second word is the type); the runtime checks them on live arrays before using it
ARRAY_FIELDS = {"type": 8, "data": 16, "nd": 24, "dimensions": 32, "descr": 56, "flags": 64}
ARRAY_DATA_OFFSET = ARRAY_FIELDS["data"]
#: NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED: what the fast entry needs of an input
FAST_FLAGS = 0x1 | 0x100
#: the fast entry's status when an input is not exactly as declared (nothing ran)
ARGUMENTS_DIFFER = -1
#: a Python-callable entry (``METH_FASTCALL``) for small graphs with one output and no
#: updates; present only where ``vectorcall_eligible``
CALL_ENTRY = "graphc_call"
#: the fields of its context (an int64 array), in order
CALL_CONTEXT = ("entry_context", "empty", "empty_args", "fallback", "PyObject_Vectorcall",
                "Py_IncRef", "Py_DecRef")


@dataclass(frozen=True)
class Buffer:
    """An array the runtime provides: its shape (ints and dim names) and dtype."""

    shape: tuple[Dim, ...]
    dtype: str
    #: scratch only: the positions of its first write and last read (views included)
    live: tuple[int, int] = (0, 0)


@dataclass
class Layout:
    """What each slot of the entry's ``slots`` argument holds."""

    inputs: list[Buffer] = field(default_factory=list)
    params: list[Buffer] = field(default_factory=list)
    constants: list[np.ndarray] = field(default_factory=list)
    outputs: list[Buffer] = field(default_factory=list)
    updates: list[Buffer] = field(default_factory=list)
    scratch: list[Buffer] = field(default_factory=list)
    #: symbolic dim names, in the order of the entry's ``dims`` argument
    dims: list[str] = field(default_factory=list)
    #: indices of updates written straight into their param's array
    updates_in_place: set[int] = field(default_factory=set)
    #: the param (index into ``params``) each update assigns
    update_params: list[int] = field(default_factory=list)
    #: the external functions (``externs.NAMES``) the code calls
    externs: list[str] = field(default_factory=list)

    def slot(self, group: str, index: int) -> int:
        before = {"inputs": 0, "params": 1, "constants": 2, "outputs": 3, "updates": 4,
                  "scratch": 5}[group]
        groups = [self.inputs, self.params, self.constants, self.outputs, self.updates]
        return sum(len(g) for g in groups[:before]) + index

    @property
    def n_slots(self) -> int:
        return self.slot("scratch", len(self.scratch))


def vectorcall_eligible(layout: Layout) -> bool:
    """Does the graph get a ``CALL_ENTRY``: static shapes, one output, no updates?"""
    return (len(layout.outputs) == 1 and not layout.updates
            and all(isinstance(d, int) for group in (layout.inputs, layout.params, layout.outputs)
                    for buf in group for d in buf.shape))
