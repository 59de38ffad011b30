"""The LLVM backend: a graph becomes one native function, vectorized for this CPU.

``lower(graph)`` returns an ``LlvmCompiled``; ``fn.llvm_ir`` shows the IR.
"""

from __future__ import annotations

from graphc.backends.llvm.compiled import LlvmCompiled, lower
from graphc.backends.llvm.unoptimized import load as load_unoptimized
from graphc.backends.llvm.unoptimized import remember as remember_unoptimized

__all__ = ["LlvmCompiled", "load_unoptimized", "lower", "remember_unoptimized"]
