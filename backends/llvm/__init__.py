"""The LLVM backend: a graph becomes one native function, vectorized for this CPU.

``lower(graph)`` returns an ``LlvmCompiled``; ``fn.llvm_ir`` shows the IR.
"""

from __future__ import annotations

from graphc.backends.llvm.compiled import LlvmCompiled, lower

__all__ = ["LlvmCompiled", "lower"]
