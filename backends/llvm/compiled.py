"""``LlvmCompiled``: a graph compiled to native code, callable like any ``Compiled``."""

from __future__ import annotations

import numpy as np

from graphc.backends.llvm import lower as lowering
from graphc.backends.llvm import target
from graphc.backends.llvm.runtime import Runtime
from graphc.compiled import Compiled
from graphc.graph import Graph


class LlvmCompiled(Compiled):
    """A graph compiled to native code; ``.llvm_ir`` is its IR, ``.asm`` its assembly."""

    def __init__(self, graph: Graph, lowered: lowering.Lowered) -> None:
        self._unoptimized_ir = str(lowered.module)
        self._optimized = target.optimize(self._unoptimized_ir)
        obj = target.emit_object(self._optimized)
        loaded = target.LoadedObject(obj)
        self.runtime = Runtime(loaded.address(lowering.ENTRY), lowered.layout, lowered.nodes,
                               lowered.failures, loaded)
        super().__init__(graph, self._execute, backend="llvm")

    @property
    def llvm_ir(self) -> str:
        """The optimized LLVM IR."""
        return str(self._optimized)

    @property
    def llvm_ir_unoptimized(self) -> str:
        return self._unoptimized_ir

    @property
    def asm(self) -> str:
        """The host assembly."""
        return target.emit_assembly(self._optimized)

    def _execute(self, args: list[np.ndarray], params: list[np.ndarray],
                 dims: dict[str, int]):
        return self.runtime.run(args, params, dims)


def lower(graph: Graph) -> LlvmCompiled:
    """Compile ``graph`` to native code and load it."""
    return LlvmCompiled(graph, lowering.lower(graph))
