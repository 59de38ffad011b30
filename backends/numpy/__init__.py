"""The NumPy backend: a graph becomes generated Python source calling NumPy.

``lower(graph)`` returns a ``Compiled`` whose ``source`` is the generated code.
An exception raised inside it is re-raised as a ``GraphcError`` naming the node
(op, runtime shapes and the user's line that built it).
"""

from __future__ import annotations

import linecache
import sys
from typing import Any

import numpy as np

from graphc.backends.numpy.codegen import Program, generate
from graphc.compiled import Compiled
from graphc.errors import GraphcError
from graphc.graph import Graph

__all__ = ["lower", "NumpyCompiled"]


class NumpyCompiled(Compiled):
    """A graph compiled to NumPy source; ``.source`` shows the code."""

    def __init__(self, graph: Graph, program: Program) -> None:
        self.program = program
        self.source = program.source
        namespace = dict(program.namespace)
        namespace["rng"] = _Streams()
        code = compile(program.source, program.filename, "exec")
        # Registering the source lets tracebacks and debuggers show the generated lines.
        linecache.cache[program.filename] = (len(program.source), None,
                                             program.source.splitlines(True), program.filename)
        exec(code, namespace)
        self._fn = namespace["graph"]
        super().__init__(graph, self._execute, backend="numpy")

    def _execute(self, args, params, dims):
        try:
            # as in the reference implementations, inf and nan are values, not warnings
            with np.errstate(all="ignore"):
                return self._fn(*args, *params, dims)
        except GraphcError:
            raise
        except Exception as e:  # noqa: BLE001 - re-raised with the node that failed
            node = self._failing_node(sys.exc_info()[2])
            if node is None:
                raise
            where = f"\n  built at {node.location}" if node.location else ""
            inputs = ", ".join(str(i.type) for i in node.inputs)
            raise GraphcError(f"{node.op.name}: {type(e).__name__}: {e}\n  inputs: ({inputs})"
                              f"{where}") from e

    def _failing_node(self, tb):
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self.program.filename:
                line = tb.tb_lineno
            tb = tb.tb_next
        return self.program.line_nodes.get(line)


class _Streams:
    """One NumPy generator per random key: a compiled function draws fresh numbers each
    call, reproducibly from the key."""

    def __init__(self) -> None:
        self._streams: dict[Any, np.random.Generator] = {}

    def __call__(self, key: int) -> np.random.Generator:
        if key not in self._streams:
            self._streams[key] = np.random.default_rng(key)
        return self._streams[key]


def lower(graph: Graph) -> NumpyCompiled:
    """Compile ``graph`` to NumPy source and load it."""
    return NumpyCompiled(graph, generate(graph))
