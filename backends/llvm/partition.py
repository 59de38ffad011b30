"""A lowered module cut into parts that LLVM optimizes and compiles at the same time.

LLVM spends ~0.35 s on an MLP training step's 41 functions, on one core: optimizing
and generating code for a module is serial. The kernels are independent functions (each
``noinline``, its static sizes constants in its body), so the module is cut between
them: part 0 keeps the entry points and some kernels, every other part the rest, and
each part declares the kernels it calls but does not hold. Kernels become ``hidden``
(visible to the other parts' code, never exported from a library). Internal helpers
(vector math, scalar functions) are copied into every part, and LLVM drops the copies
no kernel of a part calls. ``target.compile_parts`` compiles the parts on threads of
their own, and the objects are loaded (or linked) together.

What a cut loses is LLVM's view across parts; nothing there mattered: the entry calls
each kernel once, and kernels never call each other except a kernel's thread worker,
which stays with it. A module with mutable globals (random ops' call counters) stays
whole, so no global is ever duplicated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import llvmlite.ir as ir

from graphc.backends.llvm import host

#: kernels (``k<n>.<op>``, and their ``k<n>.<op>.worker``) are cut at their number
_KERNEL = re.compile(r"k(\d+)\.")
#: functions per part below which a cut costs more than it saves (threads, repeated helpers)
MIN_KERNELS_PER_PART = 8
#: parts never outnumber this: beyond it the entry's part dominates anyway
MAX_PARTS = 4


def part_count(module: ir.Module) -> int:
    """How many parts ``module`` is compiled in: one per CPU this process may use, at
    most ``MAX_PARTS``, and few enough that each holds ``MIN_KERNELS_PER_PART`` kernels."""
    if any(not g.global_constant for g in module.global_values
           if isinstance(g, ir.GlobalVariable)):
        return 1
    return max(1, min(host.available_cpus(), MAX_PARTS,
                      len(_kernels(module)) // MIN_KERNELS_PER_PART))


def split(module: ir.Module, parts: int) -> list[str]:
    """The IR texts of ``module`` cut into ``parts`` (``[str(module)]`` for one part).

    Kernels are dealt to the lightest part, heaviest first (``_cost``); part 0 starts with
    the weight of the entry points it always holds."""
    if parts <= 1:
        return [str(module)]
    kernels = _kernels(module)
    entries = [f for f in _defined(module) if f.linkage not in ("internal", "private")]
    load = [sum(map(_cost, entries))] + [0] * (parts - 1)
    owner: dict[ir.Function, int] = {}
    for group in sorted(kernels.values(), key=lambda g: -sum(map(_cost, g))):
        part = min(range(parts), key=load.__getitem__)
        load[part] += sum(map(_cost, group))
        owner.update(dict.fromkeys(group, part))
    texts = []
    with _hidden(list(owner)):
        for part in range(parts):
            others = [f for f, p in owner.items() if p != part]
            if part:
                others += entries
            with _declared(others):
                texts.append(str(module))
    return texts


def _defined(module: ir.Module) -> list[ir.Function]:
    return [f for f in module.functions if not f.is_declaration]


def _kernels(module: ir.Module) -> dict[int, list[ir.Function]]:
    """Kernel functions by number (a kernel with its thread worker)."""
    groups: dict[int, list[ir.Function]] = {}
    for f in _defined(module):
        if f.linkage == "internal" and (match := _KERNEL.match(f.name)):
            groups.setdefault(int(match.group(1)), []).append(f)
    return groups


#: what a kernel costs LLVM beyond its instructions, in instructions: its loops are
#: vectorized, interleaved and given remainders, so a 40-instruction kernel compiles as long
#: as ~240 instructions of straight-line entry code (measured on an MLP step: 20-50 ms per
#: kernel, 57 ms for an entry of 440 instructions)
KERNEL_COST = 200


def _cost(fn: ir.Function) -> int:
    """An estimate of LLVM's time on ``fn``, in instructions (an ``optnone`` function, not
    optimized and selected by the fast instruction selector, costs about half as much)."""
    size = sum(len(block.instructions) for block in fn.blocks)
    if "optnone" in fn.attributes:
        size //= 2
    return size + KERNEL_COST * bool(_KERNEL.match(fn.name))


@contextmanager
def _hidden(functions: list[ir.Function]) -> Iterator[None]:
    """Functions printed as ``hidden`` (external to the object, not to a library)."""
    for f in functions:
        f.linkage = "hidden"  # llvmlite prints the word where linkage and visibility go
    try:
        yield
    finally:
        for f in functions:
            f.linkage = "internal"


@contextmanager
def _declared(functions: list[ir.Function]) -> Iterator[None]:
    """Functions printed as declarations (their bodies set aside)."""
    bodies = {f: f.blocks for f in functions}
    for f in functions:
        f.blocks = []
    try:
        yield
    finally:
        for f, blocks in bodies.items():
            f.blocks = blocks
