"""``gx.export``: a graph as a shared library with a C ABI (through the llvm backend)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from graphc.compiled import Compiled
from graphc.graph import Graph
from graphc.tensor import Param, Tensor


def export(fn_or_outputs: Compiled | Graph | Tensor | Sequence[Tensor],
           path: str | os.PathLike, *, inputs: Sequence[Tensor] | None = None,
           updates: Mapping[Param, Any] | None = None, header: str | os.PathLike | None = None,
           example: str | os.PathLike | None = None, weights: str = "embedded",
           name: str = "model", optimize: bool = True) -> Any:
    """Build a compiled function (or a graph) into the shared library ``path``.

    Parameters
    ----------
    fn_or_outputs : Compiled, Graph, Tensor or sequence of Tensors
        A function from ``gx.compile`` (any backend: its optimized graph is exported), a
        ``Graph``, or output tensors (then ``inputs`` lists the inputs in argument order,
        and ``updates`` the training updates, as for ``gx.compile``).
    path : path
        The shared library to write (``libmodel.so``).
    header, example : path, optional
        Where to write the C header and an example C program that calls the library.
    weights : {"embedded", "argument"}
        Embed the params' current values in the library (training updates them in the
        library's own copy), or take them as pointer arguments (updated in place).
    name : str
        The prefix of the C functions: ``<name>_run`` and ``<name>_strerror``.

    Returns
    -------
    graphc.backends.llvm.export.Exported
        The paths written and the symbolic dims ``<name>_run`` takes first.

    The ABI (argument order, statuses, update semantics, how BLAS is linked) is
    documented in the header it writes and in ``graphc.backends.llvm.export``.
    """
    from graphc.backends.llvm.export import export as build
    from graphc.passes import run_pipeline

    if isinstance(fn_or_outputs, Compiled):
        graph = fn_or_outputs.graph
    else:
        if isinstance(fn_or_outputs, Graph):
            graph = fn_or_outputs
        else:
            outputs = [fn_or_outputs] if isinstance(fn_or_outputs, Tensor) else fn_or_outputs
            if inputs is None:
                raise TypeError("export(outputs, ...) needs inputs=[...] in argument order")
            graph = Graph.build(inputs, list(outputs), updates)
        graph, _ = run_pipeline(graph, level=3 if optimize else 0)
    return build(graph, path, header=header, weights=weights, name=name, example=example)
