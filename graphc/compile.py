"""``gx.compile``: from tensors to a callable, through a backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from graphc.compiled import Compiled
from graphc.graph import Graph
from graphc.tensor import Param, Tensor


def compile(inputs: Sequence[Tensor], outputs: Sequence[Any] | Tensor,
            updates: Mapping[Param, Any] | None = None, backend: str = "numpy") -> Compiled:
    """Compile a graph into a callable.

    Parameters
    ----------
    inputs : sequence of Tensor
        The ``gx.input`` tensors, in the order the callable takes its arguments.
    outputs : Tensor or sequence of Tensor
        What the callable returns: one array for a single tensor, else a tuple.
    updates : mapping of Param to Tensor, optional
        Training updates ``param ← value``, applied after the outputs are computed
        and only if the whole call succeeds.
    backend : str
        ``"numpy"``.

    Returns
    -------
    Compiled
        Call it with one array per input; ``.source`` (numpy backend) shows the code.
    """
    single = isinstance(outputs, Tensor)
    graph = Graph.build(inputs, [outputs] if single else list(outputs), updates)
    return _lower(graph, backend)


@lru_cache(maxsize=256)
def _lower(graph: Graph, backend: str) -> Compiled:
    from graphc import backends

    return backends.get(backend)(graph)
