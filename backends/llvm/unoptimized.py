"""Cache entries keyed by the graph as the user built it: a warm start skips the optimizer.

The index entry of a compiled graph (``<graph key>.json``) is keyed by the optimized
graph, so finding it means running the optimizer first: 6-13 ms of a 35-45 ms warm start
for an MLP training step. A compile through ``gx.compile`` therefore also writes
``<key>.pre.json``, keyed by the graph before optimization and the optimizer's settings
(level, excluded rules). It names the optimized graph's entry and holds what calling the
code needs that would otherwise come from the optimized graph:

- the values of its constants (the optimizer folds new ones, and constants are slots
  filled at run time, not part of the code);
- which of the graph's params the code reads, in its order, and which it updates.

A later process loads the code from these two entries without optimizing. ``fn.graph``,
``fn.report`` and the nodes an error message names are made on first use, by running the
optimizer then (the key covers everything it reads, so it gives the same graph).

No entry is written for inference mode (the optimizer freezes param values into the
graph), for graphs whose optimized form has inputs of its own, or for constants of more
than ``MAX_CONSTANT_BYTES`` in all (they would be stored twice).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.backends.llvm import cache, host
from graphc.graph import Graph

if TYPE_CHECKING:
    from graphc.backends.llvm.compiled import LlvmCompiled

#: constants beyond this many bytes in all make no entry (the optimized graph's entry
#: reads them from the graph; here they would be copied into the cache)
MAX_CONSTANT_BYTES = 1 << 16

Optimize = Callable[[], tuple[Graph, Any]]


def key(graph: Graph, level: int, exclude: Sequence[str]) -> str | None:
    """The name of ``graph``'s entry for these optimizer settings (None: uncacheable)."""
    try:
        graph_key = cache.graph_key(graph, host.host_key())
    except cache.Uncacheable:
        return None
    return cache.digest(("unoptimized", graph_key, f"level={level}",
                          repr(sorted(exclude)))) + ".pre"


def remember(graph: Graph, fn: LlvmCompiled, level: int, exclude: Sequence[str]) -> None:
    """Write the entry that loads ``fn`` from ``graph`` before optimization, when ``fn``'s
    own index entry exists and the entry can describe it."""
    if cache.directory() is None or getattr(fn, "graph_key", None) is None:
        return
    optimized = fn.graph
    constants = fn.runtime.layout.constants
    if (list(optimized.inputs) != list(graph.inputs)
            or len(optimized.outputs) != len(graph.outputs)
            or sum(c.nbytes for c in constants) > MAX_CONSTANT_BYTES):
        return
    position = {p: k for k, p in enumerate(graph.params)}
    if any(p not in position for p in optimized.params):
        return
    name = key(graph, level, exclude)
    if name is None:
        return
    entry = {"graph": fn.graph_key,
             "params": [position[p] for p in optimized.params],
             "updated": [position[p] for p, _ in optimized.updates],
             "constants": [_array_json(c) for c in constants]}
    cache.write(name + ".json", json.dumps(entry).encode())


def load(graph: Graph, level: int, exclude: Sequence[str],
         optimize: Optimize) -> LlvmCompiled | None:
    """``graph`` compiled, from its entry and the optimized graph's, without optimizing;
    None when either entry or the code is absent, or an entry is stale."""
    from graphc.backends.llvm.compiled import LlvmCompiled

    if cache.directory() is None:
        return None
    name = key(graph, level, exclude)
    payload = None if name is None else cache.read(name + ".json")
    if payload is None:
        return None
    try:
        entry = json.loads(payload)
        params = [graph.params[k] for k in entry["params"]]
        updated = [graph.params[k] for k in entry["updated"]]
        constants = [_array(c) for c in entry["constants"]]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    stand_in = SimpleNamespace(inputs=graph.inputs, outputs=graph.outputs, params=params,
                               updates=[(p, None) for p in updated])
    return LlvmCompiled.from_index(stand_in, entry["graph"], constants, optimize)


class Deferred(Sequence):
    """A sequence made on first use (the schedule's nodes, once the optimizer has run)."""

    def __init__(self, make: Callable[[], list]) -> None:
        self._make: Callable[[], list] | None = make
        self._items: list = []

    def _get(self) -> list:
        if self._make is not None:
            self._items, self._make = self._make(), None
        return self._items

    def __getitem__(self, index: Any) -> Any:
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self) -> Iterator:
        return iter(self._get())


def _array_json(array: np.ndarray) -> list:
    a = np.ascontiguousarray(array)
    return [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode()]


def _array(data: list) -> np.ndarray:
    dtype, shape, raw = data
    a = np.frombuffer(base64.b64decode(raw), dtype=np.dtype(dtype)).reshape(shape)
    return a.copy()  # writable and owning its memory, as constant_value's arrays are
