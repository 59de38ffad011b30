"""``GRAPHC_DEBUG=1..4``: what the llvm backend compiled, on stderr.

1. one line per compile: graph size, kernels, compile time, cache hit or miss;
2. and one line per node of the schedule: position, op, shape, dtype, its kernels;
3. and the optimized IR;
4. and the host assembly.

The level is read at every compile, so a test (or a notebook) can switch it on for one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from graphc.types import format_shape

if TYPE_CHECKING:
    from graphc.backends.llvm.compiled import LlvmCompiled
    from graphc.backends.llvm.lowering import Lowered

ENV = "GRAPHC_DEBUG"
LEAVES = ("input", "param", "constant")


def level() -> int:
    """The debug level from ``$GRAPHC_DEBUG`` (0 when unset or not a number)."""
    try:
        return max(0, int(os.environ.get(ENV, "0") or 0))
    except ValueError:
        return 0


def kernels(lowered: Lowered) -> list[str]:
    """The kernel functions of a lowered module, in the order they were made."""
    return [f.name for f in lowered.module.functions
            if not f.is_declaration and f.linkage == "internal"]


def report(fn: LlvmCompiled, out: TextIO | None = None) -> None:
    """Write what ``$GRAPHC_DEBUG`` asks for about the compile of ``fn``."""
    depth = level()
    if depth <= 0:
        return
    out = sys.stderr if out is None else out
    out.write(summary(fn) + "\n")
    if depth >= 2:
        out.writelines(line + "\n" for line in schedule(fn))
    if depth >= 3:
        out.write(f"--- optimized IR [{fn.cache_key[:12]}] ---\n{fn.llvm_ir}\n")
    if depth >= 4:
        out.write(f"--- assembly [{fn.cache_key[:12]}] ---\n{fn.asm}\n")
    out.flush()


def summary(fn: LlvmCompiled) -> str:
    """One line: ``graphc llvm: 12 nodes (7 ops), 5 kernels, ... 412.0 ms, cache miss``."""
    ops = sum(n.op.name not in LEAVES for n in fn.nodes)
    layout = fn.runtime.layout
    dims = f", dims ({', '.join(layout.dims)})" if layout.dims else ""
    hit = "cache hit" if fn.cache_hit else "cache miss"
    return (f"graphc llvm: {len(fn.nodes)} nodes ({ops} ops), {len(fn.kernel_names)} kernels, "
            f"{len(layout.inputs)} inputs, {len(layout.params)} params, "
            f"{len(layout.outputs)} outputs, {len(layout.updates)} updates{dims}, "
            f"{fn.compile_seconds * 1e3:.1f} ms, {hit} [{fn.cache_key[:12]}]")


def schedule(fn: LlvmCompiled) -> Iterable[str]:
    """One line per node in execution order: position, op, name, type, and the kernels it
    made when the lowering recorded them (``Lowered.kernels``: position -> kernel names);
    else the kernels follow the nodes, in order."""
    lowered = fn._lowered
    by_node: dict[int, list[str]] | None = getattr(lowered, "kernels", None)
    for position, node in enumerate(fn.nodes):
        name = f" {node.name!r}" if node.name else ""
        line = (f"  [{position:3d}] {node.op.name}{name} {format_shape(node.shape)} "
                f"{node.dtype}")
        if by_node is not None and node.op.name not in LEAVES:
            line += f"  -> {', '.join(by_node.get(position, [])) or '(a view)'}"
        yield line
    if by_node is None:
        yield f"  kernels: {', '.join(fn.kernel_names) or '(none)'}"

