"""Memory planning: liveness of every value and which buffers kernels may overwrite.

Backends run the nodes of a graph in one order (its ``toposort``). The plan says,
for that order,

* ``last_use``: the position of each value's last reader (values the caller gets
  back, outputs and update values, live to the end);
* ``out_buffer``: for each fused kernel, an array it may write its result into
  instead of allocating one: the buffer of one of its own inputs that dies with
  it (the kernel then computes in place), or of a value that died earlier with
  the same shape and dtype;
* ``updates_in_place``: training updates whose kernel writes straight into the
  param's array (scheduled last, so every other reader has run).

A buffer may be overwritten only when nothing can still read it, through any
alias: ops that may return a view of an input (reshape, transpose, slicing, ...)
extend the life of the buffers they view. Only arrays the program allocated
itself ("fresh" values) are ever overwritten, never inputs, params or constants.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from graphc.graph import Graph
from graphc.ops.elementwise import Elementwise
from graphc.tensor import Tensor
from graphc.types import FLOAT_DTYPES

#: Ops whose result is always a newly allocated array, never a view of an input (checked
#: against their reference implementations; einsum, for one, returns views of diagonals).
FRESH_OPS = frozenset(("fused", "dense", "matmul", "addmm", "sum", "max", "min", "prod",
                       "cast", "full_like"))

END = 1 << 62  # the position of "after the graph": outputs live until then


def is_fresh(node: Tensor) -> bool:
    """Is ``node``'s value a new array the program owns?"""
    if isinstance(node.op, Elementwise):
        return node.op.name != "identity"
    return node.op.name in FRESH_OPS


@dataclass
class MemoryPlan:
    """Liveness and buffer reuse for one execution order."""

    order: list[Tensor]
    last_use: dict[Tensor, int]
    out_buffer: dict[Tensor, Tensor] = field(default_factory=dict)
    in_place: set[Tensor] = field(default_factory=set)  # kernels that overwrite an input
    #: update kernels that write into their param's own array (new value → param)
    updates_in_place: dict[Tensor, Tensor] = field(default_factory=dict)

    @property
    def reused(self) -> int:
        """How many kernel results go into an existing buffer."""
        return len(self.out_buffer)


def plan(graph: Graph) -> MemoryPlan:
    """The memory plan of ``graph``: its execution order, liveness and buffer reuse."""
    order = graph.toposort()
    buffers = _aliases(order)
    in_place_updates = _in_place_updates(graph, order, buffers)
    if in_place_updates:  # they read params others may still read: run them last
        order = [n for n in order if n not in in_place_updates] + list(in_place_updates)
    position = {node: k for k, node in enumerate(order)}
    last_use: dict[Tensor, int] = {}
    for k, node in enumerate(order):
        for i in node.inputs:
            last_use[i] = k
    for root in graph.roots:
        last_use[root] = END

    buffer_end: dict[Tensor, int] = {}
    for node in order:
        end = last_use.get(node, position[node])
        for b in buffers[node]:
            buffer_end[b] = max(buffer_end.get(b, -1), end)
    freed_at: dict[int, list[Tensor]] = defaultdict(list)
    for b, end in buffer_end.items():
        if end != END and _reusable(b):
            freed_at[end].append(b)

    result = MemoryPlan(order, last_use, updates_in_place=in_place_updates)
    pool: dict[tuple, list[Tensor]] = defaultdict(list)
    for k, node in enumerate(order):
        if node in in_place_updates:
            param = in_place_updates[node]
            result.out_buffer[node] = param
            if param in node.inputs:
                result.in_place.add(node)
        elif node.op.name == "fused" and _reusable_key(_needed(node)):
            key = _needed(node)
            dying = [i for i in node.inputs
                     if buffer_end.get(i) == k and _provided(i) == key and _reusable(i)
                     and all(i not in buffers[j] for j in node.inputs if j is not i)]
            if dying:
                result.out_buffer[node] = dying[0]
                result.in_place.add(node)
                freed_at[k].remove(dying[0])  # taken: not released into the pool
            elif pool[key]:
                result.out_buffer[node] = pool[key].pop()
        for b in freed_at.get(k, ()):
            pool[_provided(b)].append(b)
    return result


def _aliases(order: list[Tensor]) -> dict[Tensor, frozenset[Tensor]]:
    """For each node, the arrays its value may share memory with: itself when fresh, a
    param's own array for a param, else whatever its inputs may share."""
    buffers: dict[Tensor, frozenset[Tensor]] = {}
    for node in order:
        if not node.inputs:
            buffers[node] = frozenset((node,)) if node.op.name == "param" else frozenset()
        elif is_fresh(node):
            buffers[node] = frozenset((node,))
        else:
            buffers[node] = frozenset().union(*(buffers[i] for i in node.inputs))
    return buffers


def _in_place_updates(graph: Graph, order: list[Tensor],
                      buffers: dict[Tensor, frozenset[Tensor]]) -> dict[Tensor, Tensor]:
    """Update kernels that may write straight into their param's array (an optimizer
    step ``w ← w − lr·g`` without a new array and a copy), run after everything else.

    Legal when the new value is an elementwise kernel of the param's type, or an
    ``addmm`` accumulating into the param (its ``c``; BLAS reads each block of C before
    writing it, but a and b must be other arrays), read by nothing else; no output or
    other new value may share the param's memory; the kernel reads the param only
    directly (never through a view, which the writes would overtake); and no other
    in-place kernel reads this param or writes one this kernel reads.
    """
    readers = {i for node in order for i in node.inputs}
    roots = list(graph.roots)
    chosen: dict[Tensor, Tensor] = {}
    for param, value in graph.updates:
        if not _writes_in_place(value, param) or value in readers \
                or roots.count(value) != 1 or _needed(value) != _provided(param):
            continue
        if any(param in buffers[r] for r in roots if r is not value):
            continue
        if any(param in buffers[i] for i in value.inputs if i is not param):
            continue
        reads = _reads(value, buffers)
        if any(p in reads or param in _reads(v, buffers) for v, p in chosen.items()):
            continue
        chosen[value] = param
    return chosen


def _writes_in_place(value: Tensor, param: Tensor) -> bool:
    """Can ``value``'s kernel write over ``param`` as it computes?"""
    if value.op.name == "fused":
        return value.attr["reduce"] is None
    if value.op.name != "addmm":
        return False
    c, *factors = value.inputs
    return c is param and all(f is not param for f in factors)


def _reads(node: Tensor, buffers: dict[Tensor, frozenset[Tensor]]) -> frozenset[Tensor]:
    return frozenset().union(*(buffers[i] for i in node.inputs))


def _needed(node: Tensor) -> tuple:
    """The buffer a kernel writes: its whole iteration space (before any reduction)."""
    if node.op.name != "fused":
        return tuple(node.shape), node.dtype
    return tuple(node.attr["shape"]), node.attr["dtype"]


def _provided(node: Tensor) -> tuple:
    """The buffer a value occupies."""
    return tuple(node.shape), node.dtype


def _reusable_key(key: tuple) -> bool:
    """Non-scalar float or bool arrays (0-d results may be NumPy scalars, not arrays)."""
    shape, dtype = key
    return len(shape) > 0 and (dtype in FLOAT_DTYPES or dtype == "bool")


def _reusable(node: Tensor) -> bool:
    return is_fresh(node) and _reusable_key(_provided(node))
